"""The paper's codebook-regulariser ablation (its Table 3) on a prepared identity, with theta on the codes' own scale.

L_reg = |d_C - theta| with d_C the minimal distance between codes. The paper's theta (0.5-2) is far above the scale
of the codes trained here (nearest-neighbour distance median ~0.035), so every theta pushed the same way with the
same gradient and gave identical rows. Here theta is a multiple of the median nearest-neighbour distance of the
codebook trained *without* the regulariser (same seed, same steps): below it the regulariser pulls the closest pair
together, above it pushes it apart. Every variant runs on each seed (independently trained models), is measured by
`analyze` (d_C, gamma, NRoUB, share of codes unchanged under each degradation) and, given a Wav2Lip, by `reenact`
(every paste, with 95% intervals). Results: bench/results/regulariser_ablation_NAME.{json,md} ("rows": the mean over
seeds, "runs": each seed's); each variant is skipped when its reports exist (resumable).

    python bench/regulariser_ablation.py --identity runs/macron/identity --wav2lip builtin --lipsync-inputs \
        --work runs/macron/ablation --name macron --steps 300 --seeds 0 1
"""

from __future__ import annotations

import json
from pathlib import Path
from statistics import mean

from common import table, variant_study_parser, write_study

import ladtalk

THETA_SCALES = (0.25, 4.0)  # multiples of the unregularised codebook's median nearest-neighbour distance


def reports_of(a, run: Path) -> dict:
    """analyze's (and reenact's, given a Wav2Lip) report of one trained variant, made once."""
    reports = a.work / "reports" / run.relative_to(a.work)  # beside the model, never inside it
    if not (reports / "analyze" / "report.json").exists():
        ladtalk.analyze(run, a.identity, reports / "analyze", device=a.device, max_frames=a.analyze_frames)
    out = {"analyze": json.loads((reports / "analyze" / "report.json").read_text())}
    if a.wav2lip is not None:
        if not (reports / "reenact" / "report.json").exists():
            ladtalk.reenact(a.identity, a.wav2lip, reports / "reenact", sovqae_path=run, device=a.device,
                            lpips=a.lpips)
        out["reenact"] = json.loads((reports / "reenact" / "report.json").read_text())
    return out


def train(a, run: Path, seed: int, over: list[str]) -> None:
    if not (run / "model").exists():
        ladtalk.train_sovqae([a.identity], run, preset=a.preset, device=a.device,
                             overrides=over + [f"train.seed={seed}", f"train.max_steps={a.steps}",
                                               f"train.val_every={a.steps}"],
                             wav2lip_path=a.wav2lip if a.lipsync_inputs else None)


def row_of(label: str, seed: int, theta: float | None, rep: dict) -> dict:
    th = rep["analyze"]["theory"]
    row = {"variant": label, "seed": seed, "theta": theta, "d_C": th["codes"]["d_C"],
           "nn_distance_median": th["codes"]["nn_distance_median"], "gamma": th["gamma"]["gamma"],
           "NRoUB_local_bound": th["nroub_local_bound"]}
    for e in rep["analyze"]["experiments"]:
        row[f"unchanged_{e['kind']}_{e['strength']:g}"] = e["codes_unchanged"]
    if "reenact" in rep:
        r = rep["reenact"]
        for paste in r["pastes"]:
            s, g = r["scores"][f"cascade_{paste}"], r["gains"][f"cascade_{paste}"]
            row[f"{paste}_face_psnr_db"] = s["face_psnr_db"]
            row[f"{paste}_face_psnr_gain_db"] = g["face_psnr_gain_db"]
            row[f"{paste}_face_psnr_gain_db_ci95"] = g["ci95"]["face_psnr_gain_db"]
            row[f"{paste}_mouth_psnr_gain_db"] = g["mouth_psnr_gain_db"]
            if "face_st_lpips_ratio_to_base" in g:
                row[f"{paste}_face_st_lpips_ratio_to_base"] = g["face_st_lpips_ratio_to_base"]
        row["reenact_provenance"] = r.get("provenance")
    return row


def main() -> None:
    ap = variant_study_parser(__doc__, steps=300, wav2lip_required=False)
    ap.add_argument("--lipsync-inputs", action="store_true",
                    help="train each variant on the --wav2lip model's own faces too (train_sovqae wav2lip_path)")
    ap.add_argument("--analyze-frames", type=int, default=None, help="test frames for analyze (default: all)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="one independently trained model each")
    ap.add_argument("--no-lpips", dest="lpips", action="store_false",
                    help="reenact without ST-LPIPS (on one CPU thread it costs more than the rest of reenact)")
    a = ap.parse_args()
    if a.wav2lip is not None and str(a.wav2lip) != "builtin" and not str(a.wav2lip).startswith("builtin:"):
        a.wav2lip = a.wav2lip.resolve()
    rows = []
    for seed in a.seeds:
        base_run = a.work / f"seed{seed}" / "no_regulariser"
        if not a.collect:
            train(a, base_run, seed, ["train.reg_weight=0"])
        if not (base_run / "model").exists():
            print(f"seed {seed}: no unregularised model, left out")
            continue
        base = reports_of(a, base_run)
        rows.append(row_of("no regulariser", seed, None, base))
        scale = base["analyze"]["theory"]["codes"]["nn_distance_median"]
        for k in THETA_SCALES:
            run = a.work / f"seed{seed}" / f"theta_{k:g}x"
            if not a.collect:
                train(a, run, seed, [f"train.reg_theta={k * scale:.6g}"])
            if (run / "model").exists():
                rows.append(row_of(f"theta {k:g}x", seed, k * scale, reports_of(a, run)))
    summary = []
    for label in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == label]
        summary.append({"variant": label, "seeds": len(mine),
                        **{c: mean(r[c] for r in mine) for c in mine[0]
                           if isinstance(mine[0][c], float) and c != "theta"}})
    cols = [c for c in (summary[0] if summary else {}) if c in ("variant", "seeds", "d_C", "gamma")
            or c.endswith(("psnr_gain_db", "ratio_to_base")) or c.startswith("unchanged_down_up")]
    md = write_study(f"regulariser_ablation_{a.name}",
                {"preset": a.preset, "steps": a.steps, "seeds": a.seeds, "theta_scales": THETA_SCALES,
                 "theta_unit": "median nearest-neighbour distance of the same seed's unregularised codebook",
                 "lipsync_inputs": a.lipsync_inputs, "lpips": a.lpips, "wav2lip": str(a.wav2lip),
                 "analyze_frames": a.analyze_frames,
                 "runs": rows, "rows": summary},
                f"# Codebook-regulariser ablation on {a.name} ({a.preset}, {a.steps} steps each, mean of seeds "
                f"{', '.join(map(str, a.seeds))}{', also on the Wav2Lip faces' if a.lipsync_inputs else ''})",
                cols)
    seed_cols = ["variant", "seed", "theta"] + cols[2:] + ["NRoUB_local_bound"]
    md.write_text(md.read_text() + "\nEach seed (theta in the codes' units; the gains' intervals are in the JSON):"
                  "\n\n" + table(rows, seed_cols) + "\n")


if __name__ == "__main__":
    main()
