"""The one scorer (metrics.scoring), its intervals (metrics.confidence), the detail spectrum and the provenance."""

import cv2
import numpy as np
import pytest

from ladtalk.metrics.confidence import block_indices, mean_interval, ratio_interval
from ladtalk.metrics.provenance import provenance, provenance_line
from ladtalk.metrics.scoring import Regions, compare, score_rows, summarize
from ladtalk.metrics.spectrum import octave_energies

REGIONS = Regions(face=(8, 8, 56, 56), mouth=(16, 36, 48, 52))


def _texture(size: int = 96, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = cv2.GaussianBlur(rng.uniform(40, 210, (size, size, 3)).astype(np.float32), (0, 0), 3)
    return np.clip(smooth + rng.normal(0, 10, (size, size, 3)), 0, 255).astype(np.uint8)


def _moving(dx: int, dy: int, frames: int = 8) -> np.ndarray:
    """64x64 windows of one texture sliding dx, dy pixels a frame: real motion, no flicker."""
    tex = _texture()
    return np.stack([tex[8 + dy * t:72 + dy * t, 8 + dx * t:72 + dx * t] for t in range(frames)])


def test_block_bootstrap_is_repeatable_and_wider_than_frame_resampling_on_a_drifting_series():
    idx = block_indices(40, block=15, resamples=5, seed=0)
    assert idx.shape == (5, 40) and (np.diff(idx[:, :15], axis=1) == 1).all()
    assert (block_indices(40, seed=0) == block_indices(40, seed=0)).all()
    drift = np.sin(np.arange(200) / 20.0) + 0.1 * np.random.default_rng(0).standard_normal(200)
    low, high = mean_interval(drift)
    single_low, single_high = mean_interval(drift, block=1)
    assert low < drift.mean() < high and high - low > 2 * (single_high - single_low)
    assert ratio_interval(2 * drift + 5, drift + 5, block=1)[0] > 1


def test_circular_blocks_draw_the_end_frames_as_often_as_the_middle():
    counts = {c: np.bincount(block_indices(40, resamples=2000, circular=c).ravel(), minlength=40) for c in (0, 1)}
    assert counts[0][0] < counts[0][20] / 10  # moving blocks: frame 0 only in the blocks that start there
    assert counts[1].min() > 0.85 * counts[1].max()


def test_a_copy_of_the_truth_scores_perfect_and_a_blurred_one_loses_the_top_octaves():
    gt = _moving(1, 0)
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 1.2) for f in gt])
    rows = score_rows({"copy": gt, "blurred": blurred}, gt, REGIONS)
    copy, blur = summarize(rows["copy"]), summarize(rows["blurred"])
    assert copy["face_psnr_db"] == np.inf and copy["mouth_sharpness_ratio"] == pytest.approx(1)
    assert copy["face_own_flow_warp_error_ratio"] == pytest.approx(1, abs=1e-6)
    assert blur["mouth_sharpness_ratio"] < 0.5
    assert blur["mouth_energy_ratio_octave_1"] < blur["mouth_energy_ratio_octave_3"] < 1.01
    low, high = blur["ci95"]["face_psnr_db"]
    assert low <= blur["face_psnr_db"] <= high
    gain = compare(rows["blurred"], rows["blurred"])
    assert gain["face_psnr_gain_db"] == 0 and gain["ci95"]["face_psnr_gain_db"] == [0, 0]


def test_own_flow_warping_error_sees_flicker_but_not_a_different_motion():
    gt = _moving(1, 0)
    other_motion = _moving(0, 1)  # as steady as the truth, moving another way
    rng = np.random.default_rng(1)
    flicker = np.clip(gt * (1 + 0.08 * rng.standard_normal((len(gt), 1, 1, 1))), 0, 255).astype(np.uint8)
    s = {k: summarize(v) for k, v in score_rows({"other": other_motion, "flicker": flicker}, gt, REGIONS).items()}
    # the truth's flow charges the other motion as if it were flicker; the output's own flow does not
    assert s["other"]["face_warp_error_ratio"] > 3 * s["other"]["face_own_flow_warp_error_ratio"]
    assert s["other"]["face_own_flow_warp_error_ratio"] < 2
    assert s["flicker"]["face_own_flow_warp_error_ratio"] > 3


def test_octave_energies_split_a_pure_tone_into_its_band():
    x = np.arange(64)
    tone = (128 + 100 * np.cos(2 * np.pi * 0.375 * x))[None, None, :].repeat(64, 1)  # 0.75 of Nyquist: octave 1
    frames = np.repeat(tone[..., None], 3, -1).clip(0, 255).astype(np.uint8)
    energy = octave_energies(frames)[0]
    assert energy[0] > 100 * energy[1:].sum()


def test_provenance_names_commit_precision_threads_and_cpu():
    p = provenance("cpu", "fp32")
    assert p["precision"] == "fp32" and p["threads"] >= 1 and p["cpu"] and p["torch"]
    assert p["commit"] == "unknown" or len(p["commit"].removesuffix("+dirty")) == 40
    assert "fp32 on cpu" in provenance_line(p)


def test_perceptual_figures_are_named_by_the_network_and_tlp_sees_flicker():
    import torch

    from ladtalk.metrics.lpips import PerceptualMetric

    class MeanAbs(torch.nn.Module):  # a stand-in distance with the perceptual networks' features and compare
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(()))

        def features(self, x):
            return [x]

        def compare(self, fa, fb):
            return self.scale * (fa[0] - fb[0]).abs().flatten(1).mean(1)

    stand_in = PerceptualMetric(MeanAbs(), "ST-LPIPS-VGG", "a stand-in")
    gt = _moving(1, 0, frames=12)
    flicker = np.clip(gt * (1 + 0.1 * np.random.default_rng(2).standard_normal((12, 1, 1, 1))), 0, 255)
    rows = score_rows({"copy": gt, "flicker": flicker.astype(np.uint8)}, gt, REGIONS, stand_in, perceptual_frames=6)
    copy, flick = summarize(rows["copy"]), summarize(rows["flicker"])
    assert copy["face_st_lpips"] == 0 and copy["mouth_st_lpips"] == 0 and copy["face_tlp"] == 0
    assert flick["face_st_lpips"] > 0 and flick["face_tlp"] > 0 and "face_lpips" not in flick
    assert len(rows["flicker"].means["face_st_lpips"][0]) == 6
