"""Audio from any container FFmpeg reads, as float32 mono at a chosen rate; 16-bit WAV writing, atomic.

For a video, sample 0 is the instant of the first video frame (audio before it is cut, a late start is preceded by
silence), so frame k and audio time k/fps belong together (the Macron clip's video starts 80 ms after its audio).
"""

from __future__ import annotations

import itertools
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ladtalk.errors import InputError
from ladtalk.io.atomic import atomic_path

SAMPLE_RATE = 16000  # of all audio the models hear: Wav2Lip's mel, the identity folders, the driving speech
BLOCK_SECONDS = 1.0  # iter_audio's blocks are at least this long, but the last


def open_media(path: Path, what: str, give: str) -> av.container.InputContainer:
    """`path` opened for reading, or an InputError that names the problem (`what` it is not, what to `give`)."""
    if not path.exists():
        raise InputError(f"{path} does not exist. Check the path.")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not {what}.")
    try:
        return av.open(str(path), mode="r")
    except av.error.FFmpegError as e:
        raise InputError(f"{path} is not a media file FFmpeg can read, or it is truncated or corrupt "
                         f"({e.strerror or e}). {give}") from e


def _open_audio(path: Path):
    container = open_media(path, "an audio or video file", "Give an audio file (WAV, MP3, AAC, M4A, ...) or a video.")
    if not container.streams.audio:
        kinds = ", ".join(sorted({s.type for s in container.streams})) or "no streams"
        container.close()
        raise InputError(f"{path} has no audio stream (it contains: {kinds}). Give a file with sound.")
    return container


def _first_video_time(path: Path) -> Fraction | None:
    """Presentation time of the first video frame (decoded, so B-frame reordering is right), or None."""
    with av.open(str(path), mode="r") as container:
        videos = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
        try:
            frame = next(container.decode(videos[0]), None) if videos else None
        except av.error.FFmpegError:
            return None  # a damaged video track is the video reader's to report; keep the audio as it is
    return None if frame is None or frame.pts is None else frame.pts * frame.time_base


@dataclass(frozen=True)
class AudioInfo:
    """What `probe_audio` learns about a file's first audio stream."""

    sample_rate: int
    channels: int


def probe_audio(path: str | Path) -> AudioInfo:
    """Sample rate and channel count of the first audio stream (InputError when there is none)."""
    path = Path(path)
    with _open_audio(path) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate or stream.rate
        channels = stream.codec_context.channels or len(stream.layout.channels)
        if not rate or not channels:
            raise InputError(f"{path}: the audio stream has no sample rate or channel count; the file is corrupt.")
        return AudioInfo(int(rate), int(channels))


def _decode_aligned(path: Path) -> Iterator[np.ndarray]:
    """float32 (C,N) blocks at the file's own rate, sample 0 at the first video frame when there is one."""
    with _open_audio(path) as container:
        origin = _first_video_time(path)
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate or stream.rate
        emitted = 0
        pos = limit = None  # pos: where the next decoded sample falls, counted from the origin
        try:
            for frame in container.decode(stream):
                arr = frame.to_ndarray()
                if not frame.format.is_planar:  # packed: (1, N*C) interleaved
                    arr = arr.reshape(-1, len(frame.layout.channels)).T
                planes = _to_float(arr, frame.format.name)
                if pos is None:  # a first frame without a timestamp starts at the origin
                    first_time = (origin or Fraction(0)) if frame.pts is None else frame.pts * frame.time_base
                    origin = first_time if origin is None else origin
                    pos = int(round((first_time - origin) * rate))
                    if stream.duration:  # AAC decoders emit the encoder's padding to a whole 1024-sample frame
                        end = ((stream.start_time or 0) + stream.duration) * stream.time_base - origin
                        limit = max(0, int(round(end * rate))) or None
                    if pos > 0:  # audio starts after the first video frame: keep it in place with silence
                        yield np.zeros((len(planes), pos), np.float32)
                        emitted += pos
                n = planes.shape[1]
                # samples before the origin are cut, and those past the stream's end
                planes = planes[:, max(0, -pos):n if limit is None else max(0, limit - pos)]
                pos += n
                if planes.shape[1]:
                    yield planes
                    emitted += planes.shape[1]
                if limit is not None and emitted >= limit:
                    break
        except av.error.FFmpegError as e:
            raise InputError(f"{path}: decoding the audio failed after {emitted / max(rate, 1):.2f} s "
                             f"({e.strerror or e}); the file is truncated or corrupt. Re-encode or re-download "
                             "it.") from e
        if not emitted:
            raise InputError(f"{path} has an audio stream with no samples. Give a file with sound.")


# the sample rates an AAC track can carry (ISO 14496-3 sampling frequency index)
AAC_SAMPLE_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)


def mux_format(info: AudioInfo) -> AudioInfo:
    """The format the driving audio keeps in an output MP4: its own rate where AAC allows it (else the closest
    AAC rate), its own channels when mono or stereo (more are averaged to mono, as the mel does)."""
    rate = min(AAC_SAMPLE_RATES, key=lambda r: (abs(r - info.sample_rate), -r))
    return AudioInfo(rate, info.channels if info.channels <= 2 else 1)


