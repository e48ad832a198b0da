"""The paper's codebook-regulariser ablation on a prepared identity: the same SOVQAE preset trained without the
regulariser and with theta in {0.5, 1, 2} (fixed steps), each measured by `analyze` (d_C, gamma, NRoUB, share of
codes unchanged under each degradation) and, given a Wav2Lip, by `reenact` (face PSNR and LPIPS, mouth paste).
Results: bench/results/regulariser_ablation_NAME.{json,md}. Each variant is skipped when its reports exist.

    python bench/regulariser_ablation.py --identity runs/macron/identity --wav2lip runs/macron/wav2lip/model \
        --work runs/macron/ablation --name macron --steps 150
"""

from __future__ import annotations

import json

from common import variant_study_parser, write_study

import ladtalk

VARIANTS = {"no regulariser": ["train.reg_weight=0"], "theta 0.5": ["train.reg_theta=0.5"],
            "theta 1": ["train.reg_theta=1.0"], "theta 2": ["train.reg_theta=2.0"]}


def main() -> None:
    ap = variant_study_parser(__doc__, steps=150, wav2lip_required=False)
    ap.add_argument("--lipsync-inputs", action="store_true",
                    help="train each variant on the --wav2lip model's own faces too (train_sovqae wav2lip_path)")
    ap.add_argument("--analyze-frames", type=int, default=None, help="test frames for analyze (default: all)")
    a = ap.parse_args()
    rows = []
    for label, over in VARIANTS.items():
        run = a.work / label.replace(" ", "_")
        done = (a.work / "reports" / run.name / ("reenact" if a.wav2lip else "analyze") / "report.json").exists()
        if a.collect and not done:
            print(f"{label}: no reports, left out")
            continue
        if not (run / "model").exists():
            ladtalk.train_sovqae([a.identity], run, preset=a.preset, device=a.device,
                                 overrides=over + [f"train.max_steps={a.steps}", f"train.val_every={a.steps}"],
                                 wav2lip_path=a.wav2lip if a.lipsync_inputs else None)
        reports = a.work / "reports" / run.name  # beside the model, never inside it
        if not (reports / "analyze" / "report.json").exists():
            ladtalk.analyze(run, a.identity, reports / "analyze", device=a.device, max_frames=a.analyze_frames)
        rep = json.loads((reports / "analyze" / "report.json").read_text())
        th = rep["theory"]
        row = {"variant": label, "d_C": th["codes"]["d_C"], "gamma": th["gamma"]["gamma"],
               "NRoUB_local_bound": th["nroub_local_bound"], "NRoUB_jacobian_estimate": th["nroub_jacobian_estimate"]}
        for e in rep["experiments"]:
            row[f"unchanged_{e['kind']}_{e['strength']:g}"] = e["codes_unchanged"]
        if a.wav2lip is not None:
            if not (reports / "reenact" / "report.json").exists():
                ladtalk.reenact(a.identity, a.wav2lip, reports / "reenact", sovqae_path=run, device=a.device,
                                paste="mouth")
            scores = json.loads((reports / "reenact" / "report.json").read_text())["scores"]
            s = scores["cascade_mouth"]
            row["reenact_face_psnr_db"] = s["face_psnr_db"]
            row["reenact_face_psnr_gain_db"] = s["face_psnr_db"] - scores["wav2lip_mouth"]["face_psnr_db"]
            row.update({k: v for k, v in s.items() if k in ("face_st_lpips", "face_lpips")})
        rows.append(row)
    cols = [c for c in rows[0] if c in ("variant", "d_C", "gamma") or "NRoUB" in c or "reenact" in c or "lpips" in c
            or c.startswith(("unchanged_blur_2", "unchanged_noise_0.1", "unchanged_down_up"))]
    write_study(f"regulariser_ablation_{a.name}", {"preset": a.preset, "steps": a.steps, "rows": rows,
                                                   "variants_left_out": [v for v in VARIANTS
                                                                         if v not in {r["variant"] for r in rows}],
                                                   "lipsync_inputs": a.lipsync_inputs,
                                                   "analyze_frames": a.analyze_frames},
                f"# Codebook-regulariser ablation on {a.name} ({a.preset}, {a.steps} steps each"
                f"{', also on the Wav2Lip faces' if a.lipsync_inputs else ''})", cols)

if __name__ == "__main__":
    main()
