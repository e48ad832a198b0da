"""Frechet Inception Distance (Heusel et al. 2017) with the standard pytorch-fid conventions.

Features: the 2048-d pool3 output of the FID Inception-v3 on RGB images resized to 299x299 as pytorch-fid does
(bilinear, align_corners=False, no antialias) and scaled to [-1, 1]; mean and unbiased covariance; sqrtm by scipy
in float64, with eps*I added to both covariances when the product is singular, as pytorch-fid. The 2048x2048 sqrtm
is the slow step on a CPU (about a minute on 2 busy cores). The weights file is never downloaded.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg
from tqdm import tqdm

from ladtalk.errors import CheckpointError, InputError
from ladtalk.models.inception import FIDInceptionV3
from ladtalk.weights import find_weight, load_torch_weights, where_looked

INCEPTION_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_BYTES = 95_628_359
INCEPTION_ENV = "LADTALK_INCEPTION"
FID_SIZE = 299


def load_fid_inception(path: str | os.PathLike | None = None) -> FIDInceptionV3:
    """FIDInceptionV3 in eval mode with the released weights from `path`, $LADTALK_INCEPTION or the torch hub cache
    (strict except BatchNorm step counters); InputError if the file is absent."""
    file = find_weight("FID Inception weights", explicit_path=path, env_var=INCEPTION_ENV,
                       hub_filename=INCEPTION_FILENAME)
    if file is None:
        raise InputError(
            where_looked(INCEPTION_FILENAME, env_var=INCEPTION_ENV, hub_filename=INCEPTION_FILENAME)
            + f". FID needs this file ({INCEPTION_BYTES:,} bytes, the pytorch-fid release 'fid_weights'); "
            "copy it into the torch hub cache or pass --inception PATH.")
    state = load_torch_weights(file)
    model = FIDInceptionV3()
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # tensors of another shape
        raise CheckpointError(f"{file} is not the FID Inception state dict: {e}") from e
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise CheckpointError(
            f"{file} is not the FID Inception state dict: missing {missing[:5]} ({len(missing)}), "
            f"unexpected {unexpected[:5]} ({len(unexpected)}); expected {INCEPTION_FILENAME}")
    return model.eval().requires_grad_(False)


def fid_input(frames: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 (B,H,W,3) RGB frames -> float32 (B,3,299,299) in [-1,1] (bilinear resize, pytorch-fid style)."""
    x = torch.as_tensor(np.asarray(frames)).to(device).permute(0, 3, 1, 2).float() / 255.0
    if x.shape[-2:] != (FID_SIZE, FID_SIZE):
        x = F.interpolate(x, size=(FID_SIZE, FID_SIZE), mode="bilinear", align_corners=False)
    return 2.0 * x - 1.0


@torch.no_grad()
def extract_features(net: Callable[[torch.Tensor], torch.Tensor], frames: np.ndarray | Iterable[np.ndarray],
                     batch_size: int = 32, device: torch.device | str = "cpu") -> np.ndarray:
    """Features (N,D) float64 of uint8 (N,H,W,3) RGB frames (array or iterable of frames) through `net`."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or len(frames) == 0:
        raise InputError(f"FID needs a non-empty (N,H,W,3) stack of frames, got shape {frames.shape}")
    feats = []
    for s in tqdm(range(0, len(frames), batch_size), desc="FID features", unit="batch", leave=False):
        x = fid_input(frames[s:s + batch_size], device)
        feats.append(net(x).double().cpu().numpy().reshape(len(x), -1))
    return np.concatenate(feats)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Frechet distance between Gaussians N(mu1,S1), N(mu2,S2): ||mu1-mu2||^2 + Tr(S1+S2-2 sqrtm(S1 S2))."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape:
        raise InputError(f"statistics differ in dimension: {mu1.shape} vs {mu2.shape}")
    diff = mu1 - mu2
    with warnings.catch_warnings():
        # scipy warns on singular products (always the case with fewer samples than dimensions).
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(s1 @ s2)
        if not np.isfinite(covmean).all():
            offset = np.eye(s1.shape[0]) * eps
            covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ArithmeticError(f"sqrtm has a large imaginary part {np.max(np.abs(covmean.imag)):.3g}")
        covmean = covmean.real
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def fid_from_features(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FID between two feature sets (Na,D) and (Nb,D), N >= 2: the distance of their means and unbiased covariances."""
    stats = []
    for features in (np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)):
        if features.ndim != 2 or len(features) < 2:
            raise InputError(f"need at least two feature vectors for a covariance, got shape {features.shape}")
        stats += [features.mean(0), np.cov(features, rowvar=False)]
    return frechet_distance(*stats)

