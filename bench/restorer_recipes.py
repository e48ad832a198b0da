"""Which restorer recipe restores most: variants of a SOVQAE preset (restore-cpu by default), each trained for the
same fixed steps on a prepared identity with a Wav2Lip's own faces as a share of its inputs, then scored by the
self-reenactment protocol (`reenact`, mouth paste) and by the last validation on the held-out train frames.
`--study` picks the set of variants: `recipes` (the guide's size) or `skip` (skip fusion against the preset).
Results: bench/results/restorer_STUDY_NAME.{json,md}. A variant is skipped when its reports exist. The studies of
options that measurements rejected and the code no longer has (L1 + edge loss, the temporal training term) are in
git history; their results stay in bench/results and docs/results.md.

    python bench/restorer_recipes.py --identity runs/macron/identity --wav2lip runs/macron/wav2lip/model \
        --work runs/macron/recipes --name macron --steps 1000
    python bench/restorer_recipes.py --study skip ... --work runs/macron/skip --steps 2500
"""

from __future__ import annotations

import json
from pathlib import Path

from common import gains_over, run_folder_name, training_log, variant_study_parser, write_study

import ladtalk

# overrides of restore-cpu.yaml (patches anywhere on the lip-sync inputs, as these rows were run; restore-cpu
# now holds them to the lower face: +0.1 dB face PSNR at 2500 steps, bench/results/restoration_macron_lipsync.md)
_ANYWHERE = ["train.lipsync_patch_lower=false"]
VARIANTS = {
    "guide 32 px, L2 (session 3)": _ANYWHERE + ["model.guide_scale=1"],
    "guide 64 px, L2": _ANYWHERE,
    "guide 96 px, L2": _ANYWHERE + ["model.guide_scale=3"],
}
# skip fusion (model.skip_levels, beyond the paper): the decoder's finest levels corrected by the encoder's features
# (and without the patch-GAN phase, or with a weaker one: the phase cost both models 1.3 dB on validation)
SKIP = {"restore-cpu": [], "skip_levels 2": ["model.skip_levels=2"],
        "skip_levels 2, L2 only": ["model.skip_levels=2", "train.disc_start=1000000"],
        "skip_levels 2, GAN weight 0.2": ["model.skip_levels=2", "train.disc_weight=0.2"]}
STUDIES = {"recipes": VARIANTS, "skip": SKIP}
VALIDATION = ("recon_psnr", "down96_psnr_degraded", "down96_psnr_restored", "noise_0.1_psnr_restored",
              "lipsync_psnr_input", "lipsync_psnr_restored")
REENACT = ("face_psnr_db", "mouth_psnr_db", "mouth_sharpness_ratio", "face_warp_error_ratio",
           "face_own_flow_warp_error_ratio")


def last_validation(run: Path) -> dict[str, float]:
    last = [r for r in training_log(run) if "lipsync_psnr_restored" in r][-1]
    return {f"val_{k}": last[k] for k in VALIDATION}


def score(label: str, run: Path, report: Path) -> dict:
    scores = json.loads(report.read_text())["scores"]
    w2l, cas = scores["wav2lip_mouth"], scores["cascade_mouth"]
    return {"variant": label, **{k: cas[k] for k in REENACT}, **gains_over(cas, w2l), **last_validation(run)}


def main() -> None:
    ap = variant_study_parser(__doc__, steps=1000, wav2lip_required=True)
    ap.add_argument("--study", choices=sorted(STUDIES), default="recipes")
    a = ap.parse_args()
    variants = STUDIES[a.study]
    rows = []
    for label, over in variants.items():
        run = a.work / run_folder_name(label)
        report = a.work / "reports" / run.name / "reenact" / "report.json"  # beside the model, never inside it
        if a.collect and not report.exists():
            print(f"{label}: no reports, left out")
            continue
        if not (run / "model").exists():
            ladtalk.train_sovqae([a.identity], run, preset=a.preset, device=a.device, wav2lip_path=a.wav2lip,
                                 overrides=over + [f"train.max_steps={a.steps}"])
        if not report.exists():
            ladtalk.reenact(a.identity, a.wav2lip, report.parent, sovqae_path=run, device=a.device, paste="mouth")
        rows.append(score(label, run, report))
    write_study(f"restorer_{a.study}_{a.name}", {"preset": a.preset, "steps": a.steps, "rows": rows,
                                                 "variants": variants},
                f"# Restorer {a.study} on {a.name} ({a.preset} variants, {a.steps} steps each, half the inputs the "
                "Wav2Lip's own faces)\n\nreenact: the test split, mouth paste, gains over Wav2Lip alone; val_: the "
                "last validation on the held-out end of the train split (whole 256 crops).")

if __name__ == "__main__":
    main()
