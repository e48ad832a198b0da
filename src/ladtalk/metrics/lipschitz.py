"""Lipschitz factors of the SOVQAE encoder's layers, composed into its constant L_E (the paper's Appendix D).

Norms are on images in [-1,1] and on latents after quant_conv. A *bound* holds; an *estimate* says on which side
it errs.
- Convolution: `conv_fft_upper_bound` bounds a zero-padded (and strided) convolution by the symbol bound: the padded
  input embeds isometrically in a torus, where the convolution is circulant with norm max_w ||K_hat(w)||_2, and
  striding or cropping only restricts. On a grid coarser than the torus, Bernstein's inequality bounds the symbol
  between samples (factor 1 / (1 - pi (k_h - 1) / (2 M_h) - pi (k_w - 1) / (2 M_w))). `conv_operator_norm` (power
  iteration) is a lower estimate.
- SiLU: 1.0998 (exact).
- GroupNorm (unbounded as a group's deviation goes to 0) and self-attention (not Lipschitz, Kim et al. 2021) have no
  global bound: their factors are frozen at a few training images' statistics (`LocalStats`), so the composed
  constant is a *local* bound.
- Composition: the product along the chain; ||shortcut|| + the branch's product for a residual block.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ladtalk.models.sovqae import SOVQAE, AttnBlock, Downsample, ResnetBlock

SILU_LIPSCHITZ = 1.0998  # max_x d/dx [x * sigmoid(x)], attained at x ~ 2.4
DOWNSAMPLE_PAD = (0, 1, 0, 1)  # taming's asymmetric pad before the stride-2 convolution

# (conv, input shape (C,H,W), F.pad before it or None) -> the conv's operator norm, a bound or an estimate
ConvNorm = Callable[[nn.Conv2d, tuple[int, int, int], tuple[int, int, int, int] | None], float]


@torch.no_grad()
def conv_operator_norm(conv: nn.Conv2d, in_shape: tuple[int, int, int], iters: int = 30,
                       generator: torch.Generator | None = None, pad: tuple[int, int, int, int] | None = None) -> float:
    """A lower estimate of the largest singular value of `conv` (bias ignored) on inputs (C,H,W), after
    F.pad(`pad`) (taming's asymmetric downsampling pad): ||A v|| for the unit v of `iters` power iterations."""
    w = conv.weight.detach().float()
    v = torch.randn((1, *in_shape), generator=generator).to(w.device)
    v = v / v.norm()

    def fwd(x: torch.Tensor) -> torch.Tensor:
        if pad is not None:
            x = F.pad(x, pad)
        return F.conv2d(x, w, None, conv.stride, conv.padding, conv.dilation, conv.groups)

    for _ in range(iters):
        x = v.requires_grad_(True)
        with torch.enable_grad():
            y = fwd(x)
            (g,) = torch.autograd.grad(y, x, y)  # A^T A v
        v = (g / g.norm().clamp_min(1e-30)).detach()
    return float(fwd(v).norm())


@torch.no_grad()
def conv_fft_upper_bound(conv: nn.Conv2d, in_shape: tuple[int, int, int],
                         pad: tuple[int, int, int, int] | None = None, max_grid: int = 32, chunk: int = 64) -> float:
    """A true upper bound of the operator norm of `conv` (bias ignored) on inputs (C,H,W) after F.pad(`pad`): max
    ||K_hat(w)||_2 over at most `max_grid` frequencies per axis, over the Bernstein factor (module docstring)."""
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


def groupnorm_factor(norm: nn.GroupNorm, x: torch.Tensor) -> float:
    """L_GN at input x: max|weight| / min over samples and groups of sqrt(var + eps) (local: var is x's)."""
    x = x.float()
    var = x.reshape(x.shape[0], norm.num_groups, -1).var(dim=2, unbiased=False)
    return float((1.0 / torch.sqrt(var + norm.eps)).max()) * float(norm.weight.detach().abs().max())


def attention_matrix_norm(block: AttnBlock, x: torch.Tensor) -> float:
    """max over samples of ||A||_2, A = softmax(q^T k / sqrt(C)) the block's attention matrix at input x."""
    b, c, h, w = x.shape
    n = block.norm(x)
    q = block.q(n).reshape(b, c, h * w).float()
    k = block.k(n).reshape(b, c, h * w).float()
    a = torch.softmax(torch.einsum("bci,bcj->bij", q, k) / math.sqrt(c), dim=-1)
    return float(torch.linalg.matrix_norm(a, ord=2).max())


@dataclass
class LocalStats:
    """What the local factors are frozen at, per module: input shapes (C,H,W), L_GN, attention ||A||_2."""

    shapes: dict[nn.Module, tuple[int, int, int]] = field(default_factory=dict)
    groupnorm: dict[nn.Module, float] = field(default_factory=dict)
    attention: dict[nn.Module, float] = field(default_factory=dict)


@torch.no_grad()
def collect_local_stats(model: SOVQAE, images: torch.Tensor) -> LocalStats:
    """Run E on images (B,3,H,W) in [-1,1] and record each layer's input shape, L_GN and attention ||A||_2."""
    stats = LocalStats()

    def record(module: nn.Module, inputs: tuple, output) -> None:
        x = inputs[0]
        stats.shapes[module] = tuple(x.shape[1:])
        if isinstance(module, nn.GroupNorm):
            stats.groupnorm[module] = groupnorm_factor(module, x)
        elif isinstance(module, AttnBlock):
            stats.attention[module] = attention_matrix_norm(module, x)

    watched = (nn.Conv2d, Downsample, nn.GroupNorm, AttnBlock)
    hooks = [m.register_forward_hook(record) for m in [*model.encoder.modules(), model.quant_conv]
             if isinstance(m, watched)]
    try:
        model.encode_latent(images)
    finally:
        for h in hooks:
            h.remove()
    return stats


class CachedConvNorm:
    """A ConvNorm of each convolution at its recorded input shape, computed once (each appears once in E; the cache
    also counts them); `stats` also holds the recorded GroupNorm and attention factors."""

    def __init__(self, norm: ConvNorm, stats: LocalStats):
        self.norm, self.stats = norm, stats
        self.values: dict[nn.Conv2d, float] = {}

    def __call__(self, conv: nn.Conv2d, pad: tuple[int, int, int, int] | None = None,
                 input_of: nn.Module | None = None) -> float:
        """The norm of `conv` after F.pad(`pad`) on the input recorded at `input_of` (default: `conv` itself)."""
        if conv not in self.values:
            self.values[conv] = self.norm(conv, self.stats.shapes[conv if input_of is None else input_of], pad)
        return self.values[conv]


def resnet_block_factor(block: ResnetBlock, norm: CachedConvNorm) -> float:
    """||shortcut|| (1 for the identity) + L_GN1 L_SiLU ||conv1|| L_GN2 L_SiLU ||conv2||."""
    gn = norm.stats.groupnorm
    branch = (gn[block.norm1] * SILU_LIPSCHITZ * norm(block.conv1)
              * gn[block.norm2] * SILU_LIPSCHITZ * norm(block.conv2))
    return (1.0 if block.nin_shortcut is None else norm(block.nin_shortcut)) + branch


def attention_block_factor(block: AttnBlock, norm: CachedConvNorm) -> float:
    """1 + ||proj_out|| ||v|| ||A||_2 L_GN, with A and L_GN frozen at the recorded inputs."""
    stats = norm.stats
    return 1.0 + norm(block.proj_out) * norm(block.v) * stats.attention[block] * stats.groupnorm[block.norm]


def encoder_log_lipschitz(model: SOVQAE, norm: CachedConvNorm) -> float:
    """log L_E = the sum of the log factors of E's layers, conv_in to quant_conv."""
    enc = model.encoder
    log_l = math.log(norm(enc.conv_in))
    for level in enc.down:
        for i, blk in enumerate(level.block):
            log_l += math.log(resnet_block_factor(blk, norm))
            if len(level.attn):
                log_l += math.log(attention_block_factor(level.attn[i], norm))
        if hasattr(level, "resample"):  # the pad comes before the convolution: the shape is the Downsample's input
            log_l += math.log(norm(level.resample.conv, DOWNSAMPLE_PAD, level.resample))
    log_l += (math.log(resnet_block_factor(enc.mid.block_1, norm))
              + math.log(attention_block_factor(enc.mid.attn_1, norm))
              + math.log(resnet_block_factor(enc.mid.block_2, norm)))
    log_l += math.log(norm.stats.groupnorm[enc.norm_out] * SILU_LIPSCHITZ) + math.log(norm(enc.conv_out))
    return log_l + math.log(norm(model.quant_conv))
