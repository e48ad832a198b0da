"""Tracking: gaps filled or marked, the main face among several, the user's pick, smoothing without lag."""

from __future__ import annotations

import numpy as np
import pytest

from ladtalk.errors import InputError
from ladtalk.face import track as track_module
from ladtalk.face.detect import Detection
from ladtalk.face.track import fill_gaps, link_tracks, smooth_boxes, track_faces

SIZE = (640, 360)  # (width, height)


def _det(x, y, s, score=0.99):
    return Detection((x, y, x + s, y + s), score, np.tile([[x + s / 2, y + s / 2]], (5, 1)))


def _moving(n, x0=270.0, y0=110.0, s=100.0, vx=1.0):
    return [[_det(x0 + vx * t, y0, s)] for t in range(n)]


def test_short_gaps_are_interpolated_and_long_gaps_marked():
    dets = _moving(60)
    for t in (10, 11, 12):  # short gap
        dets[t] = []
    for t in range(30, 45):  # long gap
        dets[t] = []
    tr = track_faces(dets, SIZE, pads=(0, 0, 0, 0), smooth_window=1)
    assert tr.has_face[10:13].all()
    np.testing.assert_allclose(tr.boxes[11], [270 + 11, 110, 370 + 11, 210])
    assert not tr.has_face[30:45].any() and np.isnan(tr.boxes[30:45]).all()
    assert tr.has_face[:30].all() and tr.has_face[45:].all()
    assert np.isnan(tr.raw_boxes[10]).all() and len(link_tracks(dets)) == 1


def test_gaps_at_the_ends_are_held_when_short(monkeypatch):
    dets = _moving(20)
    dets[0] = dets[1] = []
    dets[-1] = []
    monkeypatch.setattr(track_module, "MAX_GAP", 2)
    tr = track_faces(dets, SIZE, pads=(0, 0, 0, 0), smooth_window=1)
    assert tr.has_face.all()
    np.testing.assert_allclose(tr.boxes[0], tr.boxes[2])
    monkeypatch.setattr(track_module, "MAX_GAP", 1)
    assert not track_faces(dets, SIZE, pads=(0, 0, 0, 0)).has_face[:2].any()


def test_no_face_at_all_is_not_a_crash():
    tr = track_faces([[] for _ in range(8)], SIZE)
    assert not tr.has_face.any() and tr.boxes.shape == (8, 4) and np.isnan(tr.raw_boxes).all()
    assert track_faces([], SIZE).boxes.shape == (0, 4)


def test_pads_follow_wav2lip_order():
    tr = track_faces(_moving(5, vx=0), SIZE, pads=(1, 10, 2, 3), smooth_window=1)
    np.testing.assert_allclose(tr.boxes[0], [270 - 2, 110 - 1, 370 + 3, 210 + 10])


def test_main_track_is_large_and_central_and_user_can_pick(monkeypatch):
    n = 30
    dets = []
    for t in range(n):
        frame = [_det(20, 20, 60)]  # small, in a corner, first in each list
        if t >= 3:
            frame.append(_det(250 + t, 100, 150))  # large, central, appears later
        if t in (7, 8, 9, 10):
            frame.append(_det(500, 250, 40))  # a short-lived third face
        dets.append(frame)
    tracks = link_tracks(dets)
    assert [min(tr) for tr in tracks] == [0, 3, 7], "numbered by first appearance"
    monkeypatch.setattr(track_module, "MAX_GAP", 2)
    main = track_faces(dets, SIZE, smooth_window=1, pads=(0, 0, 0, 0))
    assert not main.has_face[:3].any() and main.has_face[3:].all()
    np.testing.assert_allclose(main.boxes[5], [255, 100, 405, 250])
    chosen = track_faces(dets, SIZE, track=0, smooth_window=1, pads=(0, 0, 0, 0))
    np.testing.assert_allclose(chosen.boxes[:, 0], 20)
    with pytest.raises(InputError, match="track 5 does not exist: 3 face track") as err:
        track_faces(dets, SIZE, track=5)
    assert "track 0: frames 0-29, mean box (20, 20, 80, 80); track 1: frames 3-29" in str(err.value)
    assert "track 2: frames 7-10, mean box (500, 250, 540, 290)" in str(err.value)


def test_same_first_frame_numbers_the_larger_face_first_and_drops_flickers():
    dets = [[_det(20, 20, 50), _det(300, 100, 120)] for _ in range(10)]
    dets[4].append(_det(600, 10, 20))  # a one-frame false positive
    tracks = link_tracks(dets)
    assert len(tracks) == 2
    assert tracks[0][0].width == 120 and tracks[1][0].width == 50


def test_a_face_that_returns_to_its_place_keeps_its_track(monkeypatch):
    dets = _moving(40, vx=0)
    for t in range(10, 30):
        dets[t] = []
    monkeypatch.setattr(track_module, "MAX_GAP", 3)
    tr = track_faces(dets, SIZE)
    assert len(link_tracks(dets)) == 1 and tr.has_face[:10].all() and tr.has_face[30:].all()


def test_smoothing_is_centred_and_reduces_jitter():
    t = np.arange(50, dtype=float)
    line = np.stack([t, t, t + 100, t + 100], 1)
    np.testing.assert_allclose(smooth_boxes(line, 5), line, atol=1e-9)  # steady motion: no lag
    rng = np.random.default_rng(0)
    noisy = line + rng.normal(0, 2, line.shape)
    assert np.abs(smooth_boxes(noisy, 5) - line).std() < 0.6 * np.abs(noisy - line).std()
    with_gap = noisy.copy()
    with_gap[20:25] = np.nan
    out = smooth_boxes(with_gap, 5)
    assert np.isnan(out[20:25]).all() and np.isfinite(out[:20]).all() and np.isfinite(out[25:]).all()


def test_fill_gaps_bridges_short_runs_only():
    b = np.array([[0.0], [np.nan], [np.nan], [3.0], [np.nan]])
    np.testing.assert_allclose(fill_gaps(b, 2)[:, 0], [0, 1, 2, 3, 3])
    assert np.isnan(fill_gaps(b, 1)[1:3]).all() and fill_gaps(b, 1)[4, 0] == 3  # a run of 2 > max_gap stays NaN
