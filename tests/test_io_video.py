"""Video I/O: round trips, exact fps, A/V sync, VFR resampling, bad input, atomic writing, real clips."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from ladtalk.errors import InputError, LadtalkError
from ladtalk.io.audio import load_audio
from ladtalk.io.video import (
    VideoInfo,
    VideoWriter,
    iter_frame_batches,
    iter_frames,
    probe_video,
    read_frames,
)

NTSC = 30000 / 1001


def _ramp_frames(n: int, h: int = 48, w: int = 64) -> np.ndarray:
    """Frame i is flat grey at 5*i: its index survives H.264 within +-2 grey levels."""
    return np.stack([np.full((h, w, 3), 5 * i + 10, np.uint8) for i in range(n)])


def _index_of(frame: np.ndarray) -> int:
    return int(round((float(frame.mean()) - 10) / 5))


def _only_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("fps", [25.0, NTSC, 30.0])
def test_round_trip_frame_count_fps_and_content(tmp_path, fps):
    out = tmp_path / "v.mp4"
    frames = _ramp_frames(40)
    with VideoWriter(out, fps, preset="ultrafast") as w:
        w.write(frames[:10])  # a batch
        for f in frames[10:]:
            w.write(f)  # single frames
    info = probe_video(out)
    assert isinstance(info, VideoInfo)
    assert (info.width, info.height, info.frame_count, info.codec) == (64, 48, 40, "h264")
    assert info.fps == pytest.approx(fps, abs=1e-9)
    assert info.duration_seconds == pytest.approx(40 / fps)
    assert not info.has_audio
    got = list(iter_frames(out))
    assert len(got) == 40 and got[0].dtype == np.uint8 and got[0].shape == (48, 64, 3)
    assert [_index_of(f) for f in got] == list(range(40))
    assert _only_files(tmp_path) == ["v.mp4"]


def test_colour_round_trip_is_unbiased(tmp_path):
    """RGB -> H.264 yuv420p -> RGB keeps colours: no systematic darkening (swscale's fast path loses 1.1 levels)."""
    yy, xx = np.mgrid[0:96, 0:128]
    # colours well inside the gamut, where chroma subsampling cannot clip
    base = np.stack([60 + xx, 50 + 1.2 * yy, 90 + (xx + yy) / 3], -1).astype(np.float64)
    frames = np.stack([np.clip(base + 3 * np.sin(k + xx / 7.0)[..., None], 0, 255) for k in range(6)]).astype(np.uint8)
    out = tmp_path / "c.mp4"
    with VideoWriter(out, 25, preset="ultrafast", crf=10) as w:
        w.write(frames)
    back = np.stack(list(iter_frames(out))).astype(np.float64)
    err = back - frames
    assert np.abs(err.mean(axis=(0, 1, 2))).max() < 0.5  # the default conversion: -0.9 to -1.4
    assert 10 * np.log10(255**2 / np.mean(err**2)) > 38


def test_ntsc_time_base_is_exact(tmp_path):
    out = tmp_path / "ntsc.mp4"
    with VideoWriter(out, NTSC, preset="ultrafast") as w:
        w.write(_ramp_frames(3))
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        assert s.average_rate == Fraction(30000, 1001)
        times = [f.pts * f.time_base for f in c.decode(s)]
    assert times == [Fraction(k * 1001, 30000) for k in range(3)]


def test_odd_size_is_padded_by_edge_pixels(tmp_path):
    out = tmp_path / "odd.mp4"
    rng = np.random.default_rng(0)
    frame = np.zeros((45, 63, 3), np.uint8)
    frame[:, :32] = 200  # left half bright, right dark: padding must copy the dark edge column
    frame += rng.integers(0, 3, frame.shape, dtype=np.uint8)
    with VideoWriter(out, 25, preset="ultrafast") as w:
        w.write(frame)
    info = probe_video(out)
    assert (info.width, info.height) == (64, 46)
    got = read_frames(out, [0])[0]
    assert np.abs(got[:45, :63].astype(int) - frame).mean() < 3
    assert got[:, 63].mean() < 20 and got[45, :30].mean() > 180


@pytest.mark.parametrize("fps,sample_rate", [(NTSC, 16000), (25.0, 48000)])
def test_audio_video_offset_under_one_frame(tmp_path, fps, sample_rate):
    """A flash frame and a click at the same instant come back at the same time in the written MP4."""
    out = tmp_path / "sync.mp4"
    n, flash = 75, 47
    audio = np.zeros(int(n / fps * sample_rate), np.float32)
    click = int(round(flash / fps * sample_rate))
    audio[click:click + sample_rate // 200] = 0.9
    frames = np.full((n, 32, 32, 3), 20, np.uint8)
    frames[flash] = 250
    with VideoWriter(out, fps, audio=audio, sample_rate=sample_rate, preset="ultrafast") as w:
        w.write(frames)
    info = probe_video(out)
    assert info.has_audio
    seen_flash = int(np.argmax([f.mean() for f in iter_frames(out)]))
    flash_t = seen_flash / info.fps
    back = load_audio(out, sample_rate=sample_rate)
    click_t = int(np.argmax(np.abs(back) > 0.3)) / sample_rate
    assert abs(click_t - flash_t) < 1 / fps
    assert abs(click_t - flash / fps) < 2e-3  # in fact sample-exact: the AAC priming delay is compensated
    assert len(back) == pytest.approx(len(audio), abs=16)  # the AAC encoder rounds the end up to 16 samples


def test_set_audio_before_first_write(tmp_path):
    out = tmp_path / "late.mp4"
    with VideoWriter(out, 25, preset="ultrafast") as w:
        w.set_audio(np.zeros((8000, 2), np.float32), 16000)
        w.write(_ramp_frames(13))
        with pytest.raises(LadtalkError, match="before the first write"):
            w.set_audio(np.zeros(100, np.float32), 16000)
    assert probe_video(out).has_audio
    assert len(load_audio(out)) == 8000


def _write_vfr(path: Path, times_ms: list[int]) -> None:
    """An H.264 MKV whose frame i (grey 5*i+10) is shown at times_ms[i]: a variable frame rate."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        s.codec_context.time_base = Fraction(1, 1000)
        s.options = {"preset": "ultrafast"}
        for i, t in enumerate(times_ms):
            f = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 5 * i + 10, np.uint8), format="rgb24")
            f.pts, f.time_base = t, Fraction(1, 1000)
            c.mux(s.encode(f))
        c.mux(s.encode(None))


def test_vfr_input_resampled_to_constant_fps(tmp_path):
    vfr = tmp_path / "vfr.mkv"
    times = [0, 33, 50, 120, 200, 210, 220, 400, 433]
    _write_vfr(vfr, times)
    assert len(list(iter_frames(vfr))) == len(times)
    got = [_index_of(f) for f in iter_frames(vfr, fps=25)]
    # output k at 40k ms shows the last input frame at or before it
    expected = [max(i for i, t in enumerate(times) if t <= 40 * k) for k in range(len(got))]
    assert got == expected
    assert 433 <= 40 * (len(got) - 1) < 433 + 80  # ends within the last frame's display time
    assert got[:11] == [0, 1, 2, 3, 3, 4, 6, 6, 6, 6, 7]


def test_resample_to_other_fps_and_identity(tmp_path):
    src = tmp_path / "v30.mp4"
    with VideoWriter(src, 30, preset="ultrafast") as w:
        w.write(_ramp_frames(45))
    got = [_index_of(f) for f in iter_frames(src, fps=25)]
    assert len(got) == 38  # ceil(1.5 s * 25)
    assert got == [int(np.floor(k * 30 / 25 + 1e-9)) for k in range(38)]
    same = [_index_of(f) for f in iter_frames(src, fps=30)]
    assert same == list(range(45))
    up = [_index_of(f) for f in iter_frames(src, fps=NTSC * 2)]
    assert len(up) == 90
    assert up[:6] == [0, 0, 1, 1, 2, 2]


def test_start_max_batches_and_random_access(tmp_path):
    src = tmp_path / "v.mp4"
    with VideoWriter(src, 25, preset="ultrafast") as w:
        w.write(_ramp_frames(23))
    assert [_index_of(f) for f in iter_frames(src, start_frame=5, max_frames=4)] == [5, 6, 7, 8]
    assert [_index_of(f) for f in iter_frames(src, fps=25, start_frame=20)] == [20, 21, 22]
    batches = list(iter_frame_batches(src, 10, start_frame=1))
    assert [b.shape for b in batches] == [(10, 48, 64, 3), (10, 48, 64, 3), (2, 48, 64, 3)]
    assert batches[0].dtype == np.uint8
    picked = read_frames(src, [7, 2, 7])
    assert picked.shape == (3, 48, 64, 3) and [_index_of(f) for f in picked] == [7, 2, 7]
    with pytest.raises(InputError, match="23 frames"):
        read_frames(src, [30])


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    pytest.skip("no /proc/self/status on this system to read the resident memory from")


def test_iteration_memory_is_flat(tmp_path):
    """240 frames of 224x224 would hold 35 MiB; iterating them must not grow the resident memory."""
    src = tmp_path / "long.mp4"
    pattern = np.random.default_rng(1).integers(0, 255, (4, 224, 224, 3), dtype=np.uint8)
    with VideoWriter(src, 25, preset="ultrafast") as w:
        for i in range(240):
            w.write(pattern[i % 4])
    # (PyAV's arrays are views of FFmpeg's buffers, which tracemalloc cannot see: measure RSS instead)
    rss = {}
    for i, frame in enumerate(iter_frames(src, fps=30)):
        assert frame.shape == (224, 224, 3)
        if i % 30 == 0:
            rss[i] = _rss_mib()
    assert i + 1 == 288
    growth = max(rss.values()) - rss[30]
    assert growth < 12, f"resident memory grew by {growth:.1f} MiB while iterating: {rss}"


# ---- bad input: each a clear InputError naming the problem -------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        probe_video(tmp_path / "nope.mp4")
    with pytest.raises(InputError, match="does not exist"):
        next(iter_frames(tmp_path / "nope.mp4"))


def test_not_a_media_file(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is a text file, not a video\n" * 50)
    with pytest.raises(InputError, match="not a media file"):
        probe_video(bad)
    with pytest.raises(InputError, match="not a media file"):
        list(iter_frames(bad))


def test_audio_only_file_has_no_video_stream(tmp_path):
    wav = tmp_path / "speech.m4a"
    with av.open(str(wav), "w") as c:
        s = c.add_stream("aac", rate=16000, layout="mono")
        f = av.AudioFrame.from_ndarray(np.zeros((1, 16000), np.float32), format="fltp", layout="mono")
        f.sample_rate, f.pts = 16000, 0
        c.mux(s.encode(f))
        c.mux(s.encode(None))
    with pytest.raises(InputError, match="has no video stream"):
        probe_video(wav)
    with pytest.raises(InputError, match="has no video stream"):
        list(iter_frames(wav))


def test_zero_frames(tmp_path):
    # MP4 drops an empty track altogether; MKV keeps the video track with no frames in it
    for name in ("empty.mp4", "empty.mkv"):
        path = tmp_path / name
        with av.open(str(path), "w") as c:
            v = c.add_stream("libx264", rate=25)
            v.width, v.height, v.pix_fmt = 32, 32, "yuv420p"
            a = c.add_stream("aac", rate=16000, layout="mono")
            f = av.AudioFrame.from_ndarray(np.zeros((1, 4096), np.float32), format="fltp", layout="mono")
            f.sample_rate, f.pts = 16000, 0
            c.mux(a.encode(f))
            c.mux(a.encode(None))
        with pytest.raises(InputError, match="zero video frames|has no video stream"):
            probe_video(path)
    with pytest.raises(InputError, match="zero video frames"):
        probe_video(tmp_path / "empty.mkv")
    with pytest.raises(InputError, match="zero decodable video frames"):
        list(iter_frames(tmp_path / "empty.mkv"))


def _noisy_clip(path: Path, n: int = 40) -> None:
    rng = np.random.default_rng(2)
    with VideoWriter(path, 25, audio=np.zeros(n * 640, np.float32), preset="ultrafast") as w:
        for _ in range(n):
            w.write(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))


def test_truncated_mp4_index_first(tmp_path):
    """Our writer puts the index first, so a cut file opens but is missing frames."""
    whole = tmp_path / "whole.mp4"
    _noisy_clip(whole)
    cut = tmp_path / "cut.mp4"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(InputError, match="truncated"):
        probe_video(cut)
    with pytest.raises(InputError, match=r"truncated.*frame \d+"):
        for _ in iter_frames(cut):
            pass


def test_truncated_mp4_index_last(tmp_path, may_video):
    """A camera/ffmpeg-style MP4 with its index at the end cannot even be opened once cut."""
    cut = tmp_path / "cut.mp4"
    data = may_video.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated or corrupt"):
        probe_video(cut)


# ---- the writer never leaves a partial file -----------------------------------------------------------


def test_exception_inside_writer_leaves_nothing(tmp_path):
    out = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(out, 25, audio=np.zeros(16000, np.float32)) as w:
            w.write(_ramp_frames(5))
            raise RuntimeError("boom")
    assert _only_files(tmp_path) == []


def test_bad_frames_and_empty_writer_leave_nothing(tmp_path):
    out = tmp_path / "out.mp4"
    with pytest.raises(InputError, match="uint8"):
        with VideoWriter(out, 25) as w:
            w.write(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(InputError, match="frame size changed"):
        with VideoWriter(out, 25) as w:
            w.write(np.zeros((8, 8, 3), np.uint8))
            w.write(np.zeros((10, 8, 3), np.uint8))
    with pytest.raises(LadtalkError, match="no frames"):
        with VideoWriter(out, 25):
            pass
    with pytest.raises(InputError, match=".mp4"):
        VideoWriter(tmp_path / "out.avi", 25)
    with pytest.raises(InputError, match="preset"):
        VideoWriter(out, 25, preset="quick")
    with pytest.raises(InputError, match="crf"):
        VideoWriter(out, 25, crf=70)
    with pytest.raises(InputError, match="fps"):
        VideoWriter(out, 0)
    with pytest.raises(InputError, match="non-empty"):
        VideoWriter(out, 25, audio=np.zeros(0, np.float32))
    assert _only_files(tmp_path) == []


def test_unwritable_folder(tmp_path):
    """The output's folder cannot be made (a file sits where it should be; this fails even for root)."""
    blocker = tmp_path / "out"
    blocker.write_text("a file, not a folder")
    with pytest.raises(InputError, match="cannot write"):
        with VideoWriter(blocker / "video.mp4", 25) as w:
            w.write(_ramp_frames(2))
    assert _only_files(tmp_path) == ["out"] and blocker.read_text() == "a file, not a folder"


def test_overwrite_is_atomic(tmp_path):
    out = tmp_path / "out.mp4"
    with VideoWriter(out, 25, preset="ultrafast") as w:
        w.write(_ramp_frames(4))
    before = out.read_bytes()
    with pytest.raises(RuntimeError):
        with VideoWriter(out, 25, preset="ultrafast") as w:
            w.write(_ramp_frames(9))
            raise RuntimeError("stopped")
    assert out.read_bytes() == before and _only_files(tmp_path) == ["out.mp4"]


# ---- the real clips in ../shared/data ---------------------------------------------------------------


def test_real_clip_macron(macron_video):
    info = probe_video(macron_video)
    assert (info.frame_count, info.fps, info.width, info.height) == (1510, 30.0, 512, 512)
    assert info.has_audio
    # its video starts 80 ms after its audio (50.426 s long): load_audio starts at the first frame
    assert len(load_audio(macron_video)) / 16000 == pytest.approx(50.426 - 0.08, abs=1e-3)
    first = next(iter_frame_batches(macron_video, 4))
    assert first.shape == (4, 512, 512, 3) and first.dtype == np.uint8 and 40 < first.mean() < 220


def test_real_clip_may(may_video):
    info = probe_video(may_video)
    assert (info.frame_count, info.fps, info.width, info.height) == (125, 25.0, 512, 512)
    assert sum(1 for _ in iter_frames(may_video)) == 125
    assert sum(1 for _ in iter_frames(may_video, fps=25)) == 125


def test_real_clip_obama(obama_video):
    info = probe_video(obama_video)
    assert (info.frame_count, info.width, info.height) == (144, 1280, 720)
    assert info.fps == pytest.approx(29.97, abs=1e-6)
    with av.open(str(obama_video)) as c:
        assert c.streams.audio[0].codec_context.name.startswith("mp3")
    audio = load_audio(obama_video)
    assert len(audio) / 16000 == pytest.approx(4.807, abs=0.01)
    assert 0.01 < np.sqrt(np.mean(audio**2)) < 0.5


def test_streamed_audio_is_written_whole_and_in_place(tmp_path):
    """set_audio_stream: stereo blocks of odd sizes, read as the video advances, give exactly the track that one
    whole array gives, at its own rate and with both channels."""
    rate, seconds = 44100, 2.0
    t = np.arange(int(rate * seconds)) / rate
    track = np.stack([0.4 * np.sin(2 * np.pi * 300 * t), 0.2 * np.sin(2 * np.pi * 500 * t)], 1).astype(np.float32)
    frames = np.zeros((50, 32, 32, 3), np.uint8)
    with VideoWriter(tmp_path / "stream.mp4", fps=25) as w:
        w.set_audio_stream(iter(np.split(track, [100, 5000, 5001, 40000, 70000])), rate, 2)
        w.write(frames[:1])
        w.write(frames[1:])
    with VideoWriter(tmp_path / "whole.mp4", fps=25, audio=track, sample_rate=rate) as w:
        w.write(frames)
    from ladtalk.io.audio import AudioInfo, iter_audio, probe_audio

    assert probe_audio(tmp_path / "stream.mp4") == AudioInfo(rate, 2)
    streamed = np.concatenate(list(iter_audio(tmp_path / "stream.mp4")))
    whole = np.concatenate(list(iter_audio(tmp_path / "whole.mp4")))
    assert abs(len(streamed) - len(track)) < 1024
    np.testing.assert_array_equal(streamed, whole)
    assert np.corrcoef(streamed[:, 0], streamed[:, 1])[0, 1] < 0.5  # two different channels, not a copy