def iter_audio(path: str | Path, sample_rate: int | None = None, channels: int | None = None) -> Iterator[np.ndarray]:
    """Stream the audio as float32 (N,C) blocks in [-1,1], at `sample_rate` (default: its own) with `channels`
    (default: its own; 1 averages the channels, 2 from mono repeats it); memory stays flat in its length."""
    path = Path(path)
    info = probe_audio(path)
    rate = int(sample_rate or info.sample_rate)
    channels = int(channels or info.channels)
    if rate <= 0 or channels not in (1, info.channels) and not (channels == 2 and info.channels == 1):
        raise InputError(f"{path} has {info.channels} audio channels; iter_audio keeps them, averages them to 1 "
                         f"or repeats mono as stereo, at a positive rate (asked: {channels} at {rate} Hz)")
    resampler = None
    if rate != info.sample_rate:
        import soxr  # the same filter as load_audio, fed block by block

        resampler = soxr.ResampleStream(info.sample_rate, rate, channels, dtype="float32", quality="HQ")
    pending: list[np.ndarray] = []
    seen = flushed = 0
    block = int(BLOCK_SECONDS * info.sample_rate)
    for planes in itertools.chain(_decode_aligned(path), [None]):  # None: the end, where the resampler flushes
        if planes is not None:
            if not np.isfinite(planes).all():
                first = seen + int(np.argmax(~np.isfinite(planes).all(axis=0)))
                raise _not_numbers(path, first / info.sample_rate)
            seen += planes.shape[1]
            pending.append(planes)
            if seen - flushed < block:
                continue
        x = np.concatenate(pending, axis=1) if pending else np.zeros((info.channels, 0), np.float32)
        if channels != len(x):
            x = np.repeat(x, channels, axis=0) if len(x) == 1 else x.mean(axis=0, keepdims=True)
        x = np.ascontiguousarray(x.T, dtype=np.float32)
        if resampler is not None:
            x = resampler.resample_chunk(x, last=planes is None).reshape(-1, channels)
        pending, flushed = [], seen
        if len(x):
            yield np.clip(x, -1.0, 1.0)


def _not_numbers(path: Path, first: float, what: str = "audio samples") -> InputError:
    """The error for NaN or infinite samples (float WAVs can hold them; resampling and the mel would turn them
    into a traceback), the first at `first` seconds."""
    return InputError(f"{path} holds {what} that are not numbers (NaN or infinite), the first at {first:.3f} s; "
                      "the file is damaged or was written by a broken tool. Re-export it (e.g. as 16-bit PCM WAV).")


def _to_float(planes: np.ndarray, fmt: str) -> np.ndarray:
    base = fmt.rstrip("p")
    if base in ("flt", "dbl"):
        return planes.astype(np.float32)
    if base == "u8":
        return (planes.astype(np.float32) - 128.0) / 128.0
    bits = {"s16": 15, "s32": 31, "s64": 63}.get(base)  # 24-bit PCM decodes left-aligned into s32
    if bits is None:
        raise InputError(f"unsupported audio sample format {fmt!r}")
    return (planes.astype(np.float64) / 2.0 ** bits).astype(np.float32)  # a power of two: exact


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """float32 (N,) mono in [-1,1] at `sample_rate`, from any file with an audio stream (WAV, MP3, AAC, MP4)."""
    path = Path(path)
    if int(sample_rate) <= 0:
        raise InputError(f"sample_rate must be positive, got {sample_rate}")
    rate = probe_audio(path).sample_rate
    # Sample formats are scaled exactly in numpy (no swresample), and channels are averaged: the
    # downmix is a plain mean, never louder than the loudest channel, so it cannot clip.
    samples = np.concatenate([b.mean(axis=0, dtype=np.float64).astype(np.float32) for b in _decode_aligned(path)])
    bad = ~np.isfinite(samples)
    if bad.any():
        raise _not_numbers(path, int(np.argmax(bad)) / rate, f"{int(bad.sum())} audio samples")
    if rate != sample_rate:
        # soxr "HQ" (librosa's "soxr_hq", without librosa's slow import): a 9 kHz tone taken from 48 to 16 kHz
        # aliases below -140 dB, where FFmpeg's default swr filter leaks it at -62 dB and dips 0.4 dB at 7 kHz.
        import soxr

        samples = soxr.resample(samples, rate, int(sample_rate), quality="HQ")
    return np.clip(samples, -1.0, 1.0).astype(np.float32, copy=False)


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write float (N,) mono in [-1,1] as 16-bit PCM WAV, atomically (clipped, rounded)."""
    a = np.asarray(samples)
    if a.ndim == 2 and 1 in a.shape:
        a = a.reshape(-1)
    if a.ndim != 1:
        raise InputError(f"write_wav takes mono (N,) samples, got shape {a.shape}")
    if int(sample_rate) <= 0:
        raise InputError(f"sample_rate must be positive, got {sample_rate}")
    pcm = np.round(np.clip(a.astype(np.float64), -1.0, 1.0) * 32767.0).astype(np.int16)
    try:
        with atomic_path(path) as tmp, wave.open(str(tmp), "wb") as w:
            w.setparams((1, 2, int(sample_rate), len(pcm), "NONE", "not compressed"))  # mono, 16-bit
            w.writeframes(pcm.astype("<i2").tobytes())
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}. Choose a folder you can write to.") from e
