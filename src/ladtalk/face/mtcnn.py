"""MTCNN (Zhang et al. 2016): the P/R/O-Net cascade, batched over frames, on the facenet-pytorch weight files."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ladtalk.errors import InputError
from ladtalk.face.boxes import Detection, batched_nms, detections_from_arrays
from ladtalk.io.video import check_frames

# Per net: conv stages (in, out, kernel, kernel of the max-pool after it or 0), the dense layer on the flattened map
# (in, out; None for the fully convolutional P-Net) and the head sizes: face logits, box offsets[, landmarks].
_LAYERS = {
    "pnet": ([(3, 10, 3, 2), (10, 16, 3, 0), (16, 32, 3, 0)], None, (2, 4)),
    "rnet": ([(3, 28, 3, 3), (28, 48, 3, 3), (48, 64, 2, 0)], (576, 128), (2, 4)),
    "onet": ([(3, 32, 3, 3), (32, 64, 3, 3), (64, 64, 3, 2), (64, 128, 2, 0)], (1152, 256), (2, 4, 10)),
}


class _Net(nn.Module):
    """One MTCNN net under the weight files' layer names (conv1, prelu1, ..., dense5_1): images or crops
    (B,3,H,W) in [-1,1] -> face prob (B,2[,h,w]), box offsets (B,4[,h,w])[, landmarks (B,10) as x*5, y*5]."""

    def __init__(self, name: str) -> None:
        super().__init__()
        convs, dense, heads = _LAYERS[name]
        self.pools = [pool for *_, pool in convs]
        for i, (cin, cout, k, _) in enumerate(convs, 1):
            setattr(self, f"conv{i}", nn.Conv2d(cin, cout, k))
            setattr(self, f"prelu{i}", nn.PReLU(cout))
        n = len(convs) + 1
        self.dense = dense is not None
        if self.dense:
            setattr(self, f"dense{n}", nn.Linear(*dense))
            setattr(self, f"prelu{n}", nn.PReLU(dense[1]))
            n += 1
        self.heads = [f"{'dense' if self.dense else 'conv'}{n}_{j}" for j in range(1, len(heads) + 1)]
        for head, cout in zip(self.heads, heads):
            setattr(self, head, nn.Linear(dense[1], cout) if self.dense else nn.Conv2d(convs[-1][1], cout, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        for i, pool in enumerate(self.pools, 1):
            x = getattr(self, f"prelu{i}")(getattr(self, f"conv{i}")(x))
            if pool:
                x = F.max_pool2d(x, pool, 2, ceil_mode=True)
        if self.dense:
            n = len(self.pools) + 1
            # The weights come from the Matlab/Caffe release, whose dense layers read feature maps in (W, H, C) order.
            x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)
            x = getattr(self, f"prelu{n}")(getattr(self, f"dense{n}")(x))
        logits, *rest = (getattr(self, head)(x) for head in self.heads)
        return torch.softmax(logits, dim=1), *rest


def load_mtcnn_nets(device: torch.device) -> tuple[_Net, _Net, _Net]:
    """The three nets on `device`, loaded strictly (weights_only) from the facenet-pytorch wheel (never imported)."""
    spec = importlib.util.find_spec("facenet_pytorch")
    hint = "install the weight files with: pip install --no-deps facenet-pytorch==2.6.0"
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"the MTCNN weights are not installed (package facenet-pytorch not found); {hint}")
    folder = Path(spec.submodule_search_locations[0]) / "data"
    missing = [n for n in ("pnet.pt", "rnet.pt", "onet.pt") if not (folder / n).is_file()]
    if missing:
        raise InputError(f"MTCNN weight files {missing} are missing from {folder}; {hint}")
    nets = (_Net("pnet"), _Net("rnet"), _Net("onet"))
    for net, name in zip(nets, _LAYERS):
        net.load_state_dict(torch.load(folder / f"{name}.pt", map_location="cpu", weights_only=True), strict=True)
        # Channels-last: the frames arrive as (B,H,W,3) already, and oneDNN runs these thin convs 2-3x faster so.
        net.eval().requires_grad_(False).to(device, memory_format=torch.channels_last)
    return nets


def _normalise(batch: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (B,H,W,3) -> float (B,3,H,W) in [-1, 1], channels-last in memory."""
    x = torch.from_numpy(batch).to(device).permute(0, 3, 1, 2).float()
    return ((x - 127.5) * 0.0078125).contiguous(memory_format=torch.channels_last)


