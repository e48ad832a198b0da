"""The Space-Optimized codebook regulariser L_reg = |d_C - theta|, d_C the minimal pairwise distance between codes
(its gradient goes to the closest pair only, as in the paper). Distances are sqrt(clamp(d^2, 1e-12)) with the
diagonal masked, so coinciding codes give a finite gradient instead of NaN."""

from __future__ import annotations

import torch

_EPS2 = 1e-12


def pairwise_distances(codes: torch.Tensor) -> torch.Tensor:
    """(N,D) codes -> (N,N) fp32 Euclidean distances, +inf on the diagonal. ||e_i||^2 + ||e_j||^2 - 2 e_i.e_j cancels
    catastrophically when ||e|| >> d_C, so it runs in float64 (float32 on MPS, which has none) with autocast off:
    under bf16 autocast, or TF32, the min would pick a wrong pair."""
    wide = torch.float32 if codes.device.type == "mps" else torch.float64
    with torch.autocast(codes.device.type, enabled=False):
        e = codes.to(wide)
        sq = e.pow(2).sum(1)
        d2 = (sq[:, None] + sq[None, :] - 2.0 * e @ e.t()).clamp_min(_EPS2)
        eye = torch.eye(e.shape[0], dtype=torch.bool, device=e.device)
        return d2.sqrt().masked_fill(eye, float("inf")).float()


def min_code_distance(codes: torch.Tensor) -> torch.Tensor:
    """d_C = min_{i != j} ||e_i - e_j|| of (N,D) codes, fp32 scalar (gradient only to the closest pair)."""
    return pairwise_distances(codes).min()


def mean_code_distance(codes: torch.Tensor) -> torch.Tensor:
    """Average pairwise distance over i != j of (N,D) codes, fp32 scalar (the paper's ablation)."""
    d = pairwise_distances(codes)
    n = d.shape[0]
    return d.masked_fill(torch.isinf(d), 0.0).sum() / (n * (n - 1))


def codebook_regularizer(codes: torch.Tensor, theta: float = 1.0, mode: str = "min") -> torch.Tensor:
    """L_reg = |d - theta| for (N,D) codes; d is the min ("min", the paper) or mean ("mean", its ablation)."""
    distance = {"min": min_code_distance, "mean": mean_code_distance}.get(mode)
    if distance is None:
        raise ValueError(f"unknown codebook regulariser mode {mode!r}; choose min or mean")
    return (distance(codes) - theta).abs()


@torch.no_grad()
def nearest_neighbour_distances(codes: torch.Tensor) -> torch.Tensor:
    """(N,) distance of each code to its nearest other code, fp32."""
    return pairwise_distances(codes).min(1).values
