"""Temporal stability of a generated video, measured against the ground truth's own motion (lower is better).

Both measures use OpenCV's DIS optical flow (preset MEDIUM, on BT.601 luma) and need no learned weights:
- **Flow-warping error** E_warp (Lai et al., ECCV 2018): frame t+1 warped back onto frame t with the *ground
  truth's* flow; the RGB-summed squared difference (frames in [0,1]) averaged over the pixels visible in both
  frames (forward-backward consistency, Sundaram et al. 2010). Flicker raises it, true motion does not; the truth's
  own E_warp is its floor. A blurred or frozen video also scores low, so read it with PSNR/LPIPS.
  The **own-flow** variant warps with the prediction's own flow and visibility: its flicker whatever its motion.
- **tOF** (Chu et al., TecoGAN, 2020): mean |flow(pred) - flow(gt)| of consecutive frames, pixels per frame; it
  penalises both jitter and missing motion (a frozen mouth).
Why: the paper claims temporal consistency without measuring it; these are the usual measures.
"""

from __future__ import annotations

import cv2
import numpy as np
from tqdm import tqdm

from ladtalk.errors import InputError
from ladtalk.metrics.image import check_pair, luma


def _flow_engine():
    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)


def optical_flow(frame_a: np.ndarray, frame_b: np.ndarray, engine=None) -> np.ndarray:
    """DIS flow from uint8 (H,W,3) RGB frame a to b -> float32 (H,W,2) with a(x) ~ b(x + flow(x))."""
    engine = engine or _flow_engine()
    return engine.calc(luma(frame_a), luma(frame_b), None)


def _sample(image: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """image(x + flow(x)) with bilinear sampling, and a mask of positions that land inside the image."""
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx, my = gx + flow[..., 0], gy + flow[..., 1]
    warped = cv2.remap(image, mx, my, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    return warped, inside


def warp_error(frame_t: np.ndarray, frame_next: np.ndarray, forward: np.ndarray, mask: np.ndarray) -> float:
    """E_warp of one pair: masked mean over pixels of the RGB-summed squared difference (frames in [0,1])."""
    warped, _ = _sample(frame_next.astype(np.float32) / 255.0, forward)
    err = np.sum((frame_t.astype(np.float32) / 255.0 - warped) ** 2, axis=-1)
    n = int(mask.sum())
    return float(err[mask].sum() / n) if n else 0.0


def flow_and_visibility(frame_a: np.ndarray, frame_b: np.ndarray, engine=None) -> tuple[np.ndarray, np.ndarray]:
    """(forward flow, visibility mask) from uint8 (H,W,3) RGB frame a to b; the mask (H,W) holds the pixels of a
    whose flow to b is forward-backward consistent (not occluded, inside)."""
    forward = optical_flow(frame_a, frame_b, engine)
    back_at_target, inside = _sample(optical_flow(frame_b, frame_a, engine), forward)
    lhs = np.sum((forward + back_at_target) ** 2, axis=-1)
    rhs = 0.01 * (np.sum(forward ** 2, axis=-1) + np.sum(back_at_target ** 2, axis=-1)) + 0.5
    return forward, (lhs < rhs) & inside


def truth_motion(gt: np.ndarray, engine=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(forward flow, visibility mask) of each consecutive pair of the truth's uint8 (T,H,W,3) frames."""
    return [flow_and_visibility(gt[t], gt[t + 1], engine) for t in range(len(gt) - 1)]


def temporal_scores(pred: np.ndarray, gt: np.ndarray, motion: list | None = None,
                    show_progress: bool = True) -> dict[str, np.ndarray]:
    """Per-frame-pair series (T-1,) of aligned uint8 (T,H,W,3) RGB sequences, lower is better: "warp_error" (the
    prediction with the truth's flow), "own_flow_warp_error", "tof" (pixels) and "warp_error_truth" (the truth's
    own E_warp, the floor); `motion`: the truth's truth_motion, where computed already."""
    check_pair(pred, gt)
    if len(pred) < 2:
        raise InputError("temporal metrics need at least two frames")
    engine = _flow_engine()
    if motion is None:
        motion = truth_motion(gt, engine)
    rows = []
    for t, (fwd, mask) in enumerate(tqdm(motion, desc="temporal", unit="pair", leave=False, disable=not show_progress)):
        own_fwd, own_mask = flow_and_visibility(pred[t], pred[t + 1], engine)
        rows.append((warp_error(pred[t], pred[t + 1], fwd, mask), warp_error(pred[t], pred[t + 1], own_fwd, own_mask),
                     float(np.mean(np.abs(own_fwd - fwd))), warp_error(gt[t], gt[t + 1], fwd, mask)))
    return dict(zip(("warp_error", "own_flow_warp_error", "tof", "warp_error_truth"), map(np.array, zip(*rows))))
