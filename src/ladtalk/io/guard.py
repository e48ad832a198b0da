"""Refusing an output that would overwrite, replace or sit inside something the same command reads.

`ladtalk enhance clip.mp4 -o clip.mp4` would otherwise replace the user's only copy of the clip, and a report
folder given as `-o IDENTITY_DIR` would replace the identity. Paths are compared after resolving symlinks and
relative parts, and by inode where both exist (hard links), before any work starts.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ladtalk.errors import InputError

Inputs = Iterable[tuple[str, "str | os.PathLike | None"]]


def _same(a: Path, b: Path) -> bool:
    try:
        return a == b or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def refuse_output_over_inputs(out: str | os.PathLike, inputs: Inputs, *, folder: bool = False) -> None:
    """Raise InputError when output `out` is one of the (label, path) `inputs` (None paths are skipped); with
    `folder=True` (an output folder written as a whole) also when one lies inside the other."""
    out_p = Path(out).expanduser().resolve()
    for label, path in inputs:
        if path is None:
            continue
        in_p = Path(path).expanduser().resolve()
        if _same(out_p, in_p):
            why = "is the same file as" if in_p.is_file() else "is"
        elif folder and in_p.is_relative_to(out_p):
            why = "is a folder that contains"
        elif folder and out_p.is_relative_to(in_p):
            why = "lies inside"
        else:
            continue
        raise InputError(f"the output -o {out} {why} the {label} {path}; writing it would destroy that input. "
                         f"Choose another output path.")


def refuse_foreign_folder(out_dir: str | os.PathLike, marker: str, what: str) -> None:
    """A folder output replaced as a whole must be new, empty, or an earlier output (holding `marker`)."""
    d = Path(out_dir)
    if d.is_file() or (d.is_dir() and any(d.iterdir()) and not (d / marker).is_file()):
        raise InputError(f"{d} exists and is not an earlier {what} (no {marker} in it), and it would be replaced "
                         "as a whole; choose a new or empty folder")
