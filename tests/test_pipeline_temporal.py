"""The cascade's temporal filter: still faces pass unchanged, flicker is steadied, real motion and gaps pass."""

import numpy as np
import torch

from ladtalk.pipeline.temporal import TemporalFilter, gaussian_blur


def _face(size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, size, size, generator=g) * 0.6 + 0.2


def test_a_still_video_passes_unchanged():
    faces = _face().repeat(6, 1, 1, 1)
    torch.testing.assert_close(TemporalFilter()(faces, np.arange(6)), faces, atol=2e-3, rtol=0)


def test_flicker_is_steadied_and_stays_on_the_face():
    clean = _face()
    g = torch.Generator().manual_seed(1)
    noisy = clean + 0.01 * torch.randn(20, 3, 32, 32, generator=g)
    out = TemporalFilter()(noisy, np.arange(20))
    step_in = (noisy[1:] - noisy[:-1]).abs().mean()
    step_out = (out[1:] - out[:-1]).abs().mean()
    assert step_out < 0.5 * step_in
    assert (out[5:] - clean).abs().mean() < (noisy[5:] - clean).abs().mean()


def test_real_motion_is_not_smeared():
    faces = torch.full((6, 3, 32, 32), 0.2)
    for t in range(6):  # a bright bar (an opening mouth) moving 4 pixels a frame
        faces[t, :, 8:16, 4 * t:4 * t + 6] = 0.9
    out = TemporalFilter()(faces, np.arange(6))
    # no ghost of the bar where it was a frame ago, and the bar itself at full brightness
    assert (out - faces).abs().max() < 0.05


def test_batches_stream_like_one_call():
    g = torch.Generator().manual_seed(2)
    faces = _face() + 0.02 * torch.randn(10, 3, 32, 32, generator=g)
    whole = TemporalFilter()(faces, np.arange(10))
    streamed = TemporalFilter()
    parts = [streamed(faces[s:s + 3], np.arange(s, min(s + 3, 10))) for s in range(0, 10, 3)]
    torch.testing.assert_close(torch.cat(parts), whole)


def test_a_gap_in_the_frames_restarts_the_filter():
    a, b = _face(seed=3), _face(seed=3) + 0.01
    filt = TemporalFilter()
    filt(a, np.array([0]))
    assert not torch.equal(filt(b, np.array([1])), b)  # the next frame leans on the last
    filt.reset()
    filt(a, np.array([0]))
    assert torch.equal(filt(b, np.array([5])), b)  # after a gap it starts afresh


def test_gaussian_blur_keeps_a_constant_and_spreads_a_dot():
    flat = torch.full((1, 1, 9, 9), 0.3)
    torch.testing.assert_close(gaussian_blur(flat, 1.5), flat)
    dot = torch.zeros(1, 1, 9, 9)
    dot[0, 0, 4, 4] = 1.0
    out = gaussian_blur(dot, 1.0)
    assert abs(float(out.sum()) - 1.0) < 1e-5  # the dot's mass stays inside (reflected borders)
    assert 0 < float(out[0, 0, 4, 4]) < 0.5 and float(out[0, 0, 4, 5]) > 0
