"""A small identity folder of the synthetic talking face (mouth driven by synthetic speech), made without
video coding or face detection: the renderer's frames are the crops. For the lip-sync data/training tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ladtalk.data.synthetic import iter_render_frames
from ladtalk.data.synthetic_speech import mouth_openness, synth_speech
from ladtalk.io.audio import write_wav


def render_frames(mouth_openness: np.ndarray, size: int = 256, seed: int = 0,
                  fps: float = 25.0) -> tuple[np.ndarray, np.ndarray]:
    """Frames uint8 (T,size,size,3) RGB and face boxes float32 (T,4) [x1,y1,x2,y2] for openness (T,) in [0,1]."""
    rendered = list(iter_render_frames(mouth_openness, size, seed, fps))
    return np.stack([f for f, _ in rendered]), np.stack([b for _, b in rendered]).astype(np.float32)


def make_talking_identity(folder: Path, seconds: float = 4.0, size: int = 64, fps: float = 25.0,
                          seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    audio, envelope = synth_speech(seconds, 16000, seed)
    n = int(seconds * fps)
    openness = mouth_openness(envelope, 16000, fps, n)
    frames, _ = render_frames(openness, size=size, seed=seed, fps=fps)
    np.save(folder / "crops.npy", frames)
    write_wav(folder / "audio.wav", audio, 16000)
    n_train = int(n * 0.9)
    box = [0.0, 0.0, float(size), float(size)]
    meta = {"format_version": 2, "source": {"path": "synthetic.mp4", "sha256": "0" * 64, "size_bytes": 0},
            "fps": fps, "frame_count": n, "width": size, "height": size, "crop_size": size,
            "detector": "none", "pads": [0, 0, 0, 0], "boxes": [box] * n, "has_face": [True] * n,
            "crop_boxes": [box] * n, "split": {"train": [0, n_train], "test": [n_train, n]},
            "audio": {"sample_rate": 16000, "samples": len(audio)}}
    (folder / "identity.json").write_text(json.dumps(meta))
    np.save(folder / "openness.npy", openness)
    return folder
