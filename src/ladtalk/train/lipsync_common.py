"""Pieces shared by the two lip-sync trainers (expert and generator): their train config, resumable batches,
workers and their loop."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset

from ladtalk.errors import InputError
from ladtalk.runtime import PRECISIONS
from ladtalk.train.common import CheckpointManager, RunLogger, Runtime, progress
from ladtalk.train.config import check_positive


@dataclass(frozen=True, kw_only=True)
class LipSyncTrainConfig:
    """The `train` map of the lip-sync expert's presets (configs/syncnet*.yaml); the generator's adds to it."""

    seed: int
    batch_size: int
    lr: float                          # Adam
    max_steps: int
    max_minutes: float | None = None   # also stop after this long (None: only at max_steps)
    eval_every: int                    # steps between evaluations; each writes a checkpoint
    eval_batches: int                  # held-out batches per evaluation
    log_every: int
    precision: Literal[PRECISIONS]
    num_workers: int | Literal["auto"]

    def __post_init__(self):
        check_positive(self, "batch_size", "lr", "max_steps", "eval_every", "eval_batches", "log_every")
        if self.num_workers != "auto" and self.num_workers < 0:
            raise InputError(f"train.num_workers must be 'auto' or at least 0, got {self.num_workers}")


def num_workers(setting: int | str) -> int:
    """'auto' -> up to 8 loader processes, leaving one core to the main process; 0 loads in the main process."""
    if setting != "auto":
        return int(setting)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 0 if cores <= 2 else min(8, cores - 1)


def loader(dataset: Dataset, start: int, stop: int, batch_size: int, workers: int | str, pin: bool) -> DataLoader:
    """The batches of steps start..stop-1: step s takes indices s*B ... s*B + B - 1, so a resumed run draws exactly
    the batches an uninterrupted one would (the datasets draw at random per index)."""
    n = num_workers(workers)
    steps = BatchSampler(range(start * batch_size, stop * batch_size), batch_size, drop_last=False)
    return DataLoader(dataset, batch_sampler=steps, num_workers=n, pin_memory=pin,
                      persistent_workers=False, prefetch_factor=4 if n else None)


def run_steps(data: Dataset, t: LipSyncTrainConfig, rt: Runtime, step: int, desc: str, log: RunLogger,
              ckpt: CheckpointManager, train_step: Callable[[list[torch.Tensor]], tuple[dict[str, Any], Any]],
              evaluate: Callable[[int, Any], None], shown: Callable[[dict[str, float]], dict[str, Any]]) -> int:
    """Steps from `step` to train.max_steps (or train.max_minutes); returns the step reached. `train_step(batch)`
    gives the values to log (`shown(values)`: the bar's figures) and what `evaluate(step, that)` gets: it validates
    and checkpoints every eval_every steps, at the end, and once more (with None) if no checkpoint exists."""
    bar = progress(t.max_steps, initial=step, desc=desc)
    end = time.monotonic() + 60.0 * t.max_minutes if t.max_minutes else math.inf
    batches = loader(data, step, t.max_steps, t.batch_size, t.num_workers, rt.device.type == "cuda")
    # on a CPU, denormal floats count as zero: small nets produce many, which x86 cores handle many times slower
    torch.set_flush_denormal(rt.device.type == "cpu")
    try:
        for batch in batches:
            values, sample = train_step(batch)
            step += 1
            bar.update(1)
            if step % t.log_every == 0 or step == 1:
                values = {k: float(v) for k, v in values.items()}
                log.log(step, values)
                bar.set_postfix(shown(values))
            stop = step >= t.max_steps or time.monotonic() >= end
            if stop or step % t.eval_every == 0:
                evaluate(step, sample)
            if stop:
                break
    finally:
        torch.set_flush_denormal(False)
    bar.close()
    if not (ckpt.last_dir / "config.json").is_file():
        evaluate(step, None)
    return step
