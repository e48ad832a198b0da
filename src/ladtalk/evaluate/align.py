"""Reading a prediction and its ground truth, and pairing their frames (the paper's evaluation protocol).

The prediction is resized to the ground truth's size and resampled to its frame rate. Alignment: "sliding" (the
paper's: a window the length of the shorter video slides over the longer and every paired metric is computed at the
offset with the best mean PSNR) or "frames" (frame k with frame k, cut to the shorter length).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from ladtalk.errors import InputError
from ladtalk.io.video import VideoInfo, iter_frames, probe_video
from ladtalk.metrics import image as im

ALIGN_MODES = ("sliding", "frames")


@dataclass
class PairedVideos:
    """Both clips as uint8 (T,H,W,3) frames at the ground truth's size and rate, and their aligned parts."""

    pred: np.ndarray
    gt: np.ndarray
    info_pred: VideoInfo
    info_gt: VideoInfo
    pred_aligned: np.ndarray
    gt_aligned: np.ndarray
    offset: int  # on the longer clip: the ground truth's when the prediction is not longer
    notes: list[str]

    @property
    def offset_applies_to(self) -> str:
        return "gt" if len(self.pred) <= len(self.gt) else "pred"

    @property
    def gt_start(self) -> int:
        """The ground-truth frame that the first aligned frame is."""
        return self.offset if self.offset_applies_to == "gt" else 0


def check_input(path: str | os.PathLike, what: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} video {p} does not exist")
    return p


def _read(path: Path, fps: float | None, size: tuple[int, int] | None, max_frames: int | None) -> np.ndarray:
    """The frames of `path` (resampled to `fps`, resized to `size` (width, height) where given) as (T,H,W,3)."""
    frames = list(iter_frames(path, fps=fps, max_frames=max_frames))
    if not frames:
        raise InputError(f"{path} yielded no frames")
    for i, f in enumerate(frames):
        if size is not None and f.shape[1::-1] != size:
            shrink = f.shape[1] > size[0] or f.shape[0] > size[1]
            frames[i] = cv2.resize(f, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return np.stack(frames)


def read_pair(pred_path: Path, gt_path: Path, max_frames: int | None, mode: str, device: torch.device) -> PairedVideos:
    """Both videos in memory, the prediction at the ground truth's size and frame rate (noted when changed), aligned
    by `mode`: "sliding", else frame by frame (offset 0)."""
    info_p, info_g = probe_video(pred_path), probe_video(gt_path)
    notes = []
    resample = None if abs(info_p.fps - info_g.fps) < 1e-3 else info_g.fps
    if resample:
        notes.append(f"prediction resampled from {info_p.fps:.3f} to {info_g.fps:.3f} fps for paired metrics")
    if (info_p.width, info_p.height) != (info_g.width, info_g.height):
        notes.append(f"prediction resized from {info_p.width}x{info_p.height} to {info_g.width}x{info_g.height}")
    gt = _read(gt_path, None, None, max_frames)
    pred = _read(pred_path, resample, (gt.shape[2], gt.shape[1]), max_frames)
    offset = 0
    if mode == "sliding":
        # the best window mean; +inf (identical windows) counts as best
        offset = int(np.nanargmax(im.sliding_scores(lambda a, b: im.psnr(a, b, device), pred, gt)))
    return PairedVideos(pred, gt, info_p, info_g, *im.align_sequences(pred, gt, offset), offset, notes)
