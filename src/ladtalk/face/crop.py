"""Square face crops out of frames and the paste back into them (hard overwrite or feathered blend), with OpenCV.

Crop boxes are whole-pixel squares that may reach outside the frame: crops fill that area by replicating the
frame's edge pixels (no black bars for a model to learn), and the paste writes back only the part inside.
Rows of NaN mean "no face in this frame": the crop is black and the paste leaves the frame untouched.
"""

from __future__ import annotations

import cv2
import numpy as np

from ladtalk.errors import InputError


def square_crop_boxes(boxes: np.ndarray, frame_size: tuple[int, int], scale: float = 1.0) -> np.ndarray:
    """Boxes (N,4) x1,y1,x2,y2 -> whole-pixel squares (N,4) float of side round(max(w,h)*scale) around the same
    centre (kept inside the frame of size (width, height)); NaN rows stay NaN."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w, h = frame_size
    out = np.full_like(boxes, np.nan)
    ok = np.isfinite(boxes).all(axis=1)
    b = boxes[ok]
    side = np.maximum(np.round(np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) * scale), 1.0)[:, None]
    corner = np.round(np.clip((b[:, :2] + b[:, 2:]) / 2, 0, [w, h]) - side / 2)  # centre kept inside the frame
    out[ok] = np.concatenate([corner, corner + side], axis=1)
    return out


def _int_box(box: np.ndarray) -> tuple[int, int, int, int] | None:
    if not np.isfinite(box).all():
        return None
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    if x2 <= x1 or y2 <= y1:
        raise InputError(f"crop box {tuple(box)} is empty; crop boxes come from square_crop_boxes")
    return x1, y1, x2, y2


def _resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
    shrink = width < img.shape[1] or height < img.shape[0]
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def crop_faces(frames: np.ndarray, crop_boxes: np.ndarray, size: int) -> np.ndarray:
    """Frames uint8 (B,H,W,3) and crop boxes (B,4) -> faces uint8 (B,size,size,3), black for NaN boxes."""
    frames = np.asarray(frames)
    crop_boxes = np.asarray(crop_boxes, dtype=np.float64).reshape(-1, 4)
    if frames.ndim != 4 or len(frames) != len(crop_boxes):
        raise InputError(f"crop_faces needs frames (B,H,W,3) and boxes (B,4), got {frames.shape} and "
                         f"{crop_boxes.shape}")
    h, w = frames.shape[1:3]
    out = np.zeros((len(frames), size, size, frames.shape[3]), np.uint8)
    for i, frame in enumerate(frames):
        box = _int_box(crop_boxes[i])
        if box is None:
            continue
        x1, y1, x2, y2 = box
        rows, cols = np.clip(np.arange(y1, y2), 0, h - 1), np.clip(np.arange(x1, x2), 0, w - 1)  # edge replication
        out[i] = _resize(frame[rows[:, None], cols], size, size)
    return out


def feather_mask(side: int, feather: float = 0.1) -> np.ndarray:
    """Float32 (side,side) mask in [0,1]: 1 inside, a smooth (smoothstep) fall to 0 over the outer `feather`
    fraction of the side, so a pasted face has no visible seam."""
    ramp_px = max(feather * side, 1.0)
    d = np.minimum(np.arange(side), np.arange(side)[::-1]).astype(np.float32) + 0.5
    a = np.clip(d / ramp_px, 0.0, 1.0)
    a = a * a * (3 - 2 * a)
    return np.minimum(a[:, None], a[None, :])


def lower_face_mask(side: int, top: float = 0.45, ramp: float = 0.15, feather: float = 0.1) -> np.ndarray:
    """Float32 (side,side) mask of the part of a face crop that lip sync changes: 0 above `top` of the height, a
    smoothstep up to 1 over the next `ramp`, and feather_mask's fall at the sides and the bottom. Eyes, brows
    and upper cheeks keep the reference frame's own pixels."""
    y = (np.arange(side, dtype=np.float32) + 0.5) / side
    a = np.clip((y - top) / ramp, 0.0, 1.0)
    a = a * a * (3 - 2 * a)
    return np.minimum(feather_mask(side, feather), a[:, None])


PASTE_MODES = ("mouth", "feather", "hard")


def paste_faces(
    frames: np.ndarray, faces: np.ndarray, crop_boxes: np.ndarray, mode: str = "feather", feather: float = 0.1
) -> np.ndarray:
    """Paste faces uint8 (B,S,S,3) into a copy of frames uint8 (B,H,W,3) at crop boxes (B,4): 'hard' overwrites
    the box (the paper), 'feather' blends with feather_mask, 'mouth' only the lower face (lower_face_mask)."""
    def face_in_box(i, box, clipped):
        (x1, y1, x2, y2), (cx1, cy1, cx2, cy2) = box, clipped
        return _resize(np.ascontiguousarray(faces[i]), x2 - x1, y2 - y1)[cy1 - y1:cy2 - y1, cx1 - x1:cx2 - x1]
    return _blend(frames, len(faces), crop_boxes, mode, feather, face_in_box)


def blend_regions(frames: np.ndarray, sources: np.ndarray, crop_boxes: np.ndarray, mode: str = "feather",
                  feather: float = 0.1) -> np.ndarray:
    """A copy of frames uint8 (B,H,W,3) taking `sources` (B,H,W,3), pixel for pixel with no resampling, where
    paste_faces would paste a face at these boxes in this mode (and as much of it as that paste's mask)."""
    def source_in_box(i, box, clipped):
        cx1, cy1, cx2, cy2 = clipped
        return sources[i, cy1:cy2, cx1:cx2]
    return _blend(frames, len(sources), crop_boxes, mode, feather, source_in_box)


def _blend(frames: np.ndarray, count: int, crop_boxes: np.ndarray, mode: str, feather: float, pixels) -> np.ndarray:
    """paste_faces and blend_regions: `pixels(i, box, clipped box)` gives what goes into frame i's clipped box."""
    if mode not in PASTE_MODES:
        raise InputError(f"paste mode {mode!r} is unknown; choose one of {', '.join(PASTE_MODES)}")
    frames = np.array(frames, copy=True)
    crop_boxes = np.asarray(crop_boxes, dtype=np.float64).reshape(-1, 4)
    if len(frames) != count or len(frames) != len(crop_boxes):
        raise InputError(f"pasting needs as many frames, faces and boxes, got {len(frames)}, {count} "
                         f"and {len(crop_boxes)}")
    h, w = frames.shape[1:3]
    masks: dict[int, np.ndarray] = {}
    for i in range(len(frames)):
        box = _int_box(crop_boxes[i])
        if box is None:
            continue
        x1, y1, x2, y2 = box
        cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
        if cx2 <= cx1 or cy2 <= cy1:
            continue
        face = pixels(i, box, (cx1, cy1, cx2, cy2))
        if mode == "hard":
            frames[i, cy1:cy2, cx1:cx2] = face
            continue
        side = max(x2 - x1, y2 - y1)
        if side not in masks:
            masks[side] = lower_face_mask(side, feather=feather) if mode == "mouth" else feather_mask(side, feather)
        m = masks[side][cy1 - y1:cy2 - y1, cx1 - x1:cx2 - x1, None]
        region = frames[i, cy1:cy2, cx1:cx2].astype(np.float32)
        frames[i, cy1:cy2, cx1:cx2] = np.rint(region + m * (face.astype(np.float32) - region)).astype(np.uint8)
    return frames
