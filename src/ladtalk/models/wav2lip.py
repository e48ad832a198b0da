"""The Wav2Lip generator and its visual-quality discriminator; child names are the official checkpoints' keys (do not
change them). Images are BGR in [0, 1], 96x96 by default. For small CPU models `width` scales every channel count
and `img_size=48` turns the deepest down- and up-sampling (3x3 <-> 6x6) into stride 1."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


class ConvUnit(nn.Module):
    """`conv_block` (conv, optionally BN) (-> + input) -> activation; the residual is added before the activation,
    as in the original."""

    def __init__(self, layers: list[nn.Module], act: nn.Module, residual: bool = False):
        super().__init__()
        self.conv_block = nn.Sequential(*layers)
        self.act = act
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv_block(x)
        return self.act(y + x if self.residual else y)


def ConvBN(cin: int, cout: int, kernel, stride=1, padding=0, residual: bool = False) -> ConvUnit:
    """conv -> BN (-> + input) -> ReLU."""
    return ConvUnit([nn.Conv2d(cin, cout, kernel, stride, padding), nn.BatchNorm2d(cout)], nn.ReLU(), residual)


def ConvTBN(cin: int, cout: int, kernel, stride=1, padding=0, output_padding=0) -> ConvUnit:
    """Transposed conv -> BN -> ReLU."""
    return ConvUnit([nn.ConvTranspose2d(cin, cout, kernel, stride, padding, output_padding), nn.BatchNorm2d(cout)],
                    nn.ReLU())


def ConvLeaky(cin: int, cout: int, kernel, stride=1, padding=0) -> ConvUnit:
    """conv -> LeakyReLU(0.01) without normalisation (the discriminator's unit)."""
    return ConvUnit([nn.Conv2d(cin, cout, kernel, stride, padding)], nn.LeakyReLU(0.01))


def res_unit(c: int) -> ConvUnit:
    """The residual 3x3 unit that follows most convolutions of Wav2Lip and its expert."""
    return ConvBN(c, c, 3, 1, 1, residual=True)


def fold_time(x: torch.Tensor) -> torch.Tensor:
    """(B,C,T,H,W) -> (T*B,C,H,W), time-major (all items of t=0, then t=1, ...) as the original folds it."""
    return x.permute(2, 0, 1, 3, 4).reshape(x.shape[2] * x.shape[0], x.shape[1], *x.shape[3:])


def scaled(channels: int, width: float) -> int:
    """Channel count scaled by `width` (at least 1)."""
    return max(1, int(round(channels * width)))


def audio_encoder(width: float = 1.0, extra_res256: bool = False) -> nn.Sequential:
    """Mel window (N, 1, 80, 16) -> (N, 512*width, 1, 1); the expert's version has a second 256-channel res unit."""
    c = [scaled(x, width) for x in (32, 64, 128, 256, 512)]
    layers = [ConvBN(1, c[0], 3, 1, 1), res_unit(c[0]), res_unit(c[0]),
              ConvBN(c[0], c[1], 3, (3, 1), 1), res_unit(c[1]), res_unit(c[1]),
              ConvBN(c[1], c[2], 3, 3, 1), res_unit(c[2]), res_unit(c[2]),
              ConvBN(c[2], c[3], 3, (3, 2), 1), res_unit(c[3])]
    if extra_res256:
        layers.append(res_unit(c[3]))
    layers += [ConvBN(c[3], c[4], 3, 1, 0), ConvBN(c[4], c[4], 1, 1, 0)]
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class Wav2LipConfig:
    """Generator size: width 1.0 and img_size 96 are the official network (36.3 M parameters)."""

    width: float = 1.0
    img_size: int = 96

    def __post_init__(self):
        if self.img_size not in (48, 96):
            raise ValueError(f"img_size must be 96 (official) or 48, got {self.img_size}")
        if not 0 < self.width <= 4:
            raise ValueError(f"width must be in (0, 4], got {self.width}")


class Wav2Lip(nn.Module):
    """forward(audio, face): (N,1,80,16) + (N,6,S,S) -> (N,3,S,S), or (B,T,1,80,16) + (B,6,T,S,S) -> (B,3,T,S,S);
    face channels 0-2: the target frame with rows S/2.. zeroed, 3-5: an unmasked reference; all BGR in [0, 1]."""

    def __init__(self, config: Wav2LipConfig = Wav2LipConfig()):
        super().__init__()
        self.config = config
        w = config.width
        c16, c32, c64, c128, c256, c384, c512 = (scaled(x, w) for x in (16, 32, 64, 128, 256, 384, 512))
        sd = 2 if config.img_size == 96 else 1  # the 6x6 <-> 3x3 step; absent for 48x48 faces
        self.face_encoder_blocks = nn.ModuleList([
            nn.Sequential(ConvBN(6, c16, 7, 1, 3)),
            nn.Sequential(ConvBN(c16, c32, 3, 2, 1), res_unit(c32), res_unit(c32)),
            nn.Sequential(ConvBN(c32, c64, 3, 2, 1), res_unit(c64), res_unit(c64), res_unit(c64)),
            nn.Sequential(ConvBN(c64, c128, 3, 2, 1), res_unit(c128), res_unit(c128)),
            nn.Sequential(ConvBN(c128, c256, 3, 2, 1), res_unit(c256), res_unit(c256)),
            nn.Sequential(ConvBN(c256, c512, 3, sd, 1), res_unit(c512)),
            nn.Sequential(ConvBN(c512, c512, 3, 1, 0), ConvBN(c512, c512, 1, 1, 0)),
        ])
        self.audio_encoder = audio_encoder(w)
        up_deep = (3, 2, 1, 1) if sd == 2 else (3, 1, 1, 0)
        self.face_decoder_blocks = nn.ModuleList([
            nn.Sequential(ConvBN(c512, c512, 1, 1, 0)),
            nn.Sequential(ConvTBN(2 * c512, c512, 3, 1, 0), res_unit(c512)),
            nn.Sequential(ConvTBN(2 * c512, c512, *up_deep), res_unit(c512), res_unit(c512)),
            nn.Sequential(ConvTBN(c512 + c256, c384, 3, 2, 1, 1), res_unit(c384), res_unit(c384)),
            nn.Sequential(ConvTBN(c384 + c128, c256, 3, 2, 1, 1), res_unit(c256), res_unit(c256)),
            nn.Sequential(ConvTBN(c256 + c64, c128, 3, 2, 1, 1), res_unit(c128), res_unit(c128)),
            nn.Sequential(ConvTBN(c128 + c32, c64, 3, 2, 1, 1), res_unit(c64), res_unit(c64)),
        ])
        self.output_block = nn.Sequential(ConvBN(c64 + c16, c32, 3, 1, 1), nn.Conv2d(c32, 3, 1, 1, 0), nn.Sigmoid())

    def forward(self, audio: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        five_d = face.dim() == 5
        if five_d:
            b, t = face.shape[0], face.shape[2]
            audio = audio.transpose(0, 1).reshape(t * b, *audio.shape[2:])
            face = fold_time(face)
        x = self.audio_encoder(audio)
        skips = []
        f = face
        for block in self.face_encoder_blocks:
            f = block(f)
            skips.append(f)
        for block in self.face_decoder_blocks:
            x = torch.cat([block(x), skips.pop()], dim=1)
        out = self.output_block(x)
        if five_d:
            out = out.reshape(t, b, *out.shape[1:]).permute(1, 2, 0, 3, 4)
        return out


class Wav2LipQualityDiscriminator(nn.Module):
    """faces (B,3,T,S,S) or (N,3,S,S), BGR in [0,1] -> probability of being real (T*B, 1), on the lower halves.
    Sized by its generator's config: width 1.0 / img_size 96 are the official `Wav2Lip_disc_qual`."""

    def __init__(self, config: Wav2LipConfig = Wav2LipConfig()):
        super().__init__()
        self.config = config
        c32, c64, c128, c256, c512 = (scaled(x, config.width) for x in (32, 64, 128, 256, 512))
        sd = 2 if config.img_size == 96 else 1  # 48x48 faces reach 3x3 one stage earlier
        self.face_encoder_blocks = nn.ModuleList([
            nn.Sequential(ConvLeaky(3, c32, 7, 1, 3)),
            nn.Sequential(ConvLeaky(c32, c64, 5, (1, 2), 2), ConvLeaky(c64, c64, 5, 1, 2)),
            nn.Sequential(ConvLeaky(c64, c128, 5, 2, 2), ConvLeaky(c128, c128, 5, 1, 2)),
            nn.Sequential(ConvLeaky(c128, c256, 5, 2, 2), ConvLeaky(c256, c256, 5, 1, 2)),
            nn.Sequential(ConvLeaky(c256, c512, 3, 2, 1), ConvLeaky(c512, c512, 3, 1, 1)),
            nn.Sequential(ConvLeaky(c512, c512, 3, sd, 1), ConvLeaky(c512, c512, 3, 1, 1)),
            nn.Sequential(ConvLeaky(c512, c512, 3, 1, 0), ConvLeaky(c512, c512, 1, 1, 0)),
        ])
        self.binary_pred = nn.Sequential(nn.Conv2d(c512, 1, 1, 1, 0), nn.Sigmoid())

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        if faces.dim() == 5:
            faces = fold_time(faces)
        x = faces[:, :, faces.shape[2] // 2:]
        for block in self.face_encoder_blocks:
            x = block(x)
        return self.binary_pred(x).reshape(x.shape[0], -1)
