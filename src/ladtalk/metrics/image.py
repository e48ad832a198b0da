"""Paired image metrics (PSNR, SSIM, mouth-region PSNR) and the paper's sliding-window alignment.

Conventions match skimage / Wang et al. 2004, as the usual talking-head evaluation scripts:
- PSNR per frame on uint8 RGB, data range 255, MSE over all pixels and channels (identical frames: +inf); a
  video's PSNR is the mean of its frames';
- SSIM per frame and channel, then averaged: `skimage.metrics.structural_similarity(gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=-1)`, i.e. an 11x11 Gaussian window,
  K1 = 0.01, K2 = 0.03, population statistics, mean over the 'valid' region.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ladtalk.errors import InputError

SSIM_SIGMA = 1.5
SSIM_WINDOW = 11
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def luma(frame: np.ndarray) -> np.ndarray:
    """BT.601 luma uint8 (H,W) of a uint8 (H,W,3) RGB frame or crop."""
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def crop(frames: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The whole-pixel box x1,y1,x2,y2 of every frame (T,H,W,C), contiguous."""
    x1, y1, x2, y2 = box
    if x2 <= x1 or y2 <= y1:
        raise InputError(f"box {box} is empty")
    return np.ascontiguousarray(frames[:, y1:y2, x1:x2])


def sample_frames(n: int, count: int) -> np.ndarray:
    """Up to `count` evenly spaced frame indices of n."""
    return np.unique(np.linspace(0, n - 1, min(count, n)).round().astype(int))


def _as_float_images(frames: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 (T,H,W,3) RGB -> float64 (T,3,H,W) in [0,255] on `device`."""
    t = torch.as_tensor(frames)
    if t.ndim != 4 or t.shape[-1] != 3:
        raise InputError(f"expected frames of shape (T,H,W,3), got {tuple(t.shape)}")
    return t.to(device=device, dtype=torch.float64).permute(0, 3, 1, 2)


def check_pair(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor, hw: tuple | None = None) -> None:
    """Frames of one shape; with their height and width `hw`, large enough for SSIM's window."""
    if tuple(a.shape) != tuple(b.shape):
        raise InputError(f"frames to compare differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}; "
                         "resize the prediction to the ground truth first")
    if hw is not None and min(hw) < SSIM_WINDOW:
        raise InputError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {tuple(a.shape)}")


def _batched(frames: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    return frames[None] if frames.ndim == 3 else frames


def mse(pred: np.ndarray | torch.Tensor, gt: np.ndarray | torch.Tensor, device: torch.device | str = "cpu",
        batch_size: int = 16, mask: np.ndarray | torch.Tensor | None = None) -> np.ndarray:
    """Per-frame MSE (T,) in [0,255]^2 of uint8 (T,H,W,3) frames or one (H,W,3); `mask` (T,H,W) of 0/1 limits it
    to those pixels (a frame with none: 0)."""
    check_pair(pred, gt)
    pred, gt = _batched(pred), _batched(gt)
    if mask is not None:
        mask = mask[None] if mask.ndim == 2 else mask
        if tuple(mask.shape) != tuple(pred.shape[:3]):
            raise InputError(f"mask of shape {tuple(mask.shape)} for frames of shape {tuple(pred.shape)}")
    if torch.device(device).type == "cpu" and isinstance(pred, np.ndarray) and isinstance(gt, np.ndarray):
        # exact integer arithmetic, frame by frame (no large float64 temporaries)
        out = np.empty(len(pred))
        mask = mask.cpu().numpy() if isinstance(mask, torch.Tensor) else mask
        for i, (p, g) in enumerate(zip(pred, gt)):
            d = p.astype(np.int32) - g
            if mask is None:
                out[i] = np.einsum("ijk,ijk->", d, d, dtype=np.int64) / d.size
            else:
                w = np.asarray(mask[i], dtype=np.float64)
                out[i] = np.einsum("ijk,ijk,ij->", d, d, w) / max(3 * w.sum(), 1.0)
        return out
    out_t = []
    for s in range(0, len(pred), batch_size):
        a, b = _as_float_images(pred[s:s + batch_size], device), _as_float_images(gt[s:s + batch_size], device)
        se = (a - b) ** 2
        if mask is None:
            out_t.append(se.flatten(1).mean(1).cpu().numpy())
        else:
            w = torch.as_tensor(mask[s:s + batch_size]).to(device=device, dtype=torch.float64)[:, None]
            out_t.append(((se * w).flatten(1).sum(1) / (3 * w.flatten(1).sum(1)).clamp_min(1)).cpu().numpy())
    return np.concatenate(out_t)


def psnr(pred: np.ndarray | torch.Tensor, gt: np.ndarray | torch.Tensor, device: torch.device | str = "cpu",
         mask: np.ndarray | torch.Tensor | None = None) -> np.ndarray:
    """Per-frame PSNR (T,) in dB of uint8 (T,H,W,3) RGB frames or one (H,W,3); `mask` (T,H,W) as `mse`'s."""
    return psnr_from_mse(mse(pred, gt, device, mask=mask))


def psnr_from_mse(mse_values: np.ndarray | float) -> np.ndarray:
    """PSNR in dB of mean squared errors on the [0,255] scale (0 -> +inf); for errors of float images (a band)."""
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(255.0 ** 2 / np.asarray(mse_values, np.float64))


def box_crop(frames: np.ndarray, boxes: np.ndarray | tuple[float, float, float, float]) -> list[np.ndarray]:
    """Crop uint8 (T,H,W,3) frames with one (x1,y1,x2,y2) pixel box or a (T,4) array of boxes (clipped to the image)."""
    frames = np.asarray(frames)
    boxes = np.broadcast_to(np.asarray(boxes, dtype=np.float64), (len(frames), 4))
    h, w = frames.shape[1:3]
    out = []
    for frame, (x1, y1, x2, y2) in zip(frames, boxes):
        xa, ya = max(0, int(math.floor(x1))), max(0, int(math.floor(y1)))
        xb, yb = min(w, int(math.ceil(x2))), min(h, int(math.ceil(y2)))
        if xb <= xa or yb <= ya:
            raise InputError(f"box {(x1, y1, x2, y2)} is empty inside a {w}x{h} frame")
        out.append(frame[ya:yb, xa:xb])
    return out


def mouth_psnr(pred: np.ndarray, gt: np.ndarray, boxes: np.ndarray | tuple[float, float, float, float]) -> np.ndarray:
    """Per-frame PSNR (dB) inside the mouth box(es) (x1,y1,x2,y2 pixels, one or (T,4)) of uint8 (T,H,W,3) -> (T,)."""
    check_pair(pred, gt)
    return np.array([psnr(p, g)[0] for p, g in zip(box_crop(pred, boxes), box_crop(gt, boxes))])


def _gaussian_taps() -> np.ndarray:
    return cv2.getGaussianKernel(SSIM_WINDOW, SSIM_SIGMA, cv2.CV_64F).ravel()


def _ssim_from_moments(mu_a, mu_b, e_aa, e_bb, e_ab, data_range: float):
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    var_a, var_b, cov = e_aa - mu_a ** 2, e_bb - mu_b ** 2, e_ab - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))


