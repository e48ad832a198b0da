"""The official Wav2Lip inference geometry: which part of each frame the generator sees and where its face goes.

Step by step as the official `inference.py` does it (truncations and in-place smoothing included), so that users'
`wav2lip.pth` / `wav2lip_gan.pth` get exactly the inputs they were made for. The SOVQAE keeps its own square crops
(face/crop.py), cut from the same face track.
"""

from __future__ import annotations

import cv2
import numpy as np

from ladtalk.errors import InputError
from ladtalk.face import DEFAULT_PADS
from ladtalk.face.track import valid_runs

OFFICIAL_SMOOTH_WINDOW = 5  # get_smoothened_boxes(boxes, T=5)
OFFICIAL_INPUT_SIZE = 96


def smooth_forward(boxes: np.ndarray, window: int = OFFICIAL_SMOOTH_WINDOW) -> np.ndarray:
    """The official get_smoothened_boxes on int boxes (N,4) within each run of rows that are not -1: in place on
    ints as the original, so means truncate and the last frames' windows include rows already smoothed."""
    boxes = np.array(boxes, dtype=np.int64, copy=True)
    for t, end in valid_runs((boxes >= 0).all(axis=1)):
        run = boxes[t:end]  # a view: assignments below change `boxes`, as in the original
        for i in range(len(run)):
            win = run[len(run) - window:] if i + window > len(run) else run[i:i + window]
            run[i] = np.mean(win, axis=0)
    return boxes


def official_boxes(rects: np.ndarray, frame_size: tuple[int, int],
                   pads: tuple[int, int, int, int] = DEFAULT_PADS) -> np.ndarray:
    """Detector rectangles (N,4) x1,y1,x2,y2 (float or int; NaN rows = no face) -> the official int64 boxes (N,4)
    x1,y1,x2,y2: padded and clamped to the frame of size (width, height) as the official face_detect does, then
    smoothed (smooth_forward); NaN rows become -1."""
    w, h = frame_size
    top, bottom, left, right = (int(p) for p in pads)
    rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
    ok = np.isfinite(rects).all(axis=1)
    out = np.full(rects.shape, -1, dtype=np.int64)
    r = np.clip(rects[ok], 0, None).astype(np.int64)  # the official detector: np.clip(d, 0, None), map(int, ...)
    out[ok] = np.stack([np.maximum(0, r[:, 0] - left), np.maximum(0, r[:, 1] - top),
                        np.minimum(w, r[:, 2] + right), np.minimum(h, r[:, 3] + bottom)], axis=1)
    return smooth_forward(out)


def _box(box: np.ndarray) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = (int(v) for v in box)
    if x1 < 0 or x2 <= x1 or y2 <= y1:
        raise InputError(f"Wav2Lip box {(x1, y1, x2, y2)} is empty or missing; boxes come from official_boxes")
    return x1, y1, x2, y2


def official_inputs(frames: np.ndarray, boxes: np.ndarray, size: int = OFFICIAL_INPUT_SIZE) -> np.ndarray:
    """Frames uint8 (B,H,W,3) and official boxes (B,4) -> faces uint8 (B,size,size,3): each box stretched to
    size x size with cv2's bilinear resize, exactly as the official datagen (channel order is kept)."""
    out = np.empty((len(frames), size, size, frames.shape[-1]), np.uint8)
    for i, (frame, box) in enumerate(zip(frames, np.asarray(boxes).reshape(-1, 4))):
        x1, y1, x2, y2 = _box(box)
        out[i] = cv2.resize(np.ascontiguousarray(frame[y1:y2, x1:x2]), (size, size))
    return out


def official_outputs_to_uint8(images: np.ndarray) -> np.ndarray:
    """Generator output float (B,H,W,3) in [0,1] -> uint8 as the official `(pred * 255).astype(np.uint8)`
    (truncation, not rounding)."""
    return (np.asarray(images, dtype=np.float32) * 255.0).astype(np.uint8)


def official_paste(frames: np.ndarray, faces: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Faces uint8 (B,s,s,3) resized (bilinear) to each official box (B,4) overwrite a copy of frames uint8
    (B,H,W,3): the official hard paste."""
    frames = np.array(frames, copy=True)
    for i, box in enumerate(np.asarray(boxes).reshape(-1, 4)):
        x1, y1, x2, y2 = _box(box)
        frames[i, y1:y2, x1:x2] = cv2.resize(np.ascontiguousarray(faces[i]), (x2 - x1, y2 - y1))
    return frames
