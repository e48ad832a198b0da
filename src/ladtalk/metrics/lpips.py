"""Perceptual distance of video frames, reported under the name of the network actually used: LPIPS-VGG (v0.1) when
its ImageNet trunk is in the torch hub cache, otherwise ST-LPIPS-VGG (losses.perceptual.build_perceptual("auto")).
The two give different numbers; never report one as the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from ladtalk.errors import LadtalkError
from ladtalk.losses.perceptual import VGG16_FILE, build_perceptual
from ladtalk.metrics.image import check_pair
from ladtalk.pixels import to_images
from ladtalk.weights import torch_hub_checkpoints_dir

DISPLAY_NAMES = {"lpips_vgg": "LPIPS-VGG", "stlpips_vgg": "ST-LPIPS-VGG"}


@dataclass
class PerceptualMetric:
    """A frozen perceptual network with its display name ("LPIPS-VGG" / "ST-LPIPS-VGG") and why it was chosen."""

    net: torch.nn.Module
    name: str
    note: str

    @property
    def key(self) -> str:
        """Its name in the scores' vocabulary (metrics.scoring): 'lpips' or 'st_lpips'."""
        return {"LPIPS-VGG": "lpips", "ST-LPIPS-VGG": "st_lpips"}[self.name]


def load_perceptual_metric(device: torch.device | str = "cpu") -> PerceptualMetric:
    """LPIPS-VGG if its weights are present, else ST-LPIPS-VGG; raises LadtalkError if neither can be loaded."""
    net, kind = build_perceptual("auto", device)
    if net is None:
        raise LadtalkError("no perceptual network is available")
    if kind == "lpips_vgg":
        note = f"LPIPS v0.1 VGG with {VGG16_FILE} from the torch hub cache"
    else:
        note = (f"LPIPS-VGG unavailable: {VGG16_FILE} not found in {torch_hub_checkpoints_dir()} (or "
                "$LADTALK_VGG16); ST-LPIPS-VGG (stlpips-pytorch wheel) used instead - its values are not LPIPS")
    return PerceptualMetric(net=net, name=DISPLAY_NAMES[kind], note=note)


@torch.no_grad()
def perceptual_distance(net: torch.nn.Module, pred: np.ndarray, gt: np.ndarray, batch_size: int = 4,
                        device: torch.device | str = "cpu") -> np.ndarray:
    """Per-frame distance (T,) float64 of uint8 (T,H,W,3) RGB frames through a frozen (a, b) -> (B,) network."""
    check_pair(pred, gt)
    out = []
    for s in tqdm(range(0, len(pred), batch_size), desc="perceptual", unit="batch", leave=False):
        a = to_images(pred[s:s + batch_size], device) * 2 - 1  # LPIPS takes images in [-1,1]
        b = to_images(gt[s:s + batch_size], device) * 2 - 1
        out.append(net(a, b).double().cpu().numpy().reshape(-1))
    return np.concatenate(out)


@torch.no_grad()
def perceptual_features(net: torch.nn.Module, frames: np.ndarray) -> list[torch.Tensor]:
    """A frozen network's `features` of uint8 (B,H,W,3) RGB frames, on the device the network is on."""
    device = next(net.parameters()).device
    return net.features(to_images(frames, device) * 2 - 1)  # LPIPS takes images in [-1,1]
