"""LPIPS-VGG (v0.1 heads) and ST-LPIPS-VGG (shift-tolerant) as plain modules whose names follow the published state
dicts (loaded strictly by losses.perceptual): shift/scale -> five VGG16 stages -> unit norm over channels ->
squared difference -> 1x1 heads -> spatial mean -> sum. ST-LPIPS replaces each max-pool by MaxPool(2, stride 1) +
BlurPool (3x3 binomial, stride 2), which shifts the layer indices."""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

_VGG16_D = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
CHANNELS = (64, 128, 256, 512, 512)


class BlurPool(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        a = torch.tensor([1.0, 2.0, 1.0])
        filt = a[:, None] * a[None, :]
        self.register_buffer("filt", (filt / filt.sum())[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), self.filt, stride=2, groups=x.shape[1])


class ScalingLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188])[None, :, None, None])
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450])[None, :, None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale


class VGGTrunk(nn.Module):
    """VGG16 conv stages as five Sequentials that keep torchvision's flat layer indices in their names."""

    def __init__(self, shift_tolerant: bool):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for v in _VGG16_D:
            if v == "M":
                layers += [nn.MaxPool2d(2, 1), BlurPool(c_in)] if shift_tolerant else [nn.MaxPool2d(2, 2)]
            else:
                layers += [nn.Conv2d(c_in, v, 3, padding=1), nn.ReLU(inplace=False)]
                c_in = v
        bounds = (0, 4, 10, 18, 26, 34) if shift_tolerant else (0, 4, 9, 16, 23, 30)
        for s in range(5):
            indices = range(bounds[s], bounds[s + 1])
            setattr(self, f"slice{s + 1}", nn.Sequential(OrderedDict((str(i), layers[i]) for i in indices)))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for s in range(1, 6):
            x = getattr(self, f"slice{s}")(x)
            feats.append(x)
        return feats


class PerceptualDistance(nn.Module):
    """(B,3,H,W) x2 in [-1,1] -> (B,) LPIPS-style distance; 0 for identical inputs."""

    def __init__(self, shift_tolerant: bool):
        super().__init__()
        self.scaling_layer = ScalingLayer()
        self.net = VGGTrunk(shift_tolerant)
        for k, c in enumerate(CHANNELS):
            # the published heads' `model.0` is a Dropout, never active for a frozen loss: Identity
            head = nn.Sequential(nn.Identity(), nn.Conv2d(c, 1, 1, bias=False))
            setattr(self, f"lin{k}", nn.Sequential(OrderedDict(model=head)))

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B,3,H,W) in [-1,1] -> the five stages' features, each unit-normalised over channels (float32)."""
        out = []
        for f in self.net(self.scaling_layer(x)):
            f = f.float()
            out.append(f / (f.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return out

    def compare(self, fa: list[torch.Tensor], fb: list[torch.Tensor]) -> torch.Tensor:
        """(B,) distance of two batches' `features` (so that a frame's features can serve several comparisons)."""
        total = fa[0].new_zeros(fa[0].shape[0])
        for k, (a, b) in enumerate(zip(fa, fb)):
            total = total + getattr(self, f"lin{k}")((a - b).pow(2)).mean((1, 2, 3))
        return total

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        n = a.shape[0]
        feats = self.features(torch.cat([a, b], 0))
        return self.compare([f[:n] for f in feats], [f[n:] for f in feats])


def lpips_vgg() -> PerceptualDistance:
    """LPIPS-VGG layout (torchvision VGG16 trunk + LPIPS v0.1 heads)."""
    return PerceptualDistance(shift_tolerant=False)


def stlpips_vgg() -> PerceptualDistance:
    """ST-LPIPS-VGG layout (anti-aliased VGG16 trunk + heads, one file in the stlpips-pytorch wheel)."""
    return PerceptualDistance(shift_tolerant=True)
