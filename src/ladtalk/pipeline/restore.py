"""Restoration with a trained SOVQAE (an exported model or a run folder): each face mapped to the nearest codes of
the identity's codebook and decoded, which replaces blur, noise and Wav2Lip's lost detail by the identity's clean
texture (the paper's robustness argument)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ladtalk.checkpoint import load_state_dict, read_meta, strict_load
from ladtalk.errors import CheckpointError, InputError
from ladtalk.face.crop import lower_face_mask
from ladtalk.models.sovqae import SOVQAE, SOVQAEConfig
from ladtalk.pipeline.stages import upscale
from ladtalk.pixels import to_frames, to_images
from ladtalk.runtime import autocast_dtype, autocast_to, resolve_device

KIND = "sovqae"
# On a CPU a batch of 256x256 activations spills out of the caches: 1-4 faces at a time run ~1.8x faster per face
# than 16 (2-core EPYC, restore-cpu: 117-135 against 223 ms/face, bench/results/restore_batch_cpu.json).
CPU_BATCH = 2


# rows above the mouth paste's mask that the SOVQAE still computes, in pixels of a 256-px crop: convolutions near
# the region's top edge see zero padding, and the margin keeps that edge away from what is pasted (48: within 41-47
# dB of the whole crop where the paste blends, 32: 39 dB; bench/results/restore_rows_trained.md)
PASTE_MARGIN_256 = 48


def pasted_rows(size: int, factor: int) -> slice:
    """The rows of a (size x size) face the SOVQAE computes for the mouth paste: from PASTE_MARGIN_256 (scaled) above
    the first row the mouth mask blends (less 2 for the paste's resize) to the bottom, starting at a multiple of the
    downsampling `factor` so that the code grid and guide stay aligned with the whole crop's."""
    margin = PASTE_MARGIN_256 * size // 256
    first = int(np.flatnonzero(lower_face_mask(size).max(1) > 0)[0])
    return slice(max(0, (first - 2 - margin) // factor * factor), size)


def batch_for(device: torch.device, batch_size: int) -> int:
    """The batch to run the SOVQAE in on `device`: as asked on accelerators, at most CPU_BATCH on a CPU."""
    return min(batch_size, CPU_BATCH) if device.type == "cpu" else batch_size


def sovqae_folder(path: str | os.PathLike) -> Path:
    """The model folder inside `path`: itself, RUN_DIR/model, or RUN_DIR/checkpoints/{best,last}."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"SOVQAE model {p} does not exist; give the folder written by `ladtalk train sovqae`")
    for cand in (p, p / "model", p / "checkpoints" / "best", p / "checkpoints" / "last"):
        if (cand / "config.json").is_file():
            if cand != p and cand.parent.name == "checkpoints":  # an unfinished run: say which weights are used
                print(f"note: {p} has no exported model/ (training did not finish); using {cand} (best on the "
                      "held-out slice of the train split)" if cand.name == "best" else f"note: using {cand}")
            return cand
    raise CheckpointError(f"{p} holds no SOVQAE model (no config.json in it, in model/ or in checkpoints/); "
                          "train one with `ladtalk train sovqae IDENTITY_DIR -o RUN_DIR`")


def load_sovqae(path: str | os.PathLike, device: str | torch.device = "cpu") -> SOVQAE:
    """An eval-mode SOVQAE on `device` from a model folder or a run folder (strict load, kind checked)."""
    folder = sovqae_folder(path)
    meta = read_meta(folder, kind=KIND)
    try:
        config = SOVQAEConfig.from_dict(meta["config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{folder}/config.json has an unusable SOVQAE config ({e})") from e
    model = SOVQAE(config)
    strict_load(model, load_state_dict(folder), str(folder))
    return model.to(resolve_device(device)).eval()


def crop_geometry(path: str | os.PathLike) -> dict | None:
    """How the faces a SOVQAE was trained on were cropped (detector, pads, squaring, size; see
    Identity.crop_geometry), or None for a model saved before ladtalk recorded it."""
    return read_meta(sovqae_folder(path), kind=KIND).get("extra", {}).get("crop_geometry")


def pick_crop_setting(name: str, given, geometry: dict | None, fallback, model_path, given_by: str = "the given"
                      ) -> object:
    """The crop setting `name` ('pads', 'detector') to use: the model's own by default; an explicit value wins,
    with a warning when it differs from what the model was trained on."""
    def norm(v):
        return tuple(int(x) for x in v) if isinstance(v, (list, tuple)) else v
    trained = None if geometry is None else geometry.get(name)
    if given is None:
        if trained is None:
            print(f"note: SOVQAE {model_path} does not record its crop {name} (saved by an older ladtalk); using "
                  f"{fallback!r}. Give the value its identity was prepared with if that differs.")
            return norm(fallback)
        return norm(trained)
    if trained is not None and norm(given) != norm(trained):
        print(f"warning: {given_by} {name} {norm(given)!r} differ(s) from the {norm(trained)!r} that SOVQAE "
              f"{model_path} was trained with; its faces will be cropped differently from what it learned")
    return norm(given)


class RestoreNet(torch.nn.Module):
    """The SOVQAE's restoration as one network (what the backends export): restore_batch_with_latents without the
    latents, the decoder under `decoder_dtype` autocast (None: fp32)."""

    def __init__(self, model: SOVQAE, decoder_dtype: torch.dtype | None = None):
        super().__init__()
        self.model, self.decoder_dtype = model, decoder_dtype

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return restore_batch_with_latents(self.model, images, self.decoder_dtype)[:2]


@torch.no_grad()
def restore_batch_with_latents(model: SOVQAE, images: torch.Tensor, amp_dtype: torch.dtype | None
                               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One batch through the SOVQAE: float images (B,3,S,S) in [0,1] at the model's resolution -> (restored images
    (B,3,S,S) in [0,1] fp32, code indices (B,h,w), the encoder's pre-quantization latents (B,D,h,w), which `ladtalk
    analyze` compares between clean and degraded faces); the decoder under `amp_dtype` autocast (None: fp32)."""
    x = images * 2 - 1
    # the encoder and the choice of codes stay fp32: under bf16 a face lands on a neighbouring code at 4-13%
    # of positions (bench/results/bf16_vs_fp32_cpu.md; fp32 encoder: 99.98% the same codes); the decoder,
    # half the work, takes bf16 where `precision` allows
    latent, skips = model.latent_and_skips(x)
    z_q, _, indices = model.quantize(latent)
    with autocast_to(x.device, amp_dtype):
        y = model.decode(z_q, x, skips or None)
    return ((y.float() + 1) / 2).clamp(0, 1), indices, latent


@torch.no_grad()
def restore_images_with_latents(model: SOVQAE, images: torch.Tensor, amp_dtype: torch.dtype | None = None,
                                batch_size: int = 16) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`restore_batch_with_latents` over any number of images, `batch_size` (batch_for) at a time on the model's
    device: what validation and `ladtalk analyze` measure."""
    batch_size = batch_for(next(model.parameters()).device, batch_size)
    outs = [restore_batch_with_latents(model, images[s:s + batch_size], amp_dtype)
            for s in range(0, len(images), batch_size)]
    return tuple(torch.cat(parts) for parts in zip(*outs))


@torch.no_grad()
def restore_faces(net, images: np.ndarray | torch.Tensor, size: int, batch_size: int,
                  device: torch.device, rows: slice = slice(None)) -> np.ndarray | torch.Tensor:
    """Faces uint8 (T,H,W,3) RGB -> uint8 (T,S,S,3) (numpy or tensor, as given), or float (B,3,H,W) in [0,1] -> float
    (B,3,S,S), S = `size` (other sizes resized, bicubic), through `net` (images in [0,1] -> restored ones) at most
    `batch_size` (batch_for) at a time on `device`. With `rows`, only those rows are computed; the rest is the input."""
    as_numpy = isinstance(images, np.ndarray)
    as_frames = as_numpy or images.dtype == torch.uint8
    t = torch.as_tensor(images)
    if as_frames and (t.ndim != 4 or t.shape[-1] != 3 or t.dtype != torch.uint8):
        raise InputError(f"restore expects uint8 frames (T,H,W,3) RGB, got {tuple(t.shape)} {t.dtype}")
    if not as_frames and (t.ndim != 4 or t.shape[1] != 3):
        raise InputError(f"restore expects float images (B,3,H,W) in [0,1], got {tuple(t.shape)}")
    outs = []
    batch_size = batch_for(device, batch_size)
    for s in range(0, len(t), batch_size):
        part = t[s:s + batch_size].to(device)
        x = upscale(to_images(part, part.device) if as_frames else part.float(), size)
        y = x.clone()
        y[:, :, rows] = net(x[:, :, rows])
        outs.append(y)
    if not outs:
        return images
    y = torch.cat(outs)
    if as_frames:
        return to_frames(y) if as_numpy else torch.from_numpy(to_frames(y)).to(t.device)
    return y.to(t.device)


def restore(model: SOVQAE, images: np.ndarray | torch.Tensor, batch_size: int = 16, precision: str = "auto"
            ) -> np.ndarray | torch.Tensor:
    """Restore faces (restore_faces: uint8 frames or float images, numpy or tensor, as given) on the model's device,
    resized to its resolution first; the decoder in bf16/fp16 where `precision` allows."""
    device = next(model.parameters()).device
    amp = autocast_dtype(device, precision)
    return restore_faces(lambda x: restore_batch_with_latents(model, x, amp)[0], images, model.config.resolution,
                         batch_size, device)
