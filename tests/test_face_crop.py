"""Crops and paste-back: squares, edge replication outside the frame, round trip quality, exact hard paste."""

from __future__ import annotations

import av
import numpy as np
import pytest

from ladtalk.errors import InputError
from ladtalk.face.crop import crop_faces, feather_mask, paste_faces, square_crop_boxes


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _smooth_frames(n=3, h=240, w=320, seed=0) -> np.ndarray:
    """Photo-like frames: smooth gradients plus mild texture, so resampling errors are realistic."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for _ in range(n):
        base = np.stack([128 + 60 * np.sin(xx / 23 + rng.uniform(0, 6)), 128 + 60 * np.cos(yy / 17),
                         128 + 40 * np.sin((xx + yy) / 31)], -1)
        out.append(np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8))
    return np.stack(out)


def test_square_crop_boxes_are_whole_pixel_squares_around_the_centre():
    boxes = np.array([[10.2, 20.0, 60.0, 100.4], [np.nan] * 4, [-30, -30, 10, 10]])
    sq = square_crop_boxes(boxes, (320, 240))
    assert np.isnan(sq[1]).all()
    for b, s in ((boxes[0], sq[0]), (boxes[2], sq[2])):
        assert s[2] - s[0] == s[3] - s[1] == round(max(b[2] - b[0], b[3] - b[1]))
        assert (s == np.round(s)).all()
        assert abs((s[0] + s[2]) / 2 - max((b[0] + b[2]) / 2, 0)) <= 0.5
    wide = square_crop_boxes(boxes[:1], (320, 240), scale=1.5)[0]
    assert wide[2] - wide[0] == round(80.4 * 1.5)


def test_crop_outside_the_frame_replicates_edges_and_nan_gives_black():
    frames = _smooth_frames(2)
    boxes = np.array([[-20.0, -10.0, 80.0, 90.0], [np.nan] * 4])
    crops = crop_faces(frames, boxes, 100)  # 1:1 scale: pixels are copied
    assert crops.shape == (2, 100, 100, 3) and crops.dtype == np.uint8
    np.testing.assert_array_equal(crops[0, 10:, 20:], frames[0, :90, :80])
    np.testing.assert_array_equal(crops[0, :10, 20:], np.repeat(frames[0, :1, :80], 10, axis=0))
    np.testing.assert_array_equal(crops[0, 10:, :20], np.repeat(frames[0, :90, :1], 20, axis=1))
    assert not crops[1].any()
    wholly_outside = crop_faces(frames[:1], np.array([[400.0, 300.0, 450.0, 350.0]]), 16)
    np.testing.assert_array_equal(wholly_outside[0], np.broadcast_to(frames[0, -1, -1], (16, 16, 3)))


def test_round_trip_of_an_unmodified_crop_barely_changes_the_frame():
    frames = _smooth_frames(3)
    boxes = square_crop_boxes(np.array([[100.0, 50.0, 230.0, 200.0], [-10, 40, 120, 190], [np.nan] * 4]),
                              (320, 240))
    for size in (96, 256):
        crops = crop_faces(frames, boxes, size)
        for mode in ("feather", "hard"):
            out = paste_faces(frames, crops, boxes, mode=mode)
            assert out.shape == frames.shape and out.dtype == np.uint8
            assert _psnr(out, frames) > (32 if size == 96 else 40), (size, mode)
            np.testing.assert_array_equal(out[2], frames[2])  # no face: untouched


def test_hard_paste_is_exact_inside_the_box_and_leaves_the_rest():
    frames = _smooth_frames(1)
    box = np.array([[40.0, 30.0, 140.0, 130.0]])
    face = np.full((1, 100, 100, 3), 7, np.uint8)
    out = paste_faces(frames, face, box, mode="hard")
    assert (out[0, 30:130, 40:140] == 7).all()
    mask = np.ones(frames.shape[1:3], bool)
    mask[30:130, 40:140] = False
    np.testing.assert_array_equal(out[0][mask], frames[0][mask])
    assert not np.shares_memory(out, frames)


def test_feather_paste_is_soft_at_the_edges_and_full_in_the_middle():
    frames = np.zeros((1, 200, 200, 3), np.uint8)
    face = np.full((1, 64, 64, 3), 200, np.uint8)
    out = paste_faces(frames, face, np.array([[50.0, 50.0, 150.0, 150.0]]), mode="feather", feather=0.1)
    assert out[0, 100, 100, 0] == 200 and out[0, 50, 100, 0] < 20 and out[0, 49, 100, 0] == 0
    row = out[0, 100, 50:70, 0].astype(int)
    assert (np.diff(row) >= 0).all() and row[-1] == 200
    m = feather_mask(100, 0.1)
    assert m.shape == (100, 100) and m.max() == 1.0 and m.min() > 0 and np.allclose(m, m.T)


def test_paste_errors():
    frames = _smooth_frames(1)
    with pytest.raises(InputError, match="paste mode"):
        paste_faces(frames, frames[:, :10, :10], np.array([[0.0, 0, 10, 10]]), mode="poisson")
    with pytest.raises(InputError, match="as many"):
        paste_faces(frames, frames[:, :10, :10], np.zeros((2, 4)))


def test_real_face_round_trip(macron_video):
    with av.open(str(macron_video)) as c:
        frame = next(iter(c.decode(video=0))).to_ndarray(format="rgb24")[None]
    boxes = square_crop_boxes(np.array([[176.0, 102.0, 388.0, 379.0]]), (512, 512))
    crops = crop_faces(frame, boxes, 256)
    for mode in ("hard", "feather"):
        x1, y1, x2, y2 = boxes[0].astype(int)
        out = paste_faces(frame, crops, boxes, mode=mode)
        assert _psnr(out[0, y1:y2, x1:x2], frame[0, y1:y2, x1:x2]) > 38
