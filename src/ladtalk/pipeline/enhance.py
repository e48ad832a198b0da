"""`ladtalk enhance`: plug-and-play repair of any talking-head video of the identity with its SOVQAE. Pass 1 tracks
the face (boxes only); pass 2 streams the frames through crop -> SOVQAE -> paste into `write_video` with the source
audio as it is (frames without a face untouched)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from ladtalk.data.prepare import track_video
from ladtalk.face import DEFAULT_PADS, check_pads
from ladtalk.face.crop import crop_faces, paste_faces
from ladtalk.io.guard import refuse_output_over_inputs
from ladtalk.io.video import iter_frame_batches, probe_video
from ladtalk.pipeline.generate import check_out_path, checked_batch, write_video
from ladtalk.pipeline.loaders import load_restorer
from ladtalk.pipeline.report import RunReport
from ladtalk.pipeline.restore import pick_crop_setting
from ladtalk.pipeline.temporal import DEFAULT_LIMIT, temporal_median
from ladtalk.pipeline.threads import background
from ladtalk.runtime import inference_settings


def enhance(video_path: str | os.PathLike, out_path: str | os.PathLike, sovqae_path: str | os.PathLike,
            detector: str | None = None, paste: str = "feather", batch_size: int | None = None,
            precision: str = "auto", device: str = "auto", pads: tuple[int, int, int, int] | None = None,
            temporal_filter: bool = False, temporal_limit: int = DEFAULT_LIMIT,
            backend: str = "auto", *, started_at: float | None = None) -> RunReport:
    """Write `out_path`: `video_path` with every tracked face passed through the SOVQAE; returns timings.

    `detector` and `pads` default to those the SOVQAE's training crops were cut with (stored in the model).
    `temporal_filter`: steady the pasted region from frame to frame (a centred three-frame median that moves a pixel
    by at most `temporal_limit` levels of 8 bits, pipeline/temporal.py; beyond the paper).
    `backend`: what runs the SOVQAE on a CPU ('auto', 'torch', 'onnxruntime', 'openvino'; pipeline/backends.py).
    `started_at`: the `time.perf_counter()` value at which the command started (default: now), for the report.
    """
    t_start = time.perf_counter() if started_at is None else started_at
    out_path = check_out_path(out_path)
    refuse_output_over_inputs(out_path, [("video", video_path), ("SOVQAE model", sovqae_path)])
    video_path = Path(video_path)
    info = probe_video(video_path)
    if pads is not None:
        pads = check_pads(pads, (info.width, info.height))
    rt = inference_settings(device, precision)  # an unknown precision fails now, not after the detection pass
    batch = checked_batch(paste, batch_size, rt.device)
    temporal = temporal_median(temporal_filter, paste, temporal_limit)
    restorer = load_restorer(sovqae_path, rt, backend)
    detector = pick_crop_setting("detector", detector, restorer.crop_geometry, "mtcnn", sovqae_path)
    pads = pick_crop_setting("pads", pads, restorer.crop_geometry, DEFAULT_PADS, sovqae_path)

    report = RunReport(precision=rt.precision, backends={"sovqae": restorer.runner.name})
    report.add_load(t_start)
    with report.stage("detect"):
        _, face_track, crop_boxes = track_video(video_path, detector=detector, pads=pads, device=str(rt.device))
    n = len(face_track.has_face)

    def batches():
        start = 0
        for frames in background(iter_frame_batches(video_path, batch, max_frames=n), depth=2):
            rows = np.flatnonzero(face_track.has_face[start:start + len(frames)])
            if len(rows):
                boxes = crop_boxes[start + rows]
                with report.stage("sovqae"):
                    faces = restorer(crop_faces(frames[rows], boxes, restorer.resolution))
                with report.stage("paste"):
                    frames[rows] = paste_faces(frames[rows], faces, boxes, mode=paste)
            yield frames, crop_boxes[start:start + len(frames)]
            start += len(frames)

    return write_video(out_path, info.fps, video_path if info.has_audio else None, batches(), n, temporal, report,
                       t_start, "enhance")
