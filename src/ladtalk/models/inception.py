"""The Inception-v3 graph of the FID weights `pt_inception-2015-12-05-6726825d.pth` (TF 2015-12-05 model), with
torchvision's Inception3 names (without `AuxLogits`) so the file loads strictly. Where the TF graph behind FID
differs from torchvision's (FID depends on it): 1008 classes; BatchNorm eps 1e-3; the average pools of
Mixed_5b..Mixed_7b exclude the zero padding; Mixed_7c's pool branch is a 3x3 max-pool. Resizing and scaling to
[-1, 1] at 299x299 are metrics.fid's job."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FID_NUM_CLASSES = 1008
FID_FEATURE_DIM = 2048


class BasicConv2d(nn.Module):
    """Conv (no bias) -> BatchNorm (eps 1e-3, as in the TF graph) -> ReLU."""

    def __init__(self, cin: int, cout: int, kernel_size, stride=1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg3(x: torch.Tensor) -> torch.Tensor:
    # TF's average pool divides by the number of real (unpadded) pixels.
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class Mixed(nn.Module):
    """An Inception block: chains of BasicConv2d, each given as (name, cin, cout, kernel, stride, padding) with the
    weight file's names, concatenated on channels with the pool branch: TF's 3x3 average through `branch_pool`
    (a (name, cin, cout) 1x1 unit), or without one a 3x3 stride-2 max-pool (the reductions Mixed_6a and 7a)."""

    def __init__(self, chains: list[list[tuple]], branch_pool: tuple[str, int, int] | None = None) -> None:
        super().__init__()
        self.chains = [[name for name, *_ in chain] for chain in chains]
        for name, *args in [unit for chain in chains for unit in chain]:
            setattr(self, name, BasicConv2d(*args))
        if branch_pool is not None:
            self.branch_pool = BasicConv2d(*branch_pool[1:], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for chain in self.chains:
            y = x
            for name in chain:
                y = getattr(self, name)(y)
            outs.append(y)
        outs.append(self.branch_pool(_avg3(x)) if hasattr(self, "branch_pool") else F.max_pool2d(x, 3, stride=2))
        return torch.cat(outs, 1)


def mixed_a(cin: int, pool_features: int) -> Mixed:
    """Mixed_5b/5c/5d (35x35): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1 -> 224 + pool_features channels."""
    return Mixed([[("branch1x1", cin, 64, 1)],
                  [("branch5x5_1", cin, 48, 1), ("branch5x5_2", 48, 64, 5, 1, 2)],
                  [("branch3x3dbl_1", cin, 64, 1), ("branch3x3dbl_2", 64, 96, 3, 1, 1),
                   ("branch3x3dbl_3", 96, 96, 3, 1, 1)]], ("branch_pool", cin, pool_features))


def mixed_b(cin: int) -> Mixed:
    """Mixed_6a: 35x35 -> 17x17 reduction, 768 channels."""
    return Mixed([[("branch3x3", cin, 384, 3, 2)],
                  [("branch3x3dbl_1", cin, 64, 1), ("branch3x3dbl_2", 64, 96, 3, 1, 1),
                   ("branch3x3dbl_3", 96, 96, 3, 2)]])


def mixed_c(cin: int, c7: int) -> Mixed:
    """Mixed_6b..6e (17x17): factorised 7x7 branches, 768 channels."""
    row, col = ((1, 7), 1, (0, 3)), ((7, 1), 1, (3, 0))
    return Mixed([[("branch1x1", cin, 192, 1)],
                  [("branch7x7_1", cin, c7, 1), ("branch7x7_2", c7, c7, *row), ("branch7x7_3", c7, 192, *col)],
                  [("branch7x7dbl_1", cin, c7, 1), ("branch7x7dbl_2", c7, c7, *col), ("branch7x7dbl_3", c7, c7, *row),
                   ("branch7x7dbl_4", c7, c7, *col), ("branch7x7dbl_5", c7, 192, *row)]], ("branch_pool", cin, 192))


def mixed_d(cin: int) -> Mixed:
    """Mixed_7a: 17x17 -> 8x8 reduction, 1280 channels."""
    return Mixed([[("branch3x3_1", cin, 192, 1), ("branch3x3_2", 192, 320, 3, 2)],
                  [("branch7x7x3_1", cin, 192, 1), ("branch7x7x3_2", 192, 192, (1, 7), 1, (0, 3)),
                   ("branch7x7x3_3", 192, 192, (7, 1), 1, (3, 0)), ("branch7x7x3_4", 192, 192, 3, 2)]])


class MixedE(nn.Module):
    """Mixed_7b/7c (8x8): expanded 3x3 branches, 2048 channels; `max_pool` selects Mixed_7c's pool branch."""

    def __init__(self, cin: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        t = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(t), self.branch3x3_2b(t)], 1)
        t = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(t), self.branch3x3dbl_3b(t)], 1)
        # The TF graph's last block pools with max, not average (a known quirk of the FID network).
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg3(x)
        return torch.cat([b1, b3, bd, self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """FID Inception-v3: float (B,3,299,299) in [-1,1] -> pool3 features (B,2048)."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = mixed_a(192, 32)
        self.Mixed_5c = mixed_a(256, 64)
        self.Mixed_5d = mixed_a(288, 64)
        self.Mixed_6a = mixed_b(288)
        self.Mixed_6b = mixed_c(768, 128)
        self.Mixed_6c = mixed_c(768, 160)
        self.Mixed_6d = mixed_c(768, 160)
        self.Mixed_6e = mixed_c(768, 192)
        self.Mixed_7a = mixed_d(768)
        self.Mixed_7b = MixedE(1280, max_pool=False)
        self.Mixed_7c = MixedE(2048, max_pool=True)
        self.fc = nn.Linear(FID_FEATURE_DIM, FID_NUM_CLASSES)  # unused by FID; the file has it (strict load)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(images)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return x.mean(dim=(2, 3))
