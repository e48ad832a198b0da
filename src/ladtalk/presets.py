"""Presets in src/ladtalk/configs/*.yaml, with `--set key=value` overrides (dotted keys reach nested maps)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ladtalk.errors import InputError

# Each trainer's presets: (the one a CPU gets without --preset, the one a GPU gets). The names of a trainer's
# presets start with its own name (syncnet*, wav2lip*); every other preset is a SOVQAE's.
DEFAULT_PRESETS = {"syncnet": ("syncnet-identity", "syncnet"), "wav2lip": ("wav2lip-identity", "wav2lip"),
                   "sovqae": ("restore-cpu", "paper-256")}
# Sized for a GPU: on a CPU each would take days (the official 500,000-step lip-sync runs) or hours per epoch.
GPU_PRESETS = frozenset({"syncnet", "wav2lip", "paper-256", "paper-512"})


def preset_names(model: str | None = None) -> list[str]:
    """All preset names, or those of one trainer ("syncnet", "wav2lip" or "sovqae")."""
    names = sorted(p.name[:-5] for p in resources.files("ladtalk.configs").iterdir() if p.name.endswith(".yaml"))
    if model is None:
        return names
    if model == "sovqae":
        return [n for n in names if not n.startswith(("syncnet", "wav2lip"))]
    return [n for n in names if n.startswith(model)]


def load_preset(name_or_path: str, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Read a preset by name (configs/NAME.yaml) or path and apply KEY=VALUE overrides (values parsed as YAML)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.exists():
        text = path.read_text()
    else:
        res = resources.files("ladtalk.configs") / f"{name_or_path}.yaml"
        if not res.is_file():
            raise InputError(f"unknown preset {name_or_path!r}; choose one of {preset_names()} or give a YAML path")
        text = res.read_text()
    cfg = yaml.safe_load(text) or {}
    for item in overrides:
        if "=" not in item:
            raise InputError(f"--set expects KEY=VALUE, got {item!r}")
        key, raw = item.split("=", 1)
        node = cfg
        *parents, leaf = key.strip().split(".")
        for p in parents:
            if not isinstance(node.get(p), dict):
                raise InputError(f"--set {key}: {p!r} is not a section of this preset")
            node = node[p]
        if leaf not in node:
            raise InputError(f"--set {key}: unknown key {leaf!r}; known keys here: {sorted(node)}")
        node[leaf] = _checked_value(key.strip(), node[leaf], yaml.safe_load(raw), raw)
    return cfg


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _checked_value(key: str, default: Any, value: Any, raw: str) -> Any:
    """Refuse an override that is not a finite number where the preset has a number, that makes a non-negative
    setting negative, or a batch size below 1: each would otherwise end in a traceback or a silent no-op run."""
    as_float = None
    if isinstance(value, str):  # YAML 1.1 reads 'nan', 'inf' and '1e5' (no dot) as strings
        with contextlib.suppress(ValueError):
            as_float = float(value)
    if as_float is not None and not math.isfinite(as_float):
        raise InputError(f"--set {key}={raw}: the value must be a finite number")
    if not _is_number(default):
        return value
    if as_float is not None:
        value = int(as_float) if isinstance(default, int) and as_float.is_integer() else as_float
    if not _is_number(value):
        raise InputError(f"--set {key}={raw}: {key} is a number (preset value {default!r}); give a number")
    if not math.isfinite(value):
        raise InputError(f"--set {key}={raw}: the value must be a finite number")
    if default >= 0 and value < 0:
        raise InputError(f"--set {key}={raw}: {key} cannot be negative (preset value {default!r})")
    if key.endswith("batch_size") and value < 1:
        raise InputError(f"--set {key}={raw}: a batch size must be at least 1")
    return value
