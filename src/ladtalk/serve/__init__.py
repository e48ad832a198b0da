"""`ladtalk serve`: the whole workflow in a web page and an HTTP API (optional extra: pip install ladtalk[serve]).

Starlette + uvicorn rather than Gradio: jobs run in their own processes (so cancel really stops them), outlive a
page reload and are reached by plain HTTP calls; the page is one static file: no bundle, no CDN, no telemetry.
"""

from __future__ import annotations

import os
from pathlib import Path

from ladtalk.errors import InputError


def serve(data_dir: str | os.PathLike = "ladtalk_data", host: str = "127.0.0.1", port: int = 7860,
          token: str | None = None, max_upload_mb: float = 512.0, device: str = "auto") -> None:
    """Serve the page and the API until interrupted; jobs run one at a time per device (`cpu`, `cuda:0,cuda:1`)."""
    try:
        import uvicorn

        from ladtalk.serve.app import build_app, is_loopback
        from ladtalk.serve.submit import Server
    except ImportError as e:
        raise InputError(f"`ladtalk serve` needs its extra packages ({e.name} is missing): "
                         "pip install 'ladtalk[serve]'") from e
    from ladtalk.io.atomic import check_writable_dir
    from ladtalk.serve.jobs import JobManager
    from ladtalk.serve.paths import DataDir

    token = token or os.environ.get("LADTALK_SERVE_TOKEN") or None
    if not is_loopback(host) and not token:
        raise InputError(f"listening on {host} exposes the server to the network; give --token SECRET "
                         "(or set LADTALK_SERVE_TOKEN) so that only you can use it")
    if max_upload_mb <= 0:
        raise InputError(f"--max-upload-mb must be positive, got {max_upload_mb}")
    data = DataDir(check_writable_dir(Path(data_dir)))
    if device == "auto":
        import torch

        devices = [f"cuda:{i}" for i in range(torch.cuda.device_count())] or ["cpu"]
    else:
        devices = [d.strip() for d in device.split(",") if d.strip()]
    app = build_app(Server(data, JobManager(data, devices), int(max_upload_mb * 2**20), token,
                           loopback_only=is_loopback(host)))
    print(f"ladtalk serve: http://{host}:{port}/ (data in {data.root}; workers: {', '.join(devices)})", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
