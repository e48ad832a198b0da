"""The frozen networks an evaluation needs, loaded once per run: LPIPS-VGG (Zhang et al., 2018), the FID Inception
(Heusel et al., 2017), SyncNet for LSE (Chung & Zisserman, 2016; as used by Wav2Lip) and the face detector for
LSE's face crops. A network whose weights are missing is recorded with the reason, never replaced by a number."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ladtalk.errors import InputError, LadtalkError
from ladtalk.face.detect import make_detector
from ladtalk.metrics.fid import load_fid_inception
from ladtalk.metrics.lpips import load_perceptual_metric
from ladtalk.metrics.sync import load_syncnet_s

LSE_CROPS = ("face", "frame")


@dataclass
class Networks:
    """Frozen networks loaded once per run, or the reason each is absent."""

    perceptual: object | None = None
    inception: torch.nn.Module | None = None
    syncnet: torch.nn.Module | None = None
    lse_crop: str = "face"  # "face": syncnet_python's real-video face crops; "frame": whole frames (other keys)
    detector: object | None = None  # finds the faces LSE crops
    absent: dict[str, str] = field(default_factory=dict)


def load_networks(syncnet_path, inception_path, device: torch.device, lse_crop: str = "face",
                  detector: str = "mtcnn") -> Networks:
    if lse_crop not in LSE_CROPS:
        raise InputError(f"lse_crop must be one of {LSE_CROPS}, got {lse_crop!r}")
    nets = Networks(lse_crop=lse_crop)
    try:
        nets.perceptual = load_perceptual_metric(device)
        if nets.perceptual.name != "LPIPS-VGG":
            nets.absent["frame_lpips"] = nets.perceptual.note
    except LadtalkError as e:
        nets.absent["frame_lpips"] = f"no perceptual network could be loaded: {e}"
    try:
        nets.inception = load_fid_inception(inception_path).to(device)
    except InputError as e:
        if inception_path is not None:
            raise
        nets.absent["fid"] = str(e)
    if syncnet_path is not None:
        nets.syncnet = load_syncnet_s(syncnet_path, device)
        if lse_crop == "face":
            nets.detector = make_detector(detector, device=device)
    else:
        reason = ("no SyncNet weights given: pass --syncnet PATH to syncnet_v2.model (syncnet_python, "
                  "54,573,114 bytes; not downloadable from this tool)")
        nets.absent["lse_d"] = nets.absent["lse_c"] = reason
    return nets
