"""The face crops syncnet_python scores for real videos (run_pipeline.py `crop_video`), which the published
LSE-C / LSE-D numbers come from, instead of whole frames resized to 224.

Per frame of a face track: half side s (of the larger box side) and centre x, y, each median-filtered over 13 frames
(scipy.signal.medfilt, zero-padded at the ends as the original). The frame is padded with value 110 and cropped to
rows [y - s, y + s (1 + 2 c)), columns [x - s (1 + c), x + s (1 + c)) with c = crop_scale = 0.4: a square of side
2.8 s reaching further below the face centre than above (mouth and chin), resized to 224x224 (bilinear).
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.signal import medfilt

from ladtalk.errors import InputError
from ladtalk.face.track import fill_gaps, track_faces
from ladtalk.metrics.sync import SYNC_FPS, SYNC_SAMPLE_RATE, lse_scores

CROP_SCALE = 0.4
PAD_VALUE = 110
MEDIAN_KERNEL = 13
SYNC_CROP_SIZE = 224


def syncnet_track(boxes: np.ndarray, kernel: int = MEDIAN_KERNEL) -> np.ndarray:
    """Face boxes (N,4) x1,y1,x2,y2 of one track (no NaN) -> (N,3) float64 (centre x, centre y, half side s),
    each median-filtered over `kernel` frames as syncnet_python does."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(boxes) == 0 or not np.isfinite(boxes).all():
        raise InputError("the face track for LSE must have a finite box on every frame")
    s = np.maximum(boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]) / 2
    x, y = (boxes[:, :2] + boxes[:, 2:]).T / 2
    # syncnet_python keeps only tracks of over 100 frames; on a shorter run the kernel shrinks to fit, so the zero
    # padding never outvotes the boxes
    k = min(kernel, len(boxes) if len(boxes) % 2 else len(boxes) - 1)
    return np.stack([medfilt(v, kernel_size=k) for v in (x, y, s)], axis=1)


def syncnet_face_crops(frames: np.ndarray, track: np.ndarray, crop_scale: float = CROP_SCALE,
                       size: int = SYNC_CROP_SIZE) -> np.ndarray:
    """Frames uint8 (T,H,W,3) and their syncnet_track rows (T,3) -> face crops uint8 (T,size,size,3), same
    channel order as the frames."""
    if len(frames) != len(track):
        raise InputError(f"{len(frames)} frames but {len(track)} track rows")
    out = np.empty((len(frames), size, size, frames.shape[-1]), np.uint8)
    for i, (frame, (x, y, s)) in enumerate(zip(frames, track)):
        pad = int(s * (1 + 2 * crop_scale))
        padded = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
        my, mx = y + pad, x + pad
        face = padded[int(my - s):int(my + s * (1 + 2 * crop_scale)),
                      int(mx - s * (1 + crop_scale)):int(mx + s * (1 + crop_scale))]
        if face.size == 0:
            raise InputError(f"the face box of frame {i} is empty (half side {s:.1f} px); LSE needs a visible face")
        out[i] = cv2.resize(np.ascontiguousarray(face), (size, size))
    return out


def longest_face_run(has_face: np.ndarray, hint: str = "") -> tuple[int, int]:
    """(start, stop) of the longest run of consecutive True in (N,) bool; InputError unless it is over 5 frames long
    (LSE's window), `hint` appended to the message."""
    runs = np.flatnonzero(np.diff(np.concatenate([[0], np.asarray(has_face, np.int8), [0]]))).reshape(-1, 2)
    start, stop = (int(v) for v in runs[np.argmax(runs[:, 1] - runs[:, 0])]) if len(runs) else (0, 0)
    if stop - start <= 5:
        raise InputError(f"LSE needs a face on more than 5 consecutive frames; the longest run has {stop - start}"
                         + hint)
    return start, stop


def lse_face_input(frames: np.ndarray, audio: np.ndarray, detector) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """What syncnet_python scores of a real video, uint8 (T,H,W,3) RGB at 25 fps with mono audio: (face crops
    (n,224,224,3), the audio from the run's first frame, (start, stop)) of the main face track's longest run with a
    face (gaps of up to 5 frames bridged), as syncnet_python scores one track at a time."""
    dets = [d for s in range(0, len(frames), 16) for d in detector.detect(frames[s:s + 16])]
    face_track = track_faces(dets, frame_size=frames.shape[2:0:-1], pads=(0, 0, 0, 0))  # (width, height)
    start, stop = longest_face_run(face_track.has_face, " (use --lse-crop frame for face-centred videos without a "
                                   "detectable face)")
    raw = fill_gaps(face_track.raw_boxes, 5)
    crops = syncnet_face_crops(frames[start:stop], syncnet_track(raw[start:stop]))
    return crops, audio[int(round(start * SYNC_SAMPLE_RATE / SYNC_FPS)):], (start, stop)


def lse_on_face_track(net, frames: np.ndarray, fps: float, audio: np.ndarray, face_boxes: np.ndarray,
                      device="cpu") -> dict[str, float | int]:
    """{"lse_d", "lse_c", "lse_av_offset_frames", "lse_frames", "ci95"} on syncnet_python's face crops of uint8
    (T,H,W,3) RGB frames at `fps` with known face boxes (T,4) (NaN: no face) and 16 kHz mono audio in [-1,1]: the
    nearest frames at 25 fps (as its -r 25 re-encode), the longest run with a face."""
    n25 = int(len(frames) * SYNC_FPS / fps)
    idx = np.minimum(np.round(np.arange(n25) * fps / SYNC_FPS).astype(int), len(frames) - 1)
    boxes = np.asarray(face_boxes, np.float64)[idx]
    start, stop = longest_face_run(np.isfinite(boxes).all(1))
    crops = syncnet_face_crops(frames[idx[start:stop]], syncnet_track(boxes[start:stop]))
    s = lse_scores(net, crops, audio[int(round(start * SYNC_SAMPLE_RATE / SYNC_FPS)):], device=device)
    return {"lse_d": float(s.lse_d), "lse_c": float(s.lse_c), "lse_av_offset_frames": int(s.offset),
            "lse_frames": int(stop - start), "ci95": dict(s.ci95)}
