"""S3FD (Zhang et al. 2017), the face detector of Wav2Lip: the network under the official state-dict names,
the official decode, and a detector that loads a user's s3fd.pth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ladtalk.errors import InputError
from ladtalk.face.boxes import Detection, batched_nms, detections_from_arrays
from ladtalk.io.video import check_frames

# Per-channel means subtracted by Wav2Lip's copy of the face-alignment S3FD code. Its frames are flipped from
# OpenCV's BGR to RGB first, so these numbers meet the R, G, B channels in that order.
S3FD_MEAN = (104.0, 117.0, 123.0)


class L2Norm(nn.Module):
    """Channel-wise L2 normalisation with a learned per-channel scale (the SSD trick for the shallow maps)."""

    def __init__(self, channels: int, scale: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), float(scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10) * self.weight.view(1, -1, 1, 1)


class S3FD(nn.Module):
    """VGG16-based S3FD: images (B,3,H,W) float, RGB minus S3FD_MEAN, 0-255 scale -> 12 maps: for levels of stride
    4, 8, 16, 32, 64, 128, a class map (B,2,h,w) (logits, background/face) and a box map (B,4,h,w)."""

    def __init__(self) -> None:
        super().__init__()
        vgg = [("conv1_1", 3, 64), ("conv1_2", 64, 64), ("conv2_1", 64, 128), ("conv2_2", 128, 128),
               ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256),
               ("conv4_1", 256, 512), ("conv4_2", 512, 512), ("conv4_3", 512, 512),
               ("conv5_1", 512, 512), ("conv5_2", 512, 512), ("conv5_3", 512, 512)]
        for name, cin, cout in vgg:
            setattr(self, name, nn.Conv2d(cin, cout, 3, 1, 1))
        # Official quirk: fc6 has padding 3 without dilation, so its map is 4 px larger than pool5's.
        self.fc6 = nn.Conv2d(512, 1024, 3, 1, 3)
        self.fc7 = nn.Conv2d(1024, 1024, 1)
        self.conv6_1 = nn.Conv2d(1024, 256, 1)
        self.conv6_2 = nn.Conv2d(256, 512, 3, 2, 1)
        self.conv7_1 = nn.Conv2d(512, 128, 1)
        self.conv7_2 = nn.Conv2d(128, 256, 3, 2, 1)
        self.conv3_3_norm = L2Norm(256, 10)
        self.conv4_3_norm = L2Norm(512, 8)
        self.conv5_3_norm = L2Norm(512, 5)
        # Level 0 predicts 3 background logits and 1 face logit ("max-out background label").
        heads = [("conv3_3_norm", 256, 4), ("conv4_3_norm", 512, 2), ("conv5_3_norm", 512, 2),
                 ("fc7", 1024, 2), ("conv6_2", 512, 2), ("conv7_2", 256, 2)]
        for name, cin, ncls in heads:
            setattr(self, f"{name}_mbox_conf", nn.Conv2d(cin, ncls, 3, 1, 1))
            setattr(self, f"{name}_mbox_loc", nn.Conv2d(cin, 4, 3, 1, 1))

    def _block(self, h: torch.Tensor, names: list[str]) -> torch.Tensor:
        for name in names:
            h = F.relu(getattr(self, name)(h))
        return h

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = F.max_pool2d(self._block(x, ["conv1_1", "conv1_2"]), 2, 2)
        h = F.max_pool2d(self._block(h, ["conv2_1", "conv2_2"]), 2, 2)
        f3 = self._block(h, ["conv3_1", "conv3_2", "conv3_3"])
        f4 = self._block(F.max_pool2d(f3, 2, 2), ["conv4_1", "conv4_2", "conv4_3"])
        f5 = self._block(F.max_pool2d(f4, 2, 2), ["conv5_1", "conv5_2", "conv5_3"])
        f7 = self._block(F.max_pool2d(f5, 2, 2), ["fc6", "fc7"])
        f62 = self._block(f7, ["conv6_1", "conv6_2"])
        f72 = self._block(f62, ["conv7_1", "conv7_2"])
        feats = [("conv3_3_norm", self.conv3_3_norm(f3)), ("conv4_3_norm", self.conv4_3_norm(f4)),
                 ("conv5_3_norm", self.conv5_3_norm(f5)), ("fc7", f7), ("conv6_2", f62), ("conv7_2", f72)]
        out: list[torch.Tensor] = []
        for name, f in feats:
            cls = getattr(self, f"{name}_mbox_conf")(f)
            if name == "conv3_3_norm":
                cls = torch.cat([cls[:, :3].amax(dim=1, keepdim=True), cls[:, 3:]], dim=1)
            out += [cls, getattr(self, f"{name}_mbox_loc")(f)]
        return out


def decode_s3fd(
    outputs: list[torch.Tensor], score_threshold: float = 0.05
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The official decode: 12 maps -> candidate boxes (K,4) x1,y1,x2,y2 in input pixels, scores (K,), image (K,).
    Cell (i, j) of level l (stride s = 2**(l+2)) has a prior of side 4*s centred at (s/2 + j*s, s/2 + i*s);
    offsets decode SSD-style with variances 0.1 (centre) and 0.2 (log size)."""
    boxes, scores, images = [], [], []
    for level in range(len(outputs) // 2):
        prob = torch.softmax(outputs[2 * level].float(), dim=1)[:, 1]
        loc = outputs[2 * level + 1].float()
        stride = 2.0 ** (level + 2)
        b, y, x = (prob > score_threshold).nonzero(as_tuple=True)  # levels without candidates add empty tensors
        centre = torch.stack([x, y], 1).float() * stride + stride / 2
        off = loc.permute(0, 2, 3, 1)[b, y, x]
        size = 4 * stride
        c = centre + off[:, :2] * 0.1 * size
        wh = size * torch.exp(off[:, 2:] * 0.2)
        boxes.append(torch.cat([c - wh / 2, c + wh / 2], 1))
        scores.append(prob[b, y, x])
        images.append(b)
    return torch.cat(boxes), torch.cat(scores), torch.cat(images)


def load_s3fd(path: Path) -> S3FD:
    """The S3FD net of a user's s3fd.pth / sfd_face.pth, read safely and loaded strictly; InputError if it is not
    an S3FD state dict."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"S3FD weight file {path} does not exist; pass --detector s3fd:/path/to/s3fd.pth "
                         "(the face-alignment/Wav2Lip s3fd.pth, 89,844,381 bytes) or use --detector mtcnn")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        raise InputError(f"{path} could not be read as a torch weight file ({type(exc).__name__}: {exc}); "
                         "it must be the S3FD state dict s3fd.pth") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise InputError(f"{path} holds a {type(state).__name__}, not an S3FD state dict")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    net = S3FD()
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    wrong = sorted(k for k in expected if k in state and tuple(getattr(state[k], "shape", ())) != expected[k])
    if missing or extra or wrong:
        raise InputError(f"{path} is not an S3FD state dict: missing keys {missing[:5]}, unexpected keys "
                         f"{extra[:5]}, wrong shapes {wrong[:5]}; pass the face-alignment/Wav2Lip s3fd.pth")
    net.load_state_dict(state, strict=True)
    return net


class S3FDDetector:
    """S3FD as Wav2Lip runs it: detect(frames uint8 (B,H,W,3) RGB) -> per frame, faces best first, no landmarks
    (the thresholds below; NMS with inclusive-pixel areas)."""

    name = "s3fd"
    score_threshold, nms_threshold, keep_threshold = 0.05, 0.3, 0.5
    max_pixels_per_pass = 4e6  # VGG16 at full resolution holds ~0.5 GB of activations per 720p frame

    def __init__(self, net: S3FD, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.net = net.to(self.device).eval().requires_grad_(False)

    @torch.inference_mode()
    def detect(self, frames: np.ndarray) -> list[list[Detection]]:
        frames = check_frames(frames)
        h, w = frames.shape[1:3]
        if min(h, w) < 32:
            raise InputError(f"S3FD needs frames of at least 32x32 pixels, got {w}x{h}")
        chunk = max(1, int(self.max_pixels_per_pass // (h * w)))
        mean = torch.tensor(S3FD_MEAN, device=self.device).view(1, 3, 1, 1)
        out: list[list[Detection]] = []
        for i in range(0, len(frames), chunk):
            x = torch.from_numpy(frames[i:i + chunk]).to(self.device).permute(0, 3, 1, 2).float() - mean
            boxes, scores, images = decode_s3fd(self.net(x), self.score_threshold)
            keep = batched_nms(boxes, scores, images, self.nms_threshold, offset=1.0)
            keep = keep[scores[keep] > self.keep_threshold]
            out += detections_from_arrays(boxes[keep].cpu().double().numpy(), scores[keep].cpu().numpy(),
                                          images[keep].cpu().numpy(), len(x))
        return out
