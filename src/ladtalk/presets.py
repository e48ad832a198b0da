"""Presets in src/ladtalk/configs/*.yaml, with `--set key=value` overrides (dotted keys reach nested maps)."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ladtalk.errors import InputError


def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("ladtalk.configs").iterdir() if p.name.endswith(".yaml"))


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
    return apply_overrides(cfg, overrides)


def apply_overrides(cfg: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    cfg = copy.deepcopy(cfg)
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
        node[leaf] = yaml.safe_load(raw)
    return cfg
