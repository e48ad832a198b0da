"""What limits the cascade on a self-reenactment report: each row's face error split at the lip-sync base's own
resolution (ladtalk.metrics.headroom), for every paste the report holds.

The cut-off is one base pixel: the crop side over the lip-sync model's face size (read from the report, which
reads it from the model's config: 96 px official, 48 px for the small models). Per paste:
- Wav2Lip alone, the cascade and the true crops pasted: face / mouth PSNR, the detail oracle (the row's coarse band
  plus the truth's fine band: what a perfect detail restorer would reach on this base) and the fine band's PSNR;
- the cascade's gain as a share of the detail headroom (oracle - Wav2Lip alone) and of the ceiling headroom (true
  crops - Wav2Lip alone), for the face and the mouth;
- the detail headroom had the cut been made at the official 96 px (what earlier reports did for every base);
- two calibration rows: the truth blurred by one base pixel (nearly all fine band) and the truth itself (perfect).
Results: bench/results/restorer_headroom_NAME.{json,md}.

    python bench/restorer_headroom.py --report runs/macron/reports/restore-cpu/reenact --name macron
    python bench/restorer_headroom.py --report demo_out --name demo
    python bench/restorer_headroom.py --report old_demo_out --base-size 48 --name demo  # a report that predates it
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from common import write_results

from ladtalk.io.video import iter_frames
from ladtalk.metrics.headroom import WAV2LIP_FACE_SIZE, band_scores, calibration_rows, shares
from ladtalk.metrics.scoring import json_ready
from ladtalk.reenact import row_key

STAGES = ("wav2lip", "cascade", "crop_ceiling")


def read_report(folder: Path, base_size: int | None = None) -> dict:
    """A reenact report folder or a demo output folder -> {files: {row key: video}, face, mouth, pastes, base_size,
    crop_side_px}. Reports written before every paste had its rows name theirs 'wav2lip' / 'cascade' ('ladtalk'):
    those count as their one paste and need `base_size`."""
    path = folder / "report.json" if (folder / "report.json").exists() else folder / "summary.json"
    if not path.exists():
        raise SystemExit(f"{folder} holds neither report.json (a reenact report) nor summary.json (a demo output)")
    report = json.loads(path.read_text())
    files = report["files"]
    face, mouth = report["face_box"], report["mouth_box"]
    if "pastes" in report:
        return {"files": files, "face": face, "mouth": mouth, "pastes": report["pastes"],
                "base_size": base_size or report["lipsync_face_size"], "crop_side_px": report["crop_side_px"]}
    if base_size is None:
        raise SystemExit(f"{path} predates the recorded lip-sync face size: give --base-size (96 or 48)")
    paste = report.get("paste", "mouth")
    old = {"wav2lip": "wav2lip", "cascade": "cascade" if "cascade" in files else "ladtalk",
           "crop_ceiling": "crop_ceiling"}
    return {"files": {row_key(stage, paste): files[name] for stage, name in old.items() if name in files},
            "face": face, "mouth": mouth, "pastes": [paste], "base_size": base_size,
            "crop_side_px": float(face[2] - face[0]),  # the union of the crop boxes: a slight overestimate
            "note": "crop side taken as the face box's width (the report predates crop_side_px)"}


def headroom(folder: Path, base_size: int | None = None) -> dict:
    r = read_report(folder, base_size)
    gt = np.stack(list(iter_frames(folder / "ground_truth.mp4")))
    videos = {k: np.stack(list(iter_frames(v))) for k, v in r["files"].items() if k.startswith(STAGES)
              and Path(v).exists()}
    n = min(len(gt), *(len(v) for v in videos.values()))
    gt = gt[:n]
    pixel = r["crop_side_px"] / r["base_size"]
    out = {"report": str(folder), "frames": n, "base_size": r["base_size"], "crop_side_px": r["crop_side_px"],
           "base_pixel_px": pixel, "pastes": {}, "notes": [r["note"]] if "note" in r else [],
           "calibration": calibration_rows(gt, r["face"], r["mouth"], pixel)}
    for paste in r["pastes"]:
        rows = {stage: band_scores(videos[row_key(stage, paste)][:n], gt, r["face"], r["mouth"], pixel)
                for stage in STAGES if row_key(stage, paste) in videos}
        entry = {"rows": rows}
        if r["base_size"] != WAV2LIP_FACE_SIZE:
            at96 = band_scores(videos[row_key("wav2lip", paste)][:n], gt, r["face"], r["mouth"],
                               r["crop_side_px"] / WAV2LIP_FACE_SIZE)
            entry["face_detail_headroom_at_96_px_db"] = at96["face_detail_oracle_psnr_db"] - at96["face_psnr_db"]
        if "cascade" in rows:
            for region in ("face", "mouth"):
                entry.update(shares(rows["wav2lip"], rows["cascade"], rows.get("crop_ceiling"), region))
        else:
            entry["face_detail_headroom_db"] = (rows["wav2lip"]["face_detail_oracle_psnr_db"]
                                                - rows["wav2lip"]["face_psnr_db"])
        out["pastes"][paste] = entry
    return out


def label(result: dict) -> str:
    folder = Path(result["report"])
    return folder.parent.name if folder.name == "reenact" else folder.name


def markdown(results: list[dict]) -> str:
    f = lambda v: f"{v:.2f}" if np.isfinite(v) else str(v)  # noqa: E731
    lines = ["# What limits the cascade: face error by band, cut at the lip-sync base's resolution", "",
             "Coarse band: the face through the lip-sync model's face size (one base pixel = crop side / face size) "
             "and back, what the base decides; fine band: the rest, what a detail restorer can add. Detail oracle = "
             "the row's coarse band + the truth's fine band.", "",
             "| report | paste | row | face dB | mouth dB | face detail oracle dB | mouth detail oracle dB | "
             "fine band dB | face MSE the oracle removes |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        for paste, entry in r["pastes"].items():
            for row, s in entry["rows"].items():
                lines.append(f"| {label(r)} | {paste} | {row} | {f(s['face_psnr_db'])} | {f(s['mouth_psnr_db'])} | "
                             f"{f(s['face_detail_oracle_psnr_db'])} | {f(s['mouth_detail_oracle_psnr_db'])} | "
                             f"{f(s['face_fine_band_psnr_db'])} | {100 * s['oracle_share_of_face_mse']:.0f}% |")
        for row, s in r["calibration"].items():
            lines.append(f"| {label(r)} | calibration | {row} | {f(s['face_psnr_db'])} | {f(s['mouth_psnr_db'])} | "
                         f"{f(s['face_detail_oracle_psnr_db'])} | {f(s['mouth_detail_oracle_psnr_db'])} | "
                         f"{f(s['face_fine_band_psnr_db'])} | {100 * s['oracle_share_of_face_mse']:.0f}% |")
    lines += ["", "Every row is scored against the folder's ground_truth.mp4 (encoded like the rows; the demo's own "
              "scores use the raw render, so its figures here are higher).", "",
              "Cascade gain against the headrooms (share of the detail headroom / of the true-crops ceiling):", ""]
    for r in results:
        for paste, e in r["pastes"].items():
            text = f"- {label(r)}, {paste} paste, base {r['base_size']} px:"
            if "face_gain_db" in e:
                for region in ("face", "mouth"):
                    text += (f" {region} {e[f'{region}_gain_db']:+.2f} dB of {e[f'{region}_detail_headroom_db']:+.2f} "
                             f"dB detail headroom ({e[f'{region}_share_of_detail_headroom']:.0%})")
                    if f"{region}_ceiling_headroom_db" in e:
                        text += (f" and {e[f'{region}_ceiling_headroom_db']:+.2f} dB to the ceiling "
                                 f"({e[f'{region}_share_of_ceiling_headroom']:.0%});")
            else:
                text += f" detail headroom {e['face_detail_headroom_db']:+.2f} dB (no cascade row);"
            if "face_detail_headroom_at_96_px_db" in e:
                at96 = e["face_detail_headroom_at_96_px_db"]
                text += f" cut at 96 px the face's detail headroom would read {at96:+.2f} dB"
            lines.append(text.rstrip(";"))
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--report", type=Path, nargs="+", required=True,
                    help="reenact report folders (REPORT_DIR/reenact) or demo output folders")
    ap.add_argument("--base-size", type=int, default=None,
                    help="the lip-sync model's face size, for reports that do not record it (96 or 48)")
    ap.add_argument("--name", required=True, help="results name: restorer_headroom_NAME")
    a = ap.parse_args()
    results = [headroom(r, a.base_size) for r in a.report]
    md = write_results(f"restorer_headroom_{a.name}", {"results": json_ready(results)}).with_suffix(".md")
    md.write_text(markdown(results))
    print(md.read_text())


if __name__ == "__main__":
    main()
