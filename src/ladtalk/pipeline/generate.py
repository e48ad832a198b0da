"""`ladtalk generate`: speech -> lip-synced video of the identity, the paper's cascade in the steps of DESIGN.md's
"How generate flows" (numbered below as there): `cascade` runs the networks on a batch of frames (3-5), `generate`
checks, schedules and streams the batches (memory stays flat), `write_video` encodes them with the audio muxed."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ladtalk.data.identity import Identity, identity_source
from ladtalk.errors import InputError
from ladtalk.face.crop import PASTE_MODES, crop_faces, paste_faces
from ladtalk.features.mel import N_FFT, mel_windows, melspectrogram_stream
from ladtalk.io.atomic import check_writable_dir
from ladtalk.io.audio import SAMPLE_RATE, iter_audio, mux_format, probe_audio
from ladtalk.io.guard import refuse_output_over_inputs
from ladtalk.io.video import VideoWriter
from ladtalk.pipeline.frames import SourceFrames, pingpong_indices
from ladtalk.pipeline.loaders import LipSyncNet, Restorer, load_lipsync, load_restorer, restorer_rows
from ladtalk.pipeline.report import RunReport
from ladtalk.pipeline.restore import pick_crop_setting
from ladtalk.pipeline.stages import lipsync, lipsync_frames, upscale
from ladtalk.pipeline.temporal import DEFAULT_LIMIT, TemporalMedian, temporal_median
from ladtalk.pipeline.threads import background, background_calls
from ladtalk.pixels import to_frames, to_images
from ladtalk.runtime import Inference, inference_settings

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v")  # what VideoWriter writes


def cascade(frames: np.ndarray, src_idx: np.ndarray, windows: np.ndarray, ident: Identity, wav2lip: LipSyncNet,
            restorer: Restorer | None, paste: str, rt: Inference, report: RunReport) -> np.ndarray:
    """The paper's method (steps 3-5) on source frames uint8 (B,H,W,3) of identity frames `src_idx` and their mel
    windows (B,1,80,16) -> the finished frames (`restorer` None: the lip-sync result, upscaled). Official weights go
    on with the square crop of the official result (`--no-sovqae --paste hard`: that result as it is)."""
    size = restorer.resolution if restorer is not None else ident.crop_size
    square_crop = wav2lip.input_geometry == "square_crop"  # trained by `ladtalk train wav2lip`
    with report.stage("wav2lip", rt.device):  # 3. lip-sync
        mels = torch.from_numpy(windows).to(rt.device)
        faces, synced = lipsync_faces(ident, wav2lip, frames, src_idx, mels, rt.amp_dtype, square_crop, size)
    if synced is not None and restorer is None and paste == "hard":
        return synced  # the official inference's own result and paste
    # 4. upscale, and restore (the restorer upscales first; with the mouth paste, only the rows it keeps)
    with report.stage("sovqae" if restorer is not None else "upscale"):
        faces = upscale(faces, size) if restorer is None else restorer(faces)
        faces = to_frames(faces) if isinstance(faces, torch.Tensor) else faces  # the copy waits for the GPU
    with report.stage("paste"):  # 5. paste back
        return paste_faces(frames, faces, ident.crop_boxes[src_idx], mode=paste)


def check_out_path(out_path: str | os.PathLike) -> Path:
    out_path = Path(out_path)
    if out_path.suffix.lower() not in VIDEO_SUFFIXES:
        raise InputError(f"output {out_path} must end in one of {', '.join(VIDEO_SUFFIXES)}")
    check_writable_dir(out_path.parent)
    return out_path


def checked_batch(paste: str, batch_size: int | None, device: torch.device) -> int:
    """The faces per batch (default: 64 on a GPU, 16 on the CPU), once `paste` and `batch_size` are checked."""
    if paste not in PASTE_MODES:
        raise InputError(f"paste must be one of {', '.join(PASTE_MODES)}, got {paste!r}")
    batch = batch_size if batch_size is not None else (64 if device.type == "cuda" else 16)
    if batch < 1:
        raise InputError(f"batch size must be at least 1, got {batch}")
    return batch


def open_identity(identity: str | os.PathLike, device: str = "auto") -> Identity:
    """An identity folder, or a video that is prepared once into the cache (~/.cache/ladtalk or $LADTALK_CACHE)."""
    path = Path(identity)
    if path.is_dir():
        ident = Identity.open(path)
        if not ident.source_path.is_file():
            raise InputError(f"the source video of identity {path} is missing ({ident.source_path}); the faces are "
                             "pasted back into its frames. Put it back there or re-run `ladtalk prepare`.")
        if ident.source_path.stat().st_size != ident.meta["source"]["size_bytes"]:
            raise InputError(f"the source video {ident.source_path} changed since identity {path} was prepared; "
                             "re-run `ladtalk prepare` on it")
        return ident
    if not path.exists():
        raise InputError(f"identity {path} does not exist; give an identity folder or a video of the person")
    from ladtalk.data.prepare import file_sha256, prepare

    cache = Path(os.environ.get("LADTALK_CACHE", Path.home() / ".cache" / "ladtalk")) / "identities"
    out = cache / f"{path.stem}-{file_sha256(path)[:16]}"
    print(f"preparing identity video {path} into {out} (once; later runs reuse it)")
    return Identity.open(prepare(path, out, device=device))


def generate(identity: str | os.PathLike, audio_path: str | os.PathLike, out_path: str | os.PathLike,
             wav2lip_path: str | os.PathLike, sovqae_path: str | os.PathLike | None = None, no_sovqae: bool = False,
             paste: str = "mouth", batch_size: int | None = None, precision: str = "auto",
             device: str = "auto", temporal_filter: bool = False, temporal_limit: int = DEFAULT_LIMIT,
             backend: str = "auto", sovqae_rows: str = "auto", *,
             overlap_io: bool = True,
             frame_indices: np.ndarray | None = None, started_at: float | None = None) -> RunReport:
    """Write `out_path`: the identity saying `audio_path`; returns frames, seconds and per-stage timings.

    `temporal_filter`: steady the pasted region from frame to frame (a centred three-frame median that moves a pixel
    by at most `temporal_limit` levels of 8 bits, pipeline/temporal.py; beyond the paper).
    `backend`: what runs the networks on a CPU ('auto', 'torch', 'onnxruntime', 'openvino'; pipeline/backends.py).
    `sovqae_rows`: 'pasted' (mouth paste only): the SOVQAE computes only the rows that paste keeps (faster; close
    to, not the same as, the whole crop's pixels: pipeline/loaders.py `load_restorer`); 'all': the whole crop;
    'auto': pasted with the mouth paste, all otherwise.
    `frame_indices`: the identity frames to use, in order (default: the whole video forward and back); `reenact`
    passes the test split.
    `overlap_io=False` decodes and encodes in the main thread (the sequential baseline of bench/generate.py).
    `started_at`: the `time.perf_counter()` value at which the command started (default: now), for the report.
    """
    t_start = time.perf_counter() if started_at is None else started_at
    out_path = check_out_path(out_path)
    refuse_output_over_inputs(out_path, [("identity", identity), ("identity's source video", identity_source(identity)),
                                         ("audio", audio_path), ("Wav2Lip weights", wav2lip_path),
                                         ("SOVQAE model", sovqae_path)])
    if sovqae_path is None and not no_sovqae:
        raise InputError("give --sovqae MODEL (a trained SOVQAE) or --no-sovqae for the plain Wav2Lip result")
    rt = inference_settings(device, precision)
    batch = checked_batch(paste, batch_size, rt.device)
    sovqae_rows = restorer_rows(sovqae_rows, paste)
    temporal = temporal_median(temporal_filter, paste, temporal_limit)
    ident = open_identity(identity, device=str(rt.device))
    report = RunReport(precision=rt.precision)
    with report.stage("mel"):
        mel, n_samples, peak = _speech_mel(audio_path)
    if n_samples < SAMPLE_RATE / ident.fps:
        raise InputError(f"{audio_path} holds {n_samples / SAMPLE_RATE:.3f} s of audio, shorter than one video "
                         "frame; give speech audio")
    if peak < 1e-4:
        print(f"warning: {audio_path} is silent; the mouth will stay closed")

    wav2lip = load_lipsync(wav2lip_path, rt, backend)
    restorer = None if no_sovqae else load_restorer(sovqae_path, rt, backend, sovqae_rows)
    report.backends = {"wav2lip": wav2lip.runner.name, **({"sovqae": restorer.runner.name} if restorer else {})}
    if restorer is not None:  # its crops are cut as the identity was prepared: warn where it learned others
        for name in ("detector", "pads"):
            pick_crop_setting(name, ident.crop_geometry()[name], restorer.crop_geometry, None, sovqae_path,
                              given_by=f"identity {ident.dir}'s")
    report.add_load(t_start)

    # one frame per 1/fps of audio (the official count drops the last 0.2 s); windows past the end are clamped
    n_out = max(1, int(round(n_samples / SAMPLE_RATE * ident.fps)))
    schedule = pingpong_indices(n_out, ident.frame_count) if frame_indices is None else \
        np.asarray(frame_indices, dtype=np.int64)[pingpong_indices(n_out, len(frame_indices))]
    frames_iter = SourceFrames(ident.source_path, fps=ident.meta.get("settings", {}).get("fps")).iter_schedule(schedule)
    if overlap_io:
        frames_iter = background(frames_iter, depth=2 * batch)

    def batches():
        for start in range(0, n_out, batch):
            idx = schedule[start:start + batch]
            with report.stage("decode"):
                frames = np.stack([next(frames_iter) for _ in idx])
            rows = np.flatnonzero(ident.has_face[idx])
            if len(rows):
                windows = mel_windows(mel, ident.fps, len(idx), first_frame=start,
                                      offset_frames=wav2lip.mel_offset_frames)
                frames[rows] = cascade(frames[rows], idx[rows], windows[rows], ident, wav2lip, restorer, paste, rt,
                                       report)
            yield frames, ident.crop_boxes[idx]

    return write_video(out_path, ident.fps, audio_path, batches(), n_out, temporal, report, t_start, "generate",
                       overlap_io)


def write_video(out_path: Path, fps: float, audio_path: str | os.PathLike | None, batches, total: int,
                temporal: TemporalMedian | None, report: RunReport, t_start: float, desc: str, overlap_io: bool = True
                ) -> RunReport:
    """Encode `batches` of (finished frames, the crop boxes pasted in them) into `out_path` with the audio of
    `audio_path` streamed in (None: no audio), through the temporal filter if any; `overlap_io`: x264 and the muxer
    in a worker thread, beside the networks."""
    encoder = background_calls if overlap_io else contextlib.nullcontext
    with VideoWriter(out_path, fps=fps) as writer, encoder(report.stage("encode")(writer.write)) as encode, \
            tqdm(total=total, desc=desc, unit="frame", dynamic_ncols=True) as bar:
        if audio_path is not None:
            mux = mux_format(probe_audio(audio_path))  # the audio's own rate (where AAC allows) and channels
            writer.set_audio_stream(iter_audio(audio_path, mux.sample_rate, mux.channels), mux.sample_rate,
                                    mux.channels)
        for frames, boxes in batches:
            count = len(frames)
            if temporal is not None:
                with report.stage("temporal"):
                    frames = temporal.push(frames, boxes)  # NaN rows where no face
            if len(frames):
                encode(frames)
            bar.update(count)
            report.count(count)
        if temporal is not None and len(last := temporal.flush()):
            encode(last)
    report.finish(t_start)
    print(report.line(f"wrote {out_path}"))
    return report


def _speech_mel(audio_path: str | os.PathLike) -> tuple[np.ndarray, int, float]:
    """The driving audio's Wav2Lip mel, its length in 16 kHz samples and its peak level, read block by block
    (memory holds the mel, not the waveform)."""
    probe_audio(audio_path)  # a missing or unreadable file is named now, not taken for an empty one below
    n, peak, read_failed = 0, 0.0, False

    def blocks():
        nonlocal n, peak, read_failed
        try:
            for block in iter_audio(audio_path, SAMPLE_RATE, 1):
                n += len(block)
                peak = max(peak, float(np.abs(block).max()))
                yield block[:, 0]
        except InputError:
            read_failed = True
            raise

    try:
        mel = melspectrogram_stream(blocks())
    except InputError:
        if read_failed or n > N_FFT // 2:
            raise
        mel = None  # too short for a mel: the caller's check names the problem
    return mel, n, peak


def lipsync_faces(ident: Identity, wav2lip, frames: np.ndarray | None, src_idx: np.ndarray, mels: torch.Tensor,
                  dtype, square_crop: bool, size: int) -> tuple[torch.Tensor | np.ndarray, np.ndarray | None]:
    """The lip-synced faces the restorer receives for identity frames `src_idx` (whole `frames` uint8 (B,H,W,3), read
    by the official geometry only) and their mels: float (B,3,s,s) from `square_crop` generators, else the identity's
    square crops at `size` of the official result, returned with it (`--no-sovqae --paste hard`'s output)."""
    if square_crop:
        return lipsync(wav2lip, to_images(ident.crops[src_idx], mels.device), mels, dtype), None
    synced = lipsync_frames(wav2lip, frames, ident.wav2lip_boxes[src_idx], mels, dtype)
    return crop_faces(synced, ident.crop_boxes[src_idx], size), synced
