import numpy as np
import pytest

from ladtalk.io.video import VideoWriter, iter_frames
from ladtalk.pipeline.frames import SourceFrames, pingpong_indices, runs


def test_pingpong_plays_forward_then_backward_without_jumps():
    idx = pingpong_indices(12, 4)
    assert idx.tolist() == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1]
    assert np.abs(np.diff(idx)).max() == 1
    assert pingpong_indices(3, 1).tolist() == [0, 0, 0]
    assert pingpong_indices(3, 10).tolist() == [0, 1, 2]


def test_runs_split_by_direction():
    idx = pingpong_indices(9, 4)  # 0 1 2 3 2 1 0 1 2
    assert runs(idx) == [(0, 4, 1), (4, 3, -1), (7, 2, 1)]


@pytest.fixture
def numbered_video(tmp_path):
    """A 10-frame clip whose frame k is filled with the value 20*k (survives H.264 within a few levels)."""
    path = tmp_path / "numbered.mp4"
    with VideoWriter(path, fps=25) as w:
        for k in range(10):
            w.write(np.full((32, 32, 3), 20 * k, np.uint8))
    return path


def test_source_frames_follow_the_schedule(numbered_video):
    idx = pingpong_indices(25, 10)
    frames = list(SourceFrames(numbered_video, fps=None, block=3).iter_schedule(idx))
    assert len(frames) == 25
    got = [int(round(f.mean() / 20)) for f in frames]
    assert got == idx.tolist()
    assert len(list(iter_frames(numbered_video))) == 10
