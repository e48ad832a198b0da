"""Reconstruction losses (pure functions); the VQ loss lives in the quantizer (models/sovqae.py VectorQuantizer)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def reconstruction_l2(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of images (B,3,H,W) in [-1,1] (LaDTalk uses L2 where taming uses L1), fp32 scalar."""
    return F.mse_loss(recon.float(), target.float())


def reconstruction_l1(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error (taming's choice): its gradient does not fade on small errors, so fine detail that
    an L2 model leaves as a smooth average is still pulled towards the target."""
    return F.l1_loss(recon.float(), target.float())


def edge_l1(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of horizontal and vertical pixel differences (image gradients): rewards edges
    (lip contours, teeth, wrinkles) at the right place and strength, which a pixel loss barely sees."""
    r, t = recon.float(), target.float()
    dx = (r[..., :, 1:] - r[..., :, :-1]) - (t[..., :, 1:] - t[..., :, :-1])
    dy = (r[..., 1:, :] - r[..., :-1, :]) - (t[..., 1:, :] - t[..., :-1, :])
    return 0.5 * (dx.abs().mean() + dy.abs().mean())


def temporal_l2(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between the restored and the true change from each frame of the first half of the
    batch to its neighbour in the second half: flicker the truth does not have (the per-frame loss lets the
    error change freely from frame to frame; this term asks it to stay put)."""
    r, t = recon.float().chunk(2), target.float().chunk(2)
    return ((r[1] - r[0]) - (t[1] - t[0])).pow(2).mean()
