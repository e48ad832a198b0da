"""bench/bf16_vs_fp32.py's comparisons on tiny networks and random crops and mels: the same precision twice gives
identical codes and faces (so a difference it reports is the precision's, not the plumbing's), bf16 against fp32
gives a finite difference, and the spec parsing names layouts and frame counts."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import bf16_vs_fp32 as bench  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tiny_models):
    import torch

    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (3, 96, 96, 3), dtype=np.uint8)
    mels = torch.from_numpy(rng.uniform(-4, 4, (3, 1, 80, 16)).astype(np.float32))
    wav2lip, _ = bench.load_network("wav2lip", str(tiny_models / "wav2lip"))
    sovqae, _ = bench.load_network("sovqae", str(tiny_models / "sovqae"))
    return wav2lip, sovqae, crops, mels


def test_same_precision_twice_is_identical(tiny):
    wav2lip, sovqae, crops, mels = tiny
    w = bench.compare_wav2lip(wav2lip, crops, mels, ("fp32", "fp32"))
    s = bench.compare_sovqae(sovqae, wav2lip, crops, mels, ("fp32", "fp32"))
    assert w["frames"] == 3 and w["psnr_db"] == {"min": 99.0, "mean": 99.0}
    assert s["same_code_share"] == s["cascade_same_code_share"] == 1.0
    assert s["code_positions"] == 3 * 8 * 8  # tiny: 64 px, f = 8
    assert s["flipped_code_distance_median"] == 0.0 and s["codebook_nearest_distance_median"] > 0
    assert s["sovqae_alone_psnr_db"]["min"] == 99.0 and s["cascade_psnr_db"]["min"] == 99.0
    assert s["encoder_fp32_same_code_share"] == 1.0 and s["encoder_fp32_psnr_db"]["min"] == 99.0


def test_bf16_against_fp32_is_measured(tiny):
    wav2lip, sovqae, crops, mels = tiny
    w = bench.compare_wav2lip(wav2lip, crops, mels)
    s = bench.compare_sovqae(sovqae, wav2lip, crops, mels)
    assert 20 < w["psnr_db"]["min"] < 99  # bf16 rounding shows, and is small
    assert 0 <= s["same_code_share"] <= 1 and 0 <= s["cascade_same_code_share"] <= 1
    assert (s["flipped_code_distance_median"] > 0) == (s["same_code_share"] < 1)
    assert s["encoder_fp32_same_code_share"] == 1.0  # fp32 encoder on a plain input: the fp32 codes exactly
    assert "encode_latent" not in vars(sovqae)  # the variant's patch is gone
    assert s["cascade_psnr_db"]["min"] <= s["cascade_psnr_db"]["mean"]
    # prepare() set channels_last for bf16; the networks are back in the default layout for the next run
    assert all(p.is_contiguous() for net in (wav2lip, sovqae) for p in net.parameters())


def test_sovqae_spec():
    assert bench.parse_sovqae("paper-256=random:4", 16) == ("paper-256", "paper-256", 4)
    assert bench.parse_sovqae("restore-cpu=/m/model", 16) == ("restore-cpu", "/m/model", 16)
    assert bench.with_frames("official:4", 16) == ("official", 4)
    assert bench.with_frames("/runs/w2l:v2/model", 16) == ("/runs/w2l:v2/model", 16)
    with pytest.raises(SystemExit):
        bench.parse_sovqae("paper-256", 16)
