"""metrics/nroub.py: conv norms against the SVD of the same conv as a dense matrix, a linear map with a known
largest singular value, and the margin's promise: below NRoUB no code of a known linear encoder ever changes."""


import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _sovqae_fake import one_thread
from torch import nn

from ladtalk.losses.codebook import min_code_distance
from ladtalk.metrics import nroub

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny convs: two threads on a busy machine are ~50x slower
_ = one_thread


def _dense(conv: nn.Conv2d, in_shape, pad=None) -> torch.Tensor:
    """The conv's linear part (bias dropped) as a matrix, column k = conv(e_k)."""
    n = int(np.prod(in_shape))
    basis = torch.eye(n).reshape(n, *in_shape)
    x = F.pad(basis, pad) if pad is not None else basis
    y = F.conv2d(x, conv.weight, None, conv.stride, conv.padding)
    return y.reshape(n, -1).T


def _sigma_max(mat: torch.Tensor) -> float:
    return float(torch.linalg.svdvals(mat.detach().double())[0])


CASES = {
    "3x3, padding 1, stride 1": (dict(in_channels=3, out_channels=4, kernel_size=3, padding=1), (3, 9, 9), None),
    "3x3, padding 1, stride 2": (dict(in_channels=3, out_channels=4, kernel_size=3, padding=1, stride=2),
                                 (3, 10, 10), None),
    "taming downsample: pad (0,1,0,1), stride 2": (dict(in_channels=4, out_channels=4, kernel_size=3, stride=2),
                                                   (4, 8, 8), (0, 1, 0, 1)),
    "1x1": (dict(in_channels=5, out_channels=3, kernel_size=1), (5, 6, 6), None),
}


@pytest.mark.parametrize("name", list(CASES))
def test_conv_norms_bracket_the_exact_norm(name):
    kwargs, shape, pad = CASES[name]
    torch.manual_seed(0)
    conv = nn.Conv2d(**kwargs)
    exact = _sigma_max(_dense(conv, shape, pad))
    lower = nroub.conv_operator_norm(conv, shape, iters=200, generator=torch.Generator().manual_seed(0), pad=pad)
    upper = nroub.conv_fft_upper_bound(conv, shape, pad)
    assert lower <= exact * (1 + 1e-5) and lower == pytest.approx(exact, rel=1e-3)
    assert upper >= exact * (1 - 1e-6)
    assert upper <= 2.0 * exact  # the circulant of the padded torus is close to the conv itself
    if kwargs["kernel_size"] == 1:
        assert upper == pytest.approx(exact, rel=1e-5)  # a 1x1 conv is the channel matrix at every pixel


def test_coarse_grid_bound_covers_a_peak_between_samples():
    """Taps (1, 3.695, -0.5): |K_hat(w)| peaks at w = +-pi/8, between the points 0 and pi/4 of an 8-point grid,
    so the grid's maximum is below the true norm; Bernstein's factor makes it a bound again."""
    conv = nn.Conv2d(1, 1, (1, 3), padding=(0, 1), bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, 3.695, -0.5]).view(1, 1, 1, 3))
    shape = (1, 1, 400)
    exact = _sigma_max(_dense(conv, shape).detach())
    taps = conv.weight.detach().numpy().ravel()[::-1]  # cross-correlation: the symbol of the flipped taps
    grid_max = np.abs(np.fft.fft(taps, 8)).max()
    assert grid_max < exact  # sampling alone would not be a bound
    assert nroub.conv_fft_upper_bound(conv, shape, max_grid=8) >= exact
    assert exact <= nroub.conv_fft_upper_bound(conv, shape, max_grid=256) <= 1.02 * exact


def test_jacobian_norm_of_a_linear_map_with_known_singular_values():
    torch.manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(12, 12))
    v, _ = torch.linalg.qr(torch.randn(12, 12))
    mat = u @ torch.diag(torch.tensor([3.0, 1.0, 0.5] + [0.1] * 9)) @ v.T

    def fn(x):
        return x.flatten(1) @ mat.T

    sigma = nroub.jacobian_spectral_norms(fn, torch.randn(2, 3, 2, 2), iters=30)
    np.testing.assert_allclose(sigma.numpy(), [3.0, 3.0], rtol=1e-3)
    perturbed = torch.stack([v[:, 0], v[:, 1]])
    ratios = nroub.difference_ratios(fn(torch.zeros(2, 12)), fn(perturbed), torch.zeros(2, 12), perturbed)
    np.testing.assert_allclose(ratios.numpy(), [3.0, 1.0], rtol=1e-5)


def test_no_code_changes_below_nroub_of_a_linear_encoder():
    """E(x) = A x with known L = sigma_max(A); codes and training latents within gamma of them. Every perturbation
    below NRoUB, random or along A's most amplified direction, keeps every code; a larger one can flip a code."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 10))
    lip = float(np.linalg.svd(a, compute_uv=False)[0])
    codes = rng.standard_normal((6, 4)) * 3
    d_c = float(min_code_distance(torch.from_numpy(codes)))
    gamma = 0.2 * d_c
    pinv = np.linalg.pinv(a)  # images whose latents are code + offset, |offset| <= gamma
    offsets = rng.standard_normal((60, 4))
    offsets *= gamma * rng.uniform(0, 1, (60, 1)) / np.linalg.norm(offsets, axis=1, keepdims=True)
    labels = rng.integers(0, 6, 60)
    images = (codes[labels] + offsets) @ pinv.T

    def nearest(x):
        return np.argmin((((x @ a.T)[:, None, :] - codes[None]) ** 2).sum(-1), axis=1)

    assert (nearest(images) == labels).all()
    margin = nroub.nroub(d_c, gamma, lip)
    assert margin > 0
    worst = np.linalg.svd(a)[2][0]
    for trial in range(200):
        d = rng.standard_normal(images.shape) if trial % 2 else np.tile(worst, (len(images), 1)) * rng.choice([-1, 1])
        d *= 0.999 * margin * rng.uniform(0.5, 1, (len(images), 1)) / np.linalg.norm(d, axis=1, keepdims=True)
        assert (nearest(images + d) == labels).all(), trial
    # not vacuous: moving one latent past the midpoint towards another code flips it
    j = int(np.argsort(np.linalg.norm(codes - codes[labels[0]], axis=1))[1])
    push = pinv @ ((codes[j] - codes[labels[0]]) * 0.6 - offsets[0])
    assert nearest(images[:1] + push)[0] == j and np.linalg.norm(push) > margin


def test_nearest_codes_are_the_quantizer_codes():
    """One encoder pass gives gamma's distances and the codes validation counts as used: the quantizer's own."""
    from ladtalk.models.sovqae import SOVQAE, SOVQAEConfig
    from ladtalk.presets import load_preset

    torch.manual_seed(0)
    model = SOVQAE(SOVQAEConfig.from_dict(load_preset("tiny")["model"])).eval()
    images = torch.rand(3, 3, model.config.resolution, model.config.resolution)
    with torch.no_grad():
        dists, indices = nroub.nearest_codes(model, images, batch_size=2)
        _, _, expected = model.encode(images * 2 - 1)
    assert torch.equal(indices, expected.flatten())
    assert torch.allclose(dists, nroub.nearest_codes(model, images)[0])
    assert dists.shape == indices.shape and (dists >= 0).all()
