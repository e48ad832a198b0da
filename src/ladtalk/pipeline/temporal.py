"""An inference-time temporal stabiliser for the cascade's faces: a causal, motion-compensated gated recursive
filter.

Wav2Lip redraws the lower face from the audio frame by frame, so still parts of the face shimmer (issue 14: the
cascade's flow-warping error is about twice the ground truth's; on Macron, keeping last frame's code while it is
nearly as close as the nearest one changed nothing, so it is not the codes that flicker). Each face crop is blended
with the previous output face:

    O_t = X_t + w_t (O'_{t-1} - X_t),   w_t = strength * exp(-(d_t / sigma)^2),

O'_{t-1} being the previous output warped onto frame t with the optical flow (OpenCV's DIS, on luma) from the
input face X_t to the previous input X_{t-1}, and d_t = |X_t - O'_{t-1}| (mean over RGB, in [0,1]) averaged over a
small Gaussian neighbourhood. Where the face barely changes (flicker, d << sigma) the previous output carries on;
where the flow cannot explain the change (an opening mouth, d >> sigma) w falls to 0 and the new face passes
through. Warping matters: the same blend in the crop's own coordinates, without the flow, raised the warping
error on Macron (the face moves inside its tracked box; the blend then ghosts edges); with the flow it fell by a
fifth at equal PSNR, but the mouth lost an eighth of its fine detail (likely the repeated bilinear warps of a held
face, not measured). Off by default. It looks at no future frame and keeps one face of state, so it streams batch
after batch; a gap in the frame sequence (a frame without a face) restarts it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ladtalk.data.degrade import gaussian_blur
from ladtalk.errors import InputError


def face_flow(faces: torch.Tensor, targets: torch.Tensor, engine) -> torch.Tensor:
    """DIS flow (B,2,S,S) float32 from faces to targets, both float (B,3,S,S) in [0,1]: face(x) ~ target(x + flow)."""
    def luma(images):
        frames = images.clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        return [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]
    flows = [engine.calc(a, b, None) for a, b in zip(luma(faces), luma(targets))]
    return torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2).to(faces.device)


def warp(images: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """images(x + flow(x)), bilinear, borders replicated: images (B,C,H,W), flow (B,2,H,W) in pixels."""
    _, _, h, w = images.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=images.device, dtype=images.dtype),
                            torch.arange(w, device=images.device, dtype=images.dtype), indexing="ij")
    gx = (xs + flow[:, 0].to(images.dtype)) * (2 / max(w - 1, 1)) - 1
    gy = (ys + flow[:, 1].to(images.dtype)) * (2 / max(h - 1, 1)) - 1
    return F.grid_sample(images, torch.stack([gx, gy], -1), mode="bilinear", padding_mode="border",
                         align_corners=True)


@dataclass
class TemporalFilter:
    """The stabiliser's settings and its state (the last input and output faces and their frame index).

    sigma: the local mean RGB difference (faces in [0,1]) at which the previous face's weight falls to 1/e of
    `strength`. strength: the previous face's weight where nothing changed (1: a still face holds; below 1 it
    leaks towards each new frame). blur_px: the Gaussian (pixels of the face crop) over which differences are
    averaged, so pixel noise does not open the gate."""

    sigma: float = 0.06
    strength: float = 1.0
    blur_px: float = 2.0
    _last_input: torch.Tensor | None = field(default=None, repr=False)
    _last_face: torch.Tensor | None = field(default=None, repr=False)
    _last_index: int | None = field(default=None, repr=False)
    _flow: object = field(default=None, repr=False)

    def reset(self) -> None:
        self._last_input, self._last_face, self._last_index = None, None, None

    def __call__(self, faces: torch.Tensor, frame_indices: np.ndarray | None = None) -> torch.Tensor:
        """Faces float (B,3,S,S) in [0,1] of consecutive video frames -> the stabilised faces (same shape, dtype,
        device). `frame_indices` (B,): the source frame of each face; where it jumps by more than one frame
        (a gap, a cut) the filter restarts. Call it batch after batch: the last face carries over."""
        out = torch.empty_like(faces)
        for i in range(len(faces)):
            cur = faces[i:i + 1]
            index = None if frame_indices is None else int(frame_indices[i])
            if (self._last_face is None or self._last_face.shape != cur.shape
                    or (index is not None and self._last_index is not None and abs(index - self._last_index) > 1)):
                result = cur
            else:
                if self._flow is None:
                    self._flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
                flow = face_flow(cur, self._last_input, self._flow)
                prev = warp(self._last_face.to(cur.device, cur.dtype), flow)
                diff = gaussian_blur((cur - prev).abs().mean(1, keepdim=True), self.blur_px)
                weight = self.strength * torch.exp(-(diff / self.sigma) ** 2)
                result = cur + weight * (prev - cur)
            out[i:i + 1] = result
            self._last_input, self._last_face, self._last_index = cur, result, index
        return out


def temporal_filter(enabled: bool, strength: float = 1.0, sigma: float = 0.06) -> TemporalFilter | None:
    """The filter a command asked for (None when off), its settings checked before any work starts.

    strength: the filter's weight, in (0, 1], of the previous face where nothing changed. sigma: the change (mean RGB
    difference of faces in [0,1]) at which that weight falls to 1/e. Lower values keep more of each frame's detail
    and steady less (docs/results.md, earlier studies: temporal_tradeoff_macron)."""
    if not enabled:
        return None
    if not 0 < strength <= 1:
        raise InputError(f"temporal strength must be in (0, 1] (1: a still face holds), got {strength}")
    if not sigma > 0:
        raise InputError(f"temporal sigma must be above 0 (a mean RGB difference in [0, 1]), got {sigma}")
    return TemporalFilter(sigma=sigma, strength=strength)
