"""PSNR / SSIM on closed-form cases, mouth-region PSNR, and the sliding-window alignment."""

import math

import numpy as np
import pytest
import torch

from ladtalk.errors import InputError
from ladtalk.metrics.image import align_sequences, mouth_psnr, psnr, sliding_scores, ssim


def _frames(t=3, h=32, w=40, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def test_identical_frames_give_inf_psnr_and_unit_ssim():
    a = _frames()
    assert np.all(np.isinf(psnr(a, a)))
    np.testing.assert_allclose(ssim(a, a), 1.0, atol=1e-12)


def test_constant_offset_psnr_and_ssim_closed_form():
    a = np.full((2, 24, 24, 3), 100, np.uint8)
    b = a + np.uint8(10)
    np.testing.assert_allclose(psnr(b, a), 20 * math.log10(255 / 10), rtol=1e-12)
    # constant images: only the luminance term differs from 1: (2ab + C1) / (a^2 + b^2 + C1)
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 110 + c1) / (100 ** 2 + 110 ** 2 + c1)
    np.testing.assert_allclose(ssim(b, a), expected, rtol=1e-10)


def test_known_noise_psnr():
    rng = np.random.default_rng(1)
    a = np.full((4, 64, 64, 3), 128, np.uint8)
    noise = rng.normal(0, 5.0, a.shape)
    b = np.clip(np.round(a + noise), 0, 255).astype(np.uint8)
    # rounding adds variance 1/12
    expected = 10 * math.log10(255 ** 2 / (25 + 1 / 12))
    assert abs(psnr(b, a).mean() - expected) < 0.1
    assert 0 < ssim(b, a).mean() < 1


def test_ssim_structure_term_and_single_frame():
    a = _frames(1, 48, 48)[0]
    inv = (255 - a).astype(np.uint8)
    assert ssim(inv, a)[0] < 0.1       # anti-correlated structure
    assert ssim(a, a).shape == (1,)


def test_shape_mismatch_is_an_input_error():
    with pytest.raises(InputError, match="differ in shape"):
        psnr(_frames(2, 8, 8), _frames(2, 8, 9))


def test_mouth_psnr_only_looks_inside_the_box():
    a = np.full((2, 40, 40, 3), 50, np.uint8)
    b = a.copy()
    b[:, :10] = 200                      # damage outside the box
    b[:, 20:30, 10:30] += 5              # small error inside
    np.testing.assert_allclose(mouth_psnr(b, a, (10, 20, 30, 30)), 20 * math.log10(255 / 5))
    boxes = np.array([[10, 20, 30, 30], [0, 0, 5, 5]], float)
    out = mouth_psnr(b, a, boxes)
    assert out[0] == pytest.approx(20 * math.log10(255 / 5)) and out[1] < 10


def test_masked_psnr_only_looks_at_the_mask_on_every_path():
    a = np.full((2, 40, 40, 3), 50, np.uint8)
    b = a.copy()
    b[:, :10] = 200                      # damage outside the mask
    b[:, 20:30] += 5                     # small error inside
    mask = np.zeros((2, 40, 40), bool)
    mask[0, 20:] = True                  # half the mask sees the error
    mask[1, 30:] = True                  # none of it does
    expected = [20 * math.log10(255 / 5) + 10 * math.log10(2), math.inf]
    np.testing.assert_allclose(psnr(b, a, mask=mask), expected)
    np.testing.assert_allclose(psnr(b, a, mask=torch.from_numpy(mask)), expected)
    np.testing.assert_allclose(psnr(torch.from_numpy(b), torch.from_numpy(a), mask=torch.from_numpy(mask)), expected)
    np.testing.assert_allclose(psnr(torch.from_numpy(b), torch.from_numpy(a), mask=mask), expected)
    with pytest.raises(InputError, match="mask"):
        psnr(b, a, mask=mask[:, :20])


def test_sliding_picks_the_right_window():
    gt = _frames(12, 16, 16, seed=2)
    pred = gt[5:9].copy()
    pred[:, 0, 0, 0] ^= 1                # not identical: finite PSNR, so the means are comparable
    scores = sliding_scores(psnr, pred, gt)
    assert scores.shape == (9,)
    k = int(np.argmax(scores))  # the offset ladtalk evaluate aligns at
    assert k == 5 and scores[k] > 60
    p, g = align_sequences(pred, gt, k)
    assert np.array_equal(g, gt[5:9]) and len(p) == 4
    # the longer sequence may also be the prediction
    k2 = int(np.argmax(sliding_scores(psnr, gt, pred)))
    assert k2 == 5
    p2, g2 = align_sequences(gt, pred, k2)
    assert np.array_equal(p2, gt[5:9]) and g2 is pred


def test_frame_aligned_cuts_to_the_shorter():
    a, b = _frames(5), _frames(3)
    p, g = align_sequences(a, b, 0)
    assert len(p) == len(g) == 3


def test_ssim_cpu_and_batched_torch_paths_agree():
    import torch

    from ladtalk.metrics.image import ssim_frame, ssim_images
    a, b = _frames(2, 40, 36, seed=4), _frames(2, 40, 36, seed=5)
    b[1] = a[1] // 2 + b[1] // 2
    t = ssim_images(torch.from_numpy(a).permute(0, 3, 1, 2).double(), torch.from_numpy(b).permute(0, 3, 1, 2).double())
    np.testing.assert_allclose([ssim_frame(a[0], b[0]), ssim_frame(a[1], b[1])], t.numpy(), rtol=1e-10, atol=1e-12)
