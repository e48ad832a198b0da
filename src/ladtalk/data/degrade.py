"""Image degradations for validating and analysing restoration (pure torch, run on the images' device).

Images are float (B,3,H,W) RGB in [0,1] in and out (clamped); randomness only from an explicit torch.Generator.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur (kernel 2*ceil(3 sigma)+1, reflect padding); sigma in pixels, 0 = identity."""
    if sigma <= 0:
        return images.clone()
    r = max(1, math.ceil(3 * sigma))
    x = torch.arange(-r, r + 1, device=images.device, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    pad = min(r, images.shape[-1] - 1, images.shape[-2] - 1)  # tiny images: as wide as reflection allows
    k = k[r - pad:r + pad + 1]
    k = (k / k.sum()).to(images.dtype)
    c = images.shape[1]
    out = F.pad(images, (pad, pad, pad, pad), mode="reflect")
    out = F.conv2d(out, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    out = F.conv2d(out, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    return out.clamp(0, 1)


def gaussian_noise(images: torch.Tensor, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Additive Gaussian noise with standard deviation `std` in [0,1] intensity units, clamped."""
    noise = torch.randn(images.shape, generator=generator, device="cpu", dtype=torch.float32)
    return (images + std * noise.to(images.device, images.dtype)).clamp(0, 1)


def lipsync_size(crop_size: int) -> int:
    """The side of the Wav2Lip-like down-up for crops of `crop_size`: Wav2Lip's own 96 px, or 3/8 of crops smaller
    than 192 px (96 of 256), where 96 px would hardly degrade them. Shared by validation and `ladtalk analyze`."""
    return 96 if crop_size >= 192 else max(8, crop_size * 3 // 8)


def down_up(images: torch.Tensor, size: int = 96) -> torch.Tensor:
    """Wav2Lip-like loss of detail: area-downscale to size x size, then bicubic back to the input size."""
    h, w = images.shape[-2:]
    small = F.interpolate(images, size=(size, size), mode="area")
    return F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


def random_regions(batch: int, height: int, width: int, region: int,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """(B,4) int64 boxes y0,x0,y1,x1 of a region x region square placed uniformly at random in the image."""
    region = min(region, height, width)
    y0 = torch.randint(0, height - region + 1, (batch,), generator=generator)
    x0 = torch.randint(0, width - region + 1, (batch,), generator=generator)
    return torch.stack([y0, x0, y0 + region, x0 + region], 1)


def region_mask(boxes: torch.Tensor, height: int, width: int, device: torch.device | str) -> torch.Tensor:
    """(B,1,H,W) float mask, 1 inside each box y0,x0,y1,x1."""
    ys = torch.arange(height, device=device)[None, :, None]
    xs = torch.arange(width, device=device)[None, None, :]
    b = boxes.to(device)
    inside = ((ys >= b[:, 0, None, None]) & (ys < b[:, 2, None, None])
              & (xs >= b[:, 1, None, None]) & (xs < b[:, 3, None, None]))
    return inside[:, None].float()


def in_region(clean: torch.Tensor, degraded: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """`degraded` inside the boxes, `clean` elsewhere; both (B,3,H,W) in [0,1]."""
    m = region_mask(boxes, clean.shape[-2], clean.shape[-1], clean.device).to(clean.dtype)
    return clean * (1 - m) + degraded * m


def scaled_region(image_size: int, reference_region: int = 192, reference_size: int = 256) -> int:
    """The paper's 192x192 region on 256 crops, scaled to other crop sizes."""
    return max(1, round(image_size * reference_region / reference_size))


def restoration_training_degradation(images: torch.Tensor, generator: torch.Generator,
                                     clean_share: float = 0.25) -> torch.Tensor:
    """What a lip-synced face looks like, drawn per image for degradation-aware training (beyond the paper):
    a random down-up (the Wav2Lip stage works at 96 px: 25-55% of the side), then with some chance a blur of up to
    3 px at 256 and noise of up to 0.1; a `clean_share` of the images stays clean so clean faces stay exact."""
    h, w = images.shape[-2:]
    scale = h / 256
    out = []
    for x in images.split(1):
        r = torch.rand(4, generator=generator).tolist()  # host draws: no device sync
        if r[0] < clean_share:
            out.append(x)
            continue
        side = max(8, round(h * (0.25 + 0.3 * r[1])))
        y = F.interpolate(x, size=(side, side * w // h), mode="area")
        y = F.interpolate(y, size=(h, w), mode="bicubic", align_corners=False)
        if r[2] < 0.5:
            y = gaussian_blur(y.clamp(0, 1), 3.0 * scale * r[2] * 2)
        if r[3] < 0.3:
            y = gaussian_noise(y, 0.1 * r[3] / 0.3, generator)
        out.append(y.clamp(0, 1))
    return torch.cat(out)
