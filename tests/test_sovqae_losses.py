"""SOVQAE losses: the codebook regulariser, GAN terms and the perceptual loss from the wheels."""

import pytest
import torch

from ladtalk.losses.codebook import (
    codebook_regularizer,
    mean_code_distance,
    min_code_distance,
    pairwise_distances,
)
from ladtalk.losses.gan import adaptive_weight, d_loss, generator_loss
from ladtalk.losses.perceptual import build_perceptual


def _codes(scale, seed=0, n=16, d=8):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, d, generator=g) * scale).requires_grad_(True)


def test_min_distance_matches_brute_force_and_is_safe():
    e = _codes(1.0)
    brute = min(float((e.detach()[i] - e.detach()[j]).norm()) for i in range(16) for j in range(16) if i != j)
    assert abs(float(min_code_distance(e).detach()) - brute) < 1e-4
    dup = torch.zeros(4, 3, requires_grad=True)  # coinciding codes: finite value and gradient
    loss = codebook_regularizer(dup)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(dup.grad).all()
    assert torch.isinf(pairwise_distances(e).diagonal()).all()
    assert mean_code_distance(e) > min_code_distance(e)


def test_gradient_reaches_exactly_the_closest_pair():
    e = _codes(1.0)
    d = pairwise_distances(e).detach()
    i, j = divmod(int(d.argmin()), 16)
    codebook_regularizer(e, theta=10.0).backward()
    touched = set(torch.nonzero(e.grad.abs().sum(1)).flatten().tolist())
    assert touched == {i, j}


@pytest.mark.parametrize("scale", [0.01, 5.0])  # d_C far below and far above theta
def test_sgd_moves_d_c_towards_theta(scale):
    e = _codes(scale)
    opt = torch.optim.SGD([e], lr=0.05)
    start = float(min_code_distance(e).detach())
    for _ in range(20):
        opt.zero_grad()
        codebook_regularizer(e, theta=1.0).backward()
        opt.step()
    end = float(min_code_distance(e).detach())
    assert abs(end - 1.0) < abs(start - 1.0) - 0.05, (start, end)


def test_gan_terms():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert float(d_loss(real, fake, "hinge")) == pytest.approx(0.5 * (0.25 + 0.5))
    assert float(d_loss(real, fake, "vanilla")) == pytest.approx(0.35527, abs=1e-5)  # softplus in place of the hinge
    assert float(generator_loss(fake)) == pytest.approx(1.0)
    w = torch.randn(3, 3, requires_grad=True)
    x = torch.randn(5, 3)
    nll = (x @ w).pow(2).mean()
    g = -(x @ w).mean()
    lam = adaptive_weight(nll, g, w, disc_weight=0.8)
    gn = torch.autograd.grad(nll, w, retain_graph=True)[0].norm()
    gg = torch.autograd.grad(g, w, retain_graph=True)[0].norm()
    assert float(lam) == pytest.approx(float(0.8 * gn / (gg + 1e-4)), rel=1e-5)
    with torch.no_grad():
        assert float(adaptive_weight(x.sum(), x.sum(), w)) == 0.0


def test_perceptual_loss_from_wheel():
    net, name = build_perceptual("stlpips_vgg")
    if net is None:
        pytest.skip("stlpips-pytorch wheel absent")
    assert name == "stlpips_vgg" and not net.training
    assert all(not p.requires_grad for p in net.parameters())
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.allclose(net(x, x), torch.zeros(2), atol=1e-6)
    assert (net(x, x + 0.2 * torch.randn_like(x)) > 0).all()
    auto_net, auto_name = build_perceptual("auto")
    assert auto_name in ("lpips_vgg", "stlpips_vgg")
    assert build_perceptual("none") == (None, "none")


def test_real_lpips_used_when_the_vgg16_trunk_is_cached(tmp_path, monkeypatch):
    from ladtalk.models.perceptual import lpips_vgg
    from ladtalk.weights import find_weight

    if find_weight("heads", package="lpips", package_relpath="weights/v0.1/vgg.pth") is None:
        pytest.skip("lpips wheel absent (heads file)")
    # a torchvision-layout VGG16 file (random values, real key names and shapes) in a private hub cache
    trunk = {f"features.{k.split('.')[2]}.{k.split('.')[3]}": torch.randn_like(v)
             for k, v in lpips_vgg().state_dict().items() if k.startswith("net.")}
    trunk["classifier.0.weight"] = torch.zeros(4, 4)
    hub = tmp_path / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(trunk, hub / "vgg16-397923af.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("LADTALK_VGG16", raising=False)
    net, name = build_perceptual("auto")
    assert name == "lpips_vgg"
    assert torch.equal(getattr(net.net.slice3, "10").weight, trunk["features.10.weight"])
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert float(net(x, x)) == 0.0


def test_theta_only_matters_once_d_c_reaches_it():
    """Why the Macron ablation's theta 0.5 and theta 1 rows are one model (and theta 2 would be too): below theta,
    |d_C - theta| has the same gradient whatever theta is."""
    torch.manual_seed(0)
    codes = torch.randn(64, 8) * 0.05  # d_C well below 0.5
    assert min_code_distance(codes) < 0.5
    grads = []
    for theta in (0.5, 1.0, 2.0):
        c = codes.clone().requires_grad_(True)
        codebook_regularizer(c, theta, "min").backward()
        grads.append(c.grad)
    assert torch.equal(grads[0], grads[1]) and torch.equal(grads[1], grads[2])
    assert int((grads[0].abs().sum(1) > 0).sum()) == 2  # the closest pair only
