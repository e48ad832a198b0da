"""bench/restorer_headroom.py's band split: a prediction that lacks only the fine detail is fully explained by the
detail oracle, one whose error is coarse (a misplaced dark mouth) is not, and the truth itself scores as perfect."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import restorer_headroom as bench  # noqa: E402

FACE, MOUTH = [16, 16, 240, 240], [80, 150, 176, 210]


def _truth(frames: int = 3) -> np.ndarray:
    rng = np.random.default_rng(0)
    smooth = cv2.GaussianBlur(rng.uniform(60, 200, (256, 256, 3)).astype(np.float32), (0, 0), 8)
    texture = rng.normal(0, 12, (frames, 256, 256, 3)).astype(np.float32)  # fine detail: skin, stubble
    return np.clip(smooth[None] + texture, 0, 255).astype(np.uint8)


def test_missing_detail_is_what_the_oracle_restores():
    gt = _truth()
    x1, y1, x2, y2 = FACE
    blurry = gt.copy()
    for f in blurry:  # the face through 96 px and back: all of its error is in the fine band
        f[y1:y2, x1:x2] = np.clip(bench.coarse(f[y1:y2, x1:x2].astype(np.float32)), 0, 255).round()
    s = bench.band_scores(blurry, gt, FACE, MOUTH)
    assert s["psnr_face_detail_oracle_db"] > s["psnr_face_db"] + 10
    assert s["oracle_share_of_face_mse"] > 0.9


def test_a_wrong_mouth_is_not_detail():
    gt = _truth()
    wrong = gt.copy()
    wrong[:, 160:200, 100:160] = 20  # a dark open mouth where the truth has skin: a coarse-band error
    s = bench.band_scores(wrong, gt, FACE, MOUTH)
    assert s["psnr_face_detail_oracle_db"] < s["psnr_face_db"] + 1
    assert s["oracle_share_of_face_mse"] < 0.3


def test_the_truth_scores_as_perfect():
    gt = _truth(1)
    s = bench.band_scores(gt, gt, FACE, MOUTH)
    assert s["psnr_face_db"] > 100 and s["psnr_face_fine_band_db"] > 100
