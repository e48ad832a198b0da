"""The temporal filter's trade-off: flicker (warping error) against the mouth's fine detail, for several
`--temporal-strength` / `--temporal-sigma` settings of one trained cascade, each scored by the self-reenactment
protocol (`reenact --temporal-filter`, mouth paste). Results: bench/results/temporal_tradeoff_NAME.{json,md}.
A setting is skipped when its report exists (REPORTS/strength_S_sigma_G/report.json).

    python bench/temporal_tradeoff.py --identity runs/macron/identity --wav2lip runs/macron/wav2lip/model \
        --sovqae runs/macron/sovqae --work runs/macron/temporal --name macron --settings 1:0.06 0.5:0.06 1:0.03
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import gains_over, write_study

import ladtalk

COLUMNS = ["setting", "face_psnr_gain_db", "mouth_psnr_gain_db", "mouth_sharpness_ratio", "face_st_lpips_ratio_to_base",
           "face_lpips_ratio_to_base", "face_warp_error_ratio", "face_own_flow_warp_error_ratio"]


def row(label: str, scores: dict, base: dict) -> dict:
    """One table row: a result's gains over Wav2Lip alone (`base`) and its sharpness and flicker."""
    return {"setting": label, **gains_over(scores, base), "mouth_sharpness_ratio": scores["mouth_sharpness_ratio"],
            "face_warp_error_ratio": scores["face_warp_error_ratio"],
            "face_own_flow_warp_error_ratio": scores["face_own_flow_warp_error_ratio"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--identity", type=Path, required=True)
    ap.add_argument("--wav2lip", type=Path, required=True)
    ap.add_argument("--sovqae", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True, help="where the reenact reports go")
    ap.add_argument("--name", required=True)
    ap.add_argument("--settings", nargs="+", default=["1:0.06", "0.5:0.06", "1:0.03"], metavar="STRENGTH:SIGMA")
    ap.add_argument("--device", default="auto")
    a = ap.parse_args()
    rows = []
    for setting in a.settings:
        strength, sigma = (float(v) for v in setting.split(":"))
        report = a.work / f"strength_{strength:g}_sigma_{sigma:g}" / "report.json"
        if not report.exists():
            ladtalk.reenact(a.identity, a.wav2lip, report.parent, sovqae_path=a.sovqae, device=a.device,
                            temporal_filter=True, temporal_strength=strength, temporal_sigma=sigma, paste="mouth")
        scores = json.loads(report.read_text())["scores"]
        if not rows:  # the rows without the filter are the same in every report
            rows.append(row("Wav2Lip only", scores["wav2lip_mouth"], scores["wav2lip_mouth"]))
            rows.append(row("cascade, no filter", scores["cascade_mouth"], scores["wav2lip_mouth"]))
        rows.append(row(f"cascade, strength {strength:g}, sigma {sigma:g}", scores["cascade_temporal_mouth"],
                        scores["wav2lip_mouth"]))
    write_study(f"temporal_tradeoff_{a.name}", {"sovqae": str(a.sovqae), "settings": a.settings, "rows": rows},
                f"# The temporal filter's trade-off on {a.name}\n\nSelf-reenactment on the test split, mouth paste; "
                "gains and perceptual-distance ratio against Wav2Lip alone; warping errors (with the truth's flow "
                "and the output's own) as a multiple of the ground truth's own.",
                COLUMNS)


if __name__ == "__main__":
    main()
