"""Shared training machinery (one device): precision, seeding, checkpoints with resume, logging, progress, and the
summary every training ends with. Trainer states are loaded with torch.load(weights_only=True), so keep them to
tensors, numbers, strings, lists and dicts (`rng_state()` converts numpy's state for that reason)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ladtalk.checkpoint import load_state_dict, load_trainer_state, read_meta, save_component
from ladtalk.errors import CheckpointError, InputError
from ladtalk.presets import DEFAULT_PRESETS, GPU_PRESETS, preset_names
from ladtalk.runtime import Inference, autocast_dtype, resolve_device


@dataclass(frozen=True)
class Runtime(Inference):
    """Where and how a trainer runs: inference's device, reduced precision and memory format (its `precision`,
    `autocast`), and the loss scaler (enabled for fp16 only: otherwise its scale, step and update do nothing)."""

    channels_last: bool = False
    scaler: torch.amp.GradScaler = field(default_factory=lambda: torch.amp.GradScaler(enabled=False), repr=False)

    def prepare(self, model: nn.Module) -> nn.Module:
        """On the device in the chosen memory format, as for inference, but left in its training mode."""
        training = model.training
        return super().prepare(model).train(training)

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """An image batch on the device in the chosen memory format."""
        return super().images(x.to(self.device, non_blocking=True))


def setup_runtime(device: str | torch.device = "auto", precision: str = "auto",
                  channels_last: bool = False) -> Runtime:
    """Resolve device and precision (one device: there is no multi-process training)."""
    dev = resolve_device(device)
    amp = autocast_dtype(dev, precision)  # "auto": bf16 on CPUs with bf16 matrix units, fp32 on other CPUs
    scaler = torch.amp.GradScaler(dev.type, enabled=amp is torch.float16)
    if dev.type == "cuda":
        # TF32 matmuls: the fp32 parts (quantizer distances, losses) get tensor-core speed
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    # oneDNN's bf16 kernels want NHWC: on a CPU, reduced precision brings channels_last with it
    channels_last = channels_last or (dev.type == "cpu" and amp is not None)
    return Runtime(dev, amp, channels_last and dev.type != "mps", scaler)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside a torch.compile wrapper (what state dicts are saved from)."""
    return getattr(model, "_orig_mod", model)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    torch.manual_seed(int(seed))


