"""Loading the lip-sync networks from an official file (wav2lip.pth, lipsync_expert.pth, syncnet_v2.model) or a
ladtalk model folder (config.json + model.safetensors), strictly and without running pickled code.

A raw file is checked by its key names before loading, so handing the expert to `load_wav2lip` (or an SOVQAE
file anywhere) says which kind of network the file holds instead of listing hundreds of missing keys.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from ladtalk.checkpoint import CONFIG_NAME, load_state_dict, read_meta, strict_load
from ladtalk.errors import CheckpointError, InputError
from ladtalk.models.syncnet import SyncNetColor, SyncNetConfig, SyncNetS, SyncNetSConfig
from ladtalk.models.wav2lip import Wav2Lip, Wav2LipConfig
from ladtalk.pretrained import resolve as resolve_builtin
from ladtalk.runtime import resolve_device
from ladtalk.weights import load_torch_weights

KIND_WAV2LIP = "wav2lip"
KIND_EXPERT = "syncnet_expert"
KIND_DISC = "wav2lip_disc_qual"
KIND_SYNCNET_S = "syncnet_s"

# one key that only this network has, and how to name it to the user
_SIGNATURES = {
    KIND_WAV2LIP: ("face_decoder_blocks.0.0.conv_block.0.weight", "a Wav2Lip generator (wav2lip.pth)"),
    KIND_EXPERT: ("face_encoder.0.conv_block.0.weight", "a Wav2Lip lip-sync expert (lipsync_expert.pth)"),
    KIND_DISC: ("binary_pred.0.weight", "a Wav2Lip visual-quality discriminator"),
    KIND_SYNCNET_S: ("netcnnaud.0.weight", "a syncnet_python SyncNet (syncnet_v2.model)"),
}

M = TypeVar("M", bound=nn.Module)
_BUILTIN_PART = {KIND_WAV2LIP: "wav2lip", KIND_EXPERT: "syncnet"}  # what a shipped base (ladtalk.pretrained) holds


def detect_kind(state_dict: dict[str, torch.Tensor]) -> str | None:
    """Which lip-sync network a state dict (prefixes stripped) belongs to, or None."""
    return next((kind for kind, (key, _) in _SIGNATURES.items() if key in state_dict), None)


def _model_folder(path: Path) -> Path:
    for folder in (path, path / "model"):  # a training run folder holds its exported model in RUN_DIR/model
        if (folder / CONFIG_NAME).is_file():
            return folder
    raise CheckpointError(f"{path} is a folder but not a ladtalk model or run folder ({CONFIG_NAME} is missing "
                          "there and in model/); give the model folder or an official .pth file")


def _load(path: str | os.PathLike, kind: str, model_cls: type[M], config_cls: type, device: str | torch.device,
          ) -> M:
    path = Path(resolve_builtin(path, _BUILTIN_PART[kind]) if kind in _BUILTIN_PART else path).expanduser()
    what = _SIGNATURES[kind][1]
    if not path.exists():
        raise InputError(f"{path} does not exist; expected {what} file or a ladtalk model folder")
    if path.is_dir():
        folder = _model_folder(path)
        meta = read_meta(folder, kind=kind)
        try:
            config = config_cls(**meta["config"])
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"{folder}/{CONFIG_NAME} has an unusable config for {what}: {e}") from e
        state, source = load_state_dict(folder), str(folder)
    else:
        state, source, config = load_torch_weights(path), str(path), config_cls()
        if (found := detect_kind(state)) != kind:
            held = _SIGNATURES[found][1] if found else "no lip-sync network this loader knows"
            raise CheckpointError(f"{path} holds {held}, but {what} is needed here; check which file you gave")
    model = model_cls(config)
    strict_load(model, state, source)
    return model.to(resolve_device(device)).eval()


def wav2lip_input_geometry(path: str | os.PathLike) -> str:
    """How the generator at `path` was trained to see faces: "official" (an official .pth: padded detector boxes
    stretched to the input size) or "square_crop" (a `ladtalk train wav2lip` model: the identity's square crops)."""
    extra = _wav2lip_extra(path)
    return "official" if extra is None else extra.get("input_geometry", "square_crop")


def wav2lip_mel_offset(path: str | os.PathLike) -> int:
    """The generator at `path` pairs frame i with frame i + offset's mel window (docs/DESIGN.md, 'How generate
    flows'): 0 for an official .pth, as the official inference; ours record it (-1, the original training's, before)."""
    extra = _wav2lip_extra(path)
    return 0 if extra is None else int(extra.get("mel_offset_frames", -1))


def _wav2lip_extra(path: str | os.PathLike) -> dict | None:
    """What `ladtalk train wav2lip` recorded with the generator at `path`; None for an official .pth file."""
    path = Path(resolve_builtin(path, "wav2lip")).expanduser()
    return read_meta(_model_folder(path), kind=KIND_WAV2LIP).get("extra", {}) if path.is_dir() else None


def load_wav2lip(path: str | os.PathLike, device: str | torch.device = "cpu") -> Wav2Lip:
    """wav2lip.pth / wav2lip_gan.pth or a 'wav2lip' model (or run) folder -> Wav2Lip in eval mode on `device`."""
    return _load(path, KIND_WAV2LIP, Wav2Lip, Wav2LipConfig, device)


def load_syncnet_expert(path: str | os.PathLike, device: str | torch.device = "cpu") -> SyncNetColor:
    """lipsync_expert.pth or a 'syncnet_expert' model (or run) folder -> SyncNetColor in eval mode."""
    return _load(path, KIND_EXPERT, SyncNetColor, SyncNetConfig, device)


def load_syncnet_s(path: str | os.PathLike, device: str | torch.device = "cpu") -> SyncNetS:
    """syncnet_v2.model (a bare state dict) or a 'syncnet_s' folder -> SyncNetS in eval mode."""
    return _load(path, KIND_SYNCNET_S, SyncNetS, SyncNetSConfig, device)

