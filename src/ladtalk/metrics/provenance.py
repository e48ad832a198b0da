"""What a score was measured with, recorded in every summary and report so that two figures can be compared or
repeated: the commit, the compute precision, the thread count, the CPU (model and the flags that change kernels:
AVX2, AVX512-BF16, AMX), the GPU if any, and the library versions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from ladtalk.runtime import cpu_flags, cpu_model, inference_settings

# the CPU features that select different (bf16 / wide-vector) kernels, hence slightly different numbers
KERNEL_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def git_commit() -> str:
    """This checkout's HEAD commit (with "+dirty" when files changed), or "unknown" outside a git checkout."""
    try:  # the full hash, never a tag name; dirty: tracked files changed
        head = subprocess.run(["git", "describe", "--always", "--abbrev=40", "--exclude=*", "--dirty=+dirty"],
                              cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() if head.returncode == 0 else "unknown"


def provenance(device: str | torch.device = "cpu", precision: str = "auto") -> dict:
    """{commit, precision (as resolved on `device`), device, threads, cpu, cpu_flags, gpu, python, torch, numpy}."""
    settings = inference_settings(device, precision)
    flags = cpu_flags()
    return {"commit": git_commit(), "precision": settings.precision, "device": str(settings.device),
            "threads": torch.get_num_threads(), "cpu": cpu_model(),
            "cpu_flags": [f for f in KERNEL_FLAGS if f in flags],
            "gpu": torch.cuda.get_device_name(settings.device) if settings.device.type == "cuda" else None,
            "python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__}


def provenance_line(record: dict) -> str:
    """One Markdown line of a provenance record, for the foot of a report."""
    commit = record["commit"][:12] + ("+dirty" if record["commit"].endswith("+dirty") else "")
    flags = ", ".join(record["cpu_flags"]) or "none of " + "/".join(KERNEL_FLAGS)
    gpu = f", GPU {record['gpu']}" if record.get("gpu") else ""
    return (f"Measured at commit `{commit}`, {record['precision']} on {record['device']}{gpu}, "
            f"{record['threads']} threads, CPU {record['cpu']} ({flags}), torch {record['torch']}.")
