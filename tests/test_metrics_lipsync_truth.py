"""Synthetic lip-sync score: measured mouth openness follows the truth, and a delayed mouth shows its lag."""

import numpy as np
import pytest

from ladtalk.metrics.lipsync_truth import lag_correlation, lipsync_truth_score, mouth_openness


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
    synthetic = pytest.importorskip("ladtalk.data.synthetic", reason="ladtalk.data.synthetic not available")
    t = np.arange(30)
    openness = np.clip(0.5 + 0.5 * np.sin(t * 0.6), 0, 1)
    frames, boxes = synthetic.render_frames(openness, size=96, seed=0)
    s = lipsync_truth_score(frames, boxes, openness)
    assert s["pearson"] > 0.9 and s["best_lag"] == 0 and s["frames"] == 30
    late = np.concatenate([frames[:1].repeat(2, 0), frames[:-2]])
    s_late = lipsync_truth_score(late, boxes, openness)
    assert s_late["best_lag"] == 2 and s_late["pearson"] < s["pearson"]
