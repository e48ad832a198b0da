"""Writing an evaluation: metrics.json (strict JSON), per-frame series, plots, a frame strip and report.md, for one
case or a table of cases with its average row and summary.csv."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np

from ladtalk.errors import LadtalkError
from ladtalk.evaluate.scores import LOWER_IS_BETTER
from ladtalk.io.atomic import atomic_path
from ladtalk.metrics.image import crop, sample_frames
from ladtalk.metrics.provenance import provenance_line
from ladtalk.metrics.scoring import json_ready


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, allow_nan=False))


def _plot_series(path: Path, title: str, ylabel: str, lines: dict[str, np.ndarray]) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    for label, y in lines.items():
        y = np.asarray(y, np.float64)
        finite = y[np.isfinite(y)]
        cap = finite.max() + 1 if finite.size else 100.0
        ax.plot(np.arange(len(y)), np.where(np.isfinite(y), y, cap), label=label, lw=1)
    ax.set(title=title, xlabel="frame", ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def write_strip(path: Path, rows: dict[str, np.ndarray], box: tuple[int, ...] | None = None, height: int = 160,
                square: bool = False, labelled: bool = True, n: int = 6) -> None:
    """A PNG of `rows` (name: uint8 (T,H,W,3) frames) one above the other, n evenly spaced frames each, cropped to
    `box` (x1,y1,x2,y2), resized to `height` (and as wide where `square`), named on their left edge where `labelled`."""
    pick = sample_frames(len(next(iter(rows.values()))), n)
    strips = []
    for name, frames in rows.items():
        frames = frames[pick] if box is None else crop(frames[pick], box)
        width = height if square else max(1, round(frames.shape[2] * height / frames.shape[1]))
        row = np.concatenate([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames], 1)
        if labelled:
            scale = height / 384
            (w, h), base = cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            row[: h + base + 6, : w + 8] //= 3  # a dark band under the name: readable on any face
            cv2.putText(row, name, (4, h + 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
        strips.append(row)
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), np.concatenate(strips, 0)[..., ::-1]):
            raise LadtalkError(f"could not write {path}")


def write_case_files(folder: Path, series: dict, pred: np.ndarray, gt: np.ndarray) -> dict:
    """The plots, the strip and per_frame.json of one case -> {what: file name}."""
    folder.mkdir(parents=True, exist_ok=True)
    psnr_lines = {f"{r} PSNR": series[f"{r}_psnr_db"] for r in ("frame", "mouth") if f"{r}_psnr_db" in series}
    _plot_series(folder / "psnr.png", "PSNR per frame (higher is better)", "dB", psnr_lines)
    files = {"psnr_plot": "psnr.png"}
    if "frame_warp_error" in series:
        _plot_series(folder / "flicker.png", "Flicker: flow-warping error per frame pair (lower is better)",
                     "E_warp", {"prediction, the truth's flow": series["frame_warp_error"],
                                "prediction, its own flow": series["frame_own_flow_warp_error"],
                                "ground truth": series["frame_warp_error_truth"]})
        files["flicker_plot"] = "flicker.png"
    pick = sample_frames(len(pred), 6)  # the strip's frames only: a difference of the whole clip would be large
    p, g = pred[pick], gt[pick]
    difference = np.clip(4 * np.abs(p.astype(int) - g), 0, 255).astype(np.uint8)
    write_strip(folder / "strip.png", {"truth": g, "prediction": p, "difference": difference}, labelled=False)
    write_json(folder / "per_frame.json", json_ready({k: [float(x) for x in v] for k, v in series.items()}))
    return {**files, "strip": "strip.png", "per_frame": "per_frame.json"}


def _fmt(v) -> str:
    if isinstance(v, (str, int)):
        return str(v)
    return f"{v:.4f}" if abs(v) < 100 else f"{v:.2f}"


def _arrow(name: str) -> str:
    return "lower is better" if name in LOWER_IS_BETTER else "higher is better"


def case_markdown(result: dict) -> list[str]:
    files = result["files"]
    lines = [f"- prediction: `{result['pred_path']}`", f"- ground truth: `{result['gt_path']}`",
             f"- alignment: {result['align']} (offset {result['offset']} on the {result['offset_applies_to']}; "
             f"{result['frames']['compared']} frames compared of {result['frames']['pred']} / "
             f"{result['frames']['gt']})", "", "| metric | value | |", "|---|---|---|"]
    for k, v in result["metrics"].items():
        ci = result.get("ci95", {}).get(k)
        interval = f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else ""
        lines.append(f"| {k} | {_fmt(v)}{interval} | {_arrow(k)} |")
    lines += [f"| {k} (ground truth) | {_fmt(v)} | reference |" for k, v in result["gt_reference"].items()]
    lines += [f"| {k} | {_fmt(v)} | |" for k, v in result["info"].items()]
    if result["absent"]:
        lines += ["", "Not computed:"] + [f"- **{k}**: {v}" for k, v in result["absent"].items()]
    if result["notes"]:
        lines += ["", "Notes:"] + [f"- {n}" for n in result["notes"]]
    lines += ["", provenance_line(result["provenance"]), "", f"![PSNR over time]({files['psnr_plot']})"]
    if "flicker_plot" in files:
        lines.append(f"![flicker over time]({files['flicker_plot']})")
    lines += ["", "Frames (top: ground truth, middle: prediction, bottom: 4x absolute difference):", "",
              f"![frame strip]({files['strip']})", ""]
    return lines


def write_cases_summary(folder: Path, results: list[dict], absent: dict[str, str], align: str,
                        details: list[str]) -> dict:
    """metrics.json (every case and the average), summary.csv and report.md (table, then `details`) -> the JSON."""
    names = list(dict.fromkeys(k for r in results for k in r["metrics"]))
    average = {k: json_ready(float(np.mean([float(r["metrics"][k]) for r in results if k in r["metrics"]])))
               for k in names}
    summary = {"cases": results, "average": average, "absent": absent, "align": align,
               "provenance": results[0]["provenance"]}  # one run, one machine
    write_json(folder / "metrics.json", summary)
    with open(folder / "summary.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name"] + names)
        w.writerows([r["name"]] + [r["metrics"].get(k, "") for k in names] for r in results)
        w.writerow(["average"] + [average[k] for k in names])
    md = ["# ladtalk evaluation: cases", "", "| case | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    md += [f"| {r['name']} | " + " | ".join(_fmt(r["metrics"][k]) if k in r["metrics"] else "-" for k in names) + " |"
           for r in results]
    md.append("| **average** | " + " | ".join(_fmt(average[k]) for k in names) + " |")
    md += ["", "Direction: " + "; ".join(f"{k}: {_arrow(k)}" for k in names), ""]
    if absent:
        md += ["Not computed:"] + [f"- **{k}**: {v}" for k, v in absent.items()] + [""]
    md += [provenance_line(summary["provenance"]), ""]
    (folder / "report.md").write_text("\n".join(md + details))
    return summary
