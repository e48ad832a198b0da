"""Block-bootstrap 95% intervals for figures computed over the frames of one clip.

Neighbouring frames are strongly correlated, so resampling single frames would give far too narrow intervals. The
moving-block bootstrap (Kuensch, 1989) resamples runs of `block` consecutive frames (15, 0.6 s at 25 fps: longer
than a syllable); the seed is fixed, so a report is repeatable. A gain is resampled at the same frames for both rows.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ladtalk.errors import InputError

BLOCK_FRAMES = 15
RESAMPLES = 1000
SEED = 0


def block_indices(n: int, block: int = BLOCK_FRAMES, resamples: int = RESAMPLES, seed: int = SEED,
                  circular: bool = False) -> np.ndarray:
    """(resamples, n) int64 frame indices of moving-block resamples of a series of length n; the block is cut to
    n/2 on a series shorter than two blocks (one block would give a zero-width interval). `circular` blocks wrap
    around (Politis & Romano, 1992) so that the end frames are drawn as often as the rest: for LSE, whose audio is
    zero-padded there."""
    if n < 1:
        raise InputError("a bootstrap needs at least one value")
    block = max(1, min(int(block), n // 2))
    blocks = -(-n // block)
    starts = np.random.default_rng(seed).integers(0, n if circular else n - block + 1, (resamples, blocks))
    idx = starts[:, :, None] + np.arange(block)
    return (idx % n if circular else idx).reshape(resamples, -1)[:, :n]


def interval(statistic: Callable[[np.ndarray], float], n: int, block: int = BLOCK_FRAMES,
             resamples: int = RESAMPLES, seed: int = SEED, circular: bool = False) -> list[float]:
    """[low, high] 95% percentile interval of statistic(indices) over moving-block (or `circular`) resamples of n
    values; statistic gets an int index array (n,) and returns a float (non-finite resamples are dropped)."""
    values = np.array([statistic(idx) for idx in block_indices(n, block, resamples, seed, circular)], np.float64)
    values = values[np.isfinite(values)]
    if not len(values):
        return [float("nan"), float("nan")]
    return [float(v) for v in np.percentile(values, [2.5, 97.5])]


def mean_interval(series: np.ndarray, block: int = BLOCK_FRAMES, **kw) -> list[float]:
    """95% interval of the mean of a per-frame series (T,)."""
    series = np.asarray(series, np.float64)
    return interval(lambda i: float(np.mean(series[i])), len(series), block, **kw)


def ratio_interval(numerator: np.ndarray, denominator: np.ndarray, block: int = BLOCK_FRAMES, **kw) -> list[float]:
    """95% interval of mean(numerator) / mean(denominator) of two per-frame series resampled together."""
    num, den = np.asarray(numerator, np.float64), np.asarray(denominator, np.float64)
    if len(num) != len(den):
        raise InputError(f"a ratio needs series of one length, got {len(num)} and {len(den)}")
    return interval(lambda i: float(np.mean(num[i]) / np.mean(den[i])) if np.mean(den[i]) > 0 else np.nan,
                    len(num), block, **kw)
