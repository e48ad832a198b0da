"""Timing of a generate/enhance run: `RunReport.stage` wraps each step of the cascade, so the steps themselves
carry no timing code; the closing line and the per-stage seconds come from here."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import torch


@dataclass
class RunReport:
    """What one generate/enhance run did: frames, the whole wall time (`seconds`: from the command's start, so
    imports and model loading count), the steady state (frames and seconds after the first batch) and the
    seconds spent per stage (the encoder's in its own thread, overlapped)."""

    frames: int = 0
    seconds: float = 0.0
    steady_frames: int = 0
    steady_seconds: float = 0.0
    precision: str = "fp32"
    backends: dict[str, str] = field(default_factory=dict)  # network -> what ran it ("openvino f32", ...)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    _steady_since: float | None = field(default=None, init=False, repr=False)
    _warmup_frames: int = field(default=0, init=False, repr=False)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    @property
    def steady_fps(self) -> float:
        return self.steady_frames / self.steady_seconds if self.steady_seconds else self.fps

    def add(self, stage: str, seconds: float) -> None:
        self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + seconds

    @contextlib.contextmanager
    def stage(self, name: str, device: torch.device | None = None):
        """Add the block's run time to stage `name`; with a CUDA `device`, once its queued kernels have run. As a
        decorator, each call's (for work handed to a thread)."""
        t0 = time.perf_counter()
        yield
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize()
        self.add(name, time.perf_counter() - t0)

    def add_load(self, started_at: float) -> None:
        """Record 'load', listed first: the seconds since `started_at` that no stage has claimed (imports, checks,
        loading the models)."""
        load = time.perf_counter() - started_at - sum(self.stage_seconds.values())
        self.stage_seconds = {"load": load, **self.stage_seconds}

    def count(self, frames: int) -> None:
        """Count a finished batch; the steady state starts after the first (it carries the warm-up: kernel
        selection, filling the queues)."""
        self.frames += frames
        if self._steady_since is None:
            self._steady_since, self._warmup_frames = time.perf_counter(), self.frames

    def finish(self, started_at: float) -> None:
        now = time.perf_counter()
        self.seconds = now - started_at
        if self._steady_since is not None:
            self.steady_frames = self.frames - self._warmup_frames
            self.steady_seconds = now - self._steady_since

    def line(self, what: str) -> str:
        # a stage's share of the wall time; the encoder's thread overlaps the others, so shares can pass 100%
        stages = ", ".join(f"{k} {v:.1f} s ({100 * v / max(self.seconds, 1e-9):.0f}%)"
                           for k, v in self.stage_seconds.items())
        nets = "".join(f"; {k} on {v}" for k, v in self.backends.items())
        return (f"{what}: {self.frames} frames in {self.seconds:.1f} s, {self.fps:.1f} FPS end to end (loading "
                f"included); {self.steady_fps:.1f} FPS steady state ({self.precision}{nets}; {stages})")
