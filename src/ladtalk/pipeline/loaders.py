"""The one loader of the cascade's networks: a lip-sync model or a restorer, ready to run on the chosen backend,
together with the geometry its inputs must have (shared by `generate`, `enhance` and `reenact`)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from ladtalk.errors import InputError
from ladtalk.lipsync_weights import load_wav2lip, wav2lip_input_geometry, wav2lip_mel_offset
from ladtalk.pipeline.backends import TorchRunner, make_runner
from ladtalk.pipeline.restore import RestoreNet, crop_geometry, load_sovqae, pasted_rows, restore_faces, sovqae_folder
from ladtalk.pretrained import resolve as resolve_builtin
from ladtalk.runtime import Inference


@dataclass
class LipSyncNet:
    """A Wav2Lip generator on its backend, called as the module is: (mels (B,1,80,16), faces (B,6,s,s) BGR [0,1])
    -> faces (B,3,s,s) BGR [0,1]. `input_geometry`: 'square_crop' (trained by `ladtalk train wav2lip` on the
    identity's crops) or 'official' (the official boxes and paste)."""

    runner: object  # pipeline/backends.py; its `name` says what runs the net ("openvino f32", ...)
    config: object  # the generator's config (img_size)
    input_geometry: str
    mel_offset_frames: int = 0  # feed frame i the mel window of frame i + this (lipsync_weights.wav2lip_mel_offset)

    def __call__(self, mels: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        return self.runner(mels, faces)[0].to(faces.device)


def load_lipsync(path: str | os.PathLike, inference: Inference, backend: str = "auto") -> LipSyncNet:
    """The Wav2Lip generator at `path` (official .pth, a model folder, or 'builtin[:NAME]': a shipped base) on
    `backend` (pipeline/backends.py)."""
    path = resolve_builtin(path, "wav2lip")  # the export cache then lives beside the real folder
    model = load_wav2lip(path, "cpu")
    size = model.config.img_size
    examples = (torch.zeros(1, 1, 80, 16), torch.zeros(1, 6, size, size))
    runner = make_runner(model, examples, inference, backend, weights_path=path, tag="wav2lip")
    return LipSyncNet(runner, model.config, wav2lip_input_geometry(path), wav2lip_mel_offset(path))


@dataclass
class Restorer:
    """A SOVQAE on its backend with the crops it was trained on (`crop_geometry`, None for old models). With
    `rows` (the mouth paste's, pasted_rows) only those rows of each face are computed; the rest is the input's."""

    runner: object
    resolution: int
    rows: slice
    crop_geometry: dict | None
    device: torch.device  # where the faces are restored

    def __call__(self, images: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """Faces through the SOVQAE (restore_faces: uint8 frames or float images, numpy or tensor, as given)."""
        return restore_faces(lambda x: self.runner(x)[0], images, self.resolution, 16, self.device, self.rows)


ROWS = ("auto", "all", "pasted")


def restorer_rows(rows: str, paste: str) -> str:
    """'all' or 'pasted' for the SOVQAE under `paste`; 'auto' computes only what the mouth paste keeps (1.4x faster
    on a trained restorer, within 41 dB of the whole crop where it blends: bench/results/restore_rows_trained.md)."""
    if rows not in ROWS:
        raise InputError(f"SOVQAE rows must be one of {', '.join(ROWS)}, got {rows!r}")
    if rows == "pasted" and paste != "mouth":
        raise InputError(f"--sovqae-rows pasted computes the rows the mouth paste keeps; paste {paste!r} keeps more")
    return ("pasted" if paste == "mouth" else "all") if rows == "auto" else rows


def load_restorer(path: str | os.PathLike, inference: Inference, backend: str = "auto", rows: str = "all"
                  ) -> Restorer:
    """The SOVQAE at `path` (a model or run folder) on `backend`. rows='pasted' computes only the rows the mouth
    paste keeps and a margin above them (pasted_rows): faster, but not the whole crop's pixels, since its GroupNorm
    statistics and attention span the whole picture it is given (bench/results/restore_rows_cpu.md)."""
    if rows not in ROWS[1:]:
        raise InputError(f"SOVQAE rows must be 'all' or 'pasted', got {rows!r} (restorer_rows decides 'auto')")
    folder = sovqae_folder(path)  # once: an unfinished run's note is printed once
    model = load_sovqae(folder, "cpu")
    size = model.config.resolution
    computed = pasted_rows(size, model.config.downsample_factor) if rows == "pasted" else slice(0, size)
    examples = (torch.zeros(1, 3, computed.stop - computed.start, size),)
    # eager: only the decoder in bf16 (below); OpenVINO lowers the whole net or nothing: within 53-56 dB of fp32
    # where the paste blends at 2.6-2.9x the speed (bench/results/restorer_precision_cpu.md)
    runner = make_runner(RestoreNet(model), examples, inference, backend, weights_path=folder,
                         tag=f"sovqae-{computed.start}", autocast=False, exported_autocast=True)
    if isinstance(runner, TorchRunner):  # the restorer's own rule (RestoreNet): only its decoder in bf16/fp16
        runner.module.decoder_dtype = inference.amp_dtype
        if inference.amp_dtype is not None:
            runner.name = runner.name.replace("fp32", f"fp32 encoder, {inference.precision} decoder")
    return Restorer(runner, size, computed, crop_geometry(folder), inference.device)
