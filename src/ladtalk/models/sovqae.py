"""SOVQAE: the identity-specific Space-Optimized VQ autoencoder, taming-transformers' f=16 VQGAN layout and module
names with a straight-through vector quantizer between a 1x1 `quant_conv` / `post_quant_conv` pair. Images are
float (B,3,H,W) RGB in [-1,1], H and W multiples of 2**(len(ch_mult)-1); other losses live in ladtalk.losses."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class SOVQAEConfig:
    resolution: int = 256                    # training crop size; fixes where attention sits
    in_channels: int = 3
    out_channels: int = 3
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (16,)
    z_channels: int = 256
    embed_dim: int = 256
    n_embed: int = 1024
    dropout: float = 0.0
    beta: float = 0.25                       # commitment weight of the non-legacy VQ loss
    legacy_vq_loss: bool = False             # True = taming's weighting (beta on the codebook term)
    norm_groups: int = 32
    # beyond the paper: the decoder also sees the input shrunk to the code grid (a 1/f thumbnail, far below what
    # lip sync, blur or noise disturb) and adds its output to that thumbnail enlarged, so the codes only have to
    # carry the identity's detail, not its layout and colours; a fresh model returns the enlarged thumbnail
    lowres_guide: bool = False
    # the enlarged thumbnail is taken at guide_scale x the code grid (1: the grid itself; f: the input unchanged);
    # a finer one keeps more of what the lip-sync stage drew and leaves the codes only the finest detail
    guide_scale: int = 1
    # beyond the paper: the decoder's features at the `skip_levels` finest levels are corrected by the encoder's at
    # the same level (a learned scale and shift, zero at first), so what the input shows sharp need not pass
    # through the codes; the codes still decide the coarse levels
    skip_levels: int = 0

    def __post_init__(self) -> None:
        # JSON round trips give lists; keep the dataclass hashable and comparable.
        object.__setattr__(self, "ch_mult", tuple(int(m) for m in self.ch_mult))
        object.__setattr__(self, "attn_resolutions", tuple(int(r) for r in self.attn_resolutions))
        for c in {self.ch * m for m in self.ch_mult}:
            if c % self.norm_groups:
                raise ValueError(f"channel count {c} is not divisible by norm_groups={self.norm_groups}")
        if not 1 <= self.guide_scale <= self.downsample_factor:
            raise ValueError(f"guide_scale must be between 1 and the downsampling factor {self.downsample_factor}, "
                             f"got {self.guide_scale}")
        if not 0 <= self.skip_levels < len(self.ch_mult):
            raise ValueError(f"skip_levels must be between 0 and {len(self.ch_mult) - 1}, got {self.skip_levels}")

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SOVQAEConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown SOVQAE config keys {unknown}; known: {sorted(names)}")
        return cls(**d)


def _norm(c: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups, c, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, dropout: float, groups: int):
        super().__init__()
        self.norm1 = _norm(c_in, groups)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2 = _norm(c_out, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return (x if self.nin_shortcut is None else self.nin_shortcut(x)) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over the H*W positions (memory-efficient kernel via SDPA)."""

    def __init__(self, c: int, groups: int):
        super().__init__()
        self.norm = _norm(c, groups)
        self.q = nn.Conv2d(c, c, 1)
        self.k = nn.Conv2d(c, c, 1)
        self.v = nn.Conv2d(c, c, 1)
        self.proj_out = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        n = self.norm(x)

        def tokens(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(b, 1, c, h * w).transpose(2, 3)  # (B, 1 head, HW, C)

        out = F.scaled_dot_product_attention(tokens(self.q(n)), tokens(self.k(n)), tokens(self.v(n)))
        out = out.transpose(2, 3).reshape(b, c, h, w)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # taming pads right/bottom only, so an even size halves exactly
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _Level(nn.Module):
    """`n` residual blocks c_in -> c_out, each followed by attention when `attn`, then `resample(c_out)` if given."""

    def __init__(self, c_in: int, c_out: int, n: int, attn: bool, cfg: SOVQAEConfig, resample: type | None = None):
        super().__init__()
        self.block, self.attn = nn.ModuleList(), nn.ModuleList()
        for _ in range(n):
            self.block.append(ResnetBlock(c_in, c_out, cfg.dropout, cfg.norm_groups))
            c_in = c_out
            if attn:
                self.attn.append(AttnBlock(c_out, cfg.norm_groups))
        if resample is not None:
            self.resample = resample(c_out)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The level's blocks, before its resampling."""
        for i, blk in enumerate(self.block):
            x = blk(x)
            if len(self.attn):
                x = self.attn[i](x)
        return x

    def resampled(self, x: torch.Tensor) -> torch.Tensor:
        return self.resample(x) if hasattr(self, "resample") else x


class SkipFusion(nn.Module):
    """Decoder features h corrected by the encoder's e at the same level: h + h * scale + shift, scale and shift
    drawn from both; zero at first, so a fresh model decodes as one without it."""

    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(2 * c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, 2 * c, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        scale, shift = self.conv2(F.silu(self.conv1(torch.cat([h, e.to(h.dtype)], 1)))).chunk(2, 1)
        return h + h * scale + shift


def _mid(c: int, dropout: float, groups: int) -> nn.Sequential:
    """taming's middle: a residual block, attention, a residual block."""
    return nn.Sequential(OrderedDict(block_1=ResnetBlock(c, c, dropout, groups), attn_1=AttnBlock(c, groups),
                                     block_2=ResnetBlock(c, c, dropout, groups)))


class Encoder(nn.Module):
    def __init__(self, cfg: SOVQAEConfig):
        super().__init__()
        g, c_in, res = cfg.norm_groups, cfg.ch, cfg.resolution
        self.conv_in = nn.Conv2d(cfg.in_channels, cfg.ch, 3, padding=1)
        self.down = nn.ModuleList()
        for i, m in enumerate(cfg.ch_mult):
            last = i == len(cfg.ch_mult) - 1
            self.down.append(_Level(c_in, cfg.ch * m, cfg.num_res_blocks, res in cfg.attn_resolutions, cfg,
                                    None if last else Downsample))
            c_in, res = cfg.ch * m, res if last else res // 2
        self.mid = _mid(c_in, cfg.dropout, g)
        self.norm_out = _norm(c_in, g)
        self.conv_out = nn.Conv2d(c_in, cfg.z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor, keep: int = 0) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(latent, the features of the `keep` finest levels before their downsampling, finest first)."""
        h, skips = self.conv_in(x), []
        for i, level in enumerate(self.down):
            h = level.features(h)
            if i < keep:
                skips.append(h)
            h = level.resampled(h)
        return self.conv_out(F.silu(self.norm_out(self.mid(h)))), skips


class Decoder(nn.Module):
    def __init__(self, cfg: SOVQAEConfig):
        super().__init__()
        g = cfg.norm_groups
        c = cfg.ch * cfg.ch_mult[-1]
        res = cfg.resolution // cfg.downsample_factor
        self.conv_in = nn.Conv2d(cfg.z_channels + (cfg.in_channels if cfg.lowres_guide else 0), c, 3, padding=1)
        self.mid = _mid(c, cfg.dropout, g)
        levels: list[_Level] = []
        for i in reversed(range(len(cfg.ch_mult))):
            levels.append(_Level(c, cfg.ch * cfg.ch_mult[i], cfg.num_res_blocks + 1, res in cfg.attn_resolutions, cfg,
                                 Upsample if i != 0 else None))
            c, res = cfg.ch * cfg.ch_mult[i], res * 2 if i != 0 else res
        # taming indexes `up` by resolution level (0 = full size); keep that order for readable names
        self.up = nn.ModuleList(reversed(levels))
        self.fuse = nn.ModuleList(SkipFusion(cfg.ch * cfg.ch_mult[i]) for i in range(cfg.skip_levels))
        self.norm_out = _norm(c, g)
        self.conv_out = nn.Conv2d(c, cfg.out_channels, 3, padding=1)
        if cfg.lowres_guide:  # start as the enlarged thumbnail: the detail is learned on top of it
            nn.init.zeros_(self.conv_out.weight)
            nn.init.zeros_(self.conv_out.bias)

    def forward(self, z: torch.Tensor, skips: list[torch.Tensor] | None = None) -> torch.Tensor:
        """z -> image; `skips`: the encoder's features of the finest levels (finest first), one per fusion."""
        h = self.mid(self.conv_in(z))
        for i in reversed(range(len(self.up))):
            h = self.up[i].features(h)
            if i < len(self.fuse):
                h = self.fuse[i](h, skips[i])
            h = self.up[i].resampled(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class VectorQuantizer(nn.Module):
    """Nearest-code quantizer with the straight-through estimator; distances in fp32 under any autocast."""

    def __init__(self, n_embed: int, embed_dim: int, beta: float, legacy: bool = False):
        super().__init__()
        self.n_embed, self.embed_dim, self.beta, self.legacy = n_embed, embed_dim, beta, legacy
        self.embedding = nn.Embedding(n_embed, embed_dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / n_embed, 1.0 / n_embed)

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Indices (B,h,w) int64 of the nearest code to each latent vector of z (B,D,h,w)."""
        b, d, h, w = z.shape
        flat = z.detach().float().permute(0, 2, 3, 1).reshape(-1, d)
        e = self.embedding.weight.detach().float()
        dist = flat.pow(2).sum(1, keepdim=True) + e.pow(2).sum(1)[None] - 2.0 * flat @ e.t()
        return dist.argmin(1).view(b, h, w)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z (B,D,h,w) -> (z_q straight-through fp32, vq loss scalar, indices (B,h,w))."""
        with torch.autocast(z.device.type, enabled=False):
            z = z.float()
            idx = self.nearest(z)
            z_q = self.embedding(idx).permute(0, 3, 1, 2).contiguous()
            # Eq. 8 of the paper / VQ-VAE: codebook term ||sg[z] - e||^2 + beta * commitment ||z - sg[e]||^2
            codebook = F.mse_loss(z_q, z.detach())
            commit = F.mse_loss(z, z_q.detach())
            loss = (commit + self.beta * codebook) if self.legacy else (codebook + self.beta * commit)
            z_q = z + (z_q - z).detach()
        return z_q, loss, idx


def usage_tensors(indices: torch.Tensor, n_embed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(share of the n_embed codes used, perplexity exp(-sum p log p)) as 0-dim tensors (no host sync)."""
    flat = indices.reshape(-1)
    # scatter_add instead of bincount: CUDA bincount reads the max back to the host (a sync per step)
    counts = torch.zeros(n_embed, device=flat.device).scatter_add_(0, flat, torch.ones_like(flat, dtype=torch.float32))
    p = counts / counts.sum().clamp_min(1)
    perplexity = torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum())
    return (counts > 0).float().mean(), perplexity


class SOVQAE(nn.Module):
    def __init__(self, config: SOVQAEConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.quant_conv = nn.Conv2d(config.z_channels, config.embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(config.embed_dim, config.z_channels, 1)
        self.quantize = VectorQuantizer(config.n_embed, config.embed_dim, config.beta, config.legacy_vq_loss)

    def encode_latent(self, images: torch.Tensor) -> torch.Tensor:
        """The encoder E of the paper: images (B,3,H,W) in [-1,1] -> pre-quantization latents (B,D,H/f,W/f)."""
        return self.latent_and_skips(images)[0]

    def latent_and_skips(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One encoder pass: (pre-quantization latents, the fine features `decode` fuses with `skip_levels`, else
        an empty list)."""
        f = self.config.downsample_factor
        if images.ndim != 4 or images.shape[1] != self.config.in_channels or images.shape[-1] % f \
                or images.shape[-2] % f:
            raise ValueError(f"SOVQAE expects images (B,{self.config.in_channels},H,W) with H, W multiples of "
                             f"{f}; got {tuple(images.shape)}")
        latent, skips = self.encoder(images, self.config.skip_levels)
        return self.quant_conv(latent), skips

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """images (B,3,H,W) in [-1,1] -> (z_q (B,D,h,w) fp32, vq loss scalar, indices (B,h,w) int64)."""
        return self.quantize(self.encode_latent(images))

    def decode(self, z_q: torch.Tensor, images: torch.Tensor | None = None,
               skips: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Quantized latents (B,D,h,w) -> images (B,3,h*f,w*f), nominally in [-1,1] (not clamped). With
        `lowres_guide` or `skip_levels`, `images` (the encoder's input, (B,3,H,W) in [-1,1]) gives the decoder its
        thumbnail and the encoder's fine features (`skips`, when the caller has them already)."""
        h = self.post_quant_conv(z_q)
        cfg = self.config
        if not (cfg.lowres_guide or cfg.skip_levels):
            return self.decoder(h)
        if images is None:
            raise ValueError("this SOVQAE's decoder takes its low-resolution guide or skip features from the "
                             "input: pass the input images")
        if cfg.skip_levels and skips is None:
            skips = self.encoder(images, cfg.skip_levels)[1]
        if not cfg.lowres_guide:
            return self.decoder(h, skips)
        f, s = cfg.downsample_factor, cfg.guide_scale
        guide = _shrink(images.to(h.dtype), f)
        thumb = guide if s == 1 else _shrink(images.to(h.dtype), f / s)
        base = F.interpolate(thumb, size=images.shape[-2:], mode="bicubic", align_corners=False)
        return base + self.decoder(torch.cat([h, guide], 1), skips)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        """images (B,3,H,W) in [-1,1] -> (reconstruction, vq loss, info: indices, usage and perplexity tensors)."""
        latent, skips = self.latent_and_skips(images)
        z_q, vq_loss, indices = self.quantize(latent)
        recon = self.decode(z_q, images, skips)
        usage, perplexity = usage_tensors(indices.detach(), self.config.n_embed)
        return recon, vq_loss, {"indices": indices, "usage": usage, "perplexity": perplexity}


def _shrink(images: torch.Tensor, factor: float) -> torch.Tensor:
    """Area downsampling by `factor` (images' sides are multiples of the code grid): avg_pool2d where the factor
    is whole, the same average as interpolate(mode="area") that also exports to ONNX and OpenVINO."""
    if factor == int(factor):
        return F.avg_pool2d(images, kernel_size=int(factor))
    return F.interpolate(images, size=(round(images.shape[-2] / factor), round(images.shape[-1] / factor)),
                         mode="area")


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
