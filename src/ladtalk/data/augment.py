"""Augmentation of lip-sync expert batches (pure torch; randomness only from an explicit generator).

On one person's few minutes an expert memorises which face goes with which sound instead of how a mouth moves
(held-out accuracy stays at chance). Changes that keep the mouth motion break that shortcut: one photometric
change, flip, shift and zoom for all five frames of a sample, and a level shift, noise and a band mask on its mel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MEL_MIN, MEL_MAX = -4.0, 4.0  # the official mel's range (features.mel.MAX_ABS)


def _uniform(n: int, half_width: float, g: torch.Generator) -> torch.Tensor:
    return (torch.rand(n, generator=g) * 2 - 1) * half_width


def augment_faces(faces: torch.Tensor, g: torch.Generator, shift: float = 0.06, zoom: float = 0.08,
                  gain: float = 0.25, bias: float = 0.08) -> torch.Tensor:
    """(N,3T,H,W) frame-stacked BGR [0,1] -> same, one random flip/shift/zoom/gain/bias per sample.
    `shift` is a fraction of half the image side (grid units), `zoom` a relative scale."""
    n = faces.shape[0]
    faces = faces * (1 + _uniform(n, gain, g)).view(n, 1, 1, 1) + _uniform(n, bias, g).view(n, 1, 1, 1)
    flip = torch.rand(n, generator=g) < 0.5
    theta = torch.zeros(n, 2, 3)
    scale = 1 + _uniform(n, zoom, g)
    theta[:, 0, 0] = torch.where(flip, -scale, scale)  # a mirrored face moves its mouth the same way
    theta[:, 1, 1] = scale
    theta[:, 0, 2], theta[:, 1, 2] = _uniform(n, shift, g), _uniform(n, shift, g)
    grid = F.affine_grid(theta.to(faces), list(faces.shape), align_corners=False)
    return F.grid_sample(faces, grid, padding_mode="border", align_corners=False).clamp(0, 1)


def augment_mels(mels: torch.Tensor, g: torch.Generator, level: float = 0.5, noise: float = 0.05,
                 max_band: int = 10) -> torch.Tensor:
    """(N,1,80,W) official mels in [-4,4] -> same: a level shift (0.5 = 6 dB), Gaussian noise and one masked band
    of up to `max_band` mel bins per sample, clipped to the mel's range."""
    n, bins = mels.shape[0], mels.shape[2]
    out = mels + _uniform(n, level, g).view(n, 1, 1, 1) + noise * torch.randn(mels.shape, generator=g)
    first = torch.randint(0, bins - max_band, (n,), generator=g)
    width = torch.randint(0, max_band + 1, (n,), generator=g)
    k = torch.arange(bins)[None]
    band = (k >= first[:, None]) & (k < (first + width)[:, None])
    out = torch.where(band[:, None, :, None], torch.full_like(out, MEL_MIN), out)
    return out.clamp(MEL_MIN, MEL_MAX)
