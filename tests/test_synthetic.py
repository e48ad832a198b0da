"""The synthetic identity: seeded, speech-driven mouth with known truth, real and stable texture, files."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from _lipsync_fake import render_frames

from ladtalk.data.synthetic import (
    FaceRenderer,
    blink_track,
    head_motion,
    iter_render_frames,
    load_truth,
    mouth_openness,
    synth_speech,
    synthesize,
)
from ladtalk.errors import InputError

SR, FPS = 16000, 25.0


@pytest.fixture(scope="module")
def speech():
    audio, env = synth_speech(4.0, SR, seed=0)
    return audio, env, mouth_openness(env, SR, FPS, int(4.0 * FPS))


@pytest.fixture(scope="module")
def renderer256():
    return FaceRenderer(256, seed=0)


def _frame_rms(audio: np.ndarray, n: int) -> np.ndarray:
    hop = int(SR / FPS)
    return np.sqrt(np.mean(audio[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1))


def _lagged_corr(x: np.ndarray, y: np.ndarray, lag: int) -> float:
    """corr(x[k], y[k + lag])."""
    if lag >= 0:
        return float(np.corrcoef(x[: len(x) - lag], y[lag:])[0, 1])
    return float(np.corrcoef(x[-lag:], y[: len(y) + lag])[0, 1])


def _canonical(frame: np.ndarray, affine: np.ndarray, r: FaceRenderer) -> np.ndarray:
    """Undo the head motion: the frame resampled onto the renderer's head canvas."""
    return cv2.warpAffine(frame, cv2.invertAffineTransform(affine), (r.R, r.R), flags=cv2.INTER_LINEAR)


def test_speech_is_seeded_and_speech_like(speech):
    audio, env, _ = speech
    again, env2 = synth_speech(4.0, SR, seed=0)
    other, _ = synth_speech(4.0, SR, seed=1)
    assert audio.dtype == np.float32 and audio.shape == (4 * SR,) and env.shape == audio.shape
    np.testing.assert_array_equal(audio, again)
    np.testing.assert_array_equal(env, env2)
    assert np.abs(audio - other).mean() > 0.01
    assert np.abs(audio).max() <= 1.0 and 0.01 < np.sqrt(np.mean(audio ** 2)) < 0.3
    assert 0.0 <= env.min() and env.max() <= 1.0
    voiced = env > 0.05
    assert 0.3 < voiced.mean() < 0.85, "syllables and pauses both present"

    # Voiced parts: a pitch of 90-160 Hz (autocorrelation peak) and energy mostly below 4 kHz (formants).
    start = np.flatnonzero(np.diff(voiced.astype(int)) == 1)[0] + 1
    seg = audio[start + 400: start + 400 + 1024].astype(np.float64)
    ac = np.correlate(seg, seg, "full")[len(seg) - 1:]
    lag = np.argmax(ac[SR // 160: SR // 90]) + SR // 160
    assert 90 <= SR / lag <= 160
    spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg)))) ** 2
    freqs = np.fft.rfftfreq(len(seg), 1 / SR)
    assert spec[freqs < 4000].sum() > 0.9 * spec.sum()

    # Unvoiced consonants: loud stretches outside the vowels are noise with a high spectral centroid.
    frame_rms = np.sqrt(np.convolve(audio.astype(np.float64) ** 2, np.ones(320) / 320, "same"))
    burst = (frame_rms > 0.01) & (env == 0)
    assert burst.sum() > 0.02 * SR, "consonant bursts present"
    b = audio[burst].astype(np.float64)[: 4096]
    bspec = np.abs(np.fft.rfft(b)) ** 2
    centroid = (np.fft.rfftfreq(len(b), 1 / SR) * bspec).sum() / bspec.sum()
    assert centroid > 1500


def test_mouth_openness_follows_speech_with_zero_lag(speech):
    audio, _, openness = speech
    assert openness.shape == (100,) and openness.dtype == np.float32
    assert 0.0 <= openness.min() and openness.max() <= 1.0
    rms = _frame_rms(audio, len(openness))
    corr = {lag: _lagged_corr(openness, rms, lag) for lag in range(-3, 4)}
    assert corr[0] > 0.9, corr
    assert corr[0] == max(corr.values()), f"the best lag must be zero: {corr}"
    assert corr[0] - max(corr[-2], corr[2]) > 0.2, "a sharp peak: a lag of two frames is clearly worse"
    quiet = rms < 0.003  # pauses
    assert quiet.sum() >= 5 and openness[quiet].max() < 0.05, "the mouth is closed in pauses"
    assert openness.max() > 0.5, "and opens wide on loud vowels"


