"""Many synthetic speakers (one per seed: its own face, motion and speech) as identity folders: the data a
generalist lip-sync base needs before it can serve a person it never saw (the paper's setting)."""

from __future__ import annotations

import os
from pathlib import Path

from ladtalk.data.identity import META_NAME
from ladtalk.data.prepare import prepare
from ladtalk.data.synthetic import synthesize
from ladtalk.errors import InputError

FIRST_SEED = 100  # far from the demo's person (seed 0) and its new speech (seed 1000)


def synthetic_speakers(out_dir: str | os.PathLike, count: int = 24, seconds: float = 12.0,
                       first_seed: int = FIRST_SEED, size: int = 256, fps: float = 25.0,
                       device: str = "auto") -> list[Path]:
    """Render and prepare speakers `first_seed .. first_seed+count-1` under out_dir/speaker_SEED/identity; returns
    their identity folders. A speaker already prepared is kept, so an interrupted run resumes where it stopped."""
    if count < 1:
        raise InputError(f"count must be at least 1 speaker, got {count}")
    out = Path(out_dir)
    folders = []
    for seed in range(first_seed, first_seed + count):
        base = out / f"speaker_{seed}"
        ident = base / "identity"
        if not (ident / META_NAME).is_file():
            video = base / "clip" / "video.mp4"
            if not video.is_file():
                synthesize(video.parent, seconds=seconds, fps=fps, size=size, seed=seed)
            prepare(video, ident, size=size, device=device)
        folders.append(ident)
    return folders
