"""An inference-time temporal stabiliser for the cascade's faces: a causal, motion-gated recursive filter.

Wav2Lip redraws the lower face from the audio frame by frame, and the SOVQAE can pick a neighbouring code from one
frame to the next, so still parts of the face shimmer (issue 14: the cascade's flow-warping error is about twice the
ground truth's). Each face crop is blended with the previous output face:

    O_t = X_t + w_t (O_{t-1} - X_t),   w_t = strength * exp(-(d_t / sigma)^2),

d_t being |X_t - O_{t-1}| (mean over RGB, in [0,1]) averaged over a small Gaussian neighbourhood. Where the face
barely changes (flicker, d << sigma) the previous output carries on; where it really moves (an opening mouth,
d >> sigma) w falls to 0 and the new face passes through, so motion is not smeared. The crops are the identity's
tracked face boxes, so head motion is already (mostly) compensated. It looks at no future frame and keeps one
face of state, so it streams batch after batch; a gap in the frame sequence (a frame without a face) restarts it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F


def gaussian_blur(images: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Separable Gaussian blur of (B,C,H,W) with reflected borders; sigma_px <= 0 returns the input."""
    if sigma_px <= 0:
        return images
    radius = max(1, math.ceil(3 * sigma_px))
    x = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    k = torch.exp(-0.5 * (x / sigma_px) ** 2)
    k = k / k.sum()
    c = images.shape[1]
    pad = min(radius, images.shape[-1] - 1, images.shape[-2] - 1)
    if pad < radius:  # tiny images: a kernel as wide as reflection allows
        k = k[radius - pad:radius + pad + 1] / k[radius - pad:radius + pad + 1].sum()
    out = F.pad(images, (pad, pad, 0, 0), mode="reflect")
    out = F.conv2d(out, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    out = F.pad(out, (0, 0, pad, pad), mode="reflect")
    return F.conv2d(out, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


@dataclass
class TemporalFilter:
    """The stabiliser's settings and its state (the last output face and its frame index).

    sigma: the local mean RGB difference (faces in [0,1]) at which the previous face's weight falls to 1/e of
    `strength`. strength: the previous face's weight where nothing changed (below 1, a still face still follows
    slow changes). blur_px: the Gaussian (pixels of the face crop) over which differences are averaged, so pixel
    noise does not open the gate."""

    sigma: float = 0.06
    strength: float = 0.8
    blur_px: float = 2.0
    _last_face: torch.Tensor | None = field(default=None, repr=False)
    _last_index: int | None = field(default=None, repr=False)

    def reset(self) -> None:
        self._last_face, self._last_index = None, None

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
                prev = self._last_face.to(cur.device, cur.dtype)
                diff = gaussian_blur((cur - prev).abs().mean(1, keepdim=True), self.blur_px)
                weight = self.strength * torch.exp(-(diff / self.sigma) ** 2)
                result = cur + weight * (prev - cur)
            out[i:i + 1] = result
            self._last_face, self._last_index = result, index
        return out