def test_tracks_are_seeded_smooth_and_small():
    m0, m1 = head_motion(250, FPS, seed=0), head_motion(250, FPS, seed=1)
    np.testing.assert_array_equal(m0, head_motion(250, FPS, seed=0))
    np.testing.assert_array_equal(m0[:100], head_motion(100, FPS, seed=0))  # a longer clip extends a shorter one
    assert not np.allclose(m0, m1)
    assert np.abs(m0[:, :2]).max() <= 0.015 and np.abs(m0[:, 2] - 1).max() <= 0.02 and np.abs(m0[:, 3]).max() <= 1.5
    assert np.abs(np.diff(m0[:, :2], axis=0)).max() < 0.002, "smooth: well under a pixel per frame at 256"
    blink = blink_track(250, FPS, seed=0)
    closed = blink > 0.9
    assert 1 <= np.sum(np.diff(closed.astype(int)) == 1) + closed[0] <= 6, "a blink every 2-5.5 s in 10 s"
    assert closed.mean() < 0.1 and blink.min() == 0.0


def test_render_is_deterministic_and_seeded():
    openness = np.linspace(0, 1, 6, dtype=np.float32)
    frames, boxes = render_frames(openness, size=128, seed=0, fps=FPS)
    again, boxes2 = render_frames(openness, size=128, seed=0, fps=FPS)
    other, _ = render_frames(openness, size=128, seed=1, fps=FPS)
    assert frames.shape == (6, 128, 128, 3) and frames.dtype == np.uint8 and boxes.shape == (6, 4)
    np.testing.assert_array_equal(frames, again)
    np.testing.assert_array_equal(boxes, boxes2)
    assert np.abs(frames.astype(np.int16) - other).mean() > 5
    streamed = [f for f, _ in iter_render_frames(openness, size=128, seed=0, fps=FPS)]
    np.testing.assert_array_equal(np.stack(streamed), frames)
    x1, y1, x2, y2 = boxes.T
    assert (x1 >= 0).all() and (y1 >= 0).all() and (x2 <= 128).all() and (y2 <= 128).all()
    assert ((x2 - x1) > 0.35 * 128).all() and ((y2 - y1) > 0.35 * 128).all()


def test_rendered_mouth_follows_openness(speech):
    """End to end: the dark mouth opening measured in the frames tracks the truth (and so the audio)."""
    _, _, openness = speech
    r = FaceRenderer(128, seed=0)
    motion = head_motion(len(openness), FPS, seed=0)
    g = r.geom
    y0, y1 = int((g.mouth_y - 0.03) * r.R), int((g.mouth_y + 0.07) * r.R)
    x0, x1 = int((g.cx - 0.07) * r.R), int((g.cx + 0.07) * r.R)
    dark = []
    for k, (frame, _) in enumerate(iter_render_frames(openness, 128, 0, FPS, motion=motion, renderer=r)):
        mouth = _canonical(frame, r.pose(*motion[k]), r)[y0:y1, x0:x1].astype(np.float32).mean(-1)
        dark.append((mouth < 0.4 * np.median(mouth)).sum())  # mouth interior, far darker than lips and skin
    dark = np.array(dark)
    assert np.corrcoef(dark, openness)[0, 1] > 0.85
    closed = dark[openness < 0.02]
    assert len(closed) >= 5 and closed.max() <= 1, "closed lips show no mouth interior"
    assert dark.max() > 15


def test_eyes_close_in_blinks(renderer256):
    r = renderer256
    pose = r.pose(0, 0, 1, 0)
    g = r.geom
    eyes = (slice(int((g.eye_y - 0.02) * r.R), int((g.eye_y + 0.015) * r.R)),
            slice(int((g.cx - g.eye_dx - g.eye_w) * r.R), int((g.cx + g.eye_dx + g.eye_w) * r.R)))
    white = []  # the whites of the eyes: bright and unsaturated, unlike skin
    for b in (0.0, 1.0):
        px = _canonical(r.render(0.0, b, pose), pose, r)[eyes].astype(np.float32)
        sat = (px.max(-1) - px.min(-1)) / np.maximum(px.max(-1), 1)
        white.append(int(((px.max(-1) > 120) & (sat < 0.2)).sum()))
    assert white[0] > 40 and white[1] < 0.1 * white[0], white


