"""A component folder: config.json + model.safetensors (+ trainer_state.pt to resume), written atomically.

config.json = {"kind": ..., "format_version": ..., "config": {<the component's frozen Config dataclass>},
"extra": {...}}. Loading is strict and refuses another kind or an unknown format version with a clear message.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from ladtalk.errors import CheckpointError
from ladtalk.io.atomic import atomic_dir
from ladtalk.weights import load_torch_weights

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
TRAINER_STATE_NAME = "trainer_state.pt"
FORMAT_VERSION = 1


def save_component(folder: str | os.PathLike, kind: str, config: Any, state_dict: dict[str, torch.Tensor],
                   trainer_state: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Write the folder atomically; `config` is a dataclass or a plain dict."""
    cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    meta = {"kind": kind, "format_version": FORMAT_VERSION, "config": cfg, "extra": extra or {}}
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    with atomic_dir(folder) as tmp:
        (tmp / CONFIG_NAME).write_text(json.dumps(meta, indent=2))
        save_file(tensors, str(tmp / WEIGHTS_NAME))
        if trainer_state is not None:
            torch.save(trainer_state, tmp / TRAINER_STATE_NAME)
    return Path(folder)


def read_meta(folder: str | os.PathLike, kind: str | None = None) -> dict[str, Any]:
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{folder} is not a ladtalk model folder: {CONFIG_NAME} is missing")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path} is corrupt ({e}); re-export or re-train the model") from e
    if kind is not None and meta.get("kind") != kind:
        raise CheckpointError(f"{folder} holds a {meta.get('kind')!r} model, but a {kind!r} model is needed here")
    if (version := meta.get("format_version")) != FORMAT_VERSION:
        raise CheckpointError(f"{folder} was written in format version {version}; this ladtalk reads version "
                              f"{FORMAT_VERSION}. Re-export it with a matching ladtalk version.")
    return meta


def load_state_dict(folder: str | os.PathLike) -> dict[str, torch.Tensor]:
    path = Path(folder) / WEIGHTS_NAME
    if not path.is_file():
        raise CheckpointError(f"{folder}: {WEIGHTS_NAME} is missing")
    return load_torch_weights(path)


def load_trainer_state(folder: str | os.PathLike) -> dict[str, Any] | None:
    path = Path(folder) / TRAINER_STATE_NAME
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        raise CheckpointError(f"{path} cannot be read safely ({e}); delete it to restart training") from e


def strict_load(module: torch.nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """load_state_dict(strict=True) with a message that names the file and the first mismatches."""
    own = module.state_dict()
    missing = [k for k in own if k not in state_dict and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state_dict if k not in own]
    wrong = [f"{k}: file {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
             for k in own if k in state_dict and state_dict[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{source} does not fit {type(module).__name__}: {len(missing)} missing keys {missing[:3]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:3]}, {len(wrong)} shape mismatches {wrong[:3]}. "
            "Is it the right kind of checkpoint?")
    module.load_state_dict(state_dict, strict=False)
