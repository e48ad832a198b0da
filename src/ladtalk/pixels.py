"""The two pixel layouts of docs/DESIGN.md and the one way to convert between them: `frames` are uint8 (B,H,W,3) RGB
(what videos, crops and metrics hold), `images` are float (B,3,H,W) in [0,1] (what the networks take)."""

from __future__ import annotations

import numpy as np
import torch


def to_images(frames: np.ndarray | torch.Tensor, device: torch.device | str = "cpu",
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 (B,H,W,3) RGB -> float (B,3,H,W) in [0,1] on `device` (copied as uint8: 4x less traffic)."""
    t = frames if isinstance(frames, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(frames))
    return t.to(device, non_blocking=True).permute(0, 3, 1, 2).to(dtype) / 255.0


def to_frames(images: torch.Tensor) -> np.ndarray:
    """float (B,3,H,W) in [0,1] -> uint8 (B,H,W,3) RGB on the CPU (rounded, not truncated as the official code)."""
    return images.clamp(0, 1).mul(255).round_().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
