"""The Wav2Lip mel matches the official front end's output and its windows follow the official alignment."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io.wavfile
from conftest import shared_file

from ladtalk.errors import InputError
from ladtalk.features import mel as mel_module
from ladtalk.features.mel import (
    mel_windows,
    melspectrogram,
    melspectrogram_stream,
    sync_window,
    training_windows,
)


@pytest.fixture(scope="module")
def speech():
    sr, pcm = scipy.io.wavfile.read(shared_file("fixtures/speech_de_16k_mono.wav"))
    assert sr == 16000 and pcm.dtype == np.int16
    return pcm.astype(np.float32) / 32768.0


def test_mel_matches_official_reference(speech):
    ref = np.load(shared_file("fixtures/speech_de_16k_mono.wav2lip_mel.npy"))
    mel = melspectrogram(speech)
    assert mel.shape == ref.shape == (80, 1 + len(speech) // 200)
    assert mel.dtype == np.float32
    assert np.abs(mel - ref).max() < 1e-4


def test_silence_is_floor_and_short_audio_rejected():
    assert np.all(melspectrogram(np.zeros(16000, np.float32)) == -4.0)
    with pytest.raises(InputError, match="samples"):
        melspectrogram(np.zeros(100, np.float32))
    with pytest.raises(InputError, match="mono"):
        melspectrogram(np.zeros((2, 1000), np.float32))


def _official_chunks(mel: np.ndarray, fps: float) -> list[np.ndarray]:
    # the loop of the official inference, written out in full as the specification
    chunks, i, step = [], 0, 80.0 / fps
    while True:
        start = int(i * step)
        if start + 16 > mel.shape[1]:
            chunks.append(mel[:, mel.shape[1] - 16:])
            return chunks
        chunks.append(mel[:, start:start + 16])
        i += 1


@pytest.mark.parametrize("fps", [25.0, 29.97003, 30.0, 24.0, 60.0, 12.5])
def test_windows_follow_official_inference(fps):
    mel = np.random.default_rng(0).standard_normal((80, 237)).astype(np.float32)
    want = _official_chunks(mel, fps)
    got = mel_windows(mel, fps, len(want))
    assert got.shape == (len(want), 1, 80, 16)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g[0], w)
    # asking for more frames clamps every extra window to the end
    longer = mel_windows(mel, fps, num_frames=len(want) + 7)
    np.testing.assert_array_equal(longer[-1, 0], mel[:, -16:])
    # a chunk of frames equals the same rows of the whole
    np.testing.assert_array_equal(mel_windows(mel, fps, num_frames=9, first_frame=len(want) - 4), longer[-11:-2])


def test_short_mel_is_padded_with_silence():
    w = mel_windows(np.zeros((80, 5), np.float32), 25.0, num_frames=3)
    assert w.shape == (3, 1, 80, 16)
    assert np.all(w[:, :, :, 5:] == -4.0)


def test_training_windows_start_one_frame_early():
    mel = np.arange(80 * 200, dtype=np.float32).reshape(80, 200)
    w = training_windows(mel, 25.0, first_frame=10)
    assert w.shape == (5, 1, 80, 16)
    for k in range(5):
        start = int(80 * (10 + k - 1) / 25)
        np.testing.assert_array_equal(w[k, 0], mel[:, start:start + 16])
    assert training_windows(mel, 25.0, first_frame=0) is None  # frame -1 does not exist
    assert training_windows(mel, 25.0, first_frame=58) is None  # runs past the end
    np.testing.assert_array_equal(sync_window(mel, 30.0, 7)[0], mel[:, 18:34])


def test_streamed_mel_equals_the_whole_one(monkeypatch):
    """melspectrogram_stream over blocks of any size (shorter than a frame, across the reflected ends) equals the
    mel of the whole waveform."""
    rng = np.random.default_rng(3)
    monkeypatch.setattr(mel_module, "STREAM_BLOCK_STEPS", 5)
    for n in (401, 1000, 16000 * 3 + 77):
        wav = (0.1 * rng.standard_normal(n)).astype(np.float32)
        blocks = np.split(wav, np.sort(rng.integers(0, n, 6)))
        streamed = melspectrogram_stream(blocks)
        whole = melspectrogram(wav)
        assert streamed.shape == whole.shape
        np.testing.assert_allclose(streamed, whole, atol=1e-5)
    with pytest.raises(InputError, match="at least 401"):
        melspectrogram_stream([np.zeros(200, np.float32), np.zeros(200, np.float32)])


def test_mel_windows_follow_the_generators_training_offset():
    """A generator trained as the original is (frame i paired with frame i-1's mel) is fed the same at inference:
    offset -1 gives frame i the window frame i-1 had, and the first frame the clip's first window."""
    mel = np.random.default_rng(0).standard_normal((80, 400)).astype(np.float32)
    plain = mel_windows(mel, 25.0, 20)
    shifted = mel_windows(mel, 25.0, 20, offset_frames=-1)
    np.testing.assert_array_equal(shifted[1:], plain[:-1])
    np.testing.assert_array_equal(shifted[0], plain[0])
    # a streamed chunk agrees with the whole
    np.testing.assert_array_equal(mel_windows(mel, 25.0, 5, first_frame=7, offset_frames=-1), shifted[7:12])
