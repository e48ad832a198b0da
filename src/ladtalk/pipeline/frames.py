"""Which identity frame backs each output frame, and serving those frames with bounded memory. Audio longer than
the identity video plays its frames forward, then backward, and so on (a ping-pong loop has no jump cut, unlike
restarting from frame 0 as the official Wav2Lip does)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ladtalk.errors import InputError
from ladtalk.io.video import iter_frames


def pingpong_indices(num_out: int, num_source: int) -> np.ndarray:
    """int64 (num_out,) source frame index of each output frame: 0..N-1, N-2..1, 0..N-1, ..."""
    if num_source <= 0:
        raise ValueError("num_source must be positive")
    if num_source == 1:
        return np.zeros(num_out, dtype=np.int64)
    period = 2 * (num_source - 1)
    k = np.arange(num_out, dtype=np.int64) % period
    return np.where(k < num_source, k, period - k)


def runs(indices: np.ndarray) -> list[tuple[int, int, int]]:
    """Split a schedule into maximal runs of consecutive source frames: (out_start, length, direction +1/-1)."""
    out: list[tuple[int, int, int]] = []
    i, n = 0, len(indices)
    while i < n:
        step = 1 if i + 1 >= n or indices[i + 1] >= indices[i] else -1
        j = i + 1
        while j < n and indices[j] - indices[j - 1] == step:
            j += 1
        out.append((i, j - i, step))
        i = j
    return out


class SourceFrames:
    """Serve full-resolution source frames in schedule order, decoding forward runs in one pass and backward runs
    in blocks of `block` frames (so memory holds at most one block, however long the video)."""

    def __init__(self, video_path: Path, fps: float | None, block: int = 64):
        self.video_path, self.fps, self.block = Path(video_path), fps, block

    def _forward(self, start: int, count: int) -> Iterator[np.ndarray]:
        got = 0
        for frame in iter_frames(self.video_path, fps=self.fps, start_frame=start, max_frames=count):
            got += 1
            yield frame
        if got < count:
            raise InputError(f"{self.video_path} ended at frame {start + got}, but frame {start + count - 1} was "
                             "needed: the video changed since its identity was prepared; re-run `ladtalk prepare`")

    def iter_schedule(self, indices: np.ndarray) -> Iterator[np.ndarray]:
        """Yield uint8 (H,W,3) RGB frames for each entry of `indices`, in order."""
        for out_start, length, step in runs(indices):
            first = int(indices[out_start])
            if step == 1:
                yield from self._forward(first, length)
                continue
            # backward run first..first-length+1: decode blocks from the top down and reverse each
            bottom = first + 1 - length
            for top in range(first + 1, bottom, -self.block):
                n = min(self.block, top - bottom)
                yield from reversed(list(self._forward(top - n, n)))
