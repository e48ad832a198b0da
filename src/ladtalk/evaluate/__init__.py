"""`ladtalk evaluate`: the paper's metrics on a generated video against its ground truth, as JSON and a report.

One module per step: `align` (reading both clips, the paper's sliding-window alignment), `scores` (the networks,
loaded once, and the metric families) and `report`. A metric whose weights are missing is listed under "absent" with
the reason, never reported as a number. Both clips are held in memory (use `max_frames` for long clips).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import torch

from ladtalk.errors import InputError
from ladtalk.evaluate.align import ALIGN_MODES, check_input, read_pair
from ladtalk.evaluate.report import case_markdown, write_case_files, write_cases_summary, write_json
from ladtalk.evaluate.scores import (
    LOWER_IS_BETTER,
    LSE_FACE_NOTE,
    LSE_FRAME_NOTE,
    Networks,
    fid_score,
    image_scores,
    load_networks,
    lse_of_video,
    temporal_family,
    truth_scores,
)
from ladtalk.io.atomic import atomic_dir
from ladtalk.io.guard import refuse_foreign_folder, refuse_output_over_inputs
from ladtalk.metrics.confidence import mean_interval
from ladtalk.metrics.provenance import provenance
from ladtalk.metrics.scoring import json_ready
from ladtalk.runtime import resolve_device


def evaluate_pair(pred_path: Path, gt_path: Path, nets: Networks, align_mode: str, device: torch.device,
                  truth_path: Path | None, max_frames: int | None) -> tuple[dict, dict, np.ndarray, np.ndarray]:
    """(result, per-frame series, aligned pred, aligned gt) for one case."""
    if align_mode not in ALIGN_MODES:
        raise InputError(f"align must be one of {ALIGN_MODES}, got {align_mode!r}")
    pair = read_pair(pred_path, gt_path, max_frames, align_mode, device)
    p, g = pair.pred_aligned, pair.gt_aligned
    notes = list(pair.notes)
    metrics, series = image_scores(p, g, nets.perceptual, device)
    if nets.inception is not None:
        metrics["fid"], note = fid_score(nets.inception, p, g, device)
        notes.append(note)
    reference: dict[str, float] = {}
    if len(p) >= 2:
        temporal, temporal_series, reference["frame_warp_error"] = temporal_family(p, g)
        metrics.update(temporal)
        series.update(temporal_series)
    info: dict[str, int | float] = {}
    lse_ci: dict[str, list[float]] = {}
    if nets.syncnet is not None:
        notes.append(LSE_FACE_NOTE if nets.lse_crop == "face" else LSE_FRAME_NOTE)
        for label, path, vinfo in (("pred", pred_path, pair.info_pred), ("gt", gt_path, pair.info_gt)):
            lse, ci, lse_info, lse_notes = lse_of_video(nets, label, path, vinfo, gt_path, pair.info_gt.has_audio,
                                                        max_frames, device)
            (metrics if label == "pred" else reference).update(lse)
            if label == "pred":
                lse_ci = ci
            info.update(lse_info)
            notes += lse_notes
    if truth_path is not None:
        truth, truth_info, truth_series = truth_scores(truth_path, p, g, pair.gt_start)
        metrics.update(truth)
        info.update(truth_info)
        series.update(truth_series)

    result = {"provenance": provenance(device, "fp32"),  # the metric networks run in fp32
        "pred_path": str(pred_path), "gt_path": str(gt_path), "align": align_mode, "offset": int(pair.offset),
        "offset_applies_to": pair.offset_applies_to,
        "frames": {"pred": len(pair.pred), "gt": len(pair.gt), "compared": len(p)},
        "fps": pair.info_gt.fps, "size": [int(pair.gt.shape[2]), int(pair.gt.shape[1])],
        "metrics": json_ready(metrics),
        "ci95": {**{k: mean_interval(series[k]) for k in metrics if k in series and np.isfinite(series[k]).all()},
                 **lse_ci},
        "gt_reference": reference, "info": info, "absent": {k: v for k, v in nets.absent.items() if k not in metrics},
        "lower_is_better": sorted(k for k in metrics if k in LOWER_IS_BETTER), "notes": notes,
    }
    return result, series, p, g


def evaluate(pred_path: str | os.PathLike, gt_path: str | os.PathLike, report_dir: str | os.PathLike,
             syncnet_path: str | os.PathLike | None = None, inception_path: str | os.PathLike | None = None,
             align: str = "sliding", device: str = "auto", lse_crop: str = "face", detector: str = "mtcnn", *,
             truth_path: str | os.PathLike | None = None,
             max_frames: int | None = None) -> dict:
    """Evaluate one generated video against its ground truth; write metrics.json, report.md and plots; return the JSON.

    `truth_path`: a synthetic clip's truth.json (default: truth.json beside the ground truth, if present).
    """
    pred_p, gt_p = check_input(pred_path, "prediction"), check_input(gt_path, "ground-truth")
    if truth_path is None and (gt_p.parent / "truth.json").is_file():
        truth_path = gt_p.parent / "truth.json"
    dev, nets = _prepare(report_dir, [("prediction", pred_p), ("ground truth", gt_p), ("truth", truth_path)],
                         syncnet_path, inception_path, device, lse_crop, detector)
    result, series, p, g = evaluate_pair(pred_p, gt_p, nets, align, dev,
                                         Path(truth_path) if truth_path else None, max_frames)
    with atomic_dir(report_dir) as tmp:
        result["files"] = write_case_files(tmp, series, p, g)
        write_json(tmp / "metrics.json", result)
        (tmp / "report.md").write_text("\n".join(["# ladtalk evaluation", ""] + case_markdown(result)))
    return result


def _prepare(report_dir, inputs, syncnet_path, inception_path, device: str, lse_crop: str,
             detector: str) -> tuple[torch.device, Networks]:
    """Refuse a report folder over an input or another tool's folder, then load the networks once."""
    refuse_output_over_inputs(report_dir, [*inputs, ("SyncNet weights", syncnet_path),
                                           ("Inception weights", inception_path)], folder=True)
    refuse_foreign_folder(report_dir, "metrics.json", "evaluation report")
    dev = resolve_device(device)
    return dev, load_networks(syncnet_path, inception_path, dev, lse_crop, detector)


