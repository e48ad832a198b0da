"""From per-frame detections to one face track: linking, choice of the main face, gap filling, smoothing, pads.

The main track (`track=None`) has the largest sum over its frames of face size (sqrt of the box area over the
frame's shorter side) times centrality (1 at the frame centre, 0 at a corner): a large, central, long-lived face.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ladtalk.errors import InputError
from ladtalk.face import DEFAULT_PADS, check_pads
from ladtalk.face.boxes import Detection, box_overlap

MAX_GAP = 5  # frames without a face that a track bridges


@dataclass
class FaceTrack:
    """One face over N frames. boxes (N,4) x1,y1,x2,y2 float pixels after gap filling, smoothing and pads (not
    clipped to the frame; NaN where no face); has_face (N,) bool; raw_boxes (N,4) the detector's boxes of this
    track (NaN where it was not detected)."""

    boxes: np.ndarray
    has_face: np.ndarray
    raw_boxes: np.ndarray
    frame_size: tuple[int, int]  # (width, height)
    pads: tuple[int, int, int, int]


def link_tracks(
    detections: Sequence[Sequence[Detection]], iou_threshold: float = 0.3, min_track_frames: int = 3
) -> list[dict[int, Detection]]:
    """Link per-frame detections into tracks {frame: Detection} by greedy IoU (>= iou_threshold) with each track's
    last box, however long ago it was seen (a face that comes back keeps its track). Tracks on fewer than
    `min_track_frames` frames are dropped (unless none is that long); the rest are numbered by first frame, then
    largest face first."""
    tracks: list[dict[int, Detection]] = []
    last_box: list[np.ndarray] = []
    for t, dets in enumerate(detections):
        if not dets:
            continue
        boxes = np.array([d.box for d in dets], dtype=np.float64).reshape(-1, 4)
        iou = box_overlap(torch.from_numpy(np.array(last_box).reshape(-1, 4)), torch.from_numpy(boxes)).numpy()
        ks, js = np.nonzero(iou >= iou_threshold)
        used_t: set[int] = set()
        used_d: set[int] = set()
        for i in np.argsort(-iou[ks, js], kind="stable"):
            k, j = int(ks[i]), int(js[i])
            if k in used_t or j in used_d:
                continue
            tracks[k][t], last_box[k] = dets[j], boxes[j]
            used_t.add(k)
            used_d.add(j)
        for j in range(len(dets)):
            if j not in used_d:
                tracks.append({t: dets[j]})
                last_box.append(boxes[j])
    longest = max((len(tr) for tr in tracks), default=0)
    tracks = [tr for tr in tracks if len(tr) >= min(min_track_frames, longest)]

    def order(tr: dict[int, Detection]) -> tuple[int, float]:
        first = min(tr)
        return first, -tr[first].width * tr[first].height

    return sorted(tracks, key=order)


def _main_score(track: dict[int, Detection], frame_size: tuple[int, int]) -> float:
    w, h = frame_size
    x1, y1, x2, y2 = np.array([d.box for d in track.values()], np.float64).T
    size = np.sqrt(np.maximum(x2 - x1, 0.0) * np.maximum(y2 - y1, 0.0)) / min(h, w)
    dist = np.hypot((x1 + x2) / 2 - w / 2, (y1 + y2) / 2 - h / 2)
    return float(np.sum(size * np.maximum(0.0, 1.0 - dist / (0.5 * np.hypot(h, w)))))


def fill_gaps(boxes: np.ndarray, max_gap: int) -> np.ndarray:
    """A copy of boxes (N,K) with runs of <= max_gap NaN rows bridged: linear between neighbours, held at either end
    of the clip; longer runs stay NaN."""
    boxes = boxes.copy()
    present = np.isfinite(boxes).all(axis=1)
    if not present.any():
        return boxes
    for t, end in valid_runs(~present):
        if end - t > max_gap:
            continue
        before, after = t - 1, end
        if before < 0 or after == len(boxes):
            boxes[t:end] = boxes[after] if before < 0 else boxes[before]
        else:
            a = ((np.arange(t, end) - before) / (after - before))[:, None]
            boxes[t:end] = (1 - a) * boxes[before] + a * boxes[after]
    return boxes


def smooth_boxes(boxes: np.ndarray, window: int) -> np.ndarray:
    """Centred moving mean of boxes (N,4) over `window` frames within each run of finite rows; the window shrinks
    symmetrically at the ends of a run. Symmetric, so steady motion is not delayed (Wav2Lip's forward 5-frame
    mean of frames i..i+4 leads the motion by two frames)."""
    out = boxes.copy()
    r = max(int(window) // 2, 0)
    if r == 0:
        return out
    for t, end in valid_runs(np.isfinite(boxes).all(axis=1)):
        seg = boxes[t:end]
        csum = np.concatenate([np.zeros((1, boxes.shape[1])), np.cumsum(seg, axis=0)])
        idx = np.arange(end - t)
        rad = np.minimum(r, np.minimum(idx, end - t - 1 - idx))
        out[t:end] = (csum[idx + rad + 1] - csum[idx - rad]) / (2 * rad + 1)[:, None]
    return out


def valid_runs(ok: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each maximal run of True in the bool (N,) array `ok`: the stretches a track smooths over."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], ok.astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def track_faces(
    detections: Sequence[Sequence[Detection]],
    frame_size: tuple[int, int],
    pads: tuple[int, int, int, int] = DEFAULT_PADS,
    track: int | None = None,
    smooth_window: int = 5,
) -> FaceTrack:
    """Per-frame detections of N frames of size (width, height) -> the FaceTrack of the main (or chosen) face, with
    Wav2Lip's pads (top, bottom, left, right) added after smoothing. No face at all gives an empty track."""
    w, h = (int(v) for v in frame_size)
    n = len(detections)
    pads = check_pads(pads, (w, h))
    tracks = link_tracks(detections)
    raw = np.full((n, 4), np.nan)
    if tracks:
        if track is None:
            track = int(np.argmax([_main_score(tr, (w, h)) for tr in tracks]))
        elif not 0 <= track < len(tracks):
            found = "; ".join(f"track {i}: frames {min(tr)}-{max(tr)}, mean box "
                              f"{tuple(round(v) for v in np.mean([d.box for d in tr.values()], 0))}"
                              for i, tr in enumerate(tracks))
            raise InputError(f"track {track} does not exist: {len(tracks)} face track(s) were found ({found}); "
                             "pick one of these indices or leave --track out for the main face")
        for t, d in tracks[track].items():
            raw[t] = d.box
    boxes = fill_gaps(raw, MAX_GAP)
    boxes = smooth_boxes(boxes, smooth_window)
    top, bottom, left, right = pads
    boxes += np.array([-left, -top, right, bottom], dtype=np.float64)
    has_face = np.isfinite(boxes).all(axis=1)
    return FaceTrack(boxes, has_face, raw, (w, h), pads)

