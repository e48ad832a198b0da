"""The official Wav2Lip audio front end (80-bin log-mel, 80 steps/s at 16 kHz) and frame-aligned mel windows.

The numbers below are Wav2Lip's hparams/audio.py; the STFT pads in 'reflect' mode, the librosa<=0.8 default the
weights were trained with. The mel is computed once per clip; a 16-step window is cut from it per video frame.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import librosa
import numpy as np
import scipy.signal

from ladtalk.errors import InputError
from ladtalk.io.audio import SAMPLE_RATE

N_FFT = 800
HOP = 200
NUM_MELS = 80
FMIN, FMAX = 55.0, 7600.0
PREEMPHASIS = 0.97
MIN_LEVEL_DB, REF_LEVEL_DB = -100.0, 20.0
MAX_ABS = 4.0
MEL_STEPS_PER_SECOND = SAMPLE_RATE / HOP  # 80
WINDOW_STEPS = 16  # 0.2 s: five frames at 25 fps
STREAM_BLOCK_STEPS = 512  # melspectrogram_stream computes the mel once this many frames are buffered


@functools.lru_cache(maxsize=1)
def mel_basis() -> np.ndarray:
    """(80, 401) float32 Slaney mel filter bank of the official front end."""
    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=NUM_MELS, fmin=FMIN, fmax=FMAX).astype(np.float32)


def _mel_of(y: np.ndarray, center: bool = True) -> np.ndarray:
    """The normalised log-mel of pre-emphasised samples (centre-padded in 'reflect' mode unless `center` is off)."""
    spec = np.abs(librosa.stft(y=y, n_fft=N_FFT, hop_length=HOP, win_length=N_FFT, center=center, pad_mode="reflect"))
    db = 20.0 * np.log10(np.maximum(1e-5, np.dot(mel_basis(), spec))) - REF_LEVEL_DB
    norm = 2 * MAX_ABS * (db - MIN_LEVEL_DB) / (-MIN_LEVEL_DB) - MAX_ABS
    return np.clip(norm, -MAX_ABS, MAX_ABS).astype(np.float32)


def melspectrogram(wav: np.ndarray) -> np.ndarray:
    """16 kHz mono float waveform (N,) -> official Wav2Lip mel (80, 1 + N // 200) float32 in [-4, 4]."""
    wav = np.asarray(wav)
    if wav.ndim != 1:
        raise InputError(f"expected mono audio as a 1-D array, got shape {wav.shape}; mix down to mono first")
    if wav.size == 0:
        raise InputError("the audio is empty; give a clip of at least a few milliseconds")
    if len(wav) <= N_FFT // 2:
        # reflect padding needs more samples than half a window; such clips are too short to matter anyway
        raise InputError(f"the audio has {len(wav)} samples; at least {N_FFT // 2 + 1} (26 ms at 16 kHz) "
                         "are needed")
    y = scipy.signal.lfilter([1.0, -PREEMPHASIS], [1.0], wav.astype(np.float32, copy=False)).astype(np.float32)
    return _mel_of(y)


def melspectrogram_stream(blocks: Iterable[np.ndarray]) -> np.ndarray:
    """`melspectrogram` of the concatenated 16 kHz mono blocks (N_i,) to float32 rounding, computed block by block:
    memory holds one block and the mel (19 MB for 10 minutes), not the whole waveform and its spectrogram."""
    pad = N_FFT // 2
    # pre-emphasised samples not yet consumed by a whole frame, centre-padded once the first pad+1 samples (which
    # the reflected start needs) have arrived
    buf = np.zeros(0, np.float32)
    zi = np.zeros(1)  # lfilter's state: -PREEMPHASIS times the previous input sample
    total = 0
    mels: list[np.ndarray] = []

    def frames_of(x: np.ndarray, last: bool) -> np.ndarray:
        """Mel of every whole frame in x; returns the samples the next frame starts from."""
        count = 1 + (len(x) - N_FFT) // HOP if len(x) >= N_FFT else 0
        if last or count >= STREAM_BLOCK_STEPS:
            if count:
                mels.append(_mel_of(x[:(count - 1) * HOP + N_FFT], center=False))
            return x[count * HOP:]
        return x

    for block in blocks:
        x = np.asarray(block, np.float64).reshape(-1)
        if not len(x):
            continue
        y, zi = scipy.signal.lfilter([1.0, -PREEMPHASIS], [1.0], x, zi=zi)
        y = y.astype(np.float32)
        total += len(y)
        buf = np.concatenate([buf, y])
        if total <= pad:
            continue
        if total - len(y) <= pad:  # just started: np.pad's "reflect", the edge sample not repeated
            buf = np.concatenate([buf[pad:0:-1], buf])
        buf = frames_of(buf, last=False)
    if total <= pad:
        raise InputError(f"the audio has {total} samples; at least {pad + 1} (26 ms at 16 kHz) are needed")
    buf = np.concatenate([buf, buf[-2:-pad - 2:-1]])  # buf always keeps N_FFT - HOP > pad samples: enough
    frames_of(buf, last=True)
    return np.concatenate(mels, axis=1)


def frame_start(frame_index: int | np.ndarray, fps: float) -> np.ndarray | np.integer:
    """First mel step of video frame `frame_index` (int(i * 80 / fps), the official rounding)."""
    return (np.asarray(frame_index, np.float64) * (MEL_STEPS_PER_SECOND / fps)).astype(np.int64)


def mel_windows(mel: np.ndarray, fps: float, num_frames: int, first_frame: int = 0,
                offset_frames: int = 0) -> np.ndarray:
    """Mel (80, T) -> windows (num_frames, 1, 80, 16) float32 of frames first_frame... Frame i's window starts at
    int((i+offset_frames)*80/fps), clamped into the mel as the official inference does; `offset_frames` is the
    generator's training offset (-1 as the original trained, 0 the official inference)."""
    mel = np.asarray(mel, dtype=np.float32)
    if mel.ndim != 2 or mel.shape[0] != NUM_MELS:
        raise InputError(f"expected a mel of shape (80, T), got {mel.shape}")
    if mel.shape[1] < WINDOW_STEPS:  # shorter than one window (< 0.2 s): pad with the silence level
        mel = np.pad(mel, ((0, 0), (0, WINDOW_STEPS - mel.shape[1])), constant_values=-MAX_ABS)
    frames = np.arange(first_frame, first_frame + num_frames) + offset_frames
    starts = np.clip(frame_start(frames, fps), 0, mel.shape[1] - WINDOW_STEPS)
    idx = starts[:, None] + np.arange(WINDOW_STEPS)[None, :]
    return np.ascontiguousarray(mel[:, idx].transpose(1, 0, 2)[:, None])


def training_windows(mel: np.ndarray, fps: float, first_frame: int, count: int = 5,
                     offset_frames: int = -1) -> np.ndarray | None:
    """Per-frame training mels (count, 1, 80, 16) for frames first_frame.. (+offset_frames, official: -1), or None
    where a window leaves the clip, so the sampler draws again as the original does."""
    first = first_frame + offset_frames
    out = [sync_window(np.asarray(mel, dtype=np.float32), fps, f) for f in range(first, first + count)]
    return None if any(w is None for w in out) else np.stack(out)


def sync_window(mel: np.ndarray, fps: float, frame: int) -> np.ndarray | None:
    """The (1, 80, 16) mel window starting at video frame `frame`, or None if it leaves the clip."""
    start = frame_start(frame, fps)
    if frame < 0 or start + WINDOW_STEPS > mel.shape[1]:
        return None
    return mel[None, :, start:start + WINDOW_STEPS]
