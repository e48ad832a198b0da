"""Reading a prepared identity folder (written by `ladtalk prepare`, see ladtalk.data.prepare).

IDENTITY_DIR/identity.json (metadata, split, per frame the track's, the raw detector's and the official Wav2Lip
boxes), crops.npy (uint8 (N,S,S,3) RGB, memory-mapped; zeros where no face), audio.wav (16 kHz mono).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ladtalk.errors import InputError

FORMAT_VERSION = 2
META_NAME = "identity.json"
CROPS_NAME = "crops.npy"
AUDIO_NAME = "audio.wav"


def identity_source(identity: str | os.PathLike) -> Path | None:
    """The source video an identity folder pastes into (None when `identity` is not an identity folder)."""
    meta_path = Path(identity) / META_NAME
    try:
        return Path(json.loads(meta_path.read_text())["source"]["path"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass
class Identity:
    dir: Path
    meta: dict[str, Any]
    crops: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        m = self.meta
        self.fps: float = float(m["fps"])
        self.frame_count: int = int(m["frame_count"])
        self.crop_size: int = int(m["crop_size"])
        self.source_path = Path(m["source"]["path"])
        self.frame_size: tuple[int, int] = (int(m["width"]), int(m["height"]))  # of the source frames

    @classmethod
    def open(cls, identity_dir: str | os.PathLike) -> Identity:
        """Open a prepared identity folder; the crops stay on disk (memory-mapped)."""
        d = Path(identity_dir)
        meta_path = d / META_NAME
        if not meta_path.is_file():
            hint = " (it looks like a video: run `ladtalk prepare` on it first)" if d.is_file() else ""
            raise InputError(f"{d} is not an identity folder: {META_NAME} is missing{hint}. "
                             "Create one with `ladtalk prepare VIDEO -o IDENTITY_DIR`.")
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as e:
            raise InputError(f"{meta_path} is corrupt ({e}); delete the folder and run `ladtalk prepare` again") from e
        version = meta.get("format_version")
        if version != FORMAT_VERSION:
            raise InputError(f"{d} was written by an incompatible ladtalk (identity format {version}, this version "
                             f"reads {FORMAT_VERSION}); run `ladtalk prepare` again to rebuild it")
        try:
            crops = np.load(d / CROPS_NAME, mmap_mode="r")
        except (OSError, ValueError) as e:
            raise InputError(f"{d / CROPS_NAME} is missing or corrupt ({e}); run `ladtalk prepare` again") from e
        n, s = meta["frame_count"], meta["crop_size"]
        if crops.shape != (n, s, s, 3) or crops.dtype != np.uint8:
            raise InputError(f"{d / CROPS_NAME} has shape {crops.shape} {crops.dtype}, expected ({n},{s},{s},3) "
                             "uint8; run `ladtalk prepare` again")
        return cls(d, meta, crops)

    @property
    def has_face(self) -> np.ndarray:
        return np.asarray(self.meta["has_face"], dtype=bool)

    @property
    def crop_boxes(self) -> np.ndarray:
        """(N,4) float x1,y1,x2,y2 in source pixels; NaN rows where no face."""
        return np.array([b if b is not None else [np.nan] * 4 for b in self.meta["crop_boxes"]], dtype=np.float64)

    @property
    def wav2lip_boxes(self) -> np.ndarray:
        """(N,4) int64 x1,y1,x2,y2: the official Wav2Lip boxes (padded, clamped, forward-smoothed); -1 rows where
        no face."""
        return np.array([b if b is not None else [-1] * 4 for b in self.meta["wav2lip_boxes"]], dtype=np.int64)

    def crop_geometry(self) -> dict[str, Any]:
        """How the square SOVQAE crops of this identity were cut, to store with a model trained on them so that
        `enhance` and `generate` cut the same crops by default."""
        return {"detector": self.meta["detector"], "pads": [int(p) for p in self.meta["pads"]],
                "track_smoothing": "centred mean over 5 frames, gaps up to 5 frames filled",
                "square": "side max(w, h) of the padded box, same centre", "crop_scale": 1.0,
                "crop_size": self.crop_size, "resize": "area (shrink) / bicubic (enlarge)"}

    def _split(self, name: str) -> np.ndarray:
        start, stop = self.meta["split"][name]
        idx = np.arange(start, stop, dtype=np.int64)
        return idx[self.has_face[idx]]

    @property
    def train_indices(self) -> np.ndarray:
        return self._split("train")

    @property
    def test_indices(self) -> np.ndarray:
        return self._split("test")

    def audio(self) -> np.ndarray:
        """float32 mono samples at SAMPLE_RATE (16 kHz)."""
        from ladtalk.io.audio import load_audio

        return load_audio(self.dir / AUDIO_NAME)