def test_texture_is_high_frequency_and_moves_with_the_head(renderer256):
    r = renderer256
    motion = head_motion(300, FPS, seed=0)
    far = int(np.argmax(np.linalg.norm(motion[:, :2] - motion[0, :2], axis=1)))
    a0, a1, a2 = (r.pose(*motion[k]) for k in (0, 1, far))
    f0, f1, f2 = (r.render(0.0, 0.0, a) for a in (a0, a1, a2))

    # Pores, freckles and grain: the Laplacian of a cheek (no edges of features in it) is far from flat.
    x1, y1, x2, y2 = r.face_box(0.0, a0).astype(int)
    w, h = x2 - x1, y2 - y1
    gray = cv2.cvtColor(f0, cv2.COLOR_RGB2GRAY).astype(np.float32)
    cheek = gray[y1 + int(0.45 * h): y1 + int(0.62 * h), x1 + int(0.1 * w): x1 + int(0.28 * w)]
    assert cheek.size > 200
    lap = cv2.Laplacian(cheek, cv2.CV_32F)
    assert lap.std() > 6.0, lap.std()
    assert lap.std() > 4 * cv2.Laplacian(cv2.GaussianBlur(cheek, (0, 0), 1.5), cv2.CV_32F).std()

    # Stable: after undoing the known head motion, the upper face of two frames is nearly the same,
    # although the raw frames differ a lot where the head moved by a few pixels.
    g = r.geom
    region = (slice(int((g.brow_y - 0.08) * r.R), int((g.mouth_y - 0.03) * r.R)),
              slice(int((g.cx - 0.15) * r.R), int((g.cx + 0.15) * r.R)))
    c0, c1, c2 = (_canonical(f, a, r)[region].astype(np.float32) for f, a in ((f0, a0), (f1, a1), (f2, a2)))
    raw = np.abs(f0.astype(np.float32) - f2)[y1:y2, x1:x2].mean()
    assert raw > 8
    assert np.abs(c0 - c1).mean() < 1.5
    assert np.abs(c0 - c2).mean() < 0.2 * raw
    relit = _canonical(FaceRenderer(256, seed=0).render(0.0, 0.0, a2), a2, r)[region].astype(np.float32)
    np.testing.assert_array_equal(relit, c2)  # a new renderer with the same seed draws the same texture


def test_synthesize_writes_video_audio_and_truth(tmp_path):
    from ladtalk.io.audio import load_audio
    from ladtalk.io.video import iter_frames as read_video
    from ladtalk.io.video import probe_video

    clip = synthesize(tmp_path / "syn", seconds=2.0, fps=FPS, size=128, seed=3)
    assert sorted(p.name for p in (tmp_path / "syn").iterdir()) == ["audio.wav", "truth.json", "video.mp4"]
    info = probe_video(clip.video_path)
    assert (info.width, info.height, info.frame_count, info.fps) == (128, 128, 50, 25.0)
    assert info.has_audio and abs(info.duration_seconds - 2.0) < 0.05
    audio = load_audio(clip.audio_path, SR)
    expected, env = synth_speech(2.0, SR, seed=3)
    assert len(audio) == 2 * SR and np.abs(audio - expected).max() < 2e-4  # 16-bit PCM
    truth = load_truth(clip.truth_path)
    assert truth["fps"] == 25.0 and truth["size"] == 128 and truth["seed"] == 3 and truth["n_frames"] == 50
    assert truth["face_boxes"].shape == (50, 4) and truth["blink"].shape == (50,)
    np.testing.assert_allclose(truth["mouth_openness"], mouth_openness(env, SR, FPS, 50), atol=1e-5)
    np.testing.assert_allclose(truth["face_boxes"], clip.boxes, atol=0.01)
    frames = np.stack(list(read_video(clip.video_path)))
    rendered, _ = render_frames(clip.mouth_openness[:5], size=128, seed=3, fps=FPS)
    assert np.abs(frames[:5].astype(np.float32) - rendered).mean() < 3, "H.264 at high quality"
    json.loads(clip.truth_path.read_text())  # plain JSON


def test_cli_synth_and_bad_input(tmp_path, capsys):
    from ladtalk.cli import main

    out = tmp_path / "cli"
    assert main(["synth", "-o", str(out), "--seconds", "1", "--size", "128", "--seed", "2"]) == 0
    assert load_truth(out / "truth.json")["n_frames"] == 25
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert main(["synth", "-o", str(blocker / "sub"), "--seconds", "1", "--size", "128"]) == 2
    assert "cannot write" in capsys.readouterr().err
    assert main(["synth", "-o", str(tmp_path / "odd"), "--seconds", "1", "--size", "127"]) == 2
    assert "even" in capsys.readouterr().err
    assert not (tmp_path / "odd").exists() or not any((tmp_path / "odd").iterdir())
    with pytest.raises(InputError, match="seconds"):
        synthesize(tmp_path / "zero", seconds=0.0)
    with pytest.raises(InputError, match="positive duration"):
        synth_speech(-1.0)
