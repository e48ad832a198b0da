"""`ladtalk evaluate`: the paper's metrics on a generated video against its ground truth, as JSON and a report.

What is computed (full frames; the prediction is resized to the ground truth's size and, if its frame rate
differs, resampled to the ground truth's rate):
- PSNR, SSIM (ladtalk.metrics.image), the perceptual distance under the name of the network used (LPIPS-VGG,
  or ST-LPIPS-VGG when the VGG16 ImageNet trunk is absent), FID between the two frame sets (needs
  pt_inception-2015-12-05-6726825d.pth), temporal stability (flow-warping error and tOF), and LSE-D / LSE-C of
  the prediction with its own audio (needs syncnet_v2.model; the ground truth's LSE is reported beside it).
- Alignment: "sliding" (the paper's: a window the length of the shorter video slides over the longer; the
  offset with the best mean PSNR is chosen and every paired metric is computed at that offset) or "frames"
  (frame k with frame k, cut to the shorter length).
- With a synthetic clip (truth.json beside the ground truth), the synthetic lip-sync score and mouth PSNR.
A metric whose weights are missing is listed under "absent" with the reason, never reported as a number.
Both clips are held in memory as uint8 frames (use `max_frames` for long clips).
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from ladtalk.errors import InputError, LadtalkError
from ladtalk.face.detect import make_detector
from ladtalk.io.atomic import atomic_dir
from ladtalk.io.audio import load_audio
from ladtalk.io.guard import refuse_foreign_folder, refuse_output_over_inputs
from ladtalk.io.video import iter_frames, probe_video
from ladtalk.metrics import image as im
from ladtalk.metrics.fid import extract_features, fid_from_features, load_fid_inception
from ladtalk.metrics.lipsync_truth import lipsync_truth_score, mouth_boxes_from_faces, read_truth
from ladtalk.metrics.lpips import load_perceptual_metric, perceptual_distance
from ladtalk.metrics.sync import SYNC_FPS, SYNC_SAMPLE_RATE, load_syncnet_s, lse_scores
from ladtalk.metrics.sync_faces import lse_face_input
from ladtalk.metrics.temporal import temporal_scores
from ladtalk.runtime import resolve_device

LOWER_IS_BETTER = {"LPIPS-VGG", "ST-LPIPS-VGG", "FID", "LSE-D", "LSE-D_whole_frame", "warp_error", "tOF"}
ALIGN_MODES = ("sliding", "frames")
LSE_CROPS = ("face", "frame")


@dataclass
class _Networks:
    """Frozen networks loaded once per run, or the reason each is absent."""

    perceptual: object | None = None
    inception: torch.nn.Module | None = None
    syncnet: torch.nn.Module | None = None
    lse_crop: str = "face"  # "face": syncnet_python's real-video face crops; "frame": whole frames (other keys)
    detector: object | None = None  # finds the faces LSE crops
    absent: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _load_networks(syncnet_path, inception_path, device: torch.device, lse_crop: str = "face",
                   detector: str = "mtcnn") -> _Networks:
    if lse_crop not in LSE_CROPS:
        raise InputError(f"lse_crop must be one of {LSE_CROPS}, got {lse_crop!r}")
    nets = _Networks(lse_crop=lse_crop)
    try:
        nets.perceptual = load_perceptual_metric(device)
        if nets.perceptual.name != "LPIPS-VGG":
            nets.absent["LPIPS-VGG"] = nets.perceptual.note
    except LadtalkError as e:
        nets.absent["LPIPS-VGG"] = f"no perceptual network could be loaded: {e}"
    try:
        nets.inception = load_fid_inception(inception_path).to(device)
    except InputError as e:
        if inception_path is not None:
            raise
        nets.absent["FID"] = str(e)
    if syncnet_path is not None:
        nets.syncnet = load_syncnet_s(syncnet_path, device)
        if lse_crop == "face":
            nets.detector = make_detector(detector, device=device)
    else:
        reason = ("no SyncNet weights given: pass --syncnet PATH to syncnet_v2.model (syncnet_python, "
                  "54,573,114 bytes; not downloadable from this tool)")
        nets.absent["LSE-D"] = nets.absent["LSE-C"] = reason
    return nets


def _resize(frames: list[np.ndarray], width: int, height: int) -> np.ndarray:
    out = np.empty((len(frames), height, width, 3), np.uint8)
    for i, f in enumerate(frames):
        if f.shape[:2] == (height, width):
            out[i] = f
        else:
            shrink = f.shape[0] > height or f.shape[1] > width
            out[i] = cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return out


def _read(path: Path, fps: float | None, size: tuple[int, int] | None, max_frames: int | None) -> np.ndarray:
    frames = list(iter_frames(path, fps=fps, max_frames=max_frames))
    if not frames:
        raise InputError(f"{path} yielded no frames")
    if size is None:
        return np.stack(frames)
    return _resize(frames, *size)


def _check_input(path: str | os.PathLike, what: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} video {p} does not exist")
    return p


def _jsonable(x: float | int) -> float | int | str:
    """Numbers for strict JSON: +-inf / nan become the strings 'inf' / '-inf' / 'nan' (identical frames: PSNR inf)."""
    if isinstance(x, (int, np.integer)):
        return int(x)
    return float(x) if math.isfinite(x) else str(float(x))


def _evaluate_pair(pred_path: Path, gt_path: Path, nets: _Networks, align: str, device: torch.device,
                   truth_path: Path | None, max_frames: int | None) -> tuple[dict, dict, np.ndarray, np.ndarray]:
    """(result, per-frame series, aligned pred, aligned gt) for one case."""
    if align not in ALIGN_MODES:
        raise InputError(f"align must be one of {ALIGN_MODES}, got {align!r}")
    info_p, info_g = probe_video(pred_path), probe_video(gt_path)
    notes = list(nets.notes)
    resample = None if abs(info_p.fps - info_g.fps) < 1e-3 else info_g.fps
    if resample:
        notes.append(f"prediction resampled from {info_p.fps:.3f} to {info_g.fps:.3f} fps for paired metrics")
    if (info_p.width, info_p.height) != (info_g.width, info_g.height):
        notes.append(f"prediction resized from {info_p.width}x{info_p.height} to {info_g.width}x{info_g.height}")
    gt = _read(gt_path, None, None, max_frames)
    pred = _read(pred_path, resample, (gt.shape[2], gt.shape[1]), max_frames)

    offset = 0
    if align == "sliding":
        offset, _ = im.best_window(im.sliding_scores(lambda a, b: im.psnr(a, b, device), pred, gt))
        p, g = im.align_sequences(pred, gt, offset)
    else:
        p, g = im.frame_aligned(pred, gt)
    gt_start = offset if len(pred) <= len(gt) else 0

    metrics: dict[str, float] = {}
    series: dict[str, np.ndarray] = {}
    series["PSNR"] = im.psnr(p, g, device)
    series["SSIM"] = im.ssim(p, g, device)
    metrics["PSNR"], metrics["SSIM"] = float(np.mean(series["PSNR"])), float(np.mean(series["SSIM"]))
    if nets.perceptual is not None:
        name = nets.perceptual.name
        series[name] = perceptual_distance(nets.perceptual.net, p, g, device=device)
        metrics[name] = float(np.mean(series[name]))
    if nets.inception is not None:
        if len(p) < 2:
            raise InputError("FID needs at least two aligned frames")
        fp = extract_features(nets.inception, p, device=device)
        fg = extract_features(nets.inception, g, device=device)
        metrics["FID"] = fid_from_features(fp, fg)
        notes.append(f"FID from {len(p)} frames per set (2048-d features): small sets bias FID upwards; "
                     "compare methods on the same frames only")
    reference: dict[str, float] = {}
    if len(p) >= 2:
        ts = temporal_scores(p, g)
        summary = ts.summary()
        reference["warp_error"] = summary.pop("warp_error_gt")
        metrics.update(summary)
        series["warp_error"], series["warp_error_gt"], series["tOF"] = ts.warp_error, ts.warp_error_gt, ts.tof

    info: dict[str, int | float] = {}
    if nets.syncnet is not None:
        if nets.lse_crop == "face":
            notes.append("LSE-D / LSE-C on syncnet_python's real-video face crops (median-filtered face track, "
                         "2.8x the half face size, pad value 110, 224x224), the protocol of the published numbers")
        else:
            notes.append("LSE_whole_frame: LSE on whole frames resized to 224x224 (the LRS, face-centred "
                         "protocol); not comparable with published LSE-D / LSE-C of real videos")
        for label, path, vinfo in (("pred", pred_path, info_p), ("gt", gt_path, info_g)):
            # syncnet_python is hard-wired to 25 fps: other rates are resampled, as its pipeline does with -r 25
            fps25 = SYNC_FPS if abs(vinfo.fps - SYNC_FPS) > 1e-3 else None
            frames25 = np.stack(list(iter_frames(path, fps=fps25, max_frames=max_frames)))
            audio_src = path if vinfo.has_audio else (gt_path if info_g.has_audio else None)
            if audio_src is None:
                raise InputError(f"{path} has no audio track, and neither has the ground truth: LSE needs audio")
            if audio_src != path:
                notes.append(f"{path.name} has no audio; LSE uses the ground truth's audio")
            audio = load_audio(audio_src, SYNC_SAMPLE_RATE)
            suffix = ""
            if nets.lse_crop == "face":
                n_all = len(frames25)
                frames25, audio, (start, stop) = lse_face_input(frames25, audio, nets.detector)
                info[f"LSE_face_frames_{label}"] = stop - start
                if stop - start < n_all:
                    notes.append(f"LSE of {label} on its longest run of frames with a face, {start}..{stop - 1}")
            else:
                suffix = "_whole_frame"
            s = lse_scores(nets.syncnet, frames25, audio, device=device)
            target = metrics if label == "pred" else reference
            target["LSE-D" + suffix], target["LSE-C" + suffix] = s.lse_d, s.lse_c
            info[f"AV_offset_frames_{label}{suffix}"] = s.offset

    if truth_path is not None:
        boxes, openness = read_truth(truth_path)
        boxes, openness = boxes[gt_start:gt_start + len(p)], openness[gt_start:gt_start + len(p)]
        n = min(len(boxes), len(p))
        if n >= 3:
            score = lipsync_truth_score(p[:n], boxes[:n], openness[:n])
            metrics["lipsync_truth_pearson"] = score["pearson"]
            info["lipsync_truth_best_lag_frames"] = score["best_lag"]
            info["lipsync_truth_pearson_at_best_lag"] = score["pearson_best"]
            series["mouth_PSNR"] = im.mouth_psnr(p[:n], g[:n], mouth_boxes_from_faces(boxes[:n]))
            metrics["mouth_PSNR"] = float(np.mean(series["mouth_PSNR"]))

    absent = {k: v for k, v in nets.absent.items() if k not in metrics}
    result = {
        "pred_path": str(pred_path), "gt_path": str(gt_path), "align": align, "offset": int(offset),
        "offset_applies_to": "gt" if len(pred) <= len(gt) else "pred",
        "frames": {"pred": len(pred), "gt": len(gt), "compared": len(p)},
        "fps": info_g.fps, "size": [int(gt.shape[2]), int(gt.shape[1])],
        "metrics": {k: _jsonable(v) for k, v in metrics.items()},
        "gt_reference": reference, "info": info, "absent": absent,
        "lower_is_better": sorted(k for k in metrics if k in LOWER_IS_BETTER), "notes": notes,
    }
    return result, series, p, g


# ---------------------------------------------------------------- report writing

def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, allow_nan=False))


def _plot_series(path: Path, title: str, ylabel: str, lines: dict[str, np.ndarray]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for label, y in lines.items():
        y = np.asarray(y, np.float64)
        finite = y[np.isfinite(y)]
        cap = finite.max() + 1 if finite.size else 100.0
        ax.plot(np.arange(len(y)), np.where(np.isfinite(y), y, cap), label=label, lw=1)
    ax.set_title(title)
    ax.set_xlabel("frame")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def _strip(path: Path, pred: np.ndarray, gt: np.ndarray, n: int = 6, height: int = 160) -> None:
    """Side-by-side frames: ground truth (top), prediction (middle), 4x absolute difference (bottom)."""
    idx = np.unique(np.linspace(0, len(pred) - 1, min(n, len(pred))).round().astype(int))
    width = max(1, round(gt.shape[2] * height / gt.shape[1]))
    rows = []
    for frames in (gt[idx], pred[idx], np.clip(4 * np.abs(pred[idx].astype(int) - gt[idx]), 0, 255).astype(np.uint8)):
        rows.append(np.concatenate([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames], 1))
    ok, buf = cv2.imencode(".png", np.concatenate(rows, 0)[..., ::-1])
    if not ok:
        raise LadtalkError(f"could not encode {path}")
    path.write_bytes(buf.tobytes())


def _write_case_files(folder: Path, result: dict, series: dict, pred: np.ndarray, gt: np.ndarray) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    psnr_lines = {"PSNR": series["PSNR"]}
    if "mouth_PSNR" in series:
        psnr_lines["mouth PSNR"] = series["mouth_PSNR"]
    _plot_series(folder / "psnr.png", "PSNR per frame (higher is better)", "dB", psnr_lines)
    files["psnr_plot"] = "psnr.png"
    if "warp_error" in series:
        _plot_series(folder / "flicker.png", "Flicker: flow-warping error per frame pair (lower is better)",
                     "E_warp", {"prediction": series["warp_error"], "ground truth": series["warp_error_gt"]})
        files["flicker_plot"] = "flicker.png"
    _strip(folder / "strip.png", pred, gt)
    files["strip"] = "strip.png"
    per_frame = {k: [_jsonable(float(x)) for x in v] for k, v in series.items()}
    _write_json(folder / "per_frame.json", per_frame)
    files["per_frame"] = "per_frame.json"
    return files


def _fmt(v) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return str(v)
    return f"{v:.4f}" if abs(v) < 100 else f"{v:.2f}"


def _arrow(name: str) -> str:
    return "lower is better" if name in LOWER_IS_BETTER else "higher is better"


def _case_markdown(result: dict, files: dict, prefix: str = "") -> list[str]:
    lines = [f"- prediction: `{result['pred_path']}`", f"- ground truth: `{result['gt_path']}`",
             f"- alignment: {result['align']} (offset {result['offset']} on the {result['offset_applies_to']}; "
             f"{result['frames']['compared']} frames compared of {result['frames']['pred']} / "
             f"{result['frames']['gt']})", "", "| metric | value | |", "|---|---|---|"]
    for k, v in result["metrics"].items():
        lines.append(f"| {k} | {_fmt(v)} | {_arrow(k)} |")
    for k, v in result["gt_reference"].items():
        lines.append(f"| {k} (ground truth) | {_fmt(v)} | reference |")
    for k, v in result["info"].items():
        lines.append(f"| {k} | {_fmt(v)} | |")
    if result["absent"]:
        lines += ["", "Not computed:"] + [f"- **{k}**: {v}" for k, v in result["absent"].items()]
    if result["notes"]:
        lines += ["", "Notes:"] + [f"- {n}" for n in result["notes"]]
    lines += ["", f"![PSNR over time]({prefix}{files['psnr_plot']})"]
    if "flicker_plot" in files:
        lines.append(f"![flicker over time]({prefix}{files['flicker_plot']})")
    lines += ["", "Frames (top: ground truth, middle: prediction, bottom: 4x absolute difference):", "",
              f"![frame strip]({prefix}{files['strip']})", ""]
    return lines


def evaluate(pred_path: str | os.PathLike, gt_path: str | os.PathLike, report_dir: str | os.PathLike,
             syncnet_path: str | os.PathLike | None = None, inception_path: str | os.PathLike | None = None,
             align: str = "sliding", device: str = "auto", lse_crop: str = "face", detector: str = "mtcnn", *,
             truth_path: str | os.PathLike | None = None,
             max_frames: int | None = None) -> dict:
    """Evaluate one generated video against its ground truth; write metrics.json, report.md and plots; return the JSON.

    `truth_path`: a synthetic clip's truth.json (default: truth.json beside the ground truth, if present).
    """
    pred_p, gt_p = _check_input(pred_path, "prediction"), _check_input(gt_path, "ground-truth")
    if truth_path is None and (gt_p.parent / "truth.json").is_file():
        truth_path = gt_p.parent / "truth.json"
    _refuse_report_over_inputs(report_dir, [("prediction", pred_p), ("ground truth", gt_p), ("truth", truth_path),
                                            ("SyncNet weights", syncnet_path), ("Inception weights", inception_path)])
    dev = resolve_device(device)
    nets = _load_networks(syncnet_path, inception_path, dev, lse_crop, detector)
    result, series, p, g = _evaluate_pair(pred_p, gt_p, nets, align, dev,
                                          Path(truth_path) if truth_path else None, max_frames)
    with atomic_dir(report_dir) as tmp:
        result["files"] = _write_case_files(tmp, result, series, p, g)
        _write_json(tmp / "metrics.json", result)
        md = ["# ladtalk evaluation", ""] + _case_markdown(result, result["files"])
        (tmp / "report.md").write_text("\n".join(md))
    return result


def _refuse_report_over_inputs(report_dir, inputs) -> None:
    refuse_output_over_inputs(report_dir, inputs, folder=True)
    refuse_foreign_folder(report_dir, "metrics.json", "evaluation report")


def _read_cases(cases_path: Path) -> list[tuple[str, Path, Path]]:
    if not cases_path.is_file():
        raise InputError(f"cases table {cases_path} does not exist")
    text = cases_path.read_text()
    delim = "\t" if cases_path.suffix.lower() == ".tsv" or ("\t" in text.splitlines()[0] if text else False) else ","
    rows = list(csv.DictReader(text.splitlines(), delimiter=delim))
    need = {"name", "pred", "gt"}
    if not rows or not need <= set(k.strip() for k in rows[0]):
        raise InputError(f"{cases_path} must be a CSV/TSV with a header row 'name,pred,gt' and one row per case")
    cases, seen = [], set()
    for i, row in enumerate(rows, start=2):
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        name = row["name"]
        if not name or name in seen or "/" in name or name.startswith("."):
            raise InputError(f"{cases_path}, line {i}: case names must be unique, non-empty, without '/'")
        seen.add(name)
        cases.append((name, cases_path.parent / row["pred"], cases_path.parent / row["gt"]))
    return cases


def evaluate_cases(cases_path: str | os.PathLike, report_dir: str | os.PathLike,
                   syncnet_path: str | os.PathLike | None = None, inception_path: str | os.PathLike | None = None,
                   align: str = "sliding", device: str = "auto", lse_crop: str = "face", detector: str = "mtcnn", *,
                   max_frames: int | None = None) -> dict:
    """Evaluate every row (name,pred,gt; paths relative to the table) and write one report with an average row."""
    cases = _read_cases(Path(cases_path))
    for _, pred, gt in cases:
        _check_input(pred, "prediction")
        _check_input(gt, "ground-truth")
    _refuse_report_over_inputs(report_dir, [("cases table", cases_path), ("SyncNet weights", syncnet_path),
                                            ("Inception weights", inception_path)]
                               + [(f"case {n} {kind}", p) for n, pred, gt in cases
                                  for kind, p in (("prediction", pred), ("ground truth", gt))])
    dev = resolve_device(device)
    nets = _load_networks(syncnet_path, inception_path, dev, lse_crop, detector)
    results = []
    with atomic_dir(report_dir) as tmp:
        md = ["# ladtalk evaluation: cases", ""]
        details: list[str] = []
        for name, pred, gt in cases:
            truth = gt.parent / "truth.json" if (gt.parent / "truth.json").is_file() else None
            result, series, p, g = _evaluate_pair(pred, gt, nets, align, dev, truth, max_frames)
            result["name"] = name
            result["files"] = {k: f"{name}/{v}" for k, v in _write_case_files(tmp / name, result, series, p, g).items()}
            _write_json(tmp / name / "metrics.json", result)
            results.append(result)
            details += [f"## {name}", ""] + _case_markdown(result, result["files"])
        names = list(dict.fromkeys(k for r in results for k in r["metrics"]))
        average = {}
        for k in names:
            vals = [r["metrics"][k] for r in results if k in r["metrics"]]
            nums = [float(v) for v in vals]
            average[k] = _jsonable(float(np.mean(nums)))
        summary = {"cases": results, "average": average, "absent": nets.absent, "align": align}
        _write_json(tmp / "metrics.json", summary)
        with open(tmp / "summary.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["name"] + names)
            for r in results:
                w.writerow([r["name"]] + [r["metrics"].get(k, "") for k in names])
            w.writerow(["average"] + [average[k] for k in names])
        md += ["| case | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        for r in results:
            md.append(f"| {r['name']} | " + " | ".join(_fmt(r["metrics"][k]) if k in r["metrics"] else "-"
                                                       for k in names) + " |")
        md.append("| **average** | " + " | ".join(_fmt(average[k]) for k in names) + " |")
        md += ["", "Direction: " + "; ".join(f"{k}: {_arrow(k)}" for k in names), ""]
        if nets.absent:
            md += ["Not computed:"] + [f"- **{k}**: {v}" for k, v in nets.absent.items()] + [""]
        (tmp / "report.md").write_text("\n".join(md + details))
    return summary
