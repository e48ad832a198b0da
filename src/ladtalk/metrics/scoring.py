"""The one scorer of generated frames against their ground truth (`reenact`, `demo`, `evaluate`, the benchmarks),
with one vocabulary: a figure is named REGION_METRIC[_UNIT], REGION in frame / face / mouth (boxes x1,y1,x2,y2).

- `psnr_db`, `ssim` (metrics.image), and the perceptual distance under the name of the network used: `lpips`
  (LPIPS-VGG) or `st_lpips` (ST-LPIPS-VGG; never reported as LPIPS);
- texture: `mouth_sharpness_ratio` (Laplacian energy) and `mouth_energy_ratio_octave_K` (metrics.spectrum), against
  the truth's: 1 = as much detail as the truth, below = blur, above = noise or texture the truth lacks;
- flicker (metrics.temporal): `face_warp_error` (with the truth's flow), `face_own_flow_warp_error`, each with its
  `_ratio` to the truth's own (1 = as steady as the real video), `face_tof`, and `face_tlp` (TecoGAN's tLP
  unscaled: |P(truth_t, truth_t+1) - P(out_t, out_t+1)| with the perceptual network P: it sees flicker and a frozen
  or over-smooth face alike);
- lip sync: `opening_figures` (`lipsync_r`, metrics.lipsync_truth) and LSE (`lse_d`, `lse_c`: metrics.sync_faces).
Every figure is a mean over frames (or frame pairs) or a ratio of two means, with its block-bootstrap 95% interval
(`summarize`, `compare`); the perceptual figures use up to `perceptual_frames` evenly spaced frames (slow on a CPU).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ladtalk.metrics.confidence import BLOCK_FRAMES, interval, mean_interval, ratio_interval
from ladtalk.metrics.image import check_pair, crop, psnr, sample_frames, ssim
from ladtalk.metrics.lipsync_truth import lag_correlation, pearson
from ladtalk.metrics.lpips import perceptual_features
from ladtalk.metrics.spectrum import OCTAVES, laplacian_energy, octave_energies
from ladtalk.metrics.temporal import temporal_scores, truth_motion


@dataclass(frozen=True)
class Regions:
    """The face and mouth boxes x1,y1,x2,y2 (whole frame pixels) every row is scored in."""

    face: tuple[int, int, int, int]
    mouth: tuple[int, int, int, int]


@dataclass
class RowSeries:
    """One row's figures as series: a mean figure is (values, stride), a ratio figure (numerator values,
    denominator values, stride); stride: the values are every `stride`-th frame (1: every frame or frame pair)."""

    means: dict[str, tuple[np.ndarray, int]] = field(default_factory=dict)
    ratios: dict[str, tuple[np.ndarray, np.ndarray, int]] = field(default_factory=dict)

    def mean(self, key: str, values: np.ndarray, stride: int = 1) -> None:
        self.means[key] = (np.asarray(values, np.float64), stride)

    def ratio(self, key: str, numerator: np.ndarray, denominator: np.ndarray, stride: int = 1) -> None:
        self.ratios[key] = (np.asarray(numerator, np.float64), np.asarray(denominator, np.float64), stride)


class TruthScores:
    """What every row shares, computed once: the truth's regions, flow and visibility, detail and perceptual pairs."""

    def __init__(self, gt: np.ndarray, regions: Regions, perceptual=None, perceptual_frames: int = 24):
        self.gt, self.regions, self.perceptual = gt, regions, perceptual
        self.face, self.mouth = crop(gt, regions.face), crop(gt, regions.mouth)
        self.mouth_laplacian = laplacian_energy(self.mouth)
        self.mouth_octaves = octave_energies(self.mouth)
        self.picks = sample_frames(len(gt), perceptual_frames)
        self.motion = truth_motion(self.face)


def row_series(pred: np.ndarray, truth: TruthScores) -> RowSeries:
    """Every figure's series for one row of uint8 (T,H,W,3) frames (as long as the truth) against the shared truth."""
    check_pair(pred, truth.gt)
    face, mouth = crop(pred, truth.regions.face), crop(pred, truth.regions.mouth)
    r = RowSeries()
    r.mean("frame_psnr_db", psnr(pred, truth.gt))
    r.mean("face_psnr_db", psnr(face, truth.face))
    r.mean("mouth_psnr_db", psnr(mouth, truth.mouth))
    r.mean("face_ssim", ssim(face, truth.face))
    if min(mouth.shape[1:3]) >= 11:
        r.mean("mouth_ssim", ssim(mouth, truth.mouth))
    r.ratio("mouth_sharpness_ratio", laplacian_energy(mouth), truth.mouth_laplacian)
    octaves = octave_energies(mouth)
    for k in range(1, OCTAVES + 1):
        r.ratio(f"mouth_energy_ratio_octave_{k}", octaves[:, k - 1], truth.mouth_octaves[:, k - 1])
    if len(pred) > 1:
        s = temporal_scores(face, truth.face, truth.motion, show_progress=False)
        for key, values in s.items():
            r.mean(f"face_{key}", values)
        for key in ("warp_error", "own_flow_warp_error"):
            r.ratio(f"face_{key}_ratio", s[key], s["warp_error_truth"])
    return r


def _block(stride: int, block: int) -> int:
    return max(1, round(block / stride))


