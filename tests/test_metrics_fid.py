"""Frechet distance math, FID with a tiny stand-in feature network, and the real FID Inception layout."""

import numpy as np
import pytest
import torch

from ladtalk.errors import InputError
from ladtalk.evaluate.scores import fid_score
from ladtalk.metrics.fid import (
    INCEPTION_FILENAME,
    extract_features,
    fid_input,
    frechet_distance,
    load_fid_inception,
)
from ladtalk.models.inception import FIDInceptionV3


def test_identical_statistics_give_zero():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6))
    mu, s = x.mean(0), np.cov(x, rowvar=False)
    assert abs(frechet_distance(mu, s, mu, s)) < 1e-8


def test_shifted_gaussians_match_the_closed_form():
    # N(m1, a^2 I) vs N(m2, b^2 I): ||m1-m2||^2 + d (a - b)^2
    d = 5
    m1, m2 = np.zeros(d), np.arange(d, dtype=float)
    got = frechet_distance(m1, 4.0 * np.eye(d), m2, 0.25 * np.eye(d))
    assert got == pytest.approx(np.sum(m2 ** 2) + d * (2.0 - 0.5) ** 2, rel=1e-10)
    # general covariances against the 1-D formula per eigen-direction (commuting case)
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(d, d)))
    s1 = q @ np.diag([1, 2, 3, 4, 5.0]) @ q.T
    s2 = q @ np.diag([5, 4, 3, 2, 1.0]) @ q.T
    expected = np.sum((np.sqrt([1, 2, 3, 4, 5.0]) - np.sqrt([5, 4, 3, 2, 1.0])) ** 2)
    assert frechet_distance(m1, s1, m1, s2) == pytest.approx(expected, rel=1e-8)


def test_singular_covariances_use_the_eps_fallback():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(5, 20)), rng.normal(size=(5, 20)) + 1.0  # 5 samples in 20-D: rank 4
    f = frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    assert np.isfinite(f) and f > 0


class _MeanColour(torch.nn.Module):
    """Stand-in feature network: mean RGB and mean squared RGB of the (already resized) input."""

    def forward(self, x):
        return torch.cat([x.mean((2, 3)), (x ** 2).mean((2, 3))], 1)


def test_fid_with_a_stand_in_network_orders_sets():
    rng = np.random.default_rng(3)
    base = rng.integers(60, 200, (24, 32, 32, 3)).astype(np.uint8)
    near = np.clip(base.astype(int) + rng.integers(-3, 4, base.shape), 0, 255).astype(np.uint8)
    far = np.clip(base.astype(int) + 50, 0, 255).astype(np.uint8)
    net = _MeanColour()
    assert fid_score(net, base, base, "cpu")[0] == pytest.approx(0.0, abs=1e-9)
    d_near, d_far = fid_score(net, base, near, "cpu")[0], fid_score(net, base, far, "cpu")[0]
    assert 0 < d_near < d_far
    np.testing.assert_allclose(extract_features(net, base, batch_size=5), extract_features(net, base, batch_size=7))
    # preprocessing: 299x299, [-1,1]
    x = fid_input(base[:2])
    assert x.shape == (2, 3, 299, 299) and -1 <= x.min() and x.max() <= 1


def test_fid_inception_layout():
    net = FIDInceptionV3()
    sd = net.state_dict()
    n_params = sum(p.numel() for p in net.parameters())
    # torchvision Inception3 (27,161,264 params with AuxLogits and 1000 classes) minus AuxLogits
    # (3,326,696) plus 8 more classes (8*2048 + 8)
    assert n_params == 23_850_960
    assert not any(k.startswith("AuxLogits") for k in sd)
    assert sd["fc.weight"].shape == (1008, 2048) and sd["fc.bias"].shape == (1008,)
    assert sd["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
    assert sd["Mixed_7c.branch_pool.conv.weight"].shape == (192, 2048, 1, 1)
    assert sd["Mixed_6e.branch7x7dbl_5.conv.weight"].shape == (192, 192, 1, 7)
    assert net.Mixed_7c.branch_pool.bn.eps == 1e-3
    real_keys = [k for k in sd if not k.endswith("num_batches_tracked")]
    assert len(real_keys) == 472  # 94 conv-bn units x 5 tensors + fc weight/bias


def test_fid_inception_forward_shape_and_loading(tmp_path):
    net = FIDInceptionV3().eval()
    with torch.no_grad():
        y = net(torch.zeros(1, 3, 299, 299))
    assert y.shape == (1, 2048) and torch.all(y >= 0)
    # a file with the released layout (no num_batches_tracked) loads; a wrong one is refused
    sd = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / INCEPTION_FILENAME
    torch.save(sd, path)
    loaded = load_fid_inception(path)
    assert not loaded.training
    torch.save({"fc.weight": torch.zeros(3, 3)}, tmp_path / "bad.pth")
    from ladtalk.errors import CheckpointError
    with pytest.raises(CheckpointError, match="not the FID Inception"):
        load_fid_inception(tmp_path / "bad.pth")


def test_missing_inception_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("LADTALK_INCEPTION", raising=False)
    with pytest.raises(InputError, match=INCEPTION_FILENAME) as e:
        load_fid_inception()
    assert str(tmp_path) in str(e.value)
