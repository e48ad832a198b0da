"""A real `ladtalk serve` process on a free localhost port, a small HTTP client for it, and the state both
serve test files share (the server and its tiny trained models are made once per session)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

SRC = Path(__file__).resolve().parents[1] / "src"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """`python -m ladtalk serve` in a child process, stopped (jobs cancelled) by `stop()`."""

    def __init__(self, data_dir: Path, *args: str):
        self.data_dir = Path(data_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
        self.log = open(self.data_dir.parent / f"serve-{self.port}.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "ladtalk", "serve", "--data-dir", str(self.data_dir),
                                      "--port", str(self.port), "--device", "cpu", *args],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"ladtalk serve did not start: {self.log_text()}") from None
                time.sleep(0.2)

    def kill(self) -> None:
        """End the server as a crash would (SIGKILL): no shutdown, its job processes left running."""
        self.proc.kill()
        self.proc.wait()
        self.log.close()

    def log_text(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown: running jobs are cancelled
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def wait_progress(self, job_id: str, steps: int = 1, timeout: float = 600) -> dict:
        """Block until a running job's progress bar has counted `steps`."""
        deadline = time.monotonic() + timeout
        while not ((job := self.call("GET", f"/api/jobs/{job_id}")[1])["progress"] or {}).get("n", 0) >= steps:
            assert job["state"] in ("queued", "running") and time.monotonic() < deadline, job
            time.sleep(0.1)
        return job

    def call(self, method: str, path: str, body=None, data=None, headers=None) -> tuple[int, object]:
        """(status, decoded JSON or raw bytes) of one request; `body` is sent as JSON, `data` as raw bytes."""
        headers = dict(headers or {})
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                status, raw, ctype = r.status, r.read(), r.headers.get("content-type", "")
        except urllib.error.HTTPError as e:
            status, raw, ctype = e.code, e.read(), e.headers.get("content-type", "")
        return status, json.loads(raw) if ctype.startswith("application/json") else raw

    def upload(self, path_or_bytes, kind: str, name: str = "file") -> tuple[int, object]:
        data = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
        return self.call("POST", f"/api/uploads?kind={kind}&name={name}", data=data,
                         headers={"Content-Type": "application/octet-stream"})

    def submit(self, **body) -> dict:
        status, job = self.call("POST", "/api/jobs", body=body)
        assert status == 202, job
        return job

    def wait(self, job_id: str, timeout: float = 900) -> dict:  # generous: a hang, not a slow CPU
        deadline = time.monotonic() + timeout
        while True:
            status, job = self.call("GET", f"/api/jobs/{job_id}")
            assert status == 200, job
            if job["state"] not in ("queued", "running"):
                return job
            assert time.monotonic() < deadline, f"job {job_id} still {job['state']}: {job}\n{self.log_text()}"
            time.sleep(0.3)


def speech_wav(path: Path, seconds: float = 1.0, sample_rate: int = 16000) -> Path:
    from ladtalk.data.synthetic_speech import synth_speech
    from ladtalk.io.audio import write_wav

    audio, _ = synth_speech(seconds, sample_rate, seed=7)
    write_wav(path, np.asarray(audio, np.float32), sample_rate)
    return path


def data_copy(shared: dict, data_dir: Path) -> Path:
    """A new data folder holding the shared server's identity 'synth' and models 'w2l' and 'vq' (no jobs)."""
    import shutil

    for sub, name in (("identities", "synth"), ("models", "w2l"), ("models", "vq")):
        shutil.copytree(shared["data"] / sub / name, data_dir / sub / name, symlinks=True)
    return data_dir


def runner_pids(job_dir: Path) -> list[int]:
    """The processes whose command line names this job folder (its runner)."""
    pids = []
    for p in Path("/proc").iterdir():
        try:
            if p.name.isdigit() and str(job_dir).encode() in (p / "cmdline").read_bytes():
                pids.append(int(p.name))
        except OSError:
            continue
    return pids


_shared: dict = {}

# tiny SOVQAE training through the API: a few steps, validated and checkpointed on the way
TRAIN_OVERRIDES = ["train.max_steps=2", "train.val_every=2", "train.log_every=1", "train.val_frames=4",
                   "train.checkpoint_every=2"]


def shared_server(tmp_path_factory, request) -> dict:
    """One server for the session, with the synthetic identity 'synth' prepared and a SOVQAE 'vq' trained
    through the API, and a lip-sync model folder 'w2l' (a small Wav2Lip with random weights: training one is
    minutes, and the page's job is to run it, not to make it good)."""
    if _shared:
        return _shared
    import torch

    from ladtalk.checkpoint import save_component
    from ladtalk.models.wav2lip import Wav2Lip, Wav2LipConfig

    root = tmp_path_factory.mktemp("serve")
    server = Served(root / "data", "--max-upload-mb", "1")
    request.session.config.add_cleanup(server.stop)  # lives until the session ends
    torch.manual_seed(0)
    w2l = Wav2Lip(Wav2LipConfig(width=0.25, img_size=48)).eval()
    save_component(root / "data" / "models" / "w2l", "wav2lip", w2l.config, w2l.state_dict())
    prep = server.wait(server.submit(kind="prepare", name="synth", synthetic=True, seconds=2)["id"])
    assert prep["state"] == "done", prep
    train = server.wait(server.submit(kind="train", name="vq", identity="synth", preset="tiny",
                                      overrides=TRAIN_OVERRIDES)["id"])
    assert train["state"] == "done", train
    _shared.update(server=server, root=root, data=root / "data", prepare=prep, train=train,
                   speech=speech_wav(root / "speech.wav", 1.0))
    return _shared
