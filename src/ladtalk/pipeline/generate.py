"""`ladtalk generate`: speech -> lip-synced video of the identity (mel -> Wav2Lip -> upscale -> SOVQAE -> paste -> mux).

Streams in batches: source frames are decoded, processed and encoded batch by batch, so memory stays flat however
long the audio or the video (the identity crops are memory-mapped). Decoding and encoding run in background
threads (PyAV releases the GIL) so they overlap with the networks.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ladtalk.data.identity import Identity, identity_source
from ladtalk.errors import InputError
from ladtalk.face.crop import crop_faces, paste_faces
from ladtalk.features.mel import mel_windows, melspectrogram
from ladtalk.io.atomic import check_writable_dir
from ladtalk.io.audio import load_audio
from ladtalk.io.guard import refuse_output_over_inputs
from ladtalk.io.video import VideoWriter
from ladtalk.lipsync_weights import load_wav2lip
from ladtalk.pipeline.frames import SourceFrames, pingpong_indices
from ladtalk.pipeline.restore import load_sovqae, restore, warn_if_crops_differ
from ladtalk.pipeline.stages import lipsync_frames
from ladtalk.pipeline.threads import background
from ladtalk.runtime import autocast_dtype, resolve_device

SAMPLE_RATE = 16000
MUX_RATE = 48000
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v")  # what VideoWriter writes


@dataclass
class RunReport:
    """What one generate/enhance run did: frame count, wall time, and seconds spent per stage."""

    frames: int = 0
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def add(self, stage: str, seconds: float) -> None:
        self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + seconds

    def line(self, what: str) -> str:
        stages = ", ".join(f"{k} {v:.1f} s" for k, v in self.stage_seconds.items())
        return f"{what}: {self.frames} frames in {self.seconds:.1f} s ({self.fps:.1f} FPS; {stages})"


def check_out_path(out_path: str | os.PathLike) -> Path:
    out_path = Path(out_path)
    if out_path.suffix.lower() not in VIDEO_SUFFIXES:
        raise InputError(f"output {out_path} must end in one of {', '.join(VIDEO_SUFFIXES)}")
    check_writable_dir(out_path.parent)
    return out_path


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
        if not ident.has_wav2lip_boxes:
            from ladtalk.data.prepare import add_wav2lip_boxes
            ident = add_wav2lip_boxes(ident, device=device)
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
             paste: str = "feather", batch_size: int | None = None, precision: str = "auto",
             device: str = "auto", *, overlap_io: bool = True) -> RunReport:
    """Write `out_path`: the identity saying `audio_path`; returns frames, seconds and per-stage timings.

    `overlap_io=False` decodes in the main thread (the naive, fully sequential baseline of bench/generate.py).
    """
    out_path = check_out_path(out_path)
    refuse_output_over_inputs(out_path, [("identity", identity), ("identity's source video", identity_source(identity)),
                                         ("audio", audio_path), ("Wav2Lip weights", wav2lip_path),
                                         ("SOVQAE model", sovqae_path)])
    if sovqae_path is None and not no_sovqae:
        raise InputError("give --sovqae MODEL (a trained SOVQAE) or --no-sovqae for the plain Wav2Lip result")
    if paste not in ("feather", "hard"):
        raise InputError(f"paste must be 'feather' or 'hard', got {paste!r}")
    dev = resolve_device(device)
    dtype = autocast_dtype(dev, precision)
    ident = open_identity(identity, device=str(dev))
    audio = load_audio(audio_path, sample_rate=SAMPLE_RATE)
    if len(audio) < SAMPLE_RATE / ident.fps:
        raise InputError(f"{audio_path} holds {len(audio) / SAMPLE_RATE:.3f} s of audio, shorter than one video "
                         "frame; give speech audio")
    if np.abs(audio).max() < 1e-4:
        print(f"warning: {audio_path} is silent; the mouth will stay closed")

    wav2lip = load_wav2lip(wav2lip_path, dev).eval()
    sovqae = None if no_sovqae else load_sovqae(sovqae_path, dev)
    if sovqae is not None:
        warn_if_crops_differ(sovqae_path, ident.crop_geometry(), ident.dir)
    batch = batch_size if batch_size is not None else (64 if dev.type == "cuda" else 16)
    if batch < 1:
        raise InputError(f"batch size must be at least 1, got {batch}")

    report = RunReport()
    t_start = time.perf_counter()
    t0 = time.perf_counter()
    # one frame per 1/fps of audio (the official count drops the last 0.2 s); windows past the end are clamped
    n_frames = max(1, int(round(len(audio) / SAMPLE_RATE * ident.fps)))
    windows = mel_windows(melspectrogram(audio), ident.fps, n_frames)
    report.add("mel", time.perf_counter() - t0)
    n_out = len(windows)
    schedule = pingpong_indices(n_out, ident.frame_count)
    has_face = ident.has_face
    source = SourceFrames(ident.source_path, fps=ident.meta.get("settings", {}).get("fps"))
    frames_iter = source.iter_schedule(schedule)
    if overlap_io:
        frames_iter = background(frames_iter, depth=2 * batch)

    # the mel uses 16 kHz mono; the muxed track keeps more of the original quality
    mux_audio = load_audio(audio_path, sample_rate=MUX_RATE)
    with VideoWriter(out_path, fps=ident.fps, audio=mux_audio, sample_rate=MUX_RATE) as writer, \
            tqdm(total=n_out, desc="generate", unit="frame", dynamic_ncols=True) as bar:
        for start in range(0, n_out, batch):
            idx = schedule[start:start + batch]
            t0 = time.perf_counter()
            frames = np.stack([next(frames_iter) for _ in idx])
            report.add("decode", time.perf_counter() - t0)
            face_rows = np.flatnonzero(has_face[idx])
            if len(face_rows):
                frames[face_rows] = _run_models(ident, wav2lip, sovqae, frames[face_rows], idx[face_rows],
                                                windows[start + face_rows], dev, dtype, precision, paste, report)
            t0 = time.perf_counter()
            writer.write(frames)
            report.add("encode", time.perf_counter() - t0)
            bar.update(len(idx))
    report.frames = n_out
    report.seconds = time.perf_counter() - t_start
    print(report.line(f"wrote {out_path}"))
    return report


def _run_models(ident: Identity, wav2lip, sovqae, frames: np.ndarray, src_idx: np.ndarray, windows: np.ndarray,
                dev: torch.device, dtype, precision: str, paste: str, report: RunReport) -> np.ndarray:
    """Source frames uint8 (B,H,W,3) of `src_idx` + mel windows -> the finished frames: Wav2Lip exactly as the
    official inference (its boxes, stretched inputs, hard paste), then the identity's square crop of that result
    through the SOVQAE (or as it is) pasted back with `paste`. `--no-sovqae --paste hard` is the official output."""
    sync = dev.type == "cuda"
    t0 = time.perf_counter()
    synced = lipsync_frames(wav2lip, frames, ident.wav2lip_boxes[src_idx], torch.from_numpy(windows).to(dev), dtype)
    if sync:
        torch.cuda.synchronize()
    report.add("wav2lip", time.perf_counter() - t0)
    if sovqae is None and paste == "hard":
        return synced
    t0 = time.perf_counter()
    boxes = ident.crop_boxes[src_idx]
    crops = crop_faces(synced, boxes, sovqae.config.resolution if sovqae is not None else ident.crop_size)
    faces = restore(sovqae, crops, batch_size=len(crops), precision=precision) if sovqae is not None else crops
    report.add("sovqae" if sovqae is not None else "crop", time.perf_counter() - t0)
    t0 = time.perf_counter()
    out = paste_faces(frames, faces, boxes, mode=paste)
    report.add("paste", time.perf_counter() - t0)
    return out
