"""bench/generate.py's memory figures are each run's own: a child spawned by a process holding 300 MB reports its
own peak, not the parent's (getrusage's ru_maxrss carries the parent's high-water mark across fork+exec on Linux,
which once made 10 minutes of audio look like 1.5x the memory of 40 s); the long test audio is the clip's track
repeated exactly."""

from __future__ import annotations

import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import generate as bench  # noqa: E402


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="VmHWM is Linux's")
def test_child_peak_memory_is_its_own():
    held = np.ones(300 * 2**20 // 8)  # 300 MB touched in this process before spawning
    code = f"import sys; sys.path.insert(0, {str(BENCH)!r}); import generate; print(generate.peak_rss_mib())"
    child_peak = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                      check=True).stdout)
    assert held.sum() > 0 and child_peak < 200  # python + numpy: tens of MB


def test_make_audio_repeats_the_track(synthetic_clip, tmp_path):
    from ladtalk.io.audio import iter_audio, probe_audio

    info = probe_audio(synthetic_clip.video_path)
    track = np.round(np.concatenate(list(iter_audio(synthetic_clip.video_path))) * 32767).astype("<i2")
    path = bench.make_audio(synthetic_clip.video_path, tmp_path / "long.wav", 2.5 * len(track) / info.sample_rate)
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getframerate()) == (info.channels, info.sample_rate)
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, info.channels)
    assert len(pcm) == int(2.5 * len(track))
    np.testing.assert_array_equal(pcm, np.tile(track, (3, 1))[:len(pcm)])
