"""Audio I/O: every common format to 16 kHz mono float32, resampling quality, WAV writing, bad input."""

from __future__ import annotations

import wave
from pathlib import Path

import av
import numpy as np
import pytest

from ladtalk.errors import InputError
from ladtalk.io import audio as audio_module
from ladtalk.io.audio import (
    AudioInfo,
    iter_audio,
    load_audio,
    mux_format,
    probe_audio,
    write_wav,
)
from ladtalk.io.video import VideoWriter


def _sine(freq: float, sample_rate: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _encode(path: Path, codec: str, channels: np.ndarray, sample_rate: int) -> None:
    """Write float (C,N) planar audio with any FFmpeg encoder (it converts to the codec's sample format)."""
    layout = "mono" if channels.shape[0] == 1 else "stereo"
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=sample_rate, layout=layout)
        step = 4096
        for start in range(0, channels.shape[1], step):
            f = av.AudioFrame.from_ndarray(np.ascontiguousarray(channels[:, start:start + step]), format="fltp",
                                           layout=layout)
            f.sample_rate, f.pts = sample_rate, start
            c.mux(s.encode(f))
        c.mux(s.encode(None))


def _peak_hz(x: np.ndarray, sample_rate: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sample_rate)[np.argmax(spec)])


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


@pytest.mark.parametrize("codec,tol", [("pcm_u8", 1e-2), ("pcm_s16le", 1e-4), ("pcm_s24le", 1e-6),
                                       ("pcm_s32le", 1e-6), ("pcm_f32le", 1e-6), ("pcm_f64le", 1e-6)])
def test_wav_sample_formats_load_exactly(tmp_path, codec, tol):
    x = _sine(440, 16000, 0.5)
    path = tmp_path / "a.wav"
    _encode(path, codec, x[None], 16000)
    y = load_audio(path)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.abs(y - x).max() < tol  # no resampling at 16 kHz: only the sample format changes


def test_int16_scaling_is_exact(tmp_path):
    pcm = np.array([-32768, -16384, 0, 1, 16384, 32767] * 100, np.int16)
    path = tmp_path / "s16.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    np.testing.assert_array_equal(load_audio(path), pcm.astype(np.float32) / 32768)


@pytest.mark.parametrize("name,codec,rate", [("a.mp3", "libmp3lame", 48000), ("a.m4a", "aac", 48000),
                                             ("a.aac", "aac", 44100), ("a.wav", "pcm_s16le", 22050)])
def test_compressed_stereo_any_rate_to_16k_mono(tmp_path, name, codec, rate):
    left, right = _sine(1000, rate, 2.0, 0.4), _sine(1000, rate, 2.0, 0.2)
    path = tmp_path / name
    _encode(path, codec, np.stack([left, right]), rate)
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    # raw ADTS .aac has no edit list, so its 1024 priming samples stay; its header duration is a guess
    assert len(y) / 16000 == pytest.approx(2.0, abs=0.07)
    assert _peak_hz(y[4000:-4000], 16000) == pytest.approx(1000, abs=2)
    # the mean of the two channels (0.3 peak); LAME's output runs 0.45 dB low
    assert _rms(y[4000:-4000]) == pytest.approx(0.3 / np.sqrt(2), rel=0.07)


def test_stereo_downmix_is_channel_mean(tmp_path):
    x = _sine(300, 16000, 0.25)
    path = tmp_path / "phase.wav"
    _encode(path, "pcm_f32le", np.stack([x, -x]), 16000)
    assert np.abs(load_audio(path)).max() < 1e-6


@pytest.mark.parametrize("rate", [48000, 44100, 8000])
def test_resampling_keeps_frequency_and_level(tmp_path, rate):
    x = _sine(1000, rate, 1.0)
    path = tmp_path / "tone.wav"
    _encode(path, "pcm_f32le", x[None], rate)
    y = load_audio(path)
    assert len(y) == 16000
    mid = y[2000:-2000]
    assert _peak_hz(mid, 16000) == pytest.approx(1000, abs=1)
    assert 20 * np.log10(_rms(mid) / (0.5 / np.sqrt(2))) == pytest.approx(0, abs=0.01)  # within 0.01 dB
    # everything that is not the 1 kHz tone (noise, images, distortion) is far below it
    t = np.arange(len(mid)) / 16000
    fit = np.linalg.lstsq(np.stack([np.sin(2 * np.pi * 1000 * t), np.cos(2 * np.pi * 1000 * t)], 1), mid,
                          rcond=None)[0]
    residual = mid - fit[0] * np.sin(2 * np.pi * 1000 * t) - fit[1] * np.cos(2 * np.pi * 1000 * t)
    assert 20 * np.log10(_rms(residual) / _rms(mid)) < -90


def test_resampling_rejects_aliasing(tmp_path):
    """A 9 kHz tone at 48 kHz lies above the 8 kHz Nyquist of 16 kHz: it must vanish, not fold to 7 kHz."""
    x = _sine(9000, 48000, 1.0)
    path = tmp_path / "hi.wav"
    _encode(path, "pcm_f32le", x[None], 48000)
    y = load_audio(path)[2000:-2000]
    assert 20 * np.log10(_rms(y) / _rms(x) + 1e-30) < -100


