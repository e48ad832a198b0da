"""The temporal filter: a still video passes unchanged, a one-frame pop is pulled back by at most the limit,
steady motion passes, only the pasted region changes, and batches stream like one call."""

import numpy as np
import pytest
import torch

from ladtalk.data.degrade import gaussian_blur
from ladtalk.errors import InputError
from ladtalk.pipeline.temporal import TemporalMedian, median3, temporal_median

BOX = np.array([8.0, 8.0, 40.0, 40.0])  # the pasted face's crop box in a 48x48 frame


def _video(n=6, seed=0):
    g = np.random.default_rng(seed)
    return np.repeat(g.integers(40, 200, (1, 48, 48, 3), dtype=np.uint8), n, axis=0)


def _run(frames, paste="hard", limit=8, batch=None):
    filt = TemporalMedian(paste, limit)
    boxes = np.repeat(BOX[None], len(frames), 0)
    batch = batch or len(frames)
    parts = [filt.push(frames[s:s + batch], boxes[s:s + batch]) for s in range(0, len(frames), batch)]
    return np.concatenate([p for p in parts if len(p)] + [filt.flush()])


def test_median3_is_the_middle_value():
    a, b, c = (np.array([v], np.uint8) for v in (9, 3, 250))
    assert median3(a, b, c)[0] == 9 and median3(c, a, b)[0] == 9 and median3(b, c, a)[0] == 9


def test_a_still_video_passes_unchanged():
    frames = _video()
    assert np.array_equal(_run(frames), frames)


def test_a_one_frame_pop_is_pulled_back_by_the_limit_inside_the_box_only():
    frames = _video().astype(np.int16)
    frames[3, 10:20, 10:20] += 30  # inside the box: a patch that flickers for one frame
    frames[3, 0:4, 0:4] += 30  # outside it: the identity's own video, not the filter's business
    frames = frames.clip(0, 255).astype(np.uint8)
    out = _run(frames, limit=8).astype(np.int16)
    pop = frames[3, 10:20, 10:20].astype(np.int16) - frames[2, 10:20, 10:20]
    assert np.array_equal(out[3, 10:20, 10:20], frames[3, 10:20, 10:20] - np.minimum(pop, 8))
    assert np.array_equal(out[3, 0:4, 0:4], frames[3, 0:4, 0:4])
    assert np.array_equal(np.delete(out, 3, 0), np.delete(frames, 3, 0).astype(np.int16))


def test_steady_motion_passes():
    frames = np.full((8, 48, 48, 3), 50, np.uint8)
    for t in range(8):  # a bright bar (an opening mouth) moving 3 pixels a frame: no pixel is a one-frame extreme
        frames[t:, 20:30, 10 + 3 * t:13 + 3 * t] = 220
    assert np.array_equal(_run(frames, limit=255), frames)


def test_the_mouth_paste_leaves_the_upper_face():
    frames = _video().astype(np.int16)
    frames[3, 10:40, 10:38] += 40
    out = _run(frames.clip(0, 255).astype(np.uint8), paste="mouth")
    assert np.array_equal(out[3, 10:20], frames[3, 10:20])  # above the lower-face mask
    assert (out[3, 30:36, 18:30] < frames[3, 30:36, 18:30]).all()  # the lower face steadied


def test_batches_stream_like_one_call_and_every_frame_comes_out():
    g = np.random.default_rng(1)
    frames = (_video(11).astype(np.int16) + g.integers(-20, 20, (11, 48, 48, 3))).clip(0, 255).astype(np.uint8)
    whole = _run(frames)
    assert len(whole) == 11 and not np.array_equal(whole, frames)
    for batch in (1, 3, 4):
        assert np.array_equal(_run(frames, batch=batch), whole)


def test_frames_without_a_face_are_left_as_they_are():
    frames = _video().astype(np.int16)
    frames[3] += 30
    frames = frames.clip(0, 255).astype(np.uint8)
    filt = TemporalMedian("hard")
    boxes = np.repeat(BOX[None], 6, 0)
    boxes[3] = np.nan
    out = np.concatenate([filt.push(frames, boxes), filt.flush()])
    assert np.array_equal(out, frames)


def test_nothing_pushed_flushes_nothing():
    assert len(TemporalMedian("hard").flush()) == 0


def test_a_bad_limit_is_refused_and_off_is_none():
    assert temporal_median(False, "hard") is None
    for limit in (0, 256):
        with pytest.raises(InputError, match="temporal limit"):
            temporal_median(True, "hard", limit)


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
