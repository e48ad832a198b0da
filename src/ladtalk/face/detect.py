"""The face-detector contract (Detection, FaceDetector), the factory, batched NMS in torch and a video loop."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from tqdm import tqdm

from ladtalk.errors import InputError


@dataclass
class Detection:
    """One face in one frame: box (x1, y1, x2, y2) in pixels of the frame (x2, y2 exclusive), score in [0, 1],
    landmarks (5, 2) as (x, y) for the eye on the image's left, the other eye, nose tip, left and right mouth
    corner (None if the detector gives none)."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None = None

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


@runtime_checkable
class FaceDetector(Protocol):
    """Anything with a `name` and a batched `detect`: frames uint8 (B,H,W,3) RGB -> faces per frame, best first."""

    name: str

    def detect(self, frames: np.ndarray) -> list[list[Detection]]: ...


def make_detector(spec: str = "mtcnn", device: str | torch.device = "cpu", **kw) -> FaceDetector:
    """'mtcnn' (offline weights from the facenet-pytorch wheel) or 's3fd:PATH' (a user's s3fd.pth) -> a detector."""
    from ladtalk.runtime import resolve_device

    dev = resolve_device(device)
    name, _, arg = spec.partition(":")
    name = name.strip().lower()
    if name == "mtcnn":
        if arg:
            raise InputError(f"detector spec {spec!r}: 'mtcnn' takes no argument; use --detector mtcnn")
        from ladtalk.face.mtcnn import MTCNNDetector

        return MTCNNDetector(device=dev, **kw)
    if name == "s3fd":
        if not arg:
            raise InputError("detector 's3fd' needs the weight file: use --detector s3fd:/path/to/s3fd.pth")
        from ladtalk.face.s3fd import S3FDDetector

        return S3FDDetector.from_file(Path(arg).expanduser(), device=dev, **kw)
    raise InputError(f"unknown face detector {spec!r}; choose 'mtcnn' or 's3fd:PATH'")


def detect_frames(
    detector: FaceDetector, frames: Iterable[np.ndarray], batch_size: int = 16, total: int | None = None
) -> list[list[Detection]]:
    """Run `detector` over a stream of uint8 (H,W,3) RGB frames in batches, with a progress bar; one list per frame."""
    out: list[list[Detection]] = []
    batch: list[np.ndarray] = []
    with tqdm(total=total, desc=f"detect faces ({detector.name})", unit="frame", dynamic_ncols=True) as bar:
        for frame in frames:
            batch.append(frame)
            if len(batch) == batch_size:
                out.extend(detector.detect(np.stack(batch)))
                bar.update(len(batch))
                batch = []
        if batch:
            out.extend(detector.detect(np.stack(batch)))
            bar.update(len(batch))
    return out


def check_frames(frames: np.ndarray) -> np.ndarray:
    """Validate a batch of frames: uint8 (B,H,W,3); a single (H,W,3) frame becomes a batch of one."""
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise InputError(f"frames must be uint8 (B,H,W,3) RGB, got {frames.dtype} {frames.shape}")
    return frames


def box_overlap(a: torch.Tensor, b: torch.Tensor, mode: str = "union", offset: float = 0.0) -> torch.Tensor:
    """Pairwise overlap of boxes (...,N,4) and (...,M,4) -> (...,N,M): IoU ('union') or inter/min area ('min').

    `offset` = 1 gives the inclusive-pixel areas (x2 - x1 + 1) of the classic Matlab/Caffe detectors.
    """
    area_a = (a[..., 2] - a[..., 0] + offset) * (a[..., 3] - a[..., 1] + offset)
    area_b = (b[..., 2] - b[..., 0] + offset) * (b[..., 3] - b[..., 1] + offset)
    lt = torch.maximum(a[..., :, None, :2], b[..., None, :, :2])
    rb = torch.minimum(a[..., :, None, 2:], b[..., None, :, 2:])
    wh = (rb - lt + offset).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    if mode == "min":
        denom = torch.minimum(area_a[..., :, None], area_b[..., None, :])
    else:
        denom = area_a[..., :, None] + area_b[..., None, :] - inter
    return inter / denom.clamp(min=1e-12)


def batched_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    groups: torch.Tensor,
    threshold: float,
    mode: str = "union",
    offset: float = 0.0,
) -> torch.Tensor:
    """Greedy NMS within each group (e.g. image index): boxes (N,4), scores (N,), groups (N,) int -> kept indices.

    Exact greedy result without a Python loop over boxes: box i (in score order) is kept iff no kept box before
    it overlaps it by more than `threshold`; that recursion is solved by iterating it to its unique fixed point.
    Kept indices come out grouped by group, best score first.
    """
    n = boxes.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    order = order[torch.argsort(groups[order], stable=True)]
    g_sorted = groups[order]
    _, counts = torch.unique_consecutive(g_sorted, return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    kept: list[torch.Tensor] = []
    counts_l = counts.tolist()
    # Groups are padded to a common length in chunks so the (G,M,M) overlap tensor stays small.
    i = 0
    while i < len(counts_l):
        m = counts_l[i]
        j = i + 1
        while j < len(counts_l) and (j - i + 1) * max(m, counts_l[j]) ** 2 <= 4_000_000:
            m = max(m, counts_l[j])
            j += 1
        pos = torch.arange(m, device=boxes.device)
        cnt = counts[i:j]
        valid = pos[None, :] < cnt[:, None]
        idx = (starts[i:j, None] + pos[None, :]).clamp(max=n - 1)
        idx = torch.where(valid, idx, starts[i:j, None])
        b = boxes[order[idx]]
        suppress = box_overlap(b, b, mode, offset) > threshold
        suppress &= torch.ones(m, m, dtype=torch.bool, device=boxes.device).triu(1)[None]
        suppress &= valid[:, :, None]
        keep = valid.clone()
        for _ in range(m + 1):
            new = valid & ~(suppress & keep[:, :, None]).any(1)
            if torch.equal(new, keep):
                break
            keep = new
        kept.append(order[idx[keep]])
        i = j
    return torch.cat(kept)


def detections_from_arrays(
    boxes: np.ndarray, scores: np.ndarray, image_idx: np.ndarray, batch: int, landmarks: np.ndarray | None = None
) -> list[list[Detection]]:
    """Group flat detections (K,4) boxes, (K,) scores, (K,) image index [, (K,5,2) landmarks] per frame, best first."""
    out: list[list[Detection]] = [[] for _ in range(batch)]
    for k in np.argsort(-scores, kind="stable"):
        lm = None if landmarks is None else landmarks[k].astype(np.float32)
        out[int(image_idx[k])].append(Detection(tuple(float(v) for v in boxes[k]), float(scores[k]), lm))
    return out
