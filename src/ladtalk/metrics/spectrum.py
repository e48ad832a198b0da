"""How much fine detail frames hold: the Laplacian energy (one number of sharpness) and the luma's power in octave
bands below Nyquist (a blurred mouth loses the top octaves, a restorer that adds texture puts energy back there,
noise puts in too much). Octave k holds the radial frequencies in (2^-k, 2^-(k-1)] of Nyquist; a Hann window keeps
the region's edges out of the spectrum.
"""

from __future__ import annotations

import cv2
import numpy as np

from ladtalk.metrics.image import luma

OCTAVES = 4


def laplacian_energy(frames: np.ndarray) -> np.ndarray:
    """Per-frame mean squared Laplacian of the luma of uint8 (T,H,W,3) RGB frames -> float64 (T,)."""
    return np.array([float(np.mean(cv2.Laplacian(luma(f).astype(np.float32), cv2.CV_32F) ** 2)) for f in frames])


def octave_energies(frames: np.ndarray, octaves: int = OCTAVES) -> np.ndarray:
    """Per-frame power of the Hann-windowed luma in octave bands -> float64 (T, octaves); column k-1 = octave k."""
    h, w = frames.shape[1:3]
    window = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.rfftfreq(w), indexing="ij")
    radius = np.sqrt(fx ** 2 + fy ** 2) / 0.5  # in units of the Nyquist frequency
    bands = [(radius > 2.0 ** -k) & (radius <= 2.0 ** -(k - 1)) for k in range(1, octaves + 1)]
    out = np.empty((len(frames), octaves))
    for i, f in enumerate(frames):
        y = luma(f).astype(np.float32)
        power = np.abs(np.fft.rfft2((y - y.mean()) * window)) ** 2
        out[i] = [power[b].sum() for b in bands]
    return out
