"""The band split at the lip-sync base's resolution (metrics.headroom) and bench/restorer_headroom.py on a report:
calibration rows (the truth blurred by one base pixel is detail, the truth itself is perfect), a missing-detail row
fully explained by the oracle, a wrong mouth that is not detail, the cut-off read from the model, and the
block-bootstrap intervals of the figures and of the shares (paired over the rows' frames, repeatable)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from ladtalk.io.video import VideoWriter
from ladtalk.metrics.headroom import (
    band_series,
    band_summary,
    calibration_rows,
    coarse,
    lipsync_face_size,
    share_intervals,
    shares,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import restorer_headroom as bench  # noqa: E402

FACE, MOUTH = (16, 16, 240, 240), (80, 150, 176, 210)
PIXEL_48 = 256 / 48  # one pixel of a 48 px lip-sync face in a 256 px crop


def _truth(frames: int = 3) -> np.ndarray:
    rng = np.random.default_rng(0)
    smooth = cv2.GaussianBlur(rng.uniform(60, 200, (256, 256, 3)).astype(np.float32), (0, 0), 8)
    texture = cv2.GaussianBlur(rng.normal(0, 14, (frames * 256, 256, 3)).astype(np.float32), (0, 0), 1.5)
    return np.clip(smooth[None] + texture.reshape(frames, 256, 256, 3) * 3, 0, 255).astype(np.uint8)


def test_calibration_rows_at_the_base_resolution_and_what_a_finer_cut_misses():
    gt = _truth()
    rows = calibration_rows(gt, FACE, MOUTH, PIXEL_48)
    blurred, truth = rows["truth_blurred_one_base_pixel"], rows["truth"]
    assert truth["face_psnr_db"] == np.inf and truth["face_fine_band_psnr_db"] == np.inf
    assert truth["oracle_share_of_face_mse"] == pytest.approx(1)
    # a perfect base at its own resolution: the oracle at the base's cut recovers nearly all of its error ...
    assert blurred["oracle_share_of_face_mse"] > 0.9
    assert blurred["face_detail_oracle_psnr_db"] > blurred["face_psnr_db"] + 10
    # ... a cut at 96 px (the official face size) files much of a 48 px base's blur as coarse: a smaller headroom
    x1, y1, x2, y2 = FACE
    base = gt.copy()
    for f in base:
        f[y1:y2, x1:x2] = np.clip(coarse(f[y1:y2, x1:x2].astype(np.float32), PIXEL_48), 0, 255).round()
    at96 = band_summary(band_series(base, gt, FACE, MOUTH, 256 / 96))
    assert at96["face_detail_oracle_psnr_db"] < blurred["face_detail_oracle_psnr_db"] - 5
    assert at96["oracle_share_of_face_mse"] < blurred["oracle_share_of_face_mse"] - 0.1


def test_blur_is_mostly_detail_and_a_wrong_mouth_is_not():
    gt = _truth()
    x1, y1, x2, y2 = FACE
    blurred = gt.copy()
    for f in blurred:  # a Gaussian blur of half a base pixel: mostly, not only, fine-band error
        f[y1:y2, x1:x2] = cv2.GaussianBlur(f[y1:y2, x1:x2], (0, 0), PIXEL_48 / 2)
    s = band_summary(band_series(blurred, gt, FACE, MOUTH, PIXEL_48))
    assert s["face_detail_oracle_psnr_db"] > s["face_psnr_db"] + 3 and s["oracle_share_of_face_mse"] > 0.5
    wrong = gt.copy()
    wrong[:, 160:200, 100:160] = 20  # a dark open mouth where the truth has skin: a coarse-band error
    s = band_summary(band_series(wrong, gt, FACE, MOUTH, PIXEL_48))
    assert s["face_detail_oracle_psnr_db"] < s["face_psnr_db"] + 1 and s["oracle_share_of_face_mse"] < 0.3


def test_gains_are_shares_of_the_detail_and_ceiling_headrooms():
    base = {"face_psnr_db": 30.0, "face_detail_oracle_psnr_db": 34.0}
    out = shares(base, {"face_psnr_db": 31.0}, {"face_psnr_db": 40.0})
    assert out["face_share_of_detail_headroom"] == 0.25 and out["face_share_of_ceiling_headroom"] == 0.1


def test_the_cut_off_is_the_lipsync_models_face_size(tiny_models, tmp_path):
    assert lipsync_face_size(tiny_models / "wav2lip") == 48
    assert lipsync_face_size(tmp_path / "wav2lip_gan.pth") == 96  # an official file
    assert lipsync_face_size("builtin") == 48  # the shipped synthetic-48 base, by its name


def _series(base: np.ndarray, **rows: np.ndarray) -> dict[str, np.ndarray]:
    """band_series-like per-frame figures: the face's given, the mouth's the same, the other figures flat."""
    out = {"face_fine_band_psnr_db": base + 1.0, "oracle_share_of_face_mse": np.full(len(base), 0.6)}
    for key, values in {"psnr_db": base, **rows}.items():
        out[f"face_{key}"] = out[f"mouth_{key}"] = values
    return out


def _frames(n: int = 120) -> np.ndarray:
    """Per-frame dB that wander slowly over the clip (a talking head's hard and easy stretches)."""
    rng = np.random.default_rng(1)
    return 28 + 3 * np.sin(np.arange(n) / 9) + np.convolve(rng.normal(0, 1, n + 14), np.ones(15) / 5, "valid")


def test_every_figure_and_share_has_an_interval_around_it():
    base_frames = _frames()
    base = _series(base_frames, detail_oracle_psnr_db=base_frames + 4)
    row = _series(base_frames + 1.5 + 0.3 * np.cos(np.arange(120) / 5), detail_oracle_psnr_db=base_frames + 5)
    ceiling = _series(base_frames + 10)
    summary = band_summary(row)
    for key, (low, high) in summary["ci95"].items():
        assert low <= summary[key] <= high, key
    point = shares(band_summary(base), summary, band_summary(ceiling))
    ci = share_intervals(base, row, ceiling)
    assert set(ci) == set(point)
    for key, (low, high) in ci.items():
        assert low <= point[key] <= high, key
    gt = _truth(4)  # a perfect row has no interval (inf dB), the others do
    truth = band_summary(band_series(gt, gt, FACE, MOUTH, PIXEL_48))
    assert "face_psnr_db" not in truth["ci95"] and "oracle_share_of_face_mse" in truth["ci95"]


def test_a_paired_share_whose_terms_move_together_is_narrow_and_repeatable():
    base_frames = _frames()
    base = _series(base_frames, detail_oracle_psnr_db=base_frames + 4)
    together = _series(base_frames + 2)  # gains half the headroom on every frame, however hard the frame
    ceiling = _series(base_frames + 8)
    ci = share_intervals(base, together, ceiling)
    assert ci["face_share_of_detail_headroom"] == pytest.approx([0.5, 0.5])
    assert ci["face_share_of_ceiling_headroom"] == pytest.approx([0.25, 0.25])
    assert ci["face_gain_db"] == pytest.approx([2, 2])
    # the same row with its frames in another order: the same figures, the terms no longer paired -> wide
    shuffled = _series(np.roll(base_frames, 60) + 2)
    loose = share_intervals(base, shuffled, ceiling)
    assert loose["face_share_of_detail_headroom"][1] - loose["face_share_of_detail_headroom"][0] > 0.2
    # a fixed seed: the same intervals on every call, others with another seed
    assert share_intervals(base, shuffled, ceiling) == loose
    assert share_intervals(base, shuffled, ceiling, seed=1) != loose
    assert band_summary(shuffled)["ci95"] == band_summary(shuffled)["ci95"]


def _write(path, frames):
    with VideoWriter(path, 25) as w:
        w.write(frames)


def test_the_bench_reads_every_paste_of_a_report(tmp_path):
    gt = _truth(4)
    x1, y1, x2, y2 = FACE
    base = gt.copy()
    for f in base:
        f[y1:y2, x1:x2] = cv2.GaussianBlur(f[y1:y2, x1:x2], (0, 0), PIXEL_48)
    restored = ((base.astype(np.float32) + gt) / 2).round().astype(np.uint8)  # half the detail back
    ceiling = np.stack([cv2.GaussianBlur(f, (0, 0), 0.7) for f in gt])  # the round trip through the crop
    _write(tmp_path / "ground_truth.mp4", gt)
    files = {}
    for paste in ("hard", "mouth"):
        for stage, frames in (("wav2lip", base), ("cascade", restored), ("crop_ceiling", ceiling)):
            files[f"{stage}_{paste}"] = str(tmp_path / f"{stage}_{paste}.mp4")
            _write(files[f"{stage}_{paste}"], frames)
    (tmp_path / "report.json").write_text(json.dumps({
        "files": files, "face_box": FACE, "mouth_box": MOUTH, "pastes": ["hard", "mouth"], "lipsync_face_size": 48,
        "crop_side_px": 256.0}))
    result = bench.headroom(tmp_path)
    assert result["base_size"] == 48 and set(result["pastes"]) == {"hard", "mouth"}
    entry = result["pastes"]["hard"]
    assert 0.1 < entry["face_share_of_detail_headroom"] < 1 and 0 < entry["face_share_of_ceiling_headroom"] < 1
    assert entry["face_detail_headroom_at_96_px_db"] < entry["face_detail_headroom_db"]
    for key in ("face_share_of_detail_headroom", "mouth_share_of_ceiling_headroom", "face_detail_headroom_at_96_px_db"):
        low, high = entry["ci95"][key]
        assert low <= entry[key] <= high
    assert "ci95" in entry["rows"]["cascade"] and result["confidence"]["block_frames"] == 15
    md = bench.markdown([result])
    assert "calibration | truth_blurred_one_base_pixel" in md and "base 48 px" in md
    assert f"({entry['face_share_of_detail_headroom']:.0%} [" in md  # the share with its interval
