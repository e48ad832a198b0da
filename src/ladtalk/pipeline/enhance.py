"""`ladtalk enhance`: plug-and-play repair of any talking-head video of the identity with its SOVQAE.

Pass 1 detects and tracks the face (boxes only, small); pass 2 streams frames: crop -> SOVQAE -> paste -> encode
(in a worker thread), with the source audio kept as it is (channels, rate) and streamed. Frames without a face
pass through untouched.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ladtalk.data.prepare import track_video
from ladtalk.errors import InputError
from ladtalk.face import DEFAULT_PADS
from ladtalk.face.crop import PASTE_MODES, crop_faces, paste_faces
from ladtalk.face.wav2lip_geometry import check_pads
from ladtalk.io.audio import iter_audio, mux_format, probe_audio
from ladtalk.io.guard import refuse_output_over_inputs
from ladtalk.io.video import VideoWriter, iter_frame_batches, probe_video
from ladtalk.pipeline.generate import check_out_path
from ladtalk.pipeline.loaders import load_restorer
from ladtalk.pipeline.report import RunReport
from ladtalk.pipeline.restore import pick_crop_setting
from ladtalk.pipeline.temporal import DEFAULT_LIMIT, temporal_median
from ladtalk.pipeline.threads import background, background_calls
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
    dev = rt.device
    if paste not in PASTE_MODES:
        raise InputError(f"paste must be one of {', '.join(PASTE_MODES)}, got {paste!r}")
    temporal = temporal_median(temporal_filter, paste, temporal_limit)
    if batch_size is not None and batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    restorer = load_restorer(sovqae_path, rt, backend)
    geometry = restorer.crop_geometry
    detector = pick_crop_setting("detector", detector, geometry, "mtcnn", sovqae_path)
    pads = pick_crop_setting("pads", pads, geometry, DEFAULT_PADS, sovqae_path)
    size = restorer.resolution
    batch = batch_size or (64 if dev.type == "cuda" else 16)

    report = RunReport(precision=rt.precision, backends={"sovqae": restorer.backend})
    report.add_load(t_start)
    with report.stage("detect"):
        _, face_track, crop_boxes = track_video(video_path, detector=detector, pads=pads, device=str(dev))
    n = len(face_track.has_face)
    with VideoWriter(out_path, fps=info.fps) as writer, \
            background_calls(report.timed("encode", writer.write), depth=2) as encode, \
            tqdm(total=n, desc="enhance", unit="frame", dynamic_ncols=True) as bar:
        if info.has_audio:
            mux = mux_format(probe_audio(video_path))
            writer.set_audio_stream(iter_audio(video_path, mux.sample_rate, mux.channels), mux.sample_rate,
                                    mux.channels)
        start = 0
        for frames in background(iter_frame_batches(video_path, batch, max_frames=n), depth=2):
            rows = np.flatnonzero(face_track.has_face[start:start + len(frames)])
            if len(rows):
                boxes = crop_boxes[start + rows]
                with report.stage("sovqae"):
                    faces = restorer(crop_faces(frames[rows], boxes, size))
                with report.stage("paste"):
                    frames[rows] = paste_faces(frames[rows], faces, boxes, mode=paste)
            count = len(frames)
            if temporal is not None:
                with report.stage("temporal"):
                    frames = temporal.push(frames, crop_boxes[start:start + count])  # NaN rows where no face
            if len(frames):
                encode(frames)
            start += count
            bar.update(count)
            report.count(count)
        if temporal is not None and len(last := temporal.flush()):
            encode(last)
    report.finish(t_start)
    print(report.line(f"wrote {out_path}"))
    return report
