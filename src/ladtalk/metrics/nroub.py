"""The paper's robustness margin: d_C, gamma, the encoder's Lipschitz constant L_E and NRoUB.

NRoUB = (d_C - 2*gamma) / (2*L_E): a perturbation of the input image with Frobenius norm below it cannot change
any code (Lemma of the paper). Norms are taken on images in [-1,1] (the model's input range) and on latents
after quant_conv (the vectors that are quantized). Every quantity is named for what it is:

- a *bound* is guaranteed on the side it is used on; an *estimate* is not, and says on which side it errs.
- Convolutions: `conv_fft_upper_bound` is a true upper bound of a zero-padded (and strided) convolution's
  operator norm, the symbol bound of the paper's Appendix D: the padded input embeds isometrically in a torus,
  where the convolution is circulant with norm max over frequencies of ||K_hat(w)||_2, and striding or cropping
  only restricts. On a grid coarser than the torus, Bernstein's inequality bounds the symbol between samples
  (factor 1 / (1 - pi (k_h - 1) / (2 M_h) - pi (k_w - 1) / (2 M_w))). `conv_operator_norm` (power iteration) is
  a lower estimate of the same norm.
- SiLU is 1.0998-Lipschitz (exact). Nearest/stride maps are inside the convolutions.
- GroupNorm divides by the group's standard deviation, unbounded as it goes to 0, and dot-product self-attention
  is not Lipschitz (Kim et al., 2021): no global bound exists. Their factors are frozen at the statistics of a
  few training images (GroupNorm: max|gamma| / min sqrt(var + eps); attention: 1 + ||proj|| ||v|| max||A||_2
  L_GN). The composed constant is therefore a *local* bound, valid near those statistics only.
- The Jacobian's largest singular value at a few frames is a lower estimate of L_E, so NRoUB computed with it
  is an upper estimate of the margin, never a guarantee. Ratios ||E(x') - E(x)|| / ||x' - x|| on real
  degraded pairs (`finite_difference_ratios`) are lower estimates too, on the perturbations that matter.
- gamma over training frames is the paper's quantity (a lower estimate of it when frames are subsampled);
  test frames can sit farther from their codes than that, so gamma over the test frames is reported beside it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ladtalk.losses.codebook import min_code_distance, nearest_neighbour_distances
from ladtalk.models.sovqae import SOVQAE, AttnBlock, Downsample, ResnetBlock

SILU_LIPSCHITZ = 1.0998  # max_x d/dx [x * sigmoid(x)], attained at x ~ 2.4


def d_c(codes: torch.Tensor) -> float:
    """Minimal pairwise distance of (N,D) codes."""
    return float(min_code_distance(codes.detach()))


def code_distance_stats(codes: torch.Tensor) -> dict[str, float]:
    """d_C plus the spread of each code's nearest-neighbour distance and the mean code norm."""
    nn_d = nearest_neighbour_distances(codes.detach()).cpu().numpy()
    return {"d_C": float(nn_d.min()), "nn_distance_median": float(np.median(nn_d)),
            "nn_distance_mean": float(nn_d.mean()), "nn_distance_max": float(nn_d.max()),
            "code_norm_mean": float(codes.detach().float().norm(dim=1).mean())}


def gamma_stats(distances: torch.Tensor | np.ndarray) -> dict[str, float]:
    """gamma = max distance of training latents to their nearest code, with percentiles (p50..p99.9)."""
    d = np.asarray(distances.detach().cpu() if isinstance(distances, torch.Tensor) else distances, np.float64)
    out = {"gamma": float(d.max()), "count": int(d.size), "mean": float(d.mean())}
    for q in (50, 90, 99, 99.9):
        out[f"p{q}"] = float(np.percentile(d, q))
    return out


def nroub(d_c_value: float, gamma: float, lipschitz: float) -> float:
    """(d_C - 2 gamma) / (2 L_E); negative when training latents sit farther than d_C/2 from their codes."""
    return (d_c_value - 2.0 * gamma) / (2.0 * lipschitz)


@torch.no_grad()
def conv_operator_norm(conv: nn.Conv2d, in_shape: tuple[int, int, int], iters: int = 30,
                       generator: torch.Generator | None = None, pad: tuple[int, int, int, int] | None = None) -> float:
    """A lower estimate of the largest singular value of the linear part of `conv` on inputs (C,H,W): ||A v|| for
    the unit v that `iters` power iterations reach (exact only in the limit).

    `pad` applies F.pad before the convolution (taming's asymmetric downsampling pad); bias is ignored.
    """
    w = conv.weight.detach().float()
    dev = w.device
    v = torch.randn((1, *in_shape), generator=generator).to(dev)
    v = v / v.norm()

    def fwd(x: torch.Tensor) -> torch.Tensor:
        if pad is not None:
            x = F.pad(x, pad)
        return F.conv2d(x, w, None, conv.stride, conv.padding, conv.dilation, conv.groups)

    sigma = 0.0
    for _ in range(iters):
        x = v.requires_grad_(True)
        with torch.enable_grad():
            y = fwd(x)
            (g,) = torch.autograd.grad(y, x, y)  # A^T A v
        sigma = float(y.norm())
        v = (g / g.norm().clamp_min(1e-30)).detach()
    return float(fwd(v).norm()) if iters else sigma


