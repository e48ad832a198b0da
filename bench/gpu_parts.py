"""The part children of bench/gpu_suite.py: the recorder every part writes through, and the environment and
prepare parts (train, infer and restore live in gpu_train.py, gpu_infer.py and gpu_restore.py)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

# dense bf16 matrix rate from the vendor datasheets (TFLOP/s, without sparsity), by a part of the device name
DATASHEET_BF16_TFLOPS = {"H200": 989.4, "H100 80GB HBM3": 989.4, "H100 SXM": 989.4, "H100 NVL": 835.0,
                         "H100 PCIe": 756.0, "A100": 312.0}
BENCH = Path(__file__).resolve().parent


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write through a hidden temporary file and a rename: a reader (or a kill) never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


class Recorder:
    """A part's figures, rewritten atomically to its file after every change: what survives a kill."""

    def __init__(self, path: Path, stall: bool = False):
        self.path = path
        self.data: dict = {"status": "running", "pid": os.getpid(), "figures": {}}
        self.stall = stall

    def set(self, key: str, value) -> None:
        self.data["figures"][key] = value
        self._flush()

    def append(self, key: str, row: dict) -> None:
        self.data["figures"].setdefault(key, []).append(row)
        self._flush()

    def finish(self, status: str, error: str | None = None) -> None:
        self.data["status"] = status
        if error:
            self.data["error"] = error
        self._flush()

    def _flush(self) -> None:
        atomic_write(self.path, json.dumps(self.data, indent=1, default=str))
        if self.stall:  # the tests' stand-in for a hung kernel or compile, after the first figure is safe
            self.stall = False
            print("stalling on purpose (--stall-part)", flush=True)
            time.sleep(10**6)


def attempt(rec: Recorder, key: str, fn, *args, **kw):
    """fn(*args, **kw), or - when it raises - None with the error recorded as `<key>_error`: one failed
    measurement (an analysis that breaks, a strip that cannot be drawn) must not cost the part's other figures."""
    try:
        return fn(*args, **kw)
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        rec.set(f"{key}_error", f"{type(e).__name__}: {e}"[-1500:])
        return None


def seconds_left(deadline: float) -> float:
    return deadline - time.time()


def identity_dir(a: argparse.Namespace) -> Path:
    return a.work / f"identity-{a.crop_size}"


def prepared_identity(a: argparse.Namespace) -> Path:
    """The identity folder the prepare part wrote, or a clear error when it is missing."""
    from ladtalk.errors import InputError

    path = identity_dir(a)
    if not (path / "identity.json").is_file():
        raise InputError(f"{path} is not prepared; run the prepare part first (--parts prepare,...)")
    return path


def cuda_timer(device):
    """(start, stop) -> elapsed seconds: CUDA events on a GPU (device time), perf_counter on the CPU."""
    import torch

    if device.type == "cuda":
        def start():
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            return ev

        def stop(ev) -> float:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            end.synchronize()
            return ev.elapsed_time(end) / 1000.0
        return start, stop
    return time.perf_counter, lambda t0: time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------- environment

def nvidia_smi() -> dict:
    fields = ["name", "driver_version", "memory.total", "clocks.max.sm", "power.limit", "pci.bus_id"]
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={','.join(fields)}", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"error": f"nvidia-smi did not run: {e}"}
    if out.returncode:
        return {"error": f"nvidia-smi exit {out.returncode}: {out.stderr.strip()[-300:]}"}
    gpus = [dict(zip(fields, (v.strip() for v in line.split(",")))) for line in out.stdout.strip().splitlines()]
    return {"gpus": gpus}