def summarize(r: RowSeries, block: int = BLOCK_FRAMES) -> dict:
    """{figure: value, ..., "ci95": {figure: [low, high]}}: the means and ratios of a row with their intervals."""
    out, ci = {}, {}
    for key, (values, stride) in r.means.items():
        out[key], ci[key] = float(np.mean(values)), mean_interval(values, _block(stride, block))
    for key, (num, den, stride) in r.ratios.items():
        out[key] = float(np.mean(num) / max(float(np.mean(den)), 1e-12))
        ci[key] = ratio_interval(num, den, _block(stride, block))
    out["ci95"] = ci
    return out


def compare(row: RowSeries, base: RowSeries, block: int = BLOCK_FRAMES) -> dict:
    """A row's gain over `base` (the same frames): `*_gain_db` / `*_gain` (dB and SSIM differences), else
    `*_ratio_to_base`, with paired 95% intervals (both rows resampled at the same frames) under "ci95"."""
    out, ci = {}, {}
    for key, (a, stride) in row.means.items():
        if key not in base.means or key.endswith("_truth"):
            continue
        b = base.means[key][0]
        if key.endswith(("_db", "_ssim")):
            name = key.removesuffix("_db") + ("_gain_db" if key.endswith("_db") else "_gain")
            if np.isfinite(a - b).all():
                out[name], ci[name] = float(np.mean(a - b)), mean_interval(a - b, _block(stride, block))
        else:
            name = f"{key}_ratio_to_base"
            out[name] = float(np.mean(a) / max(float(np.mean(b)), 1e-12))
            ci[name] = ratio_interval(a, b, _block(stride, block))
    out["ci95"] = ci
    return out


def add_perceptual(rows: dict[str, RowSeries], preds: dict[str, np.ndarray], truth: TruthScores,
                   batch: int = 4) -> None:
    """Add every row's face and mouth perceptual distance and tLP at the truth's picked frames, in one pass so that
    each feature is computed once (the perceptual network is the slowest score on a CPU)."""
    net, n = truth.perceptual.net, len(truth.gt)
    feats = lambda frames, box=None: perceptual_features(net, frames if box is None else crop(frames, box))  # noqa: E731
    first = lambda features, m: [f[:m] for f in features]  # noqa: E731
    face_box, mouth_box = truth.regions.face, truth.regions.mouth
    figures = {k: {"face": [], "mouth": [], "tlp": []} for k in preds}
    with torch.no_grad():
        for s in range(0, len(truth.picks), batch):
            t = truth.picks[s:s + batch]
            p = t[t < n - 1]  # the picks with a next frame: a prefix of t (only the last frame has none)
            true_face, true_mouth = feats(truth.face[t]), feats(truth.mouth[t])
            true_change = net.compare(first(true_face, len(p)), feats(truth.face[p + 1])) if len(p) else None
            for k, pred in preds.items():
                face = feats(pred[t], face_box)
                figures[k]["face"].append(net.compare(face, true_face))
                figures[k]["mouth"].append(net.compare(feats(pred[t], mouth_box), true_mouth))
                if true_change is not None:
                    change = net.compare(first(face, len(p)), feats(pred[p + 1], face_box))
                    figures[k]["tlp"].append((true_change - change).abs())
    key, stride = truth.perceptual.key, max(1, round(n / len(truth.picks)))
    for k, fig in figures.items():
        rows[k].mean(f"face_{key}", _numpy(fig["face"]), stride)
        rows[k].mean(f"mouth_{key}", _numpy(fig["mouth"]), stride)
        if fig["tlp"]:
            rows[k].mean("face_tlp", _numpy(fig["tlp"]), stride)


def _numpy(tensors: list) -> np.ndarray:
    return np.concatenate([t.double().cpu().numpy().reshape(-1) for t in tensors])


def score_rows(preds: dict[str, np.ndarray], gt: np.ndarray, regions: Regions, perceptual=None,
               perceptual_frames: int = 24) -> dict[str, RowSeries]:
    """The series of every row (uint8 (T,H,W,3) frames, at least as long as the truth, cut to it) against one truth."""
    truth = TruthScores(gt, regions, perceptual, perceptual_frames)
    preds = {k: np.ascontiguousarray(p[:len(gt)]) for k, p in preds.items()}
    rows = {k: row_series(p, truth) for k, p in preds.items()}
    if perceptual is not None:
        add_perceptual(rows, preds, truth)
    return rows


def opening_figures(measured: np.ndarray, truth: np.ndarray, max_lag: int = 3, block: int = BLOCK_FRAMES) -> dict:
    """`lipsync_r` (with its block-bootstrap interval), `lipsync_r_best` and `lipsync_best_lag_frames` of a measured
    mouth-opening series (T,) against the true one (metrics.lipsync_truth.lag_correlation)."""
    m, t = np.asarray(measured, np.float64), np.asarray(truth, np.float64)
    c = lag_correlation(m, t, max_lag)
    return {"lipsync_r": c["pearson"], "lipsync_r_best": c["pearson_best"], "lipsync_best_lag_frames": c["best_lag"],
            "ci95": {"lipsync_r": interval(lambda i: pearson(m[i], t[i], np.nan), len(m), block)}}


def json_ready(obj):
    """A report for strict JSON: numpy scalars as Python numbers, +-inf / nan as the strings 'inf' / '-inf' / 'nan'
    (identical frames: PSNR inf)."""
    if isinstance(obj, dict):
        return {k: json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else str(float(obj))
    return obj
