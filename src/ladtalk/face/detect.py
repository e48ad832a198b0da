"""The face-detector contract (FaceDetector; its Detection and NMS live in face.boxes) and the factory."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from ladtalk.errors import InputError
from ladtalk.face.boxes import Detection, batched_nms, box_overlap  # noqa: F401 (re-exported)


@runtime_checkable
class FaceDetector(Protocol):
    """Anything with a `name` and a batched `detect`: frames uint8 (B,H,W,3) RGB -> faces per frame, best first."""

    name: str

    def detect(self, frames: np.ndarray) -> list[list[Detection]]: ...


def make_detector(spec: str = "mtcnn", device: str | torch.device = "cpu", **kw) -> FaceDetector:
    """'mtcnn' (offline weights from the facenet-pytorch wheel) or 's3fd:PATH' (a user's s3fd.pth) -> a detector."""
    from ladtalk.runtime import resolve_device

    dev = resolve_device(device)
    name, _, arg = spec.partition(":")
    name = name.strip().lower()
    if name == "mtcnn":
        if arg:
            raise InputError(f"detector spec {spec!r}: 'mtcnn' takes no argument; use --detector mtcnn")
        from ladtalk.face.mtcnn import MTCNNDetector

        return MTCNNDetector(device=dev, **kw)
    if name == "s3fd":
        if not arg:
            raise InputError("detector 's3fd' needs the weight file: use --detector s3fd:/path/to/s3fd.pth")
        from ladtalk.face.s3fd import S3FDDetector, load_s3fd

        return S3FDDetector(load_s3fd(Path(arg).expanduser()), device=dev, **kw)
    raise InputError(f"unknown face detector {spec!r}; choose 'mtcnn' or 's3fd:PATH'")

