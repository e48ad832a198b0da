"""Synthetic lip-sync score: measured mouth openness follows the truth, and a delayed mouth shows its lag."""

import numpy as np
import pytest
from _lipsync_fake import render_frames

from ladtalk.metrics.lipsync_truth import lag_correlation, mouth_openness, opening_series
from ladtalk.metrics.scoring import opening_figures


def test_lag_correlation_finds_a_known_delay():
    rng = np.random.default_rng(0)
    truth = np.convolve(rng.random(60), np.ones(4) / 4, mode="same")
    assert lag_correlation(truth, truth)["pearson"] == pytest.approx(1.0)
    delayed = np.concatenate([truth[:1].repeat(3), truth[:-3]])       # the mouth moves 3 frames late
    r = lag_correlation(delayed, truth, max_lag=5)
    assert r["best_lag"] == 3 and r["pearson_best"] > 0.99 and r["pearson"] < r["pearson_best"]


def test_dark_interior_fraction_on_drawn_mouths():
    frames = np.full((4, 100, 100, 3), 200, np.uint8)
    boxes = np.tile([[20.0, 20.0, 80.0, 80.0]], (4, 1))               # mouth box: x 35..65, y 56..74
    for i, h in enumerate((0, 3, 6, 9)):
        frames[i, 60:60 + h, 40:60] = 20
    m = mouth_openness(frames, boxes)
    assert m[0] == 0 and np.all(np.diff(m) > 0)


def test_score_on_the_synthetic_face():
    t = np.arange(30)
    openness = np.clip(0.5 + 0.5 * np.sin(t * 0.6), 0, 1)
    frames, boxes = render_frames(openness, size=96, seed=0)
    s = lag_correlation(mouth_openness(frames, boxes), openness)  # as `ladtalk evaluate` scores a synthetic clip
    assert s["pearson"] > 0.9 and s["best_lag"] == 0
    late = np.concatenate([frames[:1].repeat(2, 0), frames[:-2]])
    s_late = lag_correlation(mouth_openness(late, boxes), openness)
    assert s_late["best_lag"] == 2 and s_late["pearson"] < s["pearson"]


def _frozen_mouth(frames: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Every frame with the first frame's mouth region (MOUTH_IN_CROP of its face box (T,4)): a mouth that never
    moves."""
    import cv2

    from ladtalk.metrics.lipsync_truth import mouth_boxes_from_faces
    from ladtalk.reenact import MOUTH_IN_CROP

    mouths = mouth_boxes_from_faces(boxes, MOUTH_IN_CROP)
    cut = [(*np.floor(m[:2]).astype(int), *np.ceil(m[2:]).astype(int)) for m in mouths]  # as box_crop cuts them
    x1, y1, x2, y2 = cut[0]
    first = frames[0, y1:y2, x1:x2]
    out = frames.copy()
    for f, (x1, y1, x2, y2) in zip(out, cut):
        f[y1:y2, x1:x2] = cv2.resize(first, (x2 - x1, y2 - y1), interpolation=cv2.INTER_NEAREST)
    return out


def test_opening_agreement_on_a_real_face(may_video):
    """The May clip's own mouth against itself, a copy 2 frames early and a frozen mouth (one face box for the
    clip: MTCNN's median box, squared as `prepare` squares it)."""
    from ladtalk.face.crop import square_crop_boxes
    from ladtalk.face.detect import make_detector
    from ladtalk.io.video import iter_frames
    from ladtalk.reenact import MOUTH_IN_CROP

    frames = np.stack(list(iter_frames(may_video, max_frames=100)))
    found = make_detector("mtcnn", device="cpu").detect(frames[::25])
    box = square_crop_boxes(np.median([d[0].box for d in found], 0)[None], frames.shape[2:0:-1])[0]
    boxes = np.repeat(box[None], len(frames), 0)
    measured, truth = opening_series(frames, frames, boxes, MOUTH_IN_CROP)
    same = opening_figures(measured, truth)  # reenact's lip-sync figures
    assert same["lipsync_r"] == pytest.approx(1.0) and same["lipsync_best_lag_frames"] == 0 and truth.std() > 0
    early = np.concatenate([frames[2:], frames[-1:].repeat(2, 0)])  # the generated mouth 2 frames ahead
    shifted = opening_figures(*opening_series(early, frames, boxes, MOUTH_IN_CROP))
    assert shifted["lipsync_best_lag_frames"] == -2 and shifted["lipsync_r_best"] > 0.99 and shifted["lipsync_r"] < 0.9
    frozen = opening_figures(*opening_series(_frozen_mouth(frames, boxes), frames, boxes, MOUTH_IN_CROP))
    assert abs(frozen["lipsync_r"]) < 0.05


def test_opening_agreement_on_synthetic_frames():
    from ladtalk.reenact import MOUTH_IN_CROP

    openness = np.clip(0.5 + 0.5 * np.sin(np.arange(40) * 0.5), 0, 1)
    frames, jaw_boxes = render_frames(openness, size=96, seed=0)
    # the render's face box follows the jaw; a face track (reenact's boxes) does not follow the generated mouth
    boxes = np.repeat(np.median(jaw_boxes, 0)[None], len(frames), 0)
    measured, truth = opening_series(frames, frames, boxes, MOUTH_IN_CROP)
    assert opening_figures(measured, truth)["lipsync_r"] == pytest.approx(1.0)
    assert np.corrcoef(truth, openness)[0, 1] > 0.8
    late = np.concatenate([frames[:1].repeat(3, 0), frames[:-3]])
    assert opening_figures(*opening_series(late, frames, boxes, MOUTH_IN_CROP))["lipsync_best_lag_frames"] == 3
    frozen = opening_figures(*opening_series(_frozen_mouth(frames, boxes), frames, boxes, MOUTH_IN_CROP))
    assert abs(frozen["lipsync_r"]) < 0.05
