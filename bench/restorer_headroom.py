"""What limits the cascade on a self-reenactment report: the face error of each row split into the band a 96-pixel
lip-sync face can hold and the finer band only a restorer can add back.

For every frame the face box is taken through 96 pixels and back (INTER_AREA down, bicubic up): the coarse band.
The rest (frame minus its coarse band) is the fine band. Per row (Wav2Lip only, cascade):
- face / mouth PSNR as `reenact` scores them (whole-box MSE),
- the detail oracle: the row's coarse band plus the ground truth's own fine band, i.e. the face PSNR a perfect
  detail restorer would reach on this base; its error is the coarse band's (mouth shape, jaw, colour: what the
  lip-sync base decides),
- fine-band PSNR: the row's fine band against the ground truth's (how much detail it has put back),
- the share of the row's face MSE the oracle removes (the bands are not orthogonal: this is not the fine band's
  own error).
So "oracle - Wav2Lip only" is the headroom for restoring detail on this base, and the cascade's gain is read
against it. Results: bench/results/restorer_headroom_NAME.{json,md}.

    python bench/restorer_headroom.py --report runs/macron/reports/restore-cpu/reenact --name macron
    python bench/restorer_headroom.py --report demo_out --name demo
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
from common import write_results

from ladtalk.data.identity import Identity
from ladtalk.io.video import iter_frames
from ladtalk.pipeline.frames import pingpong_indices
from ladtalk.reenact import MOUTH_IN_CROP, sub_box, union_box

BASE_SIZE = 96  # Wav2Lip's face size


def coarse(region: np.ndarray) -> np.ndarray:
    """(H,W,3) float32 -> the same region through BASE_SIZE pixels and back."""
    h, w = region.shape[:2]
    small = cv2.resize(region, (BASE_SIZE, round(BASE_SIZE * h / w)), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a - b) ** 2))


def psnr(err: float) -> float:
    return float(10 * np.log10(255.0 ** 2 / max(err, 1e-12)))


def band_scores(pred: np.ndarray, gt: np.ndarray, face: list[int], mouth: list[int]) -> dict[str, float]:
    """Band split of one row's face error (means of per-frame PSNR, as `reenact` scores); pred and gt uint8
    (T,H,W,3) frames."""
    x1, y1, x2, y2 = face
    mx1, my1, mx2, my2 = (mouth[0] - x1, mouth[1] - y1, mouth[2] - x1, mouth[3] - y1)  # inside the face box
    per_frame: dict[str, list[float]] = {k: [] for k in ("face", "mouth", "oracle", "oracle_mouth", "fine")}
    removed = []
    for p, g in zip(pred, gt, strict=True):
        p, g = p[y1:y2, x1:x2].astype(np.float32), g[y1:y2, x1:x2].astype(np.float32)
        pc, gc = coarse(p), coarse(g)
        oracle = pc + (g - gc)  # its error is the coarse band's: pc - gc
        errors = {"face": mse(p, g), "mouth": mse(p[my1:my2, mx1:mx2], g[my1:my2, mx1:mx2]),
                  "oracle": mse(oracle, g), "oracle_mouth": mse(oracle[my1:my2, mx1:mx2], g[my1:my2, mx1:mx2]),
                  "fine": mse(p - pc, g - gc)}
        for k, e in errors.items():
            per_frame[k].append(psnr(e))
        removed.append(1 - errors["oracle"] / max(errors["face"], 1e-12))
    mean = {k: float(np.mean(v)) for k, v in per_frame.items()}
    return {"psnr_face_db": mean["face"], "psnr_mouth_db": mean["mouth"],
            "psnr_face_detail_oracle_db": mean["oracle"], "psnr_face_fine_band_db": mean["fine"],
            "psnr_mouth_detail_oracle_db": mean["oracle_mouth"],
            "oracle_share_of_face_mse": max(0.0, float(np.mean(removed)))}


def read_report(folder: Path) -> tuple[dict, list[int], list[int]]:
    """A `reenact` report folder or a demo output folder -> (rows' video files, face box, mouth box)."""
    if (folder / "report.json").exists():
        report = json.loads((folder / "report.json").read_text())
        return report["files"], report["face_box"], report["mouth_box"]
    if not (folder / "summary.json").exists():
        raise SystemExit(f"{folder} holds neither report.json (a reenact report) nor summary.json (a demo output)")
    summary = json.loads((folder / "summary.json").read_text())
    files = {"wav2lip": summary["files"]["wav2lip"], "cascade": summary["files"]["ladtalk"]}
    if "face_box" in summary:
        return files, summary["face_box"], summary["mouth_box"]
    # a demo output from before the summary recorded its boxes: recompute them as demo.py scores them
    ident = Identity.open(folder / "identity")
    face = union_box(ident.crop_boxes[pingpong_indices(summary["frames"], ident.frame_count)], ident.frame_size)
    return files, face, sub_box(face, MOUTH_IN_CROP)


def headroom(folder: Path) -> dict:
    files, face, mouth = read_report(folder)
    gt = np.stack(list(iter_frames(folder / "ground_truth.mp4")))
    rows = {}
    for row in ("wav2lip", "cascade"):
        if row in files:
            pred = np.stack(list(iter_frames(files[row])))[:len(gt)]
            rows[row] = band_scores(pred, gt[:len(pred)], list(face), list(mouth))
    w2l = rows["wav2lip"]
    out = {"report": str(folder), "frames": len(gt), "base_size": BASE_SIZE, "rows": rows,
           "detail_headroom_db": w2l["psnr_face_detail_oracle_db"] - w2l["psnr_face_db"]}
    if "cascade" in rows:
        out["cascade_gain_db"] = rows["cascade"]["psnr_face_db"] - w2l["psnr_face_db"]
    return out


def label(result: dict) -> str:
    folder = Path(result["report"])
    return folder.parent.name if folder.name == "reenact" else folder.name


def markdown(results: list[dict]) -> str:
    lines = ["# What limits the cascade: face error by band", "",
             f"Face box through {BASE_SIZE} px and back = the coarse band (what the lip-sync base decides); the rest "
             "= the fine band (what a detail restorer can add). Detail oracle = the row's coarse band + the ground "
             "truth's fine band: the face PSNR a perfect detail restorer would reach on this base.", "",
             "| report | row | face dB | mouth dB | face detail oracle = coarse band dB | mouth detail oracle dB | "
             "fine band dB | face MSE the oracle removes |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        for row, s in r["rows"].items():
            lines.append(f"| {label(r)} | {row} | {s['psnr_face_db']:.2f} | "
                         f"{s['psnr_mouth_db']:.2f} | {s['psnr_face_detail_oracle_db']:.2f} | "
                         f"{s['psnr_mouth_detail_oracle_db']:.2f} | {s['psnr_face_fine_band_db']:.2f} | "
                         f"{100 * s['oracle_share_of_face_mse']:.0f}% |")
    lines += ["", "Every row is scored against the folder's ground_truth.mp4 (encoded like the rows; the demo's own "
              "scores use the raw render, so its figures here are higher).", "",
              "Cascade gain against the detail headroom (oracle - Wav2Lip only):", ""]
    lines += [f"- {label(r)}: {r.get('cascade_gain_db', float('nan')):+.2f} dB of "
              f"{r['detail_headroom_db']:+.2f} dB" for r in results]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--report", type=Path, nargs="+", required=True,
                    help="reenact report folders (REPORT_DIR/reenact) or demo output folders")
    ap.add_argument("--name", required=True, help="results name: restorer_headroom_NAME")
    a = ap.parse_args()
    results = [headroom(r) for r in a.report]
    md = write_results(f"restorer_headroom_{a.name}", {"results": results}).with_suffix(".md")
    md.write_text(markdown(results))
    print(md.read_text())


if __name__ == "__main__":
    main()
