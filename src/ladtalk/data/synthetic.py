"""The synthetic identity: a seeded talking face whose mouth follows synthesized speech, with its ground truth.

The built-in default data of the demo and the tests, and a lip-sync check with known truth: the mouth
openness of frame k is the mean voiced-loudness envelope over [k/fps, (k+1)/fps) (lag zero by construction),
and truth.json records it together with the face box, the blink state and the head pose of every frame.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ladtalk.data.synthetic_face import FaceRenderer
from ladtalk.data.synthetic_speech import mouth_openness, synth_speech
from ladtalk.errors import InputError
from ladtalk.io.atomic import atomic_path, check_writable_dir
from ladtalk.io.audio import SAMPLE_RATE, write_wav
from ladtalk.io.video import VideoWriter

TRUTH_VERSION = 1


@dataclass(frozen=True)
class SyntheticClip:
    """Paths of a rendered clip and its per-frame truth (T frames; truth.json holds all of it)."""

    video_path: Path
    audio_path: Path
    truth_path: Path
    boxes: np.ndarray  # float32 (T,4) face box [x1,y1,x2,y2] in pixels
    mouth_openness: np.ndarray  # float32 (T,) in [0,1]


def _smooth_signal(rng: np.random.Generator, t: np.ndarray, amplitude: float) -> np.ndarray:
    """A slow, smooth wander bounded by `amplitude`: three sinusoids of 0.07-0.45 Hz, random phases."""
    freqs, phases, weights = rng.uniform(0.07, 0.45, 3), rng.uniform(0, 2 * np.pi, 3), rng.uniform(0.5, 1.0, 3)
    weights = weights / weights.sum()
    return amplitude * (weights[None] * np.sin(2 * np.pi * freqs[None] * t[:, None] + phases[None])).sum(1)


def head_motion(n_frames: int, fps: float, seed: int = 0) -> np.ndarray:
    """Head pose per frame float64 (T,4): shift x, shift y (fractions of the frame), scale, roll in degrees."""
    rng = np.random.default_rng([seed, 0x4EAD])
    t = np.arange(n_frames) / float(fps)
    return np.stack([_smooth_signal(rng, t, 0.015), _smooth_signal(rng, t, 0.01),
                     1.0 + _smooth_signal(rng, t, 0.02), _smooth_signal(rng, t, 1.5)], 1)


def blink_track(n_frames: int, fps: float, seed: int = 0) -> np.ndarray:
    """Eyelid closure per frame float32 (T,) in [0,1]: blinks every 2-5.5 s (close 80 ms, hold, open 150 ms)."""
    rng = np.random.default_rng([seed, 0xB11C])
    t = np.arange(n_frames) / float(fps)
    closure = np.zeros(n_frames)
    start, end = rng.uniform(0.4, 2.0), n_frames / float(fps) + 1.0
    while start < end:
        u = t - start
        rise = np.clip(u / 0.08, 0, 1)
        fall = np.clip(1 - (u - 0.11) / 0.15, 0, 1)
        c = np.where(u < 0.08, rise, fall) * (u >= 0)
        closure = np.maximum(closure, c * c * (3 - 2 * c))
        start += rng.uniform(2.0, 5.5)
    return closure.astype(np.float32)


def _check(size: int, fps: float) -> None:
    if not isinstance(size, (int, np.integer)) or size < 64 or size % 2:
        raise InputError(f"size must be an even number of pixels >= 64 (H.264 needs even sizes), got {size}")
    if not np.isfinite(fps) or fps <= 0:
        raise InputError(f"fps must be a positive number, got {fps}")


def iter_render_frames(mouth_openness: np.ndarray, size: int = 256, seed: int = 0, fps: float = 25.0,
                       blink: np.ndarray | None = None, motion: np.ndarray | None = None,
                       renderer: FaceRenderer | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (frame uint8 (size,size,3) RGB, face box float32 (4,)) per openness value; memory stays flat."""
    _check(size, fps)
    openness = np.clip(np.asarray(mouth_openness, np.float32).reshape(-1), 0, 1)
    n = len(openness)
    blink = blink_track(n, fps, seed) if blink is None else np.asarray(blink, np.float32)
    motion = head_motion(n, fps, seed) if motion is None else np.asarray(motion, np.float64)
    if len(blink) < n or motion.ndim != 2 or motion.shape[1] != 4 or len(motion) < n:
        raise InputError(f"{n} openness values need blink (T,) and motion (T,4) tracks at least as long; got "
                         f"{blink.shape} and {motion.shape}")
    face = renderer or FaceRenderer(size, seed)
    if face.size != size:
        raise InputError(f"the renderer draws {face.size}x{face.size} frames, not {size}x{size}")
    for k in range(n):
        affine = face.pose(*motion[k])
        yield face.render(float(openness[k]), float(blink[k]), affine), face.face_box(float(openness[k]), affine)


