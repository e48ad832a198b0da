"""Device and precision choice, made once by the caller (models never pick a device themselves).

`precision="auto"` means: bf16 on GPUs that support it (fp16 on older ones), bf16 with channels_last on CPUs
with bf16 matrix instructions (Intel AMX, AVX512-BF16: the official Wav2Lip generator runs ~3x faster there),
and fp32 on every other CPU, where bf16 is emulated and many times slower than fp32.
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ladtalk.errors import InputError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# x86 flags (as /proc/cpuinfo names them) under which oneDNN runs bf16 convolutions and matmuls natively
_CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' -> cuda if available, else mps, else cpu; an explicit but unavailable device is an error."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        mps = getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
        device = "cuda" if torch.cuda.is_available() else "mps" if mps else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} was requested but CUDA is not available; use --device cpu or auto")
    return dev


def _cpuinfo(keys: tuple[str, ...], cpuinfo: str | os.PathLike) -> str:
    """The value of the first /proc/cpuinfo line keyed by one of `keys` ('' where none, or no such file)."""
    try:
        lines = Path(cpuinfo).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return next((value for key, _, value in (ln.partition(":") for ln in lines) if key.strip() in keys), "")


def cpu_flags(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU feature flags the kernel reports (Linux); empty where unknown (other systems, unreadable file)."""
    return frozenset(_cpuinfo(("flags", "Features"), cpuinfo).split())  # x86 / arm64 spelling


def cpu_model(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> str:
    """The CPU's model name (for benchmark records); platform.processor() where /proc/cpuinfo has none."""
    return _cpuinfo(("model name",), cpuinfo).strip() or platform.processor() or platform.machine()


def cpu_has_fast_bf16(flags: frozenset[str] | None = None) -> bool:
    """True where this CPU computes bf16 convolutions/matmuls in hardware (AMX or AVX512-BF16 on x86)."""
    flags = cpu_flags() if flags is None else flags
    return platform.machine().lower() in ("x86_64", "amd64") and any(f in flags for f in _CPU_BF16_FLAGS)


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The reduced precision to autocast to: bf16 where supported, fp16 on older GPUs, None for fp32."""
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}; choose {', '.join(PRECISIONS)}")
    if precision == "auto" and device.type == "cpu":
        precision = "bf16" if cpu_has_fast_bf16() else "fp32"
    elif precision == "auto":
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if device.type == "cuda" else "fp32"
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def autocast_to(device: torch.device, amp_dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast to bf16/fp16 where chosen; a no-op for fp32."""
    return contextlib.nullcontext() if amp_dtype is None else torch.autocast(device.type, dtype=amp_dtype)


@dataclass(frozen=True)
class Inference:
    """How networks run for inference on one device: autocast dtype (None = fp32) and memory format."""

    device: torch.device
    amp_dtype: torch.dtype | None
    channels_last: bool

    @property
    def precision(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.amp_dtype]

    def autocast(self) -> contextlib.AbstractContextManager:
        return autocast_to(self.device, self.amp_dtype)

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model on the device, in eval mode and in the chosen memory format."""
        model = model.to(self.device).eval()
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """An image batch (B,C,H,W) in the chosen memory format (oneDNN's bf16 kernels want NHWC)."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.ndim == 4 else x


def inference_settings(device: str | torch.device = "auto", precision: str = "auto") -> Inference:
    """Resolve device and precision for inference; channels_last goes with reduced precision on CPUs and GPUs
    (NHWC is what the bf16 matrix units and tensor cores consume; in fp32 on a CPU it gains nothing)."""
    dev = resolve_device(device)
    amp = autocast_dtype(dev, precision)
    return Inference(dev, amp, channels_last=amp is not None and dev.type in ("cpu", "cuda"))


def command_started_at() -> float:
    """The `time.perf_counter()` value at this process's start (imports included), from /proc; now where unknown."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 of stat(5), counted after the "(comm)" field
        elapsed = time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        elapsed = 0.0
    return time.perf_counter() - elapsed
