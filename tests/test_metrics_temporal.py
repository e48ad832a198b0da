"""Temporal stability: a flickering copy scores worse than a stable one; true motion is not punished."""

import numpy as np

from ladtalk.metrics.temporal import optical_flow, temporal_scores


def _moving_clip(t=6, size=64, seed=0):
    rng = np.random.default_rng(seed)
    tex = rng.integers(0, 256, (size // 4, size // 4 + 4, 3)).astype(np.uint8)
    import cv2
    tex = cv2.resize(tex, (size + 16, size), interpolation=cv2.INTER_CUBIC)
    return np.stack([tex[:, k:k + size] for k in range(t)])  # content moves 1 px left per frame


def test_flow_follows_the_pan():
    clip = _moving_clip()
    f = optical_flow(clip[0], clip[1])
    assert abs(np.median(f[..., 0]) + 1.0) < 0.2 and abs(np.median(f[..., 1])) < 0.2


def test_flicker_is_worse_than_stable():
    gt = _moving_clip()
    rng = np.random.default_rng(1)
    stable = np.clip(gt.astype(int) + 3, 0, 255).astype(np.uint8)           # constant bias: no flicker
    gains = rng.uniform(0.8, 1.2, (len(gt), 1, 1, 1))
    flicker = np.clip(gt * gains + rng.normal(0, 6, gt.shape), 0, 255).astype(np.uint8)
    s_same = temporal_scores(gt, gt, show_progress=False)
    s_stable = temporal_scores(stable, gt, show_progress=False)
    s_flicker = temporal_scores(flicker, gt, show_progress=False)
    assert s_same["warp_error"].shape == (len(gt) - 1,)
    np.testing.assert_allclose(s_same["warp_error"], s_same["warp_error_truth"])
    assert s_same["tof"].mean() == 0.0
    assert s_stable["warp_error"].mean() < s_flicker["warp_error"].mean()
    assert s_stable["tof"].mean() < s_flicker["tof"].mean()
    # a frozen prediction (no motion) is caught by tOF
    frozen = np.repeat(gt[:1], len(gt), 0)
    assert temporal_scores(frozen, gt, show_progress=False)["tof"].mean() > 0.5
