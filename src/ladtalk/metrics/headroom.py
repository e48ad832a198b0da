"""What a detail restorer can still gain on a lip-sync base: each row's face error split at the base's own
resolution.

One pixel of the lip-sync model's face (Wav2Lip's 96 px, or 48 px for a small model) covers `pixel` frame pixels.
A region's coarse band is the region through that resolution and back (area down, bicubic up); the fine band is the
rest. A row's detail oracle is its coarse band plus the truth's fine band: what a perfect detail restorer would give
on this base. So detail headroom = oracle - Wav2Lip alone (dB), ceiling headroom = true crops pasted - Wav2Lip
alone, and a restorer's gain is reported as a share of each. Cutting finer than the base (96 px for a 48 px base)
would file most of its blur as coarse error and understate the headroom. `calibration_rows` checks the split on
two known rows; every figure carries a block-bootstrap 95% interval.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ladtalk.checkpoint import CONFIG_NAME, read_meta
from ladtalk.metrics.confidence import interval
from ladtalk.metrics.image import crop, psnr, psnr_from_mse
from ladtalk.pretrained import resolve as resolve_builtin

WAV2LIP_FACE_SIZE = 96  # the official generator's


def lipsync_face_size(wav2lip_path: str | os.PathLike) -> int:
    """The face size in pixels the lip-sync model at `wav2lip_path` (a model or run folder, 'builtin[:NAME]' or a
    weight file) draws: its config's img_size, else the official 96."""
    path = Path(resolve_builtin(wav2lip_path, "wav2lip"))
    if path.is_dir():
        folder = path if (path / CONFIG_NAME).is_file() else path / "model"
        return int(read_meta(folder, kind="wav2lip")["config"].get("img_size", WAV2LIP_FACE_SIZE))
    return WAV2LIP_FACE_SIZE


def coarse(region: np.ndarray, pixel: float) -> np.ndarray:
    """(H,W,3) float32 -> the same region through base pixels `pixel` frame pixels wide, and back."""
    h, w = region.shape[:2]
    small = cv2.resize(region, (max(1, round(w / pixel)), max(1, round(h / pixel))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b) ** 2))


def band_series(pred: np.ndarray, gt: np.ndarray, face: tuple[int, ...], mouth: tuple[int, ...],
                pixel: float) -> dict[str, np.ndarray]:
    """One row's band split per frame of uint8 (T,H,W,3) frames (boxes x1,y1,x2,y2, base pixel in frame pixels) ->
    (T,) series: face / mouth PSNR, the oracle's, the fine band's PSNR and the share of face MSE the oracle removes."""
    inner = (mouth[0] - face[0], mouth[1] - face[1], mouth[2] - face[0], mouth[3] - face[1])  # in the face box
    faces_p, faces_g = crop(pred, face), crop(gt, face)
    oracle, fine, removed = np.empty_like(faces_p), [], []
    for t, (p, g) in enumerate(zip(faces_p.astype(np.float32), faces_g.astype(np.float32), strict=True)):
        pc, gc = coarse(p, pixel), coarse(g, pixel)
        oracle[t] = np.clip(pc + (g - gc), 0, 255).round().astype(np.uint8)
        fine.append(_mse(p - pc, g - gc))
        removed.append(1 - _mse(oracle[t], g) / max(_mse(p, g), 1e-12))
    return {"face_psnr_db": psnr(faces_p, faces_g), "mouth_psnr_db": psnr(crop(faces_p, inner), crop(faces_g, inner)),
            "face_detail_oracle_psnr_db": psnr(oracle, faces_g),
            "mouth_detail_oracle_psnr_db": psnr(crop(oracle, inner), crop(faces_g, inner)),
            "face_fine_band_psnr_db": psnr_from_mse(np.array(fine)), "oracle_share_of_face_mse": np.array(removed)}


def _means(series: dict[str, np.ndarray], idx: np.ndarray | slice = slice(None)) -> dict[str, float]:
    """The figures of a row's per-frame series over the frames `idx` (all by default)."""
    out = {k: float(np.mean(v[idx])) for k, v in series.items()}
    out["oracle_share_of_face_mse"] = max(0.0, out["oracle_share_of_face_mse"])
    return out


def band_summary(series: dict[str, np.ndarray], **kw) -> dict:
    """band_series -> its figures (means) and "ci95": their block-bootstrap 95% intervals (none for a series with
    an infinite frame, a perfect row's); `kw` to metrics.confidence.interval."""
    ci = {k: interval(lambda i, k=k: _means(series, i)[k], len(v), **kw) for k, v in series.items()
          if np.isfinite(v).all()}
    return {**_means(series), "ci95": ci}


def calibration_rows(gt: np.ndarray, face: tuple[int, ...], mouth: tuple[int, ...], pixel: float) -> dict[str, dict]:
    """The band split of two known rows: the truth blurred by one base pixel (a perfect lip-sync base at its own
    resolution, all of whose error is detail) and the truth itself."""
    x1, y1, x2, y2 = face
    blurred = gt.copy()
    for f in blurred:
        f[y1:y2, x1:x2] = np.clip(coarse(f[y1:y2, x1:x2].astype(np.float32), pixel), 0, 255).round()
    return {"truth_blurred_one_base_pixel": band_summary(band_series(blurred, gt, face, mouth, pixel)),
            "truth": band_summary(band_series(gt, gt, face, mouth, pixel))}


def shares(base: dict, row: dict, ceiling: dict | None, region: str = "face") -> dict[str, float]:
    """A row's gain over `base` (band_summary of Wav2Lip alone) in `region`, and that gain as a share of the detail
    headroom and, given the true crops' row, of the ceiling headroom."""
    key = f"{region}_psnr_db"
    gain = row[key] - base[key]
    detail = base[f"{region}_detail_oracle_psnr_db"] - base[key]
    out = {f"{region}_gain_db": gain, f"{region}_detail_headroom_db": detail,
           f"{region}_share_of_detail_headroom": gain / detail if detail > 0 else float("nan")}
    if ceiling is not None:
        room = ceiling[key] - base[key]
        out.update({f"{region}_ceiling_headroom_db": room,
                    f"{region}_share_of_ceiling_headroom": gain / room if room > 0 else float("nan")})
    return out


def share_intervals(base: dict[str, np.ndarray], row: dict[str, np.ndarray], ceiling: dict[str, np.ndarray] | None,
                    region: str = "face", **kw) -> dict[str, list[float]]:
    """95% block-bootstrap intervals of every figure of `shares` from the rows' band_series, each resample drawing
    the same frames for every row (paired). `kw` to metrics.confidence.interval."""
    n = len(base[f"{region}_psnr_db"])

    def figures(i: np.ndarray | slice = slice(None)) -> dict[str, float]:
        return shares(_means(base, i), _means(row, i), None if ceiling is None else _means(ceiling, i), region)

    return {name: interval(lambda i, name=name: figures(i)[name], n, **kw) for name in figures()}
