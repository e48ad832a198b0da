"""`ladtalk prepare`: identity video -> identity folder (face track, crops, 16 kHz audio, train/test split).

Two streaming passes keep memory flat in the video's length: pass 1 detects faces batch by batch (appended to
a resumable cache beside the output), the tracker then smooths and fills the boxes, pass 2 cuts the crops into a
memory-mapped crops.npy. The folder appears atomically when complete; re-running with the same inputs is a no-op.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ladtalk.data.identity import AUDIO_NAME, CROPS_NAME, FORMAT_VERSION, META_NAME, Identity
from ladtalk.errors import InputError, NoFaceError
from ladtalk.face import DEFAULT_PADS, check_pads
from ladtalk.face.crop import crop_faces, square_crop_boxes
from ladtalk.face.detect import Detection, make_detector
from ladtalk.face.track import MAX_GAP, FaceTrack, fill_gaps, track_faces
from ladtalk.face.wav2lip_geometry import official_boxes
from ladtalk.io.atomic import atomic_dir, check_writable_dir
from ladtalk.io.audio import SAMPLE_RATE, load_audio, write_wav
from ladtalk.io.guard import refuse_foreign_folder, refuse_output_over_inputs
from ladtalk.io.video import iter_frame_batches, probe_video
from ladtalk.runtime import resolve_device

log = logging.getLogger(__name__)
BATCH = 16
MAX_FPS = 240.0  # resampling to more frames than any camera records only repeats frames


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def prepare(video_path: str | os.PathLike, out_dir: str | os.PathLike, size: int = 256, fps: float | None = None,
            detector: str = "mtcnn", track: int | None = None, pads: tuple[int, int, int, int] = DEFAULT_PADS,
            device: str = "auto", test_fraction: float = 0.1) -> Path:
    """Write the identity folder `out_dir` for `video_path`; returns its path (a no-op when already up to date)."""
    video_path, out_dir = Path(video_path), Path(out_dir)
    if size not in (256, 512):
        raise InputError(f"--size must be 256 or 512, got {size}")
    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"test_fraction must be in (0, 1), got {test_fraction}")
    refuse_output_over_inputs(out_dir, [("identity video", video_path)], folder=True)
    if fps is not None and not (math.isfinite(fps) and 0 < fps <= MAX_FPS):
        raise InputError(f"--fps must be a frame rate in (0, {MAX_FPS}], got {fps}")
    info = probe_video(video_path)  # clear InputError for missing / not media / audio-only / zero frames
    pads = check_pads(pads, (info.width, info.height))
    check_writable_dir(out_dir.parent)
    refuse_foreign_folder(out_dir, META_NAME, "identity folder")

    settings = {"size": size, "fps": fps, "detector": detector, "track": track, "pads": list(pads),
                "test_fraction": test_fraction, "format_version": FORMAT_VERSION}
    source = {"path": str(video_path.resolve()), "sha256": file_sha256(video_path),
              "size_bytes": video_path.stat().st_size}
    if _up_to_date(out_dir, source, settings):
        print(f"{out_dir} is up to date (same source and settings); nothing to do")
        return out_dir

    cache_dir = out_dir.parent / f".{out_dir.name}.prepare-cache"
    cache_key = hashlib.sha256(json.dumps([source["sha256"], settings], sort_keys=True).encode()).hexdigest()[:16]
    det_cache = cache_dir / f"detections-{cache_key}.jsonl"
    cache_dir.mkdir(parents=True, exist_ok=True)
    try:
        detections, face_track, crop_boxes = track_video(video_path, fps=fps, detector=detector, pads=pads,
                                                         track=track, device=device, cache_path=det_cache)
        frame_count = len(detections)
        with atomic_dir(out_dir) as tmp:
            _write_crops(video_path, fps, tmp / CROPS_NAME, crop_boxes, face_track.has_face, size, frame_count)
            if info.has_audio:
                audio = load_audio(video_path, sample_rate=SAMPLE_RATE)
            else:
                log.warning("%s has no audio track; writing silence (lip-sync training needs audio)", video_path)
                audio = np.zeros(int(round(frame_count / (fps or info.fps) * SAMPLE_RATE)), dtype=np.float32)
            write_wav(tmp / AUDIO_NAME, audio, SAMPLE_RATE)
            n_test = max(1, math.ceil(frame_count * test_fraction))
            meta = {
                "format_version": FORMAT_VERSION, "source": source, "settings": settings,
                "fps": float(fps or info.fps), "frame_count": frame_count,
                "width": info.width, "height": info.height, "crop_size": size,
                "detector": detector, "pads": list(pads),
                "boxes": _rows(face_track.boxes), "has_face": face_track.has_face.tolist(),
                "crop_boxes": _rows(np.where(face_track.has_face[:, None], crop_boxes, np.nan)),
                **_wav2lip_fields(face_track),
                "split": {"train": [0, frame_count - n_test], "test": [frame_count - n_test, frame_count]},
                "audio": {"sample_rate": SAMPLE_RATE, "samples": int(len(audio)), "present": info.has_audio},
                "faces_found": int(face_track.has_face.sum()),
                "detections_per_frame": [len(d) for d in detections],
            }
            (tmp / META_NAME).write_text(json.dumps(meta))
    except InputError:
        shutil.rmtree(cache_dir, ignore_errors=True)  # the input itself is unusable: nothing worth resuming
        raise
    # any other failure (Ctrl-C, a full disk while cropping) keeps the detection cache: the next run resumes
    shutil.rmtree(cache_dir, ignore_errors=True)
    found = int(face_track.has_face.sum())
    print(f"wrote {out_dir}: {frame_count} frames at {meta['fps']:.3f} fps, face on {found} "
          f"({100.0 * found / frame_count:.1f}%), train {meta['split']['train'][1]} / test {n_test} frames")
    return out_dir


def _rows(boxes: np.ndarray) -> list:
    return [None if np.isnan(b).any() else [round(float(v), 3) for v in b] for b in boxes]


def _wav2lip_fields(face_track: FaceTrack) -> dict:
    """The track's raw detector boxes and the official Wav2Lip boxes cut from them (identity format 2)."""
    raw = fill_gaps(face_track.raw_boxes, MAX_GAP)  # the official script has no gaps: bridge them as the track does
    raw[~face_track.has_face] = np.nan
    boxes = official_boxes(raw, face_track.frame_size, face_track.pads)
    return {"raw_boxes": _rows(face_track.raw_boxes),
            "wav2lip_boxes": [None if (b < 0).any() else [int(v) for v in b] for b in boxes]}


