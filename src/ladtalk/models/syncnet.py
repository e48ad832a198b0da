"""Lip-sync networks: Wav2Lip's expert (`SyncNetColor`) and syncnet_python's `S` (the LSE-C / LSE-D model), named
by the official state-dict keys so `lipsync_expert.pth` and `syncnet_v2.model` load strictly."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ladtalk.models.wav2lip import ConvBN, audio_encoder, res_unit, scaled


@dataclass(frozen=True)
class SyncNetConfig:
    """Expert size: width 1.0 / img_size 96 are the official `SyncNet_color` (16.4 M parameters, 512-d)."""

    width: float = 1.0
    img_size: int = 96
    # beyond the official expert: see only the mouth (MOUTH_ROWS x MOUTH_COLS of the lower half, the 48-px network):
    # with one person's minute of video the whole lower half is memorised frame by frame (issue 28)
    mouth_crop: bool = False

    def __post_init__(self):
        if self.img_size not in (48, 96):
            raise ValueError(f"img_size must be 96 (official) or 48, got {self.img_size}")
        if self.mouth_crop and self.img_size != 96:
            raise ValueError("mouth_crop takes the mouth out of 96-px faces; set img_size 96")


# the mouth in the lower half (rows 48-96) of a 96-px face crop as `prepare` and Wav2Lip make them: face rows 58-82
# (the lips open and closed, with the chin's top) and the middle half of the width
MOUTH_ROWS, MOUTH_COLS = slice(10, 34), slice(24, 72)


class SyncNetColor(nn.Module):
    """forward(audio (N,1,80,16), face (N,15,S/2,S)) -> (a, v): L2-normalised embeddings (N, 512*width); face: the
    lower halves of 5 consecutive BGR [0,1] crops, frame-major on channels. Both come out of a ReLU, so their cosine
    is in [0, 1], read as the probability of sync."""

    def __init__(self, config: SyncNetConfig = SyncNetConfig()):
        super().__init__()
        self.config = config
        c32, c64, c128, c256, c512 = (scaled(x, config.width) for x in (32, 64, 128, 256, 512))
        net_size = 48 if config.mouth_crop else config.img_size  # the 24x48 mouth goes through the 48-px network
        s_deep = 2 if net_size == 96 else 1  # 48x48 faces reach 3x3 one stage earlier
        self.face_encoder = nn.Sequential(
            ConvBN(15, c32, 7, 1, 3),
            ConvBN(c32, c64, 5, (1, 2), 1), res_unit(c64), res_unit(c64),
            ConvBN(c64, c128, 3, 2, 1), res_unit(c128), res_unit(c128), res_unit(c128),
            ConvBN(c128, c256, 3, 2, 1), res_unit(c256), res_unit(c256),
            ConvBN(c256, c512, 3, 2, 1), res_unit(c512), res_unit(c512),
            ConvBN(c512, c512, 3, s_deep, 1),
            ConvBN(c512, c512, 3, 1, 0),
            ConvBN(c512, c512, 1, 1, 0),
        )
        self.audio_encoder = audio_encoder(config.width, extra_res256=True)

    def embed_audio(self, audio: torch.Tensor) -> torch.Tensor:
        """(N,1,80,16) mel windows -> (N, D) unit-length audio embeddings."""
        return F.normalize(self.audio_encoder(audio).flatten(1), p=2, dim=1)

    def embed_face(self, face: torch.Tensor) -> torch.Tensor:
        """(N,15,S/2,S) BGR [0,1] lower halves -> (N, D) unit-length face embeddings."""
        if self.config.mouth_crop:
            face = face[:, :, MOUTH_ROWS, MOUTH_COLS]
        return F.normalize(self.face_encoder(face).flatten(1), p=2, dim=1)

    def forward(self, audio: torch.Tensor, face: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.embed_audio(audio), self.embed_face(face)


@dataclass(frozen=True)
class SyncNetSConfig:
    """syncnet_python's S; the published syncnet_v2.model uses num_layers_in_fc_layers=1024."""

    num_layers_in_fc_layers: int = 1024


def _bn_relu2d(cin: int, cout: int, kernel, padding) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, padding=padding), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def _bn_relu3d(cin: int, cout: int, kernel, stride=1, padding=0) -> list[nn.Module]:
    return [nn.Conv3d(cin, cout, kernel, stride, padding), nn.BatchNorm3d(cout), nn.ReLU(inplace=True)]


def _fc(out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, out_dim))


class SyncNetS(nn.Module):
    """forward_aud: MFCC (N,1,13,20) -> (N,1024); forward_lip: BGR 0-255 (N,3,5,224,224) -> (N,1024); not normalised."""

    def __init__(self, config: SyncNetSConfig = SyncNetSConfig()):
        super().__init__()
        self.config = config
        # indices (conv, BN, ReLU, pool) must match the original Sequential positions: they are the key names
        self.netcnnaud = nn.Sequential(
            *_bn_relu2d(1, 64, 3, 1), nn.MaxPool2d(1, 1),
            *_bn_relu2d(64, 192, 3, 1), nn.MaxPool2d(3, (1, 2)),
            *_bn_relu2d(192, 384, 3, 1),
            *_bn_relu2d(384, 256, 3, 1),
            *_bn_relu2d(256, 256, 3, 1), nn.MaxPool2d(3, 2),
            *_bn_relu2d(256, 512, (5, 4), 0),
        )
        self.netfcaud = _fc(config.num_layers_in_fc_layers)
        self.netfclip = _fc(config.num_layers_in_fc_layers)
        self.netcnnlip = nn.Sequential(
            *_bn_relu3d(3, 96, (5, 7, 7), (1, 2, 2), 0), nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
            *_bn_relu3d(96, 256, (1, 5, 5), (1, 2, 2), (0, 1, 1)), nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            *_bn_relu3d(256, 256, (1, 3, 3), 1, (0, 1, 1)),
            *_bn_relu3d(256, 256, (1, 3, 3), 1, (0, 1, 1)),
            *_bn_relu3d(256, 256, (1, 3, 3), 1, (0, 1, 1)), nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
            *_bn_relu3d(256, 512, (1, 6, 6), 1, 0),
        )

    def forward_aud(self, mfcc: torch.Tensor) -> torch.Tensor:
        return self.netfcaud(self.netcnnaud(mfcc).flatten(1))

    def forward_lip(self, frames: torch.Tensor) -> torch.Tensor:
        return self.netfclip(self.netcnnlip(frames).flatten(1))

    def forward(self, mfcc: torch.Tensor, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_aud(mfcc), self.forward_lip(frames)
