"""Audio from any container FFmpeg reads, as float32 mono at a chosen rate; 16-bit WAV writing, atomic.

For a video, sample 0 of `load_audio` is the instant of the first video frame, the origin `ladtalk.io.video`
measures frame times from: audio that starts earlier is cut, audio that starts later is preceded by silence,
so frame k and audio time k/fps belong together (the Macron clip's video starts 80 ms after its audio).
"""

from __future__ import annotations

import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ladtalk.errors import InputError
from ladtalk.io.atomic import atomic_path


def _open_audio(path: Path):
    if not path.exists():
        raise InputError(f"{path} does not exist. Check the path.")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not an audio or video file.")
    try:
        container = av.open(str(path), mode="r")
    except av.error.FFmpegError as e:
        raise InputError(f"{path} is not a media file FFmpeg can read, or it is truncated or corrupt "
                         f"({e.strerror or e}). Give an audio file (WAV, MP3, AAC, M4A, ...) or a video.") from e
    if not container.streams.audio:
        kinds = ", ".join(sorted({s.type for s in container.streams})) or "no streams"
        container.close()
        raise InputError(f"{path} has no audio stream (it contains: {kinds}). Give a file with sound.")
    return container


def _first_video_time(path: Path) -> Fraction | None:
    """Presentation time of the first video frame (decoded, so B-frame reordering is right), or None."""
    with av.open(str(path), mode="r") as container:
        videos = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
        if not videos:
            return None
        try:
            for frame in container.decode(videos[0]):
                if frame.pts is not None:
                    return frame.pts * frame.time_base
                return None
        except av.error.FFmpegError:
            return None  # a damaged video track is the video reader's to report; keep the audio as it is
    return None


def _decode_mono(path: Path) -> tuple[np.ndarray, int]:
    """float32 (N,) mono at the file's own rate; sample 0 at the first video frame when there is one."""
    with _open_audio(path) as container:
        origin = _first_video_time(path)
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate or stream.rate
        # Sample formats are scaled exactly in numpy (no swresample), and channels are averaged: the
        # downmix is a plain mean, never louder than the loudest channel, so it cannot clip.
        chunks: list[np.ndarray] = []
        first_time = None
        try:
            for frame in container.decode(stream):
                if first_time is None and frame.pts is not None:
                    first_time = frame.pts * frame.time_base
                arr = frame.to_ndarray()
                if frame.format.is_planar:
                    planes = arr
                else:  # packed: (1, N*C) interleaved
                    planes = arr.reshape(-1, len(frame.layout.channels)).T
                chunks.append(_to_float(planes, frame.format.name).mean(axis=0, dtype=np.float64)
                              .astype(np.float32))
        except av.error.FFmpegError as e:
            got = sum(len(c) for c in chunks) / max(rate, 1)
            raise InputError(f"{path}: decoding the audio failed after {got:.2f} s ({e.strerror or e}); the "
                             "file is truncated or corrupt. Re-encode or re-download it.") from e
        if not chunks:
            raise InputError(f"{path} has an audio stream with no samples. Give a file with sound.")
        samples = np.concatenate(chunks)
        if origin is None:
            origin = first_time if first_time is not None else Fraction(0)
        shift = int(round((first_time - origin) * rate)) if first_time is not None else 0
        if shift > 0:  # audio starts after the first video frame: keep it in place with silence
            samples = np.concatenate([np.zeros(shift, np.float32), samples])
        elif shift < 0:
            samples = samples[-shift:]
        if stream.duration:  # AAC decoders emit the encoder's padding to a whole 1024-sample frame: drop it
            end = ((stream.start_time or 0) + stream.duration) * stream.time_base - origin
            keep = int(round(end * rate))
            if 0 < keep < len(samples):
                samples = samples[:keep]
        return samples, int(rate)


def _to_float(planes: np.ndarray, fmt: str) -> np.ndarray:
    base = fmt.rstrip("p")
    if base == "u8":
        return (planes.astype(np.float32) - 128.0) / 128.0
    if base == "s16":
        return planes.astype(np.float32) / 32768.0
    if base == "s32":  # 24-bit PCM decodes left-aligned into s32
        return (planes.astype(np.float64) / 2147483648.0).astype(np.float32)
    if base == "s64":
        return (planes.astype(np.float64) / 9.223372036854775808e18).astype(np.float32)
    if base in ("flt", "dbl"):
        return planes.astype(np.float32)
    raise InputError(f"unsupported audio sample format {fmt!r}")


def load_audio(path: str | Path, sample_rate: int = 16000) -> np.ndarray:
    """float32 (N,) mono in [-1,1] at `sample_rate`, from any file with an audio stream (WAV, MP3, AAC, MP4)."""
    path = Path(path)
    if int(sample_rate) <= 0:
        raise InputError(f"sample_rate must be positive, got {sample_rate}")
    samples, rate = _decode_mono(path)
    bad = ~np.isfinite(samples)
    if bad.any():  # float WAVs can hold NaN/inf; resampling and the mel would turn them into a traceback
        first = int(np.argmax(bad.reshape(len(samples), -1).any(axis=1))) / rate
        raise InputError(f"{path} holds {int(bad.sum())} audio samples that are not numbers (NaN or infinite), the "
                         f"first at {first:.3f} s; the file is damaged or was written by a broken tool. Re-export it "
                         "(e.g. as 16-bit PCM WAV).")
    if rate != sample_rate:
        # soxr "HQ" (what librosa's res_type="soxr_hq" calls; soxr comes with librosa, and importing it
        # directly skips librosa's ~5 s scipy.signal import): linear phase, flat passband, a 9 kHz tone
        # taken from 48 to 16 kHz aliases below -140 dB. FFmpeg's default swr filter leaks it at -62 dB
        # and already dips 0.4 dB at 7 kHz.
        import soxr

        samples = soxr.resample(samples, rate, int(sample_rate), quality="HQ")
    return np.clip(samples, -1.0, 1.0).astype(np.float32, copy=False)


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write float (N,) mono in [-1,1] (or int16) as 16-bit PCM WAV, atomically (clipped, rounded)."""
    a = np.asarray(samples)
    if a.ndim == 2 and 1 in a.shape:
        a = a.reshape(-1)
    if a.ndim != 1:
        raise InputError(f"write_wav takes mono (N,) samples, got shape {a.shape}")
    if int(sample_rate) <= 0:
        raise InputError(f"sample_rate must be positive, got {sample_rate}")
    if a.dtype == np.int16:
        pcm = a
    else:
        pcm = np.round(np.clip(a.astype(np.float64), -1.0, 1.0) * 32767.0).astype(np.int16)
    try:
        with atomic_path(path) as tmp, wave.open(str(tmp), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(int(sample_rate))
            w.writeframes(pcm.astype("<i2").tobytes())
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}. Choose a folder you can write to.") from e


def audio_duration_seconds(path: str | Path) -> float:
    """Seconds of audio `load_audio` returns (from the header when it knows the length, else by decoding)."""
    path = Path(path)
    with _open_audio(path) as container:
        stream = container.streams.audio[0]
        if stream.duration is not None and stream.time_base is not None:
            start = (stream.start_time or 0) * stream.time_base
            origin = _first_video_time(path)
            return float(start + stream.duration * stream.time_base - (start if origin is None else origin))
    samples, rate = _decode_mono(path)
    return len(samples) / rate


__all__ = ["audio_duration_seconds", "load_audio", "write_wav"]
