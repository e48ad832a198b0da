"""Shared test fixtures: where ../shared lives, and skips with a reason when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def shared_file(rel: str) -> Path:
    """A file under ../shared, or skip the test saying which file is missing."""
    path = SHARED / rel
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared data folder is not beside this checkout)")
    return path


@pytest.fixture
def fixtures_dir() -> Path:
    return shared_file("fixtures")


@pytest.fixture
def macron_video() -> Path:
    return shared_file("data/video/macron_50s_dfrf.mp4")


@pytest.fixture
def may_video() -> Path:
    return shared_file("data/video/may_5s_real3dportrait.mp4")


@pytest.fixture
def obama_video() -> Path:
    return shared_file("data/video/obama_weekly_address_sentence1_musooff.mp4")


@pytest.fixture(scope="session")
def synthetic_clip(tmp_path_factory):
    """A 4 s, 25 fps, 256x256 synthetic talking face (MP4 + WAV + truth.json), rendered once per session."""
    from ladtalk.data.synthetic import synthesize

    return synthesize(tmp_path_factory.mktemp("synthetic"), seconds=4.0, fps=25.0, size=256, seed=3)


@pytest.fixture(scope="session")
def synthetic_identity(synthetic_clip, tmp_path_factory):
    """The identity folder `ladtalk prepare` makes of `synthetic_clip`, once per session."""
    from ladtalk.data.prepare import prepare

    return prepare(synthetic_clip.video_path, tmp_path_factory.mktemp("identity") / "ident", size=256, device="cpu")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Small random-weight Wav2Lip (48 px) and `tiny` SOVQAE saved as model folders: the cascade's plumbing, fast."""
    import torch

    from ladtalk.checkpoint import save_component
    from ladtalk.models.sovqae import SOVQAE, SOVQAEConfig
    from ladtalk.models.wav2lip import Wav2Lip, Wav2LipConfig
    from ladtalk.presets import load_preset

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("models")
    w2l = Wav2Lip(Wav2LipConfig(width=0.25, img_size=48)).eval()
    save_component(root / "wav2lip", "wav2lip", w2l.config, w2l.state_dict())
    cfg = SOVQAEConfig.from_dict(load_preset("tiny")["model"])
    save_component(root / "sovqae", "sovqae", cfg, SOVQAE(cfg).eval().state_dict())
    return root
