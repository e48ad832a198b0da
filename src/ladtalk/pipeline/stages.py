"""The cascade's per-batch stages around Wav2Lip, shared by `generate` and the benchmarks (tensors stay on the
model's device between stages; only uint8 frames cross to the CPU)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ladtalk.face.wav2lip_geometry import official_inputs, official_outputs_to_uint8, official_paste
from ladtalk.pixels import to_images
from ladtalk.runtime import autocast_to

WAV2LIP_SIZE = 96


@torch.inference_mode()
def lipsync(wav2lip: torch.nn.Module, faces: torch.Tensor, mels: torch.Tensor,
            dtype: torch.dtype | None = None) -> torch.Tensor:
    """Wav2Lip on face crops (B,3,S,S) RGB [0,1] and mel windows (B,1,80,16) -> faces (B,3,s,s) RGB [0,1], s = 96
    for the official generator (its config's img_size). Its input (B,6,s,s): [lower half zeroed, reference], BGR."""
    size = getattr(getattr(wav2lip, "config", None), "img_size", WAV2LIP_SIZE)
    with autocast_to(faces.device, dtype):
        small = F.interpolate(faces, size=(size, size), mode="area") if faces.shape[-1] != size else faces
        bgr = small.flip(1)  # the official weights expect OpenCV's BGR order
        masked = bgr.clone()
        masked[:, :, size // 2:] = 0
        out = wav2lip(mels, torch.cat([masked, bgr], dim=1))
    return out.float().flip(1)


def upscale(faces: torch.Tensor | np.ndarray, size: int) -> torch.Tensor | np.ndarray:
    """Lip-synced faces at the restorer's size: float (B,3,s,s) in [0,1] resized (bicubic) to (B,3,size,size);
    uint8 crops (the official geometry's, already cut from the frame at that size) as they are."""
    if not isinstance(faces, torch.Tensor) or faces.shape[-2:] == (size, size):
        return faces
    return F.interpolate(faces, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def lipsync_frames(wav2lip: torch.nn.Module, frames: np.ndarray, boxes: np.ndarray, mels: torch.Tensor,
                   dtype: torch.dtype | None = None) -> np.ndarray:
    """The official Wav2Lip inference on whole frames uint8 (B,H,W,3) RGB with official boxes (B,4) and mel windows
    (B,1,80,16): each box stretched (bilinear) to the generator's size, the output truncated to uint8, resized back
    and hard-pasted -> frames uint8 (B,H,W,3) RGB, exactly what the official inference.py writes for these boxes."""
    size = getattr(getattr(wav2lip, "config", None), "img_size", WAV2LIP_SIZE)
    faces = to_images(official_inputs(frames, boxes, size), mels.device)
    out = lipsync(wav2lip, faces, mels, dtype)
    out = official_outputs_to_uint8(out.permute(0, 2, 3, 1).cpu().numpy())
    return official_paste(frames, out, boxes)
