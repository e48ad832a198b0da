"""The cascade's temporal filter: still faces pass unchanged, flicker is steadied, real motion and gaps pass."""

import numpy as np
import torch

from ladtalk.data.degrade import gaussian_blur
from ladtalk.pipeline.temporal import TemporalFilter


def _face(size=64, seed=0):
    """A smooth random texture (optical flow can follow it, as on a face), values in [0.2, 0.8]."""
    g = torch.Generator().manual_seed(seed)
    x = gaussian_blur(torch.rand(1, 3, size, size, generator=g), 2.0)
    return 0.2 + 0.6 * (x - x.min()) / (x.max() - x.min())


def test_a_still_video_passes_unchanged():
    faces = _face().repeat(6, 1, 1, 1)
    torch.testing.assert_close(TemporalFilter()(faces, np.arange(6)), faces, atol=2e-3, rtol=0)


def test_flicker_is_steadied_and_stays_on_the_face():
    clean = _face()
    g = torch.Generator().manual_seed(1)
    noisy = clean + 0.01 * torch.randn(20, 3, 64, 64, generator=g)
    out = TemporalFilter()(noisy, np.arange(20))
    step_in = (noisy[1:] - noisy[:-1]).abs().mean()
    step_out = (out[1:] - out[:-1]).abs().mean()
    assert step_out < 0.5 * step_in
    # it holds a face as noisy as one input frame; it does not drift away from the face
    assert (out[-1] - clean).abs().mean() < 1.5 * (noisy - clean).abs().mean()


def test_real_motion_is_not_smeared():
    faces = torch.full((6, 3, 64, 64), 0.2)
    for t in range(6):  # a bright bar (an opening mouth) moving 4 pixels a frame
        faces[t, :, 16:32, 8 + 4 * t:8 + 4 * t + 12] = 0.9
    out = TemporalFilter()(faces, np.arange(6))
    assert float(out[-1, :, 16:32, 28:40].mean()) > 0.85  # the bar where it is now, at (nearly) full brightness
    assert float(out[-1, :, 16:32, 24:28].mean()) < 0.3  # no ghost where it was a frame ago
    assert float((out - faces).abs().mean()) < 0.01


def test_batches_stream_like_one_call():
    g = torch.Generator().manual_seed(2)
    faces = _face() + 0.02 * torch.randn(10, 3, 64, 64, generator=g)
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


def test_generate_with_the_filter_writes_every_frame(synthetic_identity, tiny_models, tmp_path):
    from ladtalk.io.audio import write_wav
    from ladtalk.io.video import probe_video
    from ladtalk.pipeline.generate import generate

    t = np.arange(16000) / 16000
    write_wav(tmp_path / "s.wav", (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    out = tmp_path / "out.mp4"
    report = generate(synthetic_identity, tmp_path / "s.wav", out, wav2lip_path=tiny_models / "wav2lip",
                      sovqae_path=tiny_models / "sovqae", device="cpu", batch_size=4, temporal_filter=True)
    assert probe_video(out).frame_count == report.frames == 25 and "temporal" in report.stage_seconds


def test_weaker_settings_steady_less_and_bad_ones_are_refused():
    import pytest

    from ladtalk.errors import InputError
    from ladtalk.pipeline.temporal import temporal_filter

    g = torch.Generator().manual_seed(4)
    noisy = _face() + 0.01 * torch.randn(12, 3, 64, 64, generator=g)

    def flicker(filt):
        out = filt(noisy, np.arange(12))
        return float((out[1:] - out[:-1]).abs().mean())

    assert temporal_filter(False) is None
    full, half, narrow = (flicker(temporal_filter(True, *s)) for s in ((1.0, 0.06), (0.5, 0.06), (1.0, 0.005)))
    assert full < half < float((noisy[1:] - noisy[:-1]).abs().mean())
    assert full < narrow  # a sigma below the noise lets most of each frame through
    for strength, sigma in ((0.0, 0.06), (1.5, 0.06), (1.0, 0.0), (1.0, -1.0)):
        with pytest.raises(InputError, match="temporal"):
            temporal_filter(True, strength, sigma)
