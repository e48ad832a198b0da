"""Wav2Lip's losses (pure functions; the frozen expert and the discriminator are passed in)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-6


def cosine_bce(audio_emb: torch.Tensor, face_emb: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE(cos(a, v), y) with the cosine of two ReLU'd unit embeddings read as P(sync); fp32 scalar."""
    p = F.cosine_similarity(audio_emb.float(), face_emb.float()).clamp(EPS, 1 - EPS)
    return F.binary_cross_entropy(p, target.float().reshape(-1))


def lower_half_stack(frames: torch.Tensor) -> torch.Tensor:
    """(B,3,T,S,S) -> (B,3T,S/2,S): lower halves stacked frame-major on channels (the expert's face input)."""
    b, c, t, h, w = frames.shape
    return frames[:, :, :, h // 2:].permute(0, 2, 1, 3, 4).reshape(b, t * c, h - h // 2, w)


def expert_sync_loss(expert: torch.nn.Module, mel: torch.Tensor, generated: torch.Tensor) -> torch.Tensor:
    """Generator sync loss: BCE(cos(expert(mel, lower halves of generated (B,3,5,S,S))), 1); fp32 scalar."""
    a, v = expert(mel, lower_half_stack(generated))
    return cosine_bce(a, v, torch.ones(a.shape[0], device=a.device))


def bce_prob(prob: torch.Tensor, real: bool) -> torch.Tensor:
    """BCE of discriminator probabilities against all-real (1) or all-fake (0) labels; fp32 scalar."""
    p = prob.float().clamp(EPS, 1 - EPS)
    return F.binary_cross_entropy(p, torch.full_like(p, 1.0 if real else 0.0))
