"""`ladtalk enhance`: plug-and-play repair of any talking-head video of the identity with its SOVQAE.

Pass 1 detects and tracks the face (boxes only, small); pass 2 streams frames: crop -> SOVQAE -> paste -> encode,
with the source audio kept. Frames without a face pass through untouched.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ladtalk.data.prepare import track_video
from ladtalk.errors import InputError
from ladtalk.face.crop import crop_faces, paste_faces
from ladtalk.face.wav2lip_geometry import check_pads
from ladtalk.io.audio import load_audio
from ladtalk.io.guard import refuse_output_over_inputs
from ladtalk.io.video import VideoWriter, iter_frame_batches, probe_video
from ladtalk.pipeline.generate import MUX_RATE, RunReport, check_out_path
from ladtalk.pipeline.restore import crop_geometry, load_sovqae, pick_crop_setting, restore
from ladtalk.pipeline.threads import background
from ladtalk.runtime import autocast_dtype, resolve_device


def enhance(video_path: str | os.PathLike, out_path: str | os.PathLike, sovqae_path: str | os.PathLike,
            detector: str | None = None, paste: str = "feather", batch_size: int | None = None,
            precision: str = "auto", device: str = "auto", pads: tuple[int, int, int, int] | None = None) -> RunReport:
    """Write `out_path`: `video_path` with every tracked face passed through the SOVQAE; returns timings.

    `detector` and `pads` default to those the SOVQAE's training crops were cut with (stored in the model).
    """
    out_path = check_out_path(out_path)
    refuse_output_over_inputs(out_path, [("video", video_path), ("SOVQAE model", sovqae_path)])
    video_path = Path(video_path)
    info = probe_video(video_path)
    if pads is not None:
        pads = check_pads(pads, (info.width, info.height))
    dev = resolve_device(device)
    autocast_dtype(dev, precision)  # an unknown precision fails now, not after the detection pass
    if paste not in ("feather", "hard"):
        raise InputError(f"paste must be 'feather' or 'hard', got {paste!r}")
    if batch_size is not None and batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    model = load_sovqae(sovqae_path, dev)
    geometry = crop_geometry(sovqae_path)
    detector = pick_crop_setting("detector", detector, geometry, "mtcnn", sovqae_path)
    pads = pick_crop_setting("pads", pads, geometry, (0, 10, 0, 0), sovqae_path)
    size = model.config.resolution
    batch = batch_size or (64 if dev.type == "cuda" else 16)

    report = RunReport()
    t_start = time.perf_counter()
    _, face_track, crop_boxes = track_video(video_path, detector=detector, pads=pads, device=str(dev))
    report.add("detect", time.perf_counter() - t_start)
    audio = load_audio(video_path, sample_rate=MUX_RATE) if info.has_audio else None
    n = len(face_track.has_face)
    with VideoWriter(out_path, fps=info.fps, audio=audio, sample_rate=MUX_RATE) as writer, \
            tqdm(total=n, desc="enhance", unit="frame", dynamic_ncols=True) as bar:
        start = 0
        for frames in background(iter_frame_batches(video_path, batch, max_frames=n), depth=2):
            rows = np.flatnonzero(face_track.has_face[start:start + len(frames)])
            if len(rows):
                boxes = crop_boxes[start + rows]
                t0 = time.perf_counter()
                faces = restore(model, crop_faces(frames[rows], boxes, size), batch_size=len(rows), precision=precision)
                report.add("sovqae", time.perf_counter() - t0)
                t0 = time.perf_counter()
                frames[rows] = paste_faces(frames[rows], faces, boxes, mode=paste)
                report.add("paste", time.perf_counter() - t0)
            t0 = time.perf_counter()
            writer.write(frames)
            report.add("encode", time.perf_counter() - t0)
            start += len(frames)
            bar.update(len(frames))
    report.frames = start
    report.seconds = time.perf_counter() - t_start
    print(report.line(f"wrote {out_path}"))
    return report
