"""Does a late GAN phase sharpen the restorer: one restore-cpu run trained with L2 only (its checkpoints/last; e.g.
`ladtalk train sovqae IDENTITY --wav2lip W --set train.disc_start=1000000`, as the committed rows' 2500-step base
was) continued for the same extra steps with L2 only and with the patch-GAN at two adaptive weights, each scored by
the self-reenactment protocol (`reenact`, mouth paste) and the last validation. Results:
bench/results/restorer_gan_phase_NAME.{json,md} and a mouth strip. A variant is skipped when its reports exist.
(restore-cpu itself now ends with 500 GAN steps.)

    python bench/restorer_gan_phase.py --identity runs/macron/identity --wav2lip runs/macron/wav2lip/model \
        --base runs/macron/sovqae-l2-only --work runs/macron/gan_phase --name macron --steps 500
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from common import RESULTS, run_folder_name, variant_study_parser, write_study
from restorer_recipes import score

import ladtalk
from ladtalk.io.video import iter_frames
from ladtalk.reenact import write_strip

VARIANTS = {"L2 only": None, "GAN, disc_weight 0.3": 0.3, "GAN, disc_weight 0.8": 0.8}  # the GAN's weight


def main() -> None:
    ap = variant_study_parser(__doc__, steps=500, wav2lip_required=True)
    ap.add_argument("--base", type=Path, required=True, help="a finished restore-cpu run folder to continue")
    a = ap.parse_args()
    base_step = json.loads((a.base / "checkpoints" / "last" / "config.json").read_text())["extra"]["step"]
    rows, reports = [], []
    for label, weight in VARIANTS.items():
        run = a.work / run_folder_name(label)
        report = a.work / "reports" / run.name / "reenact" / "report.json"
        if a.collect and not report.exists():
            print(f"{label}: no reports, left out")
            continue
        if not (run / "model").exists():
            if not run.exists():  # continue from the base: its last checkpoint and its lip-sync inputs cache
                shutil.copytree(a.base / "checkpoints" / "last", run / "checkpoints" / "last")
                for cache in a.base.glob("lipsync_inputs.*"):
                    shutil.copy2(cache, run / cache.name)
            gan = ["train.disc_start=1000000"] if weight is None else [f"train.disc_start={base_step}",
                                                                        f"train.disc_weight={weight}"]
            ladtalk.train_sovqae([a.identity], run, preset=a.preset, device=a.device, wav2lip_path=a.wav2lip,
                                 overrides=gan + [f"train.max_steps={base_step + a.steps}"])
        if not report.exists():
            ladtalk.reenact(a.identity, a.wav2lip, report.parent, sovqae_path=run, device=a.device, paste="mouth")
        rows.append(score(label, run, report))
        reports.append(report)
    write_study(f"restorer_gan_phase_{a.name}", {"preset": a.preset, "base_step": base_step, "steps": a.steps,
                                                 "rows": rows, "variants": VARIANTS},
                f"# A late GAN phase on {a.name}: a {a.preset} run of {base_step} steps continued for {a.steps} more"
                "\n\nreenact: the test split, mouth paste, gains over Wav2Lip alone; val_: the last validation on the "
                "held-out end of the train split (whole 256 crops). Strip (`_mouth.png`): the mouth region of "
                "ground truth | Wav2Lip only | " + " | ".join(r["variant"] for r in rows) + ".")
    write_mouth_strip(RESULTS / f"restorer_gan_phase_{a.name}_mouth.png", reports)


def write_mouth_strip(path: Path, reports: list[Path]) -> None:
    """Rows: ground truth | Wav2Lip only | each variant's cascade, in a square around the protocol's mouth box."""
    x1, y1, x2, y2 = json.loads(reports[0].read_text())["mouth_box"]
    half, cx, cy = max(x2 - x1, y2 - y1) // 2, (x1 + x2) // 2, (y1 + y2) // 2
    video = lambda path: np.stack(list(iter_frames(path)))  # noqa: E731
    preds = {"wav2lip": video(reports[0].parent / "wav2lip_only_mouth.mp4")}
    preds.update({str(r): video(r.parent / "cascade_mouth.mp4") for r in reports})
    write_strip(path, video(reports[0].parent / "ground_truth.mp4"), preds,
                (max(0, cx - half), max(0, cy - half), cx + half, cy + half))

if __name__ == "__main__":
    main()
