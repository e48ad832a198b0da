"""One person's lip-sync bases side by side (issue 28): what each expert reached, whether and when the generator's
sync loss switched on, and the generator's mouth on the person's test split (a `ladtalk reenact` report per base).

    python bench/lipsync_bases.py OUT.json LABEL=REENACT_DIR:GENERATOR_DIR:EXPERT_DIR [...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

FIGURES = ("lipsync_r", "lipsync_r_best", "mouth_psnr_db", "face_psnr_db", "mouth_sharpness_ratio",
           "face_warp_error_ratio")


def extra(model_dir: str) -> dict:
    meta = json.loads((Path(model_dir) / "model" / "config.json").read_text())
    return {**meta.get("extra", {}), "config": meta.get("config", {})}


def row(label: str, report_dir: str, generator: str, expert: str) -> dict:
    report = json.loads((Path(report_dir) / "report.json").read_text())
    gen, exp = extra(generator), extra(expert)
    out = {"base": label, "expert_mouth_crop": bool(exp["config"].get("mouth_crop")),
           "expert_steps": exp.get("steps"), "expert_held_out_accuracy": round(exp["val"]["accuracy"], 3),
           "expert_held_out_auc": round(exp["val"]["auc"], 3), "generator_steps": gen.get("steps"),
           "sync_loss_on_step": gen.get("sync_loss_on_step"), "generator_val_sync": round(gen["val"]["sync"], 3)}
    for paste in report["pastes"]:
        scores = report["scores"][f"wav2lip_{paste}"]
        out.update({f"{paste}_{k}": round(scores[k], 3) for k in FIGURES if k in scores})
    return out | {"provenance": report["provenance"]}


def main() -> None:
    rows = []
    for arg in sys.argv[2:]:
        label, paths = arg.split("=", 1)
        rows.append(row(label, *paths.split(":")))
    ceiling = json.loads((Path(sys.argv[2].split("=", 1)[1].split(":")[0]) / "report.json").read_text())
    Path(sys.argv[1]).write_text(json.dumps({
        "what": "lip-sync bases trained on one person (the identity's train split), Wav2Lip alone on its test split "
                "(ladtalk reenact --no-lpips); lipsync_r: the generated mouth's opening against the truth's",
        "true_crops_lipsync_r": round(ceiling["scores"]["crop_ceiling_mouth"]["lipsync_r"], 3),
        "provenance": rows[0]["provenance"], "rows": rows}, indent=1))  # each row keeps its own too


if __name__ == "__main__":
    main()
