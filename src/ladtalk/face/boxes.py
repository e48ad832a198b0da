"""Face boxes shared by the detectors: a detection, overlap, NMS and per-frame grouping."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


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


def box_overlap(a: torch.Tensor, b: torch.Tensor, mode: str = "union", offset: float = 0.0) -> torch.Tensor:
    """Pairwise overlap of boxes (...,N,4) and (...,M,4) -> (...,N,M): IoU ('union') or inter/min area ('min').
    `offset` = 1 gives the inclusive-pixel areas (x2 - x1 + 1) of the classic Matlab/Caffe detectors."""
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
    """Greedy NMS within each group (e.g. image index): boxes (N,4), scores (N,), groups (N,) int -> kept indices,
    grouped by group, best score first. Exact without a Python loop over boxes: box i (in score order) is kept iff
    no kept box before it overlaps it by more than `threshold`, a recursion iterated to its unique fixed point."""
    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    order = order[torch.argsort(groups[order], stable=True)]
    _, counts = torch.unique_consecutive(groups[order], return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    kept: list[torch.Tensor] = []
    # Groups are padded to a common length, in chunks of groups small enough for a (G,M,M) overlap tensor.
    per_chunk = max(1, 4_000_000 // int(counts.max()) ** 2)
    for i in range(0, len(counts), per_chunk):
        j = min(i + per_chunk, len(counts))
        m = int(counts[i:j].max())
        pos = torch.arange(m, device=boxes.device)
        cnt = counts[i:j]
        valid = pos[None, :] < cnt[:, None]
        idx = torch.where(valid, starts[i:j, None] + pos[None, :], starts[i:j, None])  # padding repeats a box
        b = boxes[order[idx]]
        suppress = box_overlap(b, b, mode, offset) > threshold
        suppress &= torch.ones(m, m, dtype=torch.bool, device=boxes.device).triu(1)[None]
        keep = valid.clone()  # padding is never kept, so it suppresses nothing
        for _ in range(m + 1):
            new = valid & ~(suppress & keep[:, :, None]).any(1)
            if torch.equal(new, keep):
                break
            keep = new
        kept.append(order[idx[keep]])
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