@torch.no_grad()
def conv_fft_upper_bound(conv: nn.Conv2d, in_shape: tuple[int, int, int],
                         pad: tuple[int, int, int, int] | None = None, max_grid: int = 32, chunk: int = 64) -> float:
    """A true upper bound of the operator norm of `conv` (zero padding, any stride, bias ignored) on inputs
    (C,H,W), optionally after F.pad(`pad`): the maximum of ||K_hat(w)||_2 over a frequency grid of at most
    `max_grid` points per axis (the torus of the padded input when it is smaller: then exact for the circulant),
    divided by the Bernstein factor when the grid is coarser (module docstring)."""
    if conv.groups != 1 or tuple(conv.dilation) != (1, 1):
        raise ValueError("conv_fft_upper_bound handles ungrouped, undilated convolutions only")
    w = conv.weight.detach().float()
    cout, cin, kh, kw = w.shape
    left, right, top, bottom = pad if pad is not None else (0, 0, 0, 0)
    n_h = in_shape[1] + top + bottom + 2 * conv.padding[0]
    n_w = in_shape[2] + left + right + 2 * conv.padding[1]
    # a 1-tap axis has a constant symbol along it: one sample is exact
    m_h = 1 if kh == 1 else min(n_h, max(max_grid, kh))
    m_w = 1 if kw == 1 else min(n_w, max(max_grid, kw))
    slack = (math.pi * (kh - 1) / (2 * m_h) if m_h < n_h else 0.0) + \
            (math.pi * (kw - 1) / (2 * m_w) if m_w < n_w else 0.0)
    if slack >= 1:
        raise ValueError(f"grid {max_grid} is too coarse for a {kh}x{kw} kernel; raise max_grid")
    # real weights: K_hat(-w) = conj(K_hat(w)) has the same singular values, so half the grid (rfft2) suffices
    mats = torch.fft.rfft2(w, s=(m_h, m_w)).permute(2, 3, 0, 1).reshape(-1, cout, cin)
    top_norm = max(float(torch.linalg.matrix_norm(mats[i:i + chunk], ord=2).max())
                   for i in range(0, len(mats), chunk))
    return top_norm / (1.0 - slack)


class _Stats:
    """Per-module statistics gathered by forward hooks on data: GroupNorm min std, attention ||A||_2."""

    def __init__(self):
        self.gn_inv_std: dict[nn.Module, float] = {}
        self.attn_norm: dict[nn.Module, float] = {}
        self.shapes: dict[nn.Module, tuple[int, int, int]] = {}


def _attention_matrix_norm(block: AttnBlock, x: torch.Tensor) -> float:
    b, c, h, w = x.shape
    n = block.norm(x)
    q = block.q(n).reshape(b, c, h * w).float()
    k = block.k(n).reshape(b, c, h * w).float()
    a = torch.softmax(torch.einsum("bci,bcj->bij", q, k) / math.sqrt(c), dim=-1)
    return float(torch.linalg.matrix_norm(a, ord=2).max())


@torch.no_grad()
def collect_stats(model: SOVQAE, images: torch.Tensor) -> _Stats:
    """Run E on images (B,3,H,W) in [-1,1] and record input shapes, GroupNorm and attention statistics."""
    st = _Stats()
    hooks = []

    def shape_hook(mod, inp, out):
        st.shapes[mod] = tuple(inp[0].shape[1:])

    def gn_hook(mod: nn.GroupNorm, inp, out):
        x = inp[0].float()
        b, c = x.shape[:2]
        var = x.reshape(b, mod.num_groups, -1).var(dim=2, unbiased=False)
        inv = float((1.0 / torch.sqrt(var + mod.eps)).max())
        st.gn_inv_std[mod] = max(st.gn_inv_std.get(mod, 0.0), inv * float(mod.weight.detach().abs().max()))

    def attn_hook(mod: AttnBlock, inp, out):
        st.attn_norm[mod] = max(st.attn_norm.get(mod, 0.0), _attention_matrix_norm(mod, inp[0]))

    for m in list(model.encoder.modules()) + [model.quant_conv]:
        if isinstance(m, (nn.Conv2d, Downsample)):
            hooks.append(m.register_forward_hook(shape_hook))
        if isinstance(m, nn.GroupNorm):
            hooks.append(m.register_forward_hook(gn_hook))
        if isinstance(m, AttnBlock):
            hooks.append(m.register_forward_hook(attn_hook))
    try:
        model.encode_latent(images)
    finally:
        for h in hooks:
            h.remove()
    return st


