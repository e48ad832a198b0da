"""The paper's robustness margin: d_C, gamma, the encoder's Lipschitz constant L_E and NRoUB.

NRoUB = (d_C - 2*gamma) / (2*L_E): a perturbation of the input image with Frobenius norm below it cannot change
any code (Lemma of the paper). Norms are taken on images in [-1,1] (the model's input range) and on latents
after quant_conv (the vectors that are quantized).

Lipschitz upper bound of E = quant_conv o encoder, composed layer by layer (product along the chain, sum over a
residual's two paths). Exact parts: every convolution's operator norm on its actual input size, by power
iteration on conv / conv-transpose (zero padding included); SiLU is 1.0998-Lipschitz; nearest/stride maps are
inside the convolutions. Parts that are NOT globally Lipschitz, and how they are bounded here (a local,
data-dependent bound, stated in every report):
- GroupNorm divides by the group's standard deviation, unbounded as it goes to 0. We freeze the statistics at
  their values on the given images and bound the layer by max|gamma| / min sqrt(var + eps) over samples and
  groups (mean removal is a projection, norm <= 1).
- Dot-product self-attention is not Lipschitz (Kim et al., 2021). We freeze the softmax matrices A measured on
  the given images and bound the block by 1 + ||proj|| * ||v|| * max ||A||_2 * L_GN (q and k then drop out).
The bound therefore holds along the data (near the measured statistics), not for arbitrary inputs; the
empirical local estimate (largest singular value of the Jacobian at data points) shows how loose it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable

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
    """Largest singular value of the linear part of `conv` on inputs (C,H,W), by power iteration.

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


def encoder_lipschitz_bound(model: SOVQAE, images: torch.Tensor, iters: int = 30,
                            seed: int = 0) -> dict[str, float | str]:
    """Composed upper bound of E's Lipschitz constant (local, see module docstring) for images in [-1,1]."""
    st = collect_stats(model, images)
    gen = torch.Generator().manual_seed(seed)
    cache: dict[nn.Module, float] = {}

    def conv_norm(conv: nn.Conv2d, pad=None, shape=None) -> float:
        if conv not in cache:
            cache[conv] = conv_operator_norm(conv, shape or st.shapes[conv], iters, gen, pad)
        return cache[conv]

    def gn(m: nn.GroupNorm) -> float:
        return st.gn_inv_std[m]

    def res(b: ResnetBlock) -> float:
        branch = gn(b.norm1) * SILU_LIPSCHITZ * conv_norm(b.conv1) * gn(b.norm2) * SILU_LIPSCHITZ * conv_norm(b.conv2)
        skip = 1.0 if b.nin_shortcut is None else conv_norm(b.nin_shortcut)
        return skip + branch

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
    log_l += math.log(conv_norm(model.quant_conv))
    return {"L_E_bound": math.exp(log_l) if log_l < 700 else float("inf"), "log10_L_E_bound": log_l / math.log(10),
            "assumptions": "conv operator norms exact (power iteration on the real input size); SiLU 1.0998; "
                           "GroupNorm statistics and attention softmax matrices frozen at their values on "
                           f"{len(images)} training images (local bound along the data)"}


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
