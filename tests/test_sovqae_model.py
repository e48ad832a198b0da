"""SOVQAE model: paper layout, shapes, quantizer, discriminator and perceptual layouts."""

import dataclasses

import pytest
import torch

from ladtalk.models.discriminator import PatchDiscriminator
from ladtalk.models.perceptual import lpips_vgg, stlpips_vgg
from ladtalk.models.sovqae import SOVQAE, SOVQAEConfig, VectorQuantizer, count_parameters, usage_tensors
from ladtalk.presets import load_preset


def _cfg(name):
    return SOVQAEConfig.from_dict(load_preset(name)["model"])


def test_paper_256_layout():
    cfg = _cfg("paper-256")
    with torch.device("meta"):
        m = SOVQAE(cfg)
    assert count_parameters(m) == 72_141_699
    assert count_parameters(m.encoder) == 29_298_176 and count_parameters(m.decoder) == 42_449_795
    assert m.quantize.embedding.weight.shape == (1024, 256)
    z = m.encode_latent(torch.empty(1, 3, 256, 256, device="meta"))
    assert tuple(z.shape) == (1, 256, 16, 16)


def test_paper_512_latent_grid():
    cfg = _cfg("paper-512")
    with torch.device("meta"):
        m = SOVQAE(cfg)
    assert count_parameters(m) == 72_141_699  # same layout, attention at the 32x32 level
    assert tuple(m.encode_latent(torch.empty(1, 3, 512, 512, device="meta")).shape) == (1, 256, 32, 32)


def test_tiny_shapes_and_straight_through():
    cfg = _cfg("tiny")
    torch.manual_seed(0)
    m = SOVQAE(cfg)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    recon, loss, info = m(x)
    f = cfg.downsample_factor
    assert recon.shape == x.shape and info["indices"].shape == (2, 64 // f, 64 // f)
    assert 0 < info["usage"] <= 1 and 1 <= info["perplexity"] <= cfg.n_embed
    assert torch.equal(m.quantize.nearest(m.encode_latent(x)), info["indices"])
    z_q, _, idx = m.encode(x)
    assert torch.allclose(z_q, m.quantize.embedding(idx).permute(0, 3, 1, 2), atol=1e-6)
    (recon.pow(2).mean() + loss).backward()
    assert m.encoder.conv_in.weight.grad.abs().sum() > 0  # straight-through reaches the encoder
    assert m.quantize.embedding.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="multiples"):
        m(torch.zeros(1, 3, 60, 60))


@pytest.mark.parametrize("legacy", [False, True])
def test_vq_loss_weights_by_hand(legacy):
    """Two 1-d codes 0 and 1, latents 0.2 and 0.9 (N = 2): codebook term mean((e - sg z)^2) trains the codes,
    commitment beta * mean((z - sg e)^2) the encoder; taming's legacy weighting swaps which term beta scales."""
    q = VectorQuantizer(n_embed=2, embed_dim=1, beta=0.25, legacy=legacy)
    with torch.no_grad():
        q.embedding.weight.copy_(torch.tensor([[0.0], [1.0]]))
    z = torch.tensor([0.2, 0.9]).view(1, 1, 1, 2).requires_grad_()
    _, loss, idx = q(z)
    assert idx.tolist() == [[[0, 1]]]
    assert float(loss) == pytest.approx(1.25 * 0.025)  # both terms are 0.025 here; the gradients tell them apart
    loss.backward()
    w_code, w_commit = (0.25, 1.0) if legacy else (1.0, 0.25)
    assert z.grad.view(-1).tolist() == pytest.approx([w_commit * 0.2, w_commit * -0.1])  # 2 (z - e) / N
    assert q.embedding.weight.grad.view(-1).tolist() == pytest.approx([w_code * -0.2, w_code * 0.1])


def test_channels_last_bf16_matches():
    cfg = dataclasses.replace(_cfg("tiny"), n_embed=64)
    torch.manual_seed(0)
    m = SOVQAE(cfg).eval()
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        ref = m.decode(m.encode(x)[0])
        m2 = m.to(memory_format=torch.channels_last)
        out = m2.decode(m2.encode(x.contiguous(memory_format=torch.channels_last))[0])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            z_q, _, _ = m2.encode(x)
        assert z_q.dtype == torch.float32
    assert torch.allclose(ref, out, atol=1e-4)


def test_usage_and_perplexity():
    usage, ppl = usage_tensors(torch.tensor([0, 1, 2, 3]), 8)
    assert usage == 0.5 and abs(ppl - 4.0) < 1e-5


def test_discriminator_and_perceptual_layouts():
    d = PatchDiscriminator()
    assert count_parameters(d) == 2_765_633
    with torch.device("meta"):
        assert tuple(d.to("meta")(torch.empty(1, 3, 256, 256)).shape) == (1, 1, 30, 30)
        assert count_parameters(lpips_vgg()) == 14_714_688 + 1_472
        st = stlpips_vgg()
    assert "net.slice2.5.filt" in st.state_dict() and "net.slice5.32.weight" in st.state_dict()
