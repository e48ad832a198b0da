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
Every figure carries a block-bootstrap 95% interval over the frames (blocks of 15 frames, 1000 resamples, seed 0;
ladtalk.metrics.confidence) under "ci95"; the gains, headrooms and shares are recomputed on each resample from the
same frames of every row (paired), so a share's interval is that of the ratio.
Results: bench/results/restorer_headroom_NAME.{json,md}.

    python bench/restorer_headroom.py --report runs/macron/reports/restore-cpu/reenact --name macron
    python bench/restorer_headroom.py --report demo_out --name demo
    python bench/restorer_headroom.py --report old_demo_out --base-size 48 --name demo  # a report that predates it
    python bench/restorer_headroom.py --report /work/exp/s16/re_person_builtin --base-size 48 --name macron_builtin
        # a reenact report of `--wav2lip builtin` written before lipsync_face_size resolved 'builtin' (it records 96)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from common import write_results

from ladtalk.io.video import iter_frames
from ladtalk.metrics import headroom as hr
from ladtalk.metrics.confidence import mean_interval
from ladtalk.metrics.scoring import json_ready
from ladtalk.reenact import CONFIDENCE, row_key

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
        out = {"files": files, "face": face, "mouth": mouth, "pastes": report["pastes"],
               "base_size": base_size or report["lipsync_face_size"], "crop_side_px": report["crop_side_px"]}
        if out["base_size"] != report["lipsync_face_size"]:
            out["note"] = (f"base size {base_size} px given (--base-size); the report records "
                           f"{report['lipsync_face_size']} px for wav2lip {report.get('wav2lip')!r}")
        return out
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
           "base_pixel_px": pixel, "confidence": CONFIDENCE, "pastes": {},
           "notes": [r["note"]] if "note" in r else [],
           "calibration": hr.calibration_rows(gt, r["face"], r["mouth"], pixel)}
    for paste in r["pastes"]:
        series = {stage: hr.band_series(videos[row_key(stage, paste)][:n], gt, r["face"], r["mouth"], pixel)
                  for stage in STAGES if row_key(stage, paste) in videos}
        rows = {stage: hr.band_summary(s) for stage, s in series.items()}
        entry, ci = {"rows": rows}, {}
        base = series["wav2lip"]
        if r["base_size"] != hr.WAV2LIP_FACE_SIZE:
            at96 = hr.band_series(videos[row_key("wav2lip", paste)][:n], gt, r["face"], r["mouth"],
                                  r["crop_side_px"] / hr.WAV2LIP_FACE_SIZE)
            room = at96["face_detail_oracle_psnr_db"] - at96["face_psnr_db"]
            entry["face_detail_headroom_at_96_px_db"] = float(np.mean(at96["face_detail_oracle_psnr_db"])
                                                              - np.mean(at96["face_psnr_db"]))
            ci["face_detail_headroom_at_96_px_db"] = mean_interval(room)
        if "cascade" in rows:
            for region in ("face", "mouth"):
                entry.update(hr.shares(rows["wav2lip"], rows["cascade"], rows.get("crop_ceiling"), region))
                ci.update(hr.share_intervals(base, series["cascade"], series.get("crop_ceiling"), region))
        else:
            entry["face_detail_headroom_db"] = (rows["wav2lip"]["face_detail_oracle_psnr_db"]
                                                - rows["wav2lip"]["face_psnr_db"])
            ci["face_detail_headroom_db"] = mean_interval(base["face_detail_oracle_psnr_db"] - base["face_psnr_db"])
        out["pastes"][paste] = {**entry, "ci95": ci}
    return out


def label(result: dict) -> str:
    folder = Path(result["report"])
    return folder.parent.name if folder.name == "reenact" else folder.name