def test_audio_track_of_an_mp4(tmp_path):
    x = _sine(700, 48000, 1.2, 0.3)
    video = tmp_path / "v.mp4"
    with VideoWriter(video, 25, audio=x, sample_rate=48000, preset="ultrafast") as w:
        w.write(np.zeros((30, 16, 16, 3), np.uint8))
    y = load_audio(video)
    assert len(y) == pytest.approx(1.2 * 16000, abs=2)
    assert _peak_hz(y[2000:-2000], 16000) == pytest.approx(700, abs=2)


def test_late_audio_stream_keeps_its_place_on_the_timeline(tmp_path):
    """AAC audio that starts 0.2 s after the first video frame is preceded by 0.2 s of silence."""
    path = tmp_path / "late.mp4"
    x = _sine(500, 16000, 0.5)
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 16, 16, "yuv420p"
        a = c.add_stream("aac", rate=16000, layout="mono")
        for i in range(10):
            f = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
            f.pts = i
            c.mux(v.encode(f))
        for k in range(0, len(x), 1024):
            af = av.AudioFrame.from_ndarray(x[None, k:k + 1024].copy(), format="fltp", layout="mono")
            af.sample_rate, af.pts = 16000, 3200 + k
            c.mux(a.encode(af))
        c.mux(a.encode(None))
        c.mux(v.encode(None))
    y = load_audio(path)
    onset = int(np.argmax(np.abs(y) > 0.05))
    assert onset == pytest.approx(3200, abs=8)
    assert len(y) == pytest.approx(3200 + len(x), abs=16)


def test_write_wav_round_trip_and_atomic(tmp_path):
    x = _sine(440, 16000, 0.3)
    out = tmp_path / "o.wav"
    write_wav(out, x, 16000)
    with wave.open(str(out)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (1, 2, 16000, len(x))
    assert np.abs(load_audio(out) - x).max() < 1 / 32767
    write_wav(out, np.full(10, 3.0), 16000)  # clipped, and the old file replaced
    assert load_audio(out).max() == pytest.approx(32767 / 32768)
    with pytest.raises(InputError, match="mono"):
        write_wav(tmp_path / "bad.wav", np.zeros((100, 3)), 16000)
    (tmp_path / "blocker").write_text("a file where a folder should be")
    with pytest.raises(InputError, match="cannot write"):
        write_wav(tmp_path / "blocker" / "a.wav", x, 16000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "o.wav"]


def test_bad_input(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_audio(tmp_path / "missing.wav")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"\x00\x01definitely not audio" * 40)
    with pytest.raises(InputError, match="not a media file"):
        load_audio(junk)
    silent_video = tmp_path / "silent.mp4"
    with VideoWriter(silent_video, 25, preset="ultrafast") as w:
        w.write(np.zeros((5, 16, 16, 3), np.uint8))
    with pytest.raises(InputError, match="has no audio stream"):
        load_audio(silent_video)
    with pytest.raises(InputError, match="folder"):
        load_audio(tmp_path)


def test_real_wavs(fixtures_dir):
    from conftest import shared_file

    stereo48 = shared_file("data/audio/fr_macron_speech_12s_genefacepp.wav")
    y = load_audio(stereo48)
    assert len(y) / 16000 == pytest.approx(11.861, abs=0.01)
    assert 0.01 < _rms(y) < 0.5 and np.abs(y).max() <= 1.0
    de = load_audio(fixtures_dir / "speech_de_16k_mono.wav")
    assert len(de) / 16000 == pytest.approx(8.7, abs=0.1)


def test_streamed_audio_keeps_channels_rate_and_matches_the_whole_load(tmp_path, monkeypatch):
    """iter_audio: stereo 44.1 kHz stays stereo 44.1 kHz, block by block; the 16 kHz mono stream equals load_audio."""
    left, right = _sine(440, 44100, 3.0), _sine(660, 44100, 3.0, amp=0.2)
    path = tmp_path / "stereo.wav"
    _encode(path, "pcm_s16le", np.stack([left, right]), 44100)
    assert probe_audio(path) == AudioInfo(44100, 2)
    monkeypatch.setattr(audio_module, "BLOCK_SECONDS", 0.25)
    blocks = list(iter_audio(path))
    assert len(blocks) > 4 and all(b.ndim == 2 and b.shape[1] == 2 for b in blocks)
    both = np.concatenate(blocks)
    np.testing.assert_allclose(both[:, 0], left, atol=1e-4)
    np.testing.assert_allclose(both[:, 1], right, atol=1e-4)
    monkeypatch.setattr(audio_module, "BLOCK_SECONDS", 0.3)
    mono16 = np.concatenate(list(iter_audio(path, 16000, 1)))[:, 0]
    whole = load_audio(path, 16000)
    assert abs(len(mono16) - len(whole)) <= 1
    n = min(len(mono16), len(whole))
    np.testing.assert_allclose(mono16[:n], whole[:n], atol=2e-3)


def test_mux_format_keeps_what_aac_can_carry():
    assert mux_format(AudioInfo(44100, 2)) == AudioInfo(44100, 2)
    assert mux_format(AudioInfo(16000, 1)) == AudioInfo(16000, 1)
    assert mux_format(AudioInfo(44000, 2)) == AudioInfo(44100, 2)  # not an AAC rate: the closest one
    assert mux_format(AudioInfo(192000, 2)).sample_rate == 96000
    assert mux_format(AudioInfo(48000, 6)) == AudioInfo(48000, 1)  # 5.1: the mean, as the mel uses
