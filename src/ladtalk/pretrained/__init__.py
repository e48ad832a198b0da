"""Lip-sync bases that ship inside the package (nothing downloads): model folders made by bench/generalist_base.py.

`synthetic-48` is a 48-px expert + generator trained on many synthetic speakers and never on the demo's person:
the paper's setting of a generalist Wav2Lip in front of a person's own restorer, at a size a CPU trains in minutes.
Its `recipe.json` records the speakers' seeds, the data recipe, the steps, the time the run took and what it reached.
"""

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
    root = HERE / name
    if name not in names():  # a shipped folder by its name, never a path
        raise InputError(f"no built-in lip-sync base {name!r}; the package ships {', '.join(names()) or 'none'}")
    return {**{part: root / part for part in PARTS}, "recipe": root / "recipe.json"}


BUILTIN = "builtin"  # `--wav2lip builtin` or `builtin:NAME` wherever a lip-sync model path is asked for


def resolve(path: str | os.PathLike, part: str) -> str | os.PathLike:
    """`path` itself, or for 'builtin' / 'builtin:NAME' the shipped base's `part` folder ('syncnet', 'wav2lip')."""
    text = os.fspath(path)
    if text != BUILTIN and not text.startswith(BUILTIN + ":"):
        return path
    return builtin_base(text.partition(":")[2] or "synthetic-48")[part]

