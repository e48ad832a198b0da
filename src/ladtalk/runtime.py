"""Device and precision choice, made once by the caller (models never pick a device themselves)."""

from __future__ import annotations

import torch

from ladtalk.errors import InputError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' -> cuda if available, else mps, else cpu; an explicit but unavailable device is an error."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} was requested but CUDA is not available; use --device cpu or auto")
    return dev


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The reduced precision to autocast to: bf16 where supported, fp16 on older GPUs, None for fp32."""
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "bf16" or (precision == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    if precision in ("fp16", "auto"):
        return torch.float16
    raise InputError(f"unknown precision {precision!r}; choose auto, fp32, bf16 or fp16")