class _Octaves:
    """The frames at scales 1, 1/2, 1/4, ... made on demand, so a crop is area-resampled from at most twice its
    output size: resampling a 300 px face straight to 24 px would cost 16x more for the same result."""

    def __init__(self, frames: np.ndarray) -> None:
        self.levels = [frames]

    def get(self, k: int) -> np.ndarray:
        while len(self.levels) <= k:
            prev = self.levels[-1]
            h, w = max(prev.shape[1] // 2, 1), max(prev.shape[2] // 2, 1)
            self.levels.append(np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in prev]))
        return self.levels[k]


def _crop_resize(
    octaves: _Octaves, boxes: np.ndarray, image_idx: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (K,4) of frames[image_idx] -> crops (K,size,size,3) uint8 and the boxes actually cropped (K,4), which
    differ from the input by the snapping to whole pixels of the octave used. Zero outside the frame, as in the
    original cascade that the R/O-Nets were trained with."""
    out = np.zeros((len(boxes), size, size, 3), np.uint8)
    used = np.zeros_like(boxes, dtype=np.float64)
    side = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    octave = np.floor(np.log2(np.maximum(side, 1.0) / size)).clip(0, 6).astype(int)
    for k in range(len(boxes)):
        f = 0.5 ** octave[k]
        level = octaves.get(int(octave[k]))
        h, w = level.shape[1:3]
        x1, y1, x2, y2 = (int(round(v)) for v in boxes[k] * f)
        x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)
        used[k] = (x1 / f, y1 / f, x2 / f, y2 / f)
        cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
        if cx2 <= cx1 or cy2 <= cy1:
            continue
        src = cv2.copyMakeBorder(level[image_idx[k], cy1:cy2, cx1:cx2], cy1 - y1, y2 - cy2, cx1 - x1, x2 - cx2,
                                 cv2.BORDER_CONSTANT)
        interp = cv2.INTER_AREA if min(x2 - x1, y2 - y1) > size else cv2.INTER_LINEAR
        out[k] = cv2.resize(src, (size, size), interpolation=interp)
    return out, used


def _regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    wh = np.concatenate([boxes[:, 2:4] - boxes[:, 0:2]] * 2, axis=1)
    return boxes + offsets * wh


def _square(boxes: np.ndarray) -> np.ndarray:
    """Squares with the same centres and side max(w, h)."""
    c = (boxes[:, 0:2] + boxes[:, 2:4]) / 2
    half = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])[:, None] / 2
    return np.concatenate([c - half, c + half], axis=1)


class MTCNNDetector:
    """MTCNN on any device: detect(frames uint8 (B,H,W,3) RGB) -> per frame, faces with 5 landmarks, best first.
    It searches faces down to min_face_fraction of the frame's shorter side (at least 20 px; larger is faster)."""

    name = "mtcnn"
    thresholds = (0.6, 0.7, 0.7)  # P-, R-, O-Net face probabilities
    factor = 0.709  # pyramid scale step

    def __init__(self, device: str | torch.device = "cpu", min_face_fraction: float = 0.15) -> None:
        self.device = torch.device(device)
        self.min_face_fraction = min_face_fraction
        self.pnet, self.rnet, self.onet = load_mtcnn_nets(self.device)

    def min_face_for(self, height: int, width: int) -> float:
        """The smallest face size (pixels) searched for in frames of this size."""
        return max(20.0, self.min_face_fraction * min(height, width))

    def _scales(self, height: int, width: int) -> list[float]:
        scale = 12.0 / self.min_face_for(height, width)
        scales, short = [], min(height, width) * scale
        while short >= 12:
            scales.append(scale)
            scale, short = scale * self.factor, short * self.factor
        return scales

    def detect(self, frames: np.ndarray) -> list[list[Detection]]:
        """Frames uint8 (B,H,W,3) RGB -> per frame, the faces found (box, score, 5 landmarks), best first."""
        if self.device.type != "cpu":
            return self._detect(frames)
        # These nets are too small to gain from a second thread, and an OpenMP team on a busy machine (or beside
        # the video decoder) waits at every barrier: measured 7-10x slower with 2 threads on a loaded 2-core CPU.
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self._detect(frames)
        finally:
            torch.set_num_threads(previous)

    @torch.inference_mode()
    def _detect(self, frames: np.ndarray) -> list[list[Detection]]:
        frames = np.ascontiguousarray(check_frames(frames))
        octaves = _Octaves(frames)
        boxes, scores, idx = self._stage1(frames)
        boxes, scores, idx, _ = self._refine(octaves, boxes, idx, 1)
        boxes, scores, idx, marks = self._refine(octaves, boxes, idx, 2)
        return detections_from_arrays(boxes, scores, idx, frames.shape[0], marks)

    def _nms(self, boxes: np.ndarray, scores: np.ndarray, idx: np.ndarray, thr: float, mode: str = "union"):
        return batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(idx), thr, mode).numpy()

    def _stage1(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        b, h, w = frames.shape[:3]
        all_boxes, all_scores, all_idx = [], [], []
        level = frames
        for scale in self._scales(h, w):
            sh, sw = math.ceil(h * scale), math.ceil(w * scale)
            # Each pyramid level is made from the previous one (cheap), with area averaging against aliasing.
            level = np.stack([cv2.resize(f, (sw, sh), interpolation=cv2.INTER_AREA) for f in level])
            prob, reg = self.pnet(_normalise(level, self.device))
            mask = prob[:, 1] >= self.thresholds[0]
            ii, yy, xx = mask.nonzero(as_tuple=True)
            score = prob[:, 1][mask]
            off = reg.permute(0, 2, 3, 1)[mask]
            # Each P-Net output cell sees a 12x12 window at stride 2 of this pyramid level (whose true scale per
            # axis is sw/w, sh/h after rounding the level's size up).
            level_scale = torch.tensor([sw / w, sh / h] * 2, device=xx.device)
            cell = torch.stack([xx * 2, yy * 2, xx * 2 + 12, yy * 2 + 12], 1).float() / level_scale
            keep = batched_nms(cell, score, ii, 0.5)
            all_boxes.append(torch.cat([cell[keep], off[keep]], 1).cpu().numpy().astype(np.float64))
            all_scores.append(score[keep].cpu().numpy())
            all_idx.append(ii[keep].cpu().numpy())
        if not all_boxes:
            return np.zeros((0, 4)), np.zeros(0, np.float32), np.zeros(0, np.int64)
        cand, scores, idx = np.concatenate(all_boxes), np.concatenate(all_scores), np.concatenate(all_idx)
        keep = self._nms(cand[:, :4], scores, idx, 0.7)
        cand, scores, idx = cand[keep], scores[keep], idx[keep]
        return _square(_regress(cand[:, :4], cand[:, 4:])), scores, idx

    def _run_net(self, net: nn.Module, crops: np.ndarray, chunk: int = 1024) -> list[np.ndarray]:
        outs = [net(_normalise(crops[i:i + chunk], self.device)) for i in range(0, len(crops), chunk)]
        return [torch.cat([o[j] for o in outs]).float().cpu().numpy() for j in range(len(outs[0]))]

    def _refine(self, octaves: _Octaves, boxes: np.ndarray, idx: np.ndarray, stage: int) -> tuple[np.ndarray, ...]:
        """R-Net (stage 1) or O-Net (stage 2, which adds landmarks) on the candidates -> boxes, scores, idx, marks."""
        if len(boxes) == 0:
            return boxes, np.zeros(0, np.float32), idx, np.zeros((0, 5, 2), np.float32)
        net, size = (self.rnet, 24) if stage == 1 else (self.onet, 48)
        crops, boxes = _crop_resize(octaves, boxes, idx, size)
        prob, off, *pts = self._run_net(net, crops)
        ok = prob[:, 1] >= self.thresholds[stage]
        boxes, scores, idx, off = boxes[ok], prob[ok, 1], idx[ok], off[ok]
        if stage == 1:
            keep = self._nms(boxes, scores, idx, 0.7)
            return _square(_regress(boxes[keep], off[keep])), scores[keep], idx[keep], None
        pts = pts[0][ok]
        wh = boxes[:, 2:4] - boxes[:, 0:2]
        marks = np.stack([pts[:, :5] * wh[:, :1] + boxes[:, :1], pts[:, 5:] * wh[:, 1:] + boxes[:, 1:2]], axis=2)
        boxes = _regress(boxes, off)
        keep = self._nms(boxes, scores, idx, 0.7, mode="min")
        return boxes[keep], scores[keep], idx[keep], marks[keep]
