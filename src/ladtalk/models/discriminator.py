"""PatchGAN discriminator (pix2pix NLayerDiscriminator as used by taming's VQGAN): 256 input -> 30x30 logits."""

from __future__ import annotations

import torch
from torch import nn


class PatchDiscriminator(nn.Module):
    """images (B,3,H,W) in [-1,1] -> patch logits (B,1,H',W'): a conv4x4 of `ndf` filters, then `n_layers` more
    with BatchNorm, each with LeakyReLU(0.2)."""

    def __init__(self, ndf: int = 64, n_layers: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for i in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** i, 8)
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=False), nn.BatchNorm2d(ndf * mult),
                       nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.main = nn.Sequential(*layers)
        self.apply(_taming_init)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.main(images)


def _taming_init(m: nn.Module) -> None:
    # pix2pix/taming init: conv weights N(0, 0.02), BatchNorm scale N(1, 0.02) and shift 0
    if isinstance(m, nn.Conv2d):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)
