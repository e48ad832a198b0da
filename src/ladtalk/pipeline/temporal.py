"""An inference-time deflicker for finished frames: a centred three-frame median, limited in how far it moves a
pixel. Inside the region the paste wrote (its box and mask, face/crop.py), each frame becomes

    F_t + clip(median(F_{t-1}, F_t, F_{t+1}) - F_t, -limit, +limit)

so a pixel that pops for one frame (a flickering code or tooth edge) is pulled towards its neighbours by at most
`limit` levels of 8 bits, and a mouth that really opens for a frame is not cut off (docs/results.md "Steadier
frames"). Frames leave it one frame late (it needs the next); `flush` gives the last."""

from __future__ import annotations

import numpy as np

from ladtalk.errors import InputError
from ladtalk.face.crop import blend_regions

DEFAULT_LIMIT = 8  # levels of 8 bits: Macron lip-sync r 0.88 -> 0.84 (an unlimited median: 0.81), demo within 0.02


def median3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The per-element median of three uint8 arrays."""
    return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))


class TemporalMedian:
    """Streams a video's finished frames: `push(frames, boxes)` takes a batch with the crop boxes the paste used
    (NaN where a frame has no face: left as it is) and returns the frames that are final; `flush()` the last one."""

    def __init__(self, paste: str, limit: int = DEFAULT_LIMIT):
        self.paste, self.limit = paste, int(limit)
        self._prev: np.ndarray | None = None
        self._held: tuple[np.ndarray, np.ndarray] | None = None  # (frame, box) waiting for its successor

    def push(self, frames: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        done = []
        for frame, box in zip(frames, np.asarray(boxes, dtype=np.float64).reshape(-1, 4)):
            if self._held is not None:
                done.append(self._finish(frame))
                self._prev = self._held[0]
            self._held = (frame, box)
        return np.stack(done) if done else frames[:0]

    def flush(self) -> np.ndarray:
        """The held last frame (its successor taken as itself), as a batch of 0 or 1 frames."""
        if self._held is None:
            return np.zeros((0, 0, 0, 3), np.uint8)
        out = self._finish(self._held[0])[None]
        self._prev, self._held = None, None
        return out

    def _finish(self, following: np.ndarray) -> np.ndarray:
        frame, box = self._held
        if not np.isfinite(box).all():
            return frame
        prev = self._prev if self._prev is not None else frame
        cur = frame.astype(np.int16)
        moved = cur + np.clip(median3(prev, frame, following).astype(np.int16) - cur, -self.limit, self.limit)
        return blend_regions(frame[None], moved.astype(np.uint8)[None], box[None], self.paste)[0]


def temporal_median(enabled: bool, paste: str, limit: int = DEFAULT_LIMIT) -> TemporalMedian | None:
    """The filter a command asked for (None when off), its setting checked before any work starts."""
    if not enabled:
        return None
    if not 1 <= limit <= 255:
        raise InputError(f"temporal limit must be 1 to 255 levels of 8 bits, got {limit}")
    return TemporalMedian(paste, limit)
