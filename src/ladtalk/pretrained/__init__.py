"""Lip-sync bases that ship inside the package (nothing downloads): model folders made by bench/generalist_base.py.

`synthetic-48` is a 48-px expert + generator trained on many synthetic speakers and never on the demo's person:
the paper's setting of a generalist Wav2Lip in front of a person's own restorer, at a size a CPU trains in minutes;
its `recipe.json` records how it was made and what it reached."""

from __future__ import annotations

import os
from pathlib import Path

from ladtalk.errors import InputError

HERE = Path(__file__).resolve().parent
PARTS = ("syncnet", "wav2lip")


def names() -> list[str]:
    """The shipped bases, by folder name."""
    return sorted(p.name for p in HERE.iterdir() if (p / "recipe.json").is_file())


def builtin_base(name: str = "synthetic-48") -> dict[str, Path]:
    """{'syncnet': expert model folder, 'wav2lip': generator model folder, 'recipe': recipe.json} of a shipped base."""
    if name not in names():  # a shipped folder by its name, never a path
        raise InputError(f"no built-in lip-sync base {name!r}; the package ships {', '.join(names()) or 'none'}")
    return {**{part: HERE / name / part for part in PARTS}, "recipe": HERE / name / "recipe.json"}


BUILTIN = "builtin"  # `--wav2lip builtin` or `builtin:NAME` wherever a lip-sync model path is asked for

# What a restorer behind a shipped base learns from: only the base's own faces, on patches of the whole face (its
# 48-px faces are blurrier than any synthetic degradation, and wrong everywhere, not only at the mouth)...
RESTORER_OVERRIDES = ("train.lipsync_share=1.0", "train.lipsync_patch_lower=false")
# ...and with restore-cpu 4x its rate and the guide at the code grid, so less of the base's shimmer passes through
# (both measured in bench/results/demo_seeds*.md and reenact_macron_builtin*.md)
RESTORER_CPU_OVERRIDES = ("train.base_lr=1e-4", "model.guide_scale=1")

def is_builtin(path: str | os.PathLike | None) -> bool:
    """Whether `path` names a shipped base ('builtin', 'builtin:NAME')."""
    return path is not None and os.fspath(path).partition(":")[0] == BUILTIN


def restorer_overrides(wav2lip_path: str | os.PathLike | None, preset: str | None = None) -> tuple[str, ...]:
    """RESTORER_OVERRIDES (+ RESTORER_CPU_OVERRIDES under restore-cpu) behind a shipped base (name or folder)."""
    if not (is_builtin(wav2lip_path) or (wav2lip_path and Path(wav2lip_path).resolve().is_relative_to(HERE))):
        return ()
    return (*RESTORER_OVERRIDES, *(RESTORER_CPU_OVERRIDES if preset == "restore-cpu" else ()))


def resolve(path: str | os.PathLike, part: str) -> str | os.PathLike:
    """`path` itself, or for 'builtin' / 'builtin:NAME' the shipped base's `part` folder ('syncnet', 'wav2lip')."""
    return builtin_base(os.fspath(path).partition(":")[2] or "synthetic-48")[part] if is_builtin(path) else path