def _read_cases(cases_path: Path) -> list[tuple[str, Path, Path]]:
    if not cases_path.is_file():
        raise InputError(f"cases table {cases_path} does not exist")
    text = cases_path.read_text()
    delim = "\t" if cases_path.suffix.lower() == ".tsv" or ("\t" in text.splitlines()[0] if text else False) else ","
    rows = list(csv.DictReader(text.splitlines(), delimiter=delim))
    if not rows or not {"name", "pred", "gt"} <= set(k.strip() for k in rows[0]):
        raise InputError(f"{cases_path} must be a CSV/TSV with a header row 'name,pred,gt' and one row per case")
    cases, seen = [], set()
    for i, row in enumerate(rows, start=2):
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        name = row["name"]
        if not name or name in seen or "/" in name or name.startswith("."):
            raise InputError(f"{cases_path}, line {i}: case names must be unique, non-empty, without '/'")
        seen.add(name)
        cases.append((name, check_input(cases_path.parent / row["pred"], "prediction"),
                      check_input(cases_path.parent / row["gt"], "ground-truth")))
    return cases


def evaluate_cases(cases_path: str | os.PathLike, report_dir: str | os.PathLike,
                   syncnet_path: str | os.PathLike | None = None, inception_path: str | os.PathLike | None = None,
                   align: str = "sliding", device: str = "auto", lse_crop: str = "face", detector: str = "mtcnn", *,
                   max_frames: int | None = None) -> dict:
    """Evaluate every row (name,pred,gt; paths relative to the table) and write one report with an average row."""
    cases = _read_cases(Path(cases_path))
    inputs = [("cases table", cases_path)] + [(f"case {n} {kind}", p) for n, pred, gt in cases
                                              for kind, p in (("prediction", pred), ("ground truth", gt))]
    dev, nets = _prepare(report_dir, inputs, syncnet_path, inception_path, device, lse_crop, detector)
    results, details = [], []
    with atomic_dir(report_dir) as tmp:
        for name, pred, gt in cases:
            truth = gt.parent / "truth.json" if (gt.parent / "truth.json").is_file() else None
            result, series, p, g = evaluate_pair(pred, gt, nets, align, dev, truth, max_frames)
            result["name"] = name
            result["files"] = {k: f"{name}/{v}" for k, v in write_case_files(tmp / name, series, p, g).items()}
            write_json(tmp / name / "metrics.json", result)
            results.append(result)
            details += [f"## {name}", ""] + case_markdown(result)
        summary = write_cases_summary(tmp, results, nets.absent, align, details)
    return summary