def synthesize(out_dir: str | Path, seconds: float = 12.0, fps: float = 25.0, size: int = 256, seed: int = 0,
               sample_rate: int = SAMPLE_RATE) -> SyntheticClip:
    """Render the seeded talking face to out_dir/{video.mp4 (H.264+AAC), audio.wav, truth.json}; atomic files."""
    _check(size, fps)
    if not np.isfinite(seconds) or seconds * fps < 1:
        raise InputError(f"seconds must be long enough for one frame at {fps} fps, got {seconds}")
    out = check_writable_dir(out_dir)
    audio, envelope = synth_speech(seconds, sample_rate, seed)
    n = int(np.floor(seconds * fps + 1e-6))
    openness = mouth_openness(envelope, sample_rate, fps, n)
    blink, motion = blink_track(n, fps, seed), head_motion(n, fps, seed)
    face = FaceRenderer(size, seed)
    affines = np.stack([face.pose(*m) for m in motion])
    boxes = np.empty((n, 4), np.float32)
    frames = iter_render_frames(openness, size, seed, fps, blink=blink, motion=motion, renderer=face)
    video_path, audio_path, truth_path = out / "video.mp4", out / "audio.wav", out / "truth.json"
    with VideoWriter(video_path, fps, audio=audio, sample_rate=sample_rate) as writer:
        for k, (frame, box) in enumerate(tqdm(frames, total=n, desc="synth", unit="frame", leave=False)):
            writer.write(frame)
            boxes[k] = box
    write_wav(audio_path, audio, sample_rate)
    truth = {
        "version": TRUTH_VERSION, "fps": float(fps), "size": int(size), "seed": int(seed),
        "sample_rate": int(sample_rate), "seconds": float(seconds), "n_frames": n,
        "mouth_lag_frames": 0,
        "conventions": "frame k is shown during [k/fps, (k+1)/fps); mouth_openness[k] is the mean voiced "
                       "loudness envelope over that interval (0 closed, 1 widest); blink is eyelid closure "
                       "(1 closed); face_boxes are [x1,y1,x2,y2] pixels from just above the brows to the chin; "
                       "head_affine maps the renderer's head canvas to frame pixels",
        "face_boxes": np.round(boxes, 2).tolist(),
        "mouth_openness": np.round(openness, 5).tolist(),
        "blink": np.round(blink, 4).tolist(),
        "head_pose": {"shift_x": np.round(motion[:, 0], 6).tolist(), "shift_y": np.round(motion[:, 1], 6).tolist(),
                      "scale": np.round(motion[:, 2], 6).tolist(), "roll_deg": np.round(motion[:, 3], 5).tolist()},
        "head_canvas_size": face.R,
        "head_affine": np.round(affines, 6).tolist(),
    }
    with atomic_path(truth_path) as tmp:
        tmp.write_text(json.dumps(truth))
    return SyntheticClip(video_path, audio_path, truth_path, boxes, openness)


def load_truth(truth_path: str | Path) -> dict:
    """truth.json of a synthetic clip with its per-frame lists as numpy arrays."""
    path = Path(truth_path)
    if not path.exists():
        raise InputError(f"{path} does not exist; render a clip with `ladtalk synth -o DIR` first.")
    truth = json.loads(path.read_text())
    for key in ("face_boxes", "mouth_openness", "blink", "head_affine"):
        truth[key] = np.asarray(truth[key], np.float32 if key != "head_affine" else np.float64)
    return truth