def encoder_lipschitz_bound(model: SOVQAE, images: torch.Tensor, iters: int = 30, seed: int = 0,
                            max_grid: int = 32) -> dict[str, Any]:
    """E's Lipschitz constant for images in [-1,1], composed layer by layer (product along the chain, sum over a
    residual's two paths), twice: with the convolutions' FFT upper bounds (a bound, local because GroupNorm and
    attention are frozen at `images`' statistics) and with their power-iteration lower estimates."""
    st = collect_stats(model, images)
    gen = torch.Generator().manual_seed(seed)
    bounds: dict[nn.Module, float] = {}
    estimates: dict[nn.Module, float] = {}

    def compose(conv_norm: Callable[..., float]) -> float:
        def gn(m: nn.GroupNorm) -> float:
            return st.gn_inv_std[m]

        def res(b: ResnetBlock) -> float:
            branch = (gn(b.norm1) * SILU_LIPSCHITZ * conv_norm(b.conv1) * gn(b.norm2) * SILU_LIPSCHITZ
                      * conv_norm(b.conv2))
            return (1.0 if b.nin_shortcut is None else conv_norm(b.nin_shortcut)) + branch

        def attn(a: AttnBlock) -> float:
            return 1.0 + conv_norm(a.proj_out) * conv_norm(a.v) * st.attn_norm[a] * gn(a.norm)

        enc = model.encoder
        log_l = math.log(conv_norm(enc.conv_in))
        for level in enc.down:
            for i, blk in enumerate(level.block):
                log_l += math.log(res(blk))
                if len(level.attn):
                    log_l += math.log(attn(level.attn[i]))
            if hasattr(level, "resample"):
                ds: Downsample = level.resample
                log_l += math.log(conv_norm(ds.conv, pad=(0, 1, 0, 1), shape=st.shapes[ds]))
        log_l += math.log(res(enc.mid.block_1)) + math.log(attn(enc.mid.attn_1)) + math.log(res(enc.mid.block_2))
        log_l += math.log(gn(enc.norm_out) * SILU_LIPSCHITZ) + math.log(conv_norm(enc.conv_out))
        return log_l + math.log(conv_norm(model.quant_conv))

    def upper(conv: nn.Conv2d, pad=None, shape=None) -> float:
        if conv not in bounds:
            bounds[conv] = conv_fft_upper_bound(conv, shape or st.shapes[conv], pad, max_grid)
        return bounds[conv]

    def lower(conv: nn.Conv2d, pad=None, shape=None) -> float:
        if conv not in estimates:
            estimates[conv] = conv_operator_norm(conv, shape or st.shapes[conv], iters, gen, pad)
        return estimates[conv]

    log_bound, log_estimate = compose(upper), compose(lower)
    return {"L_E_local_bound": math.exp(log_bound) if log_bound < 700 else float("inf"),
            "log10_L_E_local_bound": log_bound / math.log(10),
            "log10_L_E_power_iteration_estimate": log_estimate / math.log(10),
            "convs": len(bounds),
            "conv_bound_over_estimate_min": min(bounds[c] / max(estimates[c], 1e-30) for c in bounds),
            "conv_bound_over_estimate_max": max(bounds[c] / max(estimates[c], 1e-30) for c in bounds),
            "assumptions": "bound: convolutions by the FFT symbol bound (true upper bounds, zero padding and "
                           "stride included); SiLU 1.0998; GroupNorm statistics and attention softmax matrices "
                           f"frozen at their values on {len(images)} training images, so the composition is a "
                           "local bound along the data, not a global one. The power-iteration composition uses "
                           "lower estimates of the convolution norms instead."}


def jacobian_spectral_norms(fn: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, iters: int = 10,
                            seed: int = 0, eps: float = 1e-3) -> torch.Tensor:
    """(B,) largest singular value of the Jacobian of a per-sample map `fn` at each image, by power iteration.

    J v by central differences (no double backward, so fused attention kernels work), J^T u by autograd.
    """
    gen = torch.Generator().manual_seed(seed)
    x0 = images.detach().float()
    v = torch.randn(x0.shape, generator=gen).to(x0.device)
    sigma = torch.zeros(len(x0), device=x0.device)

    def unit(t: torch.Tensor) -> torch.Tensor:
        return t / t.flatten(1).norm(dim=1).clamp_min(1e-30).view(-1, *([1] * (t.ndim - 1)))

    for _ in range(iters):
        v = unit(v)
        with torch.no_grad():
            jv = (fn(x0 + eps * v).float() - fn(x0 - eps * v).float()) / (2 * eps)
        sigma = jv.flatten(1).norm(dim=1)
        x = x0.clone().requires_grad_(True)
        with torch.enable_grad():
            (v,) = torch.autograd.grad(fn(x).float(), x, jv)  # J^T J v
    return sigma.detach()


@torch.no_grad()
def finite_difference_ratios(fn: Callable[[torch.Tensor], torch.Tensor], clean: torch.Tensor,
                             perturbed: torch.Tensor) -> torch.Tensor:
    """(B,) ||fn(x') - fn(x)||_F / ||x' - x||_F for paired images (0 where x' == x)."""
    num = (fn(perturbed).float() - fn(clean).float()).flatten(1).norm(dim=1)
    den = (perturbed.float() - clean.float()).flatten(1).norm(dim=1)
    return torch.where(den > 0, num / den.clamp_min(1e-30), torch.zeros_like(den))
