"""The lip-sync networks have the official layouts and compute the official functions (../shared/fixtures)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import shared_file
from oracle import inp, oracle_fill

from ladtalk.models.syncnet import SyncNetColor, SyncNetS
from ladtalk.models.wav2lip import Wav2Lip, Wav2LipQualityDiscriminator

NETS = {"wav2lip_generator": Wav2Lip, "wav2lip_disc_qual": Wav2LipQualityDiscriminator,
        "wav2lip_syncnet_expert": SyncNetColor, "syncnet_python_S": SyncNetS}


def rel_err(got: torch.Tensor, want: np.ndarray) -> float:
    return float(np.abs(got.detach().numpy() - want).max() / max(np.abs(want).max(), 1e-12))


@pytest.fixture(scope="module")
def oracle():
    return np.load(shared_file("fixtures/official_models_oracle.npz"))


@pytest.mark.parametrize("name", sorted(NETS))
def test_layout_matches_official(fixtures_dir, name):
    layout = json.loads((fixtures_dir / "official_checkpoint_layouts.json").read_text())[name]
    model = NETS[name]()
    own = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert own == layout["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == layout["num_parameters"]


@torch.no_grad()
def test_generator_oracle(oracle):
    out = oracle_fill(Wav2Lip())(inp((2, 1, 80, 16), 0) * 8 - 4, inp((2, 6, 96, 96), 1))
    # 36 M float32 weights through 30 BN layers: even a float64 run differs from the float32 oracle by 1.4e-4, and
    # float32 on another CPU's convolution kernels by up to 8.1e-4 (an AMD EPYC); a wrong layer gives errors of O(1)
    assert rel_err(out, oracle["wav2lip_generator"]) < 2e-3
    assert float(np.abs(out.numpy() - oracle["wav2lip_generator"]).mean()) < 3e-5  # outputs in [0,1]


@torch.no_grad()
def test_generator_5d_equals_4d():
    from ladtalk.models.wav2lip import Wav2LipConfig

    gen = Wav2Lip(Wav2LipConfig(width=0.125, img_size=48)).eval()
    audio, face = inp((2, 3, 1, 80, 16), 0) * 8 - 4, inp((2, 6, 3, 48, 48), 1)
    out = gen(audio, face)
    assert out.shape == (2, 3, 3, 48, 48)
    for t in (0, 2):
        torch.testing.assert_close(out[:, :, t], gen(audio[:, t], face[:, :, t]), atol=1e-5, rtol=0)


@torch.no_grad()
def test_quality_discriminator_oracle(oracle):
    out = oracle_fill(Wav2LipQualityDiscriminator())(inp((1, 3, 2, 96, 96), 2))
    assert out.shape == (2, 1)
    assert rel_err(out, oracle["wav2lip_disc_qual"]) < 1e-4


@torch.no_grad()
def test_expert_oracle(oracle):
    a, v = oracle_fill(SyncNetColor())(inp((2, 1, 80, 16), 3) * 8 - 4, inp((2, 15, 48, 96), 4))
    assert rel_err(a, oracle["wav2lip_syncnet_expert_audio"]) < 1e-4
    assert rel_err(v, oracle["wav2lip_syncnet_expert_face"]) < 1e-4


@torch.no_grad()
def test_syncnet_s_oracle(oracle):
    net = oracle_fill(SyncNetS())
    assert rel_err(net.forward_aud(inp((2, 1, 13, 20), 5)), oracle["syncnet_python_S_aud"]) < 1e-4
    assert rel_err(net.forward_lip(inp((2, 3, 5, 224, 224), 6) * 255), oracle["syncnet_python_S_lip"]) < 1e-4


@pytest.mark.parametrize("img_size", [48, 96])
def test_small_variants_shapes(img_size):
    from ladtalk.models.syncnet import SyncNetConfig
    from ladtalk.models.wav2lip import Wav2LipConfig

    gen = Wav2Lip(Wav2LipConfig(width=0.125, img_size=img_size))
    out = gen(torch.rand(1, 5, 1, 80, 16), torch.rand(1, 6, 5, img_size, img_size))
    assert out.shape == (1, 3, 5, img_size, img_size)
    disc = Wav2LipQualityDiscriminator(Wav2LipConfig(width=0.125, img_size=img_size))
    assert disc(out).shape == (5, 1)
    expert = SyncNetColor(SyncNetConfig(width=0.25, img_size=img_size))
    a, v = expert(torch.rand(2, 1, 80, 16), torch.rand(2, 15, img_size // 2, img_size))
    assert a.shape == v.shape == (2, 128)
    torch.testing.assert_close(v.norm(dim=1), torch.ones(2))
