"""Lip sync without learned weights: does the generated mouth open when the truth's does?

The score is the Pearson correlation of the measured openness (`mouth_openness`, the skin luma adapts it to the
lighting) with the true one (`lag_correlation`): the synthetic identity's recorded openness, or for a real face the
opening measured the same way on the true frames (`opening_series`). 1 when the mouth opens and closes with the
truth, about 0 for one that does not.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ladtalk.errors import InputError
from ladtalk.metrics.image import box_crop, luma

# Mouth box as fractions of the face box (brows to chin, cheek to cheek) of the synthetic face.
MOUTH_BOX_FRACTIONS = (0.25, 0.60, 0.75, 0.90)


def mouth_boxes_from_faces(face_boxes: np.ndarray, fractions=MOUTH_BOX_FRACTIONS) -> np.ndarray:
    """(T,4) float mouth boxes [x1,y1,x2,y2] pixels from (T,4) face boxes of the synthetic face."""
    f = np.asarray(face_boxes, dtype=np.float64).reshape(-1, 4)
    return np.tile(f[:, :2], 2) + np.asarray(fractions) * np.tile(f[:, 2:] - f[:, :2], 2)


def skin_luma(frames: np.ndarray, face_boxes: np.ndarray) -> np.ndarray:
    """Per-frame median luma (BT.601) of the face box of uint8 (T,H,W,3) RGB frames -> float64 (T,): the skin."""
    return np.array([float(np.median(luma(face))) for face in box_crop(frames, face_boxes)])


def mouth_openness(frames: np.ndarray, face_boxes: np.ndarray, dark_ratio: float = 0.35,
                   fractions=MOUTH_BOX_FRACTIONS, skin: float | None = None) -> np.ndarray:
    """Openness (T,) in [0,1] of uint8 (T,H,W,3) RGB frames: the dark share of the mouth box (`fractions` of each
    face box), dark meaning below dark_ratio times the skin luma (each frame's own, or `skin` for every frame)."""
    if len(frames) != len(face_boxes):
        raise InputError(f"{len(frames)} frames but {len(face_boxes)} face boxes")
    skins = skin_luma(frames, face_boxes) if skin is None else np.full(len(frames), float(skin))
    mouths = box_crop(frames, mouth_boxes_from_faces(face_boxes, fractions))
    return np.array([float(np.mean(luma(mouth) < dark_ratio * level)) for mouth, level in zip(mouths, skins)])


def pearson(a: np.ndarray, b: np.ndarray, still: float = 0.0) -> float:
    """Pearson r of two series; `still` where either is constant (by default 0: a still mouth does not agree)."""
    return float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else still


def lag_correlation(measured: np.ndarray, truth: np.ndarray, max_lag: int = 5) -> dict[str, float]:
    """{'pearson': r at lag 0, 'best_lag': frames, 'pearson_best': r there}; lag > 0: measured trails truth."""
    m, t = np.asarray(measured, np.float64), np.asarray(truth, np.float64)
    n = min(len(m), len(t))
    if n < 3:
        raise InputError(f"lip-sync correlation needs at least 3 frames, got {n}")
    m, t = m[:n], t[:n]
    lags = [lag for lag in range(-max_lag, max_lag + 1) if n - abs(lag) >= 3]
    # measured[i + lag] against truth[i]
    rs = [pearson(m[max(lag, 0):n + min(lag, 0)], t[max(-lag, 0):n - max(lag, 0)]) for lag in lags]
    best = int(np.argmax(rs))  # the first of equals, as the lags run from -max_lag
    return {"pearson": pearson(m, t), "best_lag": lags[best], "pearson_best": float(rs[best])}


def read_truth(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(face_boxes (T,4) pixels, mouth_openness (T,) in [0,1]) from a synthetic clip's truth.json."""
    try:
        truth = json.loads(Path(path).read_text())
        boxes = np.asarray(truth["face_boxes"], np.float64)
        openness = np.asarray(truth["mouth_openness"], np.float64)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"cannot read the synthetic truth file {path} ({e}); write one with `ladtalk synth`") from e
    if boxes.ndim != 2 or boxes.shape[1] != 4 or openness.ndim != 1 or len(boxes) != len(openness):
        raise InputError(f"{path} does not hold per-frame face boxes (T,4) and mouth openness (T,)")
    return boxes, openness


def opening_series(frames: np.ndarray, truth_frames: np.ndarray, face_boxes: np.ndarray,
                   fractions) -> tuple[np.ndarray, np.ndarray]:
    """The mouth opening (T,) of generated uint8 (T,H,W,3) frames and of the true frames, in the same boxes (T,4).
    One threshold, the truth's median skin luma over the clip, so that a change elsewhere in the face never reads as
    the mouth moving."""
    n = min(len(frames), len(truth_frames), len(face_boxes))
    boxes = np.asarray(face_boxes)[:n]
    skin = float(np.median(skin_luma(truth_frames[:n], boxes)))
    return (mouth_openness(frames[:n], boxes, fractions=fractions, skin=skin),
            mouth_openness(truth_frames[:n], boxes, fractions=fractions, skin=skin))
