"""The paper's Noise Robustness Upper Bound (its Theorems 3.2/3.3) and the three quantities in it, one function each.

A perturbation of the input with Frobenius norm below NRoUB = (d_C - 2 gamma) / (2 L_E) cannot change any code: a
training latent sits within gamma of its code and moves by less than L_E * NRoUB = d_C / 2 - gamma. Norms are on
images in [-1,1] and on latents after quant_conv (the vectors that are quantized).
- d_C, the closest pair of codes: `code_distance_stats`; exact.
- gamma, the farthest training latent from its nearest code: `nearest_codes` then `gamma_stats`; exact over
  the frames given, a lower estimate when they are subsampled. Test frames can sit farther (`ladtalk analyze`
  reports their gamma beside it).
- L_E: `encoder_lipschitz_bound` (metrics.lipschitz) is a local upper bound beside a power-iteration estimate;
  `jacobian_spectral_norms` and `difference_ratios` are lower estimates. With a lower estimate of L_E,
  `nroub` is an upper estimate, overstating the guaranteed margin.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ladtalk.losses.codebook import nearest_neighbour_distances
from ladtalk.metrics.lipschitz import (
    CachedConvNorm,
    collect_local_stats,
    conv_fft_upper_bound,
    conv_operator_norm,
    encoder_log_lipschitz,
)
from ladtalk.models.sovqae import SOVQAE
from ladtalk.runtime import autocast_to


def code_distance_stats(codes: torch.Tensor) -> dict[str, float]:
    """d_C = min_{i != j} ||e_i - e_j|| of (N,D) codes, with the spread of each code's nearest-neighbour distance and
    the mean code norm (d_C alone: `min_code_distance`)."""
    nn_d = nearest_neighbour_distances(codes.detach()).cpu().numpy()
    return {"d_C": float(nn_d.min()), "nn_distance_median": float(np.median(nn_d)),
            "nn_distance_mean": float(nn_d.mean()), "nn_distance_max": float(nn_d.max()),
            "code_norm_mean": float(codes.detach().float().norm(dim=1).mean())}


@torch.no_grad()
def nearest_codes(model: SOVQAE, images01: torch.Tensor, amp_dtype: torch.dtype | None = None,
                  batch_size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """(min_k ||E(x) - e_k|| in fp32, argmin_k), both flat, for every latent of float images (B,3,H,W) in [0,1]
    (the encoder under `amp_dtype` autocast, None: fp32); gamma's distances are the first."""
    e = model.quantize.embedding.weight.float()
    found = []
    for s in range(0, len(images01), batch_size):
        x = images01[s:s + batch_size] * 2 - 1
        with autocast_to(x.device, amp_dtype):
            z = model.encode_latent(x)
        found.append(torch.cdist(z.float().permute(0, 2, 3, 1).reshape(-1, z.shape[1]), e).min(1))
    return torch.cat([f.values for f in found]), torch.cat([f.indices for f in found])


def gamma_stats(distances: torch.Tensor | np.ndarray) -> dict[str, float]:
    """gamma = max of the latent-to-nearest-code distances (of training images), with percentiles (p50..p99.9)."""
    d = np.asarray(distances.detach().cpu() if isinstance(distances, torch.Tensor) else distances, np.float64)
    return {"gamma": float(d.max()), "count": int(d.size), "mean": float(d.mean()),
            **{f"p{q}": float(np.percentile(d, q)) for q in (50, 90, 99, 99.9)}}


def encoder_lipschitz_bound(model: SOVQAE, images: torch.Tensor, iters: int = 30, seed: int = 0,
                            max_grid: int = 32) -> dict[str, Any]:
    """L_E for images in [-1,1], composed layer by layer (metrics.lipschitz) with the convolutions' FFT upper bounds
    (a bound, local to `images`' GroupNorm and attention statistics) and with their power-iteration estimates."""
    stats = collect_local_stats(model, images)
    gen = torch.Generator().manual_seed(seed)
    bounds = CachedConvNorm(lambda conv, shape, pad: conv_fft_upper_bound(conv, shape, pad, max_grid), stats)
    estimates = CachedConvNorm(lambda conv, shape, pad: conv_operator_norm(conv, shape, iters, gen, pad), stats)
    log_bound = encoder_log_lipschitz(model, bounds)
    log_estimate = encoder_log_lipschitz(model, estimates)
    ratios = [bounds.values[c] / max(estimates.values[c], 1e-30) for c in bounds.values]
    return {"L_E_local_bound": math.exp(log_bound) if log_bound < 700 else float("inf"),
            "log10_L_E_local_bound": log_bound / math.log(10),
            "log10_L_E_power_iteration_estimate": log_estimate / math.log(10),
            "convs": len(bounds.values),
            "conv_bound_over_estimate_min": min(ratios),
            "conv_bound_over_estimate_max": max(ratios),
            "assumptions": "bound: convolutions by the FFT symbol bound (true upper bounds, zero padding and "
                           "stride included); SiLU 1.0998; GroupNorm statistics and attention softmax matrices "
                           f"frozen at their values on {len(images)} training images, so the composition is a "
                           "local bound along the data, not a global one. The power-iteration composition uses "
                           "lower estimates of the convolution norms instead."}


def jacobian_spectral_norms(fn: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, iters: int = 10,
                            seed: int = 0, eps: float = 1e-3) -> torch.Tensor:
    """(B,) largest singular value of the Jacobian of a per-sample map `fn` at each image, by power iteration (a
    lower estimate of L_E). J v by central differences (no double backward: fused attention kernels work)."""
    gen = torch.Generator().manual_seed(seed)
    x0 = images.detach().float()
    v = torch.randn(x0.shape, generator=gen).to(x0.device)
    sigma = torch.zeros(len(x0), device=x0.device)
    for _ in range(iters):
        v = v / v.flatten(1).norm(dim=1).clamp_min(1e-30).view(-1, *([1] * (v.ndim - 1)))  # unit per sample
        with torch.no_grad():
            jv = (fn(x0 + eps * v).float() - fn(x0 - eps * v).float()) / (2 * eps)
        sigma = jv.flatten(1).norm(dim=1)
        x = x0.clone().requires_grad_(True)
        with torch.enable_grad():
            (v,) = torch.autograd.grad(fn(x).float(), x, jv)  # J^T J v
    return sigma.detach()


def difference_ratios(out_clean: torch.Tensor, out_perturbed: torch.Tensor, clean: torch.Tensor,
                      perturbed: torch.Tensor) -> torch.Tensor:
    """(B,) ||out' - out||_F / ||x' - x||_F of a map's outputs for paired inputs (0 where x' == x): with the
    encoder's latents, a lower estimate of L_E along the perturbations that matter."""
    num = (out_perturbed.float() - out_clean.float()).flatten(1).norm(dim=1)
    den = (perturbed.float() - clean.float()).flatten(1).norm(dim=1)
    return torch.where(den > 0, num / den.clamp_min(1e-30), torch.zeros_like(den))


def nroub(d_c: float, gamma: float, lipschitz: float) -> float:
    """NRoUB = (d_C - 2 gamma) / (2 L_E); negative when training latents sit farther than d_C/2 from their codes."""
    return (d_c - 2.0 * gamma) / (2.0 * lipschitz)