def package_versions() -> dict:
    """Versions of what the parts import (the carried wheels among them), or why an import failed; facenet_pytorch
    and lpips carry weight files only: located, never imported."""
    import importlib.util

    out = {name: "present" if importlib.util.find_spec(name) else "absent" for name in ("facenet_pytorch", "lpips")}
    for name in ("numpy", "scipy", "av", "librosa", "numba", "soxr", "soundfile", "cv2", "safetensors", "yaml",
                 "matplotlib", "tqdm"):
        try:
            out[name] = getattr(__import__(name), "__version__", "present")
        except Exception as e:  # noqa: BLE001 - any import failure is a figure here
            out[name] = f"import failed: {type(e).__name__}: {e}"
    try:  # the functions of librosa that ladtalk uses (stft needs numba at import)
        import numpy as np

        from ladtalk.features.mel import SAMPLE_RATE, melspectrogram
        melspectrogram(np.zeros(SAMPLE_RATE, np.float32))
        out["ladtalk_mel"] = "ok"
    except Exception as e:  # noqa: BLE001
        out["ladtalk_mel"] = f"failed: {type(e).__name__}: {e}"
    return out


def matmul_rate(device, dry: bool) -> dict:
    """Measured matrix-product rate: the ceiling the SOVQAE's and the training's TFLOP/s are compared with."""
    import torch

    n, dtype = (512, torch.float32) if dry else (8192, torch.bfloat16)
    x = torch.randn(n, n, device=device, dtype=dtype)
    y = torch.randn(n, n, device=device, dtype=dtype)
    start, stop = cuda_timer(device)
    for _ in range(3):
        x @ y
    reps = 3 if dry else 20
    t0 = start()
    for _ in range(reps):
        x @ y
    seconds = stop(t0)
    return {"n": n, "dtype": str(dtype).replace("torch.", ""), "reps": reps,
            "tflops": round(2 * n**3 * reps / seconds / 1e12, 2)}


def part_environment(a: argparse.Namespace, rec: Recorder, deadline: float) -> None:
    import platform

    rec.set("python", sys.version.split()[0])  # first: recorded before any slow import
    rec.set("platform", platform.platform())
    rec.set("cpu_count", os.cpu_count())
    import torch

    rec.set("cuda_available", torch.cuda.is_available())
    rec.set("torch", {"version": torch.__version__, "cuda": torch.version.cuda,
                      "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None})
    rec.set("nvidia_smi", nvidia_smi())
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        name = props.name
        rec.set("device", {"name": name, "capability": f"{props.major}.{props.minor}",
                           "multiprocessors": props.multi_processor_count,
                           "memory_gib": round(props.total_memory / 2**30, 1),
                           "bf16_supported": torch.cuda.is_bf16_supported()})
        peak = next((v for k, v in DATASHEET_BF16_TFLOPS.items() if k in name), None)
        rec.set("datasheet_bf16_dense_tflops", peak)
    elif not a.dry_run:
        rec.set("device", {"error": "torch.cuda.is_available() is False: no usable GPU for this torch"})
        return
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=BENCH, timeout=10).stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        commit = None
    rec.set("git_commit", commit)
    rec.set("packages", package_versions())
    rec.set("matmul", matmul_rate(torch.device(a.device), a.dry_run))


# -------------------------------------------------------------------------------------------------- prepare

def part_prepare(a: argparse.Namespace, rec: Recorder, deadline: float) -> None:
    from ladtalk.data.identity import Identity
    from ladtalk.data.prepare import prepare
    from ladtalk.io.video import probe_video

    info = probe_video(a.video)
    rec.set("video", {"path": str(a.video), "width": info.width, "height": info.height, "fps": info.fps,
                      "frames": info.frame_count})
    t0 = time.perf_counter()
    path = prepare(a.video, identity_dir(a), size=a.crop_size, device=a.device)
    ident = Identity.open(path)
    rec.set("identity", {"dir": str(path), "frames": ident.frame_count, "fps": ident.fps,
                         "crop_size": ident.crop_size, "faces_found": int(ident.has_face.sum()),
                         "train_frames": len(ident.train_indices), "test_frames": len(ident.test_indices),
                         "seconds": round(time.perf_counter() - t0, 1)})


def watch_parent(deadline: float, grace_seconds: float = 60.0) -> None:
    """End this part's whole process group if the suite process is gone (killed outright, so it could not take
    the part down) or long past the part's deadline: a part must never hold the GPU after the suite ended."""
    import signal
    import threading

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent and time.time() < deadline + grace_seconds:
            time.sleep(1.0)
        print("the suite is gone or the part is far past its deadline: ending the part", flush=True)
        os.killpg(os.getpgid(0), signal.SIGKILL)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()