def markdown(results: list[dict]) -> str:
    f = lambda v: f"{v:.2f}" if np.isfinite(v) else str(v)  # noqa: E731

    def with_ci(figures: dict, key: str, fmt=f, sign: str = "") -> str:
        """'26.13 [25.90, 26.40]': a figure and its interval where it has one."""
        ci = figures.get("ci95", {}).get(key)
        text = fmt(figures[key]) if not sign else f"{figures[key]:+.2f}"
        return f"{text} [{fmt(ci[0])}, {fmt(ci[1])}]" if ci and np.isfinite(ci).all() else text

    pct = lambda v: f"{v:.0%}"  # noqa: E731
    keys = ("face_psnr_db", "mouth_psnr_db", "face_detail_oracle_psnr_db", "mouth_detail_oracle_psnr_db",
            "face_fine_band_psnr_db")
    row_line = lambda r, name, row, s: (f"| {label(r)} | {name} | {row} | "  # noqa: E731
                                        + " | ".join(with_ci(s, k) for k in keys)
                                        + f" | {with_ci(s, 'oracle_share_of_face_mse', pct)} |")
    lines = ["# What limits the cascade: face error by band, cut at the lip-sync base's resolution", "",
             "Coarse band: the face through the lip-sync model's face size (one base pixel = crop side / face size) "
             "and back, what the base decides; fine band: the rest, what a detail restorer can add. Detail oracle = "
             "the row's coarse band + the truth's fine band. Every figure: value [block-bootstrap 95% interval over "
             "the frames: blocks of 15 frames, 1000 resamples, seed 0].", "",
             "| report | paste | row | face dB | mouth dB | face detail oracle dB | mouth detail oracle dB | "
             "fine band dB | face MSE the oracle removes |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        for paste, entry in r["pastes"].items():
            lines += [row_line(r, paste, row, s) for row, s in entry["rows"].items()]
        lines += [row_line(r, "calibration", row, s) for row, s in r["calibration"].items()]
    lines += ["", "Every row is scored against the folder's ground_truth.mp4 (encoded like the rows; the demo's own "
              "scores use the raw render, so its figures here are higher).", "",
              "Cascade gain against the headrooms (share of the detail headroom / of the true-crops ceiling), each "
              "interval from the same resampled frames for every row (paired):", ""]
    for r in results:
        for paste, e in r["pastes"].items():
            text = f"- {label(r)}, {paste} paste, base {r['base_size']} px:"
            if "face_gain_db" in e:
                for region in ("face", "mouth"):
                    text += (f" {region} {with_ci(e, f'{region}_gain_db', sign='+')} dB of "
                             f"{with_ci(e, f'{region}_detail_headroom_db', sign='+')} dB detail headroom "
                             f"({with_ci(e, f'{region}_share_of_detail_headroom', pct)})")
                    if f"{region}_ceiling_headroom_db" in e:
                        text += (f" and {with_ci(e, f'{region}_ceiling_headroom_db', sign='+')} dB to the ceiling "
                                 f"({with_ci(e, f'{region}_share_of_ceiling_headroom', pct)});")
            else:
                text += f" detail headroom {with_ci(e, 'face_detail_headroom_db', sign='+')} dB (no cascade row);"
            if "face_detail_headroom_at_96_px_db" in e:
                text += (" cut at 96 px the face's detail headroom would read "
                         f"{with_ci(e, 'face_detail_headroom_at_96_px_db', sign='+')} dB")
            lines.append(text.rstrip(";"))
        lines += [f"- {label(r)}: {note}" for note in r.get("notes", [])]
    if any(e.get(f"{region}_share_of_detail_headroom", 0) > 1 for r in results for e in r["pastes"].values()
           for region in ("face", "mouth")):
        lines += ["", "A share of the detail headroom over 100%: the cascade also repairs coarse-band error (what the "
                  "base drew wrong at its own resolution: colour, shape, an identity it never saw), which the detail "
                  "oracle keeps; the detail headroom then bounds nothing and the share of the ceiling is the measure."]
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
