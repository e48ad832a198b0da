"""Reconstruction losses (pure functions); the VQ loss lives in the quantizer (models/sovqae.py VectorQuantizer)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def reconstruction_l2(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of images (B,3,H,W) in [-1,1] (LaDTalk uses L2 where taming uses L1), fp32 scalar."""
    return F.mse_loss(recon.float(), target.float())