def ssim_images(a: torch.Tensor, b: torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    """SSIM (B,) of float (B,C,H,W) images in [0, data_range] (H, W >= 11): the batched torch path, for a GPU."""
    check_pair(a, b, a.shape[-2:])
    c = a.shape[1]
    g = torch.from_numpy(_gaussian_taps()).to(a.device, a.dtype)
    rows, cols = g.view(1, 1, 1, -1).expand(c, 1, 1, -1), g.view(1, 1, -1, 1).expand(c, 1, -1, 1)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(x, rows, groups=c), cols, groups=c)

    ssim_map = _ssim_from_moments(blur(a), blur(b), blur(a * a), blur(b * b), blur(a * b), data_range)
    return ssim_map.flatten(1).mean(1)


def ssim_frame(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """SSIM of one pair of (H,W,C) images (uint8 or float in [0, data_range]); the CPU path (OpenCV filtering)."""
    check_pair(a, b, a.shape[:2])
    k = _gaussian_taps()
    r = SSIM_WINDOW // 2
    x, y = a.astype(np.float64), b.astype(np.float64)

    def blur(z: np.ndarray) -> np.ndarray:
        # A separable filter whose border rows are then cropped: exactly the 'valid' 11x11 window.
        out = cv2.sepFilter2D(z, cv2.CV_64F, k, k, borderType=cv2.BORDER_REFLECT)
        return out[r:-r, r:-r]

    ssim_map = _ssim_from_moments(blur(x), blur(y), blur(x * x), blur(y * y), blur(x * y), data_range)
    return float(ssim_map.mean())


def ssim(pred: np.ndarray | torch.Tensor, gt: np.ndarray | torch.Tensor, device: torch.device | str = "cpu",
         batch_size: int = 16) -> np.ndarray:
    """Per-frame SSIM (T,) of uint8 (T,H,W,3) frames: with OpenCV on a CPU (torch's conv2d is ~20x slower there),
    by `ssim_images` on a GPU; both give the same numbers (to ~1e-12)."""
    check_pair(pred, gt)
    pred, gt = _batched(pred), _batched(gt)
    if torch.device(device).type == "cpu":
        return np.array([ssim_frame(np.asarray(p), np.asarray(g)) for p, g in zip(pred, gt)])
    return np.concatenate([ssim_images(_as_float_images(pred[s:s + batch_size], device),
                                       _as_float_images(gt[s:s + batch_size], device)).cpu().numpy()
                           for s in range(0, len(pred), batch_size)])


def sliding_scores(pair_metric: Callable[[np.ndarray, np.ndarray], np.ndarray], pred: np.ndarray,
                   gt: np.ndarray) -> np.ndarray:
    """Window means (n_offsets,) of a per-frame metric `pair_metric(pred, gt)` -> (T,) for every offset k of the
    shorter sequence over the longer (shorter[i] against longer[i + k])."""
    if len(pred) == 0 or len(gt) == 0:
        raise InputError(f"cannot align empty sequences (pred {len(pred)} frames, gt {len(gt)} frames)")
    pred_short = len(pred) <= len(gt)
    short, long = (pred, gt) if pred_short else (gt, pred)
    n = len(long) - len(short) + 1
    scores = np.empty(n)
    for k in tqdm(range(n), desc="sliding", unit="offset", leave=False, disable=n < 8):
        seg = long[k:k + len(short)]
        scores[k] = float(np.mean(pair_metric(short, seg) if pred_short else pair_metric(seg, short)))
    return scores


def align_sequences(pred: np.ndarray, gt: np.ndarray, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """The aligned (pred, gt) pair of equal length for a sliding offset on the longer one (0: frame by frame)."""
    if len(pred) <= len(gt):
        return pred, gt[offset:offset + len(pred)]
    return pred[offset:offset + len(gt)], gt

