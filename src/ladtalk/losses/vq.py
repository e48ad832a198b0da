"""Reconstruction and vector-quantization losses (pure functions)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def reconstruction_l2(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of images (B,3,H,W) in [-1,1] (LaDTalk uses L2 where taming uses L1), fp32 scalar."""
    return F.mse_loss(recon.float(), target.float())


def vq_loss(z: torch.Tensor, z_q: torch.Tensor, beta: float = 0.25, legacy: bool = False) -> torch.Tensor:
    """VQ-VAE loss of latents z and their codes z_q (B,D,h,w): ||sg[z]-e||^2 + beta*||z-sg[e]||^2 (means).

    `legacy=True` gives taming's weighting, where beta multiplies the codebook term instead (kept for comparison).
    """
    z, z_q = z.float(), z_q.float()
    codebook = F.mse_loss(z_q, z.detach())
    commit = F.mse_loss(z, z_q.detach())
    return commit + beta * codebook if legacy else codebook + beta * commit
