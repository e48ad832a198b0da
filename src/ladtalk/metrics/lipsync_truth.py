"""Synthetic lip-sync score: does the generated mouth open when the built-in synthetic identity's truth says so?

The synthetic identity (ladtalk.data.synthetic) knows, per frame, its face box and its true mouth openness in
[0,1]. From generated frames we measure openness as the fraction of the mouth box that is dark mouth interior:
pixels whose luma (BT.601) is below `dark_ratio` times the median luma of the face box (skin), which adapts to
lighting. The score is the Pearson correlation between measured and true openness, at lag 0 and at the best lag
within +-`max_lag` frames (a positive lag means the generated mouth moves later than the truth). It needs no
learned weights, so the demo can report a lip-sync number without SyncNet.

For a real face (self-reenactment, where the truth is the recorded frames), `opening_agreement` measures the
opening the same way on the generated and on the true frames, in the same per-frame mouth box (the identity's
face boxes and the mouth's share of them) against one threshold for the clip, and correlates the two: 1 when the
mouth opens and closes with the truth, about 0 for a mouth that does not move with it. It is relative (how the
opening follows the truth), so unlike LSE it needs no SyncNet weights.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np

from ladtalk.errors import InputError
from ladtalk.metrics.image import box_crop

# Mouth box as fractions of the face box (brows to chin, cheek to cheek) of the synthetic face.
MOUTH_BOX_FRACTIONS = (0.25, 0.60, 0.75, 0.90)


def mouth_boxes_from_faces(face_boxes: np.ndarray, fractions=MOUTH_BOX_FRACTIONS) -> np.ndarray:
    """(T,4) float mouth boxes [x1,y1,x2,y2] pixels from (T,4) face boxes of the synthetic face."""
    f = np.asarray(face_boxes, dtype=np.float64).reshape(-1, 4)
    w, h = f[:, 2] - f[:, 0], f[:, 3] - f[:, 1]
    fx1, fy1, fx2, fy2 = fractions
    return np.stack([f[:, 0] + fx1 * w, f[:, 1] + fy1 * h, f[:, 0] + fx2 * w, f[:, 1] + fy2 * h], 1)


def skin_luma(frames: np.ndarray, face_boxes: np.ndarray) -> np.ndarray:
    """Per-frame median luma (BT.601) of the face box of uint8 (T,H,W,3) RGB frames -> float64 (T,): the skin."""
    return np.array([float(np.median(cv2.cvtColor(np.ascontiguousarray(face), cv2.COLOR_RGB2GRAY)))
                     for face in box_crop(frames, face_boxes)])


def mouth_openness(frames: np.ndarray, face_boxes: np.ndarray, dark_ratio: float = 0.35,
                   fractions=MOUTH_BOX_FRACTIONS, skin: float | None = None) -> np.ndarray:
    """Measured openness float64 (T,) in [0,1]: dark-interior fraction of the mouth box (`fractions` of each face
    box) of uint8 (T,H,W,3) RGB frames, dark meaning below dark_ratio times the skin luma: each frame's own, or
    `skin` for every frame."""
    frames = np.asarray(frames)
    if len(frames) != len(face_boxes):
        raise InputError(f"{len(frames)} frames but {len(face_boxes)} face boxes")
    skins = skin_luma(frames, face_boxes) if skin is None else np.full(len(frames), float(skin))
    mouths = box_crop(frames, mouth_boxes_from_faces(face_boxes, fractions))
    out = np.empty(len(frames))
    for i, mouth in enumerate(mouths):
        luma = cv2.cvtColor(np.ascontiguousarray(mouth), cv2.COLOR_RGB2GRAY)
        out[i] = float(np.mean(luma < dark_ratio * skins[i]))
    return out


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else 0.0


def lag_correlation(measured: np.ndarray, truth: np.ndarray, max_lag: int = 5) -> dict[str, float]:
    """{'pearson': r at lag 0, 'best_lag': frames, 'pearson_best': r there}; lag > 0: measured trails truth."""
    m, t = np.asarray(measured, np.float64), np.asarray(truth, np.float64)
    n = min(len(m), len(t))
    if n < 3:
        raise InputError(f"lip-sync correlation needs at least 3 frames, got {n}")
    m, t = m[:n], t[:n]
    best_lag, best_r = 0, -np.inf
    for lag in range(-max_lag, max_lag + 1):
        a, b = (m[lag:], t[:n - lag]) if lag >= 0 else (m[:n + lag], t[-lag:])
        if len(a) < 3:
            continue
        r = _pearson(a, b)
        if r > best_r:
            best_lag, best_r = lag, r
    return {"pearson": _pearson(m, t), "best_lag": int(best_lag), "pearson_best": float(best_r)}


def read_truth(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(face_boxes (T,4) pixels, mouth_openness (T,) in [0,1]) from a synthetic clip's truth.json (or its folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / "truth.json"
    try:
        truth = json.loads(path.read_text())
        boxes = np.asarray(truth["face_boxes"], np.float64)
        openness = np.asarray(truth["mouth_openness"], np.float64)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"cannot read the synthetic truth file {path} ({e}); write one with `ladtalk synth`") from e
    if boxes.ndim != 2 or boxes.shape[1] != 4 or openness.ndim != 1 or len(boxes) != len(openness):
        raise InputError(f"{path} does not hold per-frame face boxes (T,4) and mouth openness (T,)")
    return boxes, openness


def lipsync_truth_score(frames: np.ndarray, face_boxes: np.ndarray, openness: np.ndarray,
                        max_lag: int = 5) -> dict[str, float]:
    """Agreement of generated uint8 (T,H,W,3) frames' mouth with the true openness (T,): Pearson r and best lag."""
    n = min(len(frames), len(face_boxes), len(openness))
    measured = mouth_openness(frames[:n], np.asarray(face_boxes)[:n])
    out = lag_correlation(measured, np.asarray(openness)[:n], max_lag)
    out["frames"] = int(n)
    return out


def opening_agreement(frames: np.ndarray, truth_frames: np.ndarray, face_boxes: np.ndarray, fractions,
                      max_lag: int = 3, dark_ratio: float = 0.35) -> dict[str, float]:
    """How the mouth opening of generated uint8 (T,H,W,3) frames follows the true frames' (same boxes (T,4), same
    measure, one threshold: the truth's median skin luma over the clip, so that a change elsewhere in the face never
    reads as the mouth moving): {'pearson' at lag 0, 'best_lag' within +-max_lag (> 0: the generated mouth trails),
    'pearson_best', 'frames'}; also the two openness series (T,) as 'measured' and 'truth'."""
    n = min(len(frames), len(truth_frames), len(face_boxes))
    boxes = np.asarray(face_boxes)[:n]
    skin = float(np.median(skin_luma(truth_frames[:n], boxes)))
    measured = mouth_openness(frames[:n], boxes, dark_ratio, fractions, skin)
    truth = mouth_openness(truth_frames[:n], boxes, dark_ratio, fractions, skin)
    out: dict = lag_correlation(measured, truth, max_lag)
    out.update(frames=int(n), measured=measured, truth=truth)
    return out