def rng_state() -> dict[str, Any]:
    """Global RNG states in a form torch.load(weights_only=True) accepts."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what rng_state() returned."""
    v, inner, gauss = state["python"]
    random.setstate((v, tuple(inner), gauss))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def epoch_order(n_items: int, epoch: int, seed: int) -> np.ndarray:
    """A permutation of range(n_items) that depends only on (seed, epoch): a resumed run sees the same batches."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n_items)


@dataclass
class Resumed:
    state_dict: dict[str, torch.Tensor]
    trainer_state: dict[str, Any]


class CheckpointManager:
    """`<dir>/last` (weights + trainer state, replaced atomically), `<dir>/best` (weights of the best score) and,
    when asked, `<dir>/step_NNNNNNN` (weights + trainer state, kept)."""

    def __init__(self, folder: str | os.PathLike, kind: str):
        self.folder, self.kind = Path(folder), kind
        self.last_dir, self.best_dir = self.folder / "last", self.folder / "best"

    def save(self, config: Any, state_dict: dict[str, torch.Tensor], trainer_state: dict[str, Any],
             extra: dict[str, Any] | None = None, best: bool = False, keep_step: int | None = None) -> None:
        """Write `last` (and `best` when `best` is True). `keep_step`: also a resumable `step_NNNNNNN` that later
        saves leave alone (a point to fork variants of a run from)."""
        save_component(self.last_dir, self.kind, config, state_dict, trainer_state=trainer_state, extra=extra)
        if best:
            save_component(self.best_dir, self.kind, config, state_dict, extra=extra)
        if keep_step is not None:
            save_component(self.folder / f"step_{keep_step:07d}", self.kind, config, state_dict,
                           trainer_state=trainer_state, extra=extra)

    def load_last(self) -> Resumed | None:
        """The last checkpoint, or None when the run has none yet."""
        if not (self.last_dir / "config.json").is_file():
            return None
        return load_resumable(self.last_dir, self.kind, "delete the folder to restart training")


def load_resumable(folder: str | os.PathLike, kind: str, fix: str) -> Resumed:
    """A checkpoint with its trainer state (`last` or a kept `step_N`); `fix` ends the message when it has none."""
    folder = Path(folder)
    read_meta(folder, kind=kind)  # the kind and format version checked
    trainer_state = load_trainer_state(folder)
    if trainer_state is None:
        raise CheckpointError(f"{folder} has no trainer state; {fix}")
    return Resumed(load_state_dict(folder), trainer_state)


class RunLogger:
    """JSON Lines (`metrics.jsonl`, one record per call) plus TensorBoard scalars when tensorboard is installed."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._file = open(self.folder / "metrics.jsonl", "a", buffering=1)
        self._tb = None
        with contextlib.suppress(ImportError):
            from torch.utils.tensorboard import SummaryWriter
            self._tb = SummaryWriter(str(self.folder / "tensorboard"))

    def log(self, step: int, values: Mapping[str, Any], split: str = "train") -> None:
        record = {"split": split, "step": int(step), "time": round(time.time(), 3)}
        record.update({k: (float(v) if isinstance(v, (int, float, np.floating, torch.Tensor)) else v)
                       for k, v in values.items()})
        self._file.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for k, v in record.items():
                if k not in ("split", "step", "time") and isinstance(v, float):
                    self._tb.add_scalar(f"{split}/{k}", v, int(step))

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def progress(total: int | None, initial: int = 0, desc: str = "", unit: str = "step"):
    """A tqdm bar with rate and ETA."""
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True)


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """Switch a module to eval() and no_grad for a validation block, then restore its training flag."""
    training = module.training
    module.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        module.train(training)


def print_summary(title: str, figures: Mapping[str, Any], warnings: Sequence[str] = ()) -> None:
    """What every training prints when it ends: a `name  value` line per figure (floats to 4 significant digits),
    then a `warning: ...` line per warning; on stderr beside the progress bar, leaving stdout to a caller."""
    width = max((len(k) for k in figures), default=0)
    lines = [f"== {title} =="]
    for name, value in figures.items():
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        lines.append(f"  {name.ljust(width)}  {shown}")
    lines += [f"  warning: {w}" for w in warnings]
    print("\n".join(lines), file=sys.stderr, flush=True)


def set_threads(threads: int | None) -> None:
    """`--threads N`: torch's intra-op threads (None: leave torch's default, one per core). A neighbour process on
    a shared machine can make every thread wait on the slowest core: fewer threads then run faster."""
    if threads is None:
        return
    if threads < 1:
        raise InputError(f"--threads must be at least 1, got {threads}")
    torch.set_num_threads(threads)


def choose_preset(model: str, preset: str | None, device: str | torch.device = "auto",
                  allow_gpu_preset_on_cpu: bool = False) -> str:
    """The preset a trainer runs: `preset`, or without one the model's CPU or GPU preset for `device` (said on
    stderr). A GPU-sized preset on a CPU is refused unless `allow_gpu_preset_on_cpu`: it would run for days."""
    on_cpu = resolve_device(device).type == "cpu"
    if preset is None:
        preset = DEFAULT_PRESETS[model][0 if on_cpu else 1]
        print(f"no --preset given: using {preset!r} on this {'CPU' if on_cpu else 'GPU'} "
              f"(presets: {', '.join(preset_names(model))})", file=sys.stderr, flush=True)
    elif on_cpu and preset in GPU_PRESETS and not allow_gpu_preset_on_cpu:
        raise InputError(f"--preset {preset} is sized for a GPU and would run for days on this CPU; use "
                         f"--preset {DEFAULT_PRESETS[model][0]} (the CPU recipe), or add --allow-gpu-preset-on-cpu "
                         f"to run it anyway")
    return preset