def _up_to_date(out_dir: Path, source: dict, settings: dict) -> bool:
    try:
        ident = Identity.open(out_dir)
    except InputError:
        return False
    old = ident.meta.get("source", {})
    return old.get("sha256") == source["sha256"] and old.get("path") == source["path"] \
        and ident.meta.get("settings") == settings


def track_video(video_path: str | os.PathLike, fps: float | None = None, detector: str = "mtcnn",
                pads: tuple[int, int, int, int] = DEFAULT_PADS, track: int | None = None, device: str = "auto",
                cache_path: Path | None = None):
    """Detect and track the main face of a video -> (detections per frame, FaceTrack, square crop boxes (N,4));
    NoFaceError when no frame has a face. With `cache_path`, detections resume from / append to it."""
    video_path = Path(video_path)
    info = probe_video(video_path)
    detections = _detect_all(video_path, fps, info, cache_path, detector, resolve_device(device))
    face_track = track_faces(detections, frame_size=(info.width, info.height), pads=pads, track=track)
    if not face_track.has_face.any():
        raise NoFaceError(f"no face was found in any of the {len(detections)} frames of {video_path}; "
                          "the video must show the person's face (try --detector s3fd:PATH)")
    return detections, face_track, square_crop_boxes(face_track.boxes, (info.width, info.height))


def _detect_all(video_path: Path, fps: float | None, info, det_cache: Path | None, detector_spec: str,
                device) -> list[list[Detection]]:
    """Per-frame detections, resuming from (and appending to) a JSON-lines cache, one line per frame."""
    done: list[list[Detection]] = []
    if det_cache is None:
        det_cache = Path(os.devnull)
    elif det_cache.exists():
        for line in det_cache.read_text().splitlines():
            try:
                rows = json.loads(line)
            except json.JSONDecodeError:
                break  # a line cut by a kill: redo from here
            done.append([Detection(box=tuple(r[:4]), score=r[4], landmarks=None) for r in rows])
        det_cache.write_text("".join(json.dumps([[*d.box, d.score] for d in f]) + "\n" for f in done))
    expected = info.frame_count if fps is None else int(round(info.duration_seconds * fps))
    detector = make_detector(detector_spec, device=str(device))
    with (open(det_cache, "a") as out,
          tqdm(total=expected, initial=len(done), desc="detect faces", unit="frame", dynamic_ncols=True) as bar):
        for batch in iter_frame_batches(video_path, BATCH, fps=fps, start_frame=len(done)):
            found = detector.detect(batch)
            for dets in found:
                out.write(json.dumps([[float(v) for v in d.box] + [float(d.score)] for d in dets]) + "\n")
            out.flush()
            done.extend(found)
            bar.update(len(batch))
    if not done:
        raise InputError(f"{video_path} has no decodable video frames")
    return done


def _write_crops(video_path: Path, fps: float | None, path: Path, crop_boxes: np.ndarray, has_face: np.ndarray,
                 size: int, frame_count: int) -> None:
    crops = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(frame_count, size, size, 3))
    i = 0
    with tqdm(total=frame_count, desc="crop faces", unit="frame", dynamic_ncols=True) as bar:
        for batch in iter_frame_batches(video_path, 64, fps=fps, max_frames=frame_count):
            n = len(batch)
            sel = has_face[i:i + n]
            if sel.any():
                crops[i:i + n][sel] = crop_faces(batch[sel], crop_boxes[i:i + n][sel], size)
            i += n
            bar.update(n)
    crops.flush()

