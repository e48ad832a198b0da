"""A tiny fake identity folder (crops.npy + identity.json per the identity contract) for SOVQAE tests."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch


def make_identity(folder: Path, n_frames: int = 40, size: int = 64, seed: int = 0) -> Path:
    """Smooth synthetic 'faces': an ellipse with eyes and a mouth that opens and closes, light noise."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    crops = np.empty((n_frames, size, size, 3), np.uint8)
    for t in range(n_frames):
        img = np.stack([0.25 + 0.2 * yy, 0.3 + 0.1 * xx, 0.45 - 0.1 * yy], -1)
        face = ((xx - 0.5) / 0.32) ** 2 + ((yy - 0.52) / 0.42) ** 2 < 1
        img[face] = [0.85, 0.65, 0.55]
        for ex in (0.38, 0.62):
            img[((xx - ex) / 0.06) ** 2 + ((yy - 0.42) / 0.03) ** 2 < 1] = [0.15, 0.1, 0.1]
        open_ = 0.01 + 0.04 * (0.5 + 0.5 * np.sin(t * 0.7))
        img[((xx - 0.5) / 0.12) ** 2 + ((yy - 0.72) / open_) ** 2 < 1] = [0.55, 0.15, 0.2]
        img = img + rng.normal(0, 0.01, img.shape)
        crops[t] = np.clip(img * 255, 0, 255).astype(np.uint8)
    np.save(folder / "crops.npy", crops)
    n_train = int(n_frames * 0.9)
    box = [10.0, 10.0, 10.0 + size, 10.0 + size]
    meta = {"format_version": 2, "source": {"path": "fake.mp4", "sha256": "0" * 64, "size_bytes": 0},
            "fps": 25.0, "frame_count": n_frames, "width": size + 20, "height": size + 20, "crop_size": size,
            "detector": "fake", "pads": [0, 10, 0, 0], "boxes": [box] * n_frames, "has_face": [True] * n_frames,
            "crop_boxes": [box] * n_frames, "split": {"train": [0, n_train], "test": [n_train, n_frames]},
            "audio": {"sample_rate": 16000, "samples": 16000 * n_frames // 25}}
    (folder / "identity.json").write_text(json.dumps(meta))
    return folder


@pytest.fixture
def one_thread():
    """One intra-op thread: on a busy 2-core machine two threads are ~10x slower for these tiny convs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
