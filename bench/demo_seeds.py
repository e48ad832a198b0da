"""`ladtalk demo` for several seeds (each a different synthetic person, restorer and speech): mean and spread of
every figure, so one lucky run is not mistaken for a result (issue 30's targets are on two seeds).

Runs the demo into WORK/seed_N unless its summary.json is there already, then writes
bench/results/demo_seeds.{json,md} and copies seed 0's strips beside them. A restorer variant (`--set KEY=VALUE`,
added to the demo's own restorer settings) writes demo_seeds_NAME.{json,md} and its strips under that name.

    python bench/demo_seeds.py --work runs/demo_seeds --seeds 0 1 --threads 2
    python bench/demo_seeds.py --work runs/demo_share1 --name share1 --set train.lipsync_share=1.0
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
from common import write_results

FIGURES = ("lipsync_r", "face_psnr_db", "mouth_psnr_db", "face_ssim", "face_st_lpips", "mouth_sharpness_ratio",
           "mouth_sharpness_of_ceiling", "face_warp_error_ratio", "face_own_flow_warp_error_ratio")
GAINS = ("face_psnr_gain_db", "mouth_psnr_gain_db", "face_st_lpips_ratio_to_base", "face_warp_error_ratio_to_base",
         "face_own_flow_warp_error_ratio_to_base")


def spread(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max())}


def aggregate(summaries: list[dict]) -> dict:
    rows = {key: {f: spread([s["scores"][key][f] for s in summaries]) for f in FIGURES
                  if all(f in s["scores"][key] for s in summaries)} for key in summaries[0]["scores"]}
    gains = {key: {g: spread([s["gains"][key][g] for s in summaries]) for g in GAINS
                   if all(g in s["gains"][key] for s in summaries)} for key in summaries[0]["gains"]}
    return {"rows": rows, "gains": gains}


def markdown(agg: dict, summaries: list[dict], seeds: list[int]) -> str:
    def cell(d: dict) -> str:
        return f"{d['mean']:.3g} ({d['min']:.3g}-{d['max']:.3g})"

    lines = [f"# The demo on {len(seeds)} seeds ({', '.join(map(str, seeds))}): mean (min-max)", "",
             f"Lip-sync base: {summaries[0].get('lipsync_base', 'trained on the person')}; "
             f"{summaries[0]['frames']} frames of new speech per seed; "
             f"{', '.join(str(round(s['seconds'])) for s in summaries)} s per run.", ""]
    for paste in summaries[0]["pastes"]:
        keys = [k for k in agg["rows"] if k.endswith(f"_{paste}")]
        lines += [f"## {paste} paste", "", "| figure | " + " | ".join(summaries[0]["rows"][k] for k in keys) + " |",
                  "|---|" + "---|" * len(keys)]
        lines += [f"| {f} | " + " | ".join(cell(agg["rows"][k][f]) if f in agg["rows"][k] else "-" for k in keys)
                  + " |" for f in FIGURES]
        lines.append("")
        for key in (k for k in agg["gains"] if k.endswith(f"_{paste}")):
            lines.append(f"{summaries[0]['rows'][key]} against Wav2Lip alone: "
                         + "; ".join(f"{g} {cell(v)}" for g, v in agg["gains"][key].items()))
        lines.append("")
    p = summaries[0]["provenance"]
    lines.append(f"Provenance (seed {seeds[0]}): commit {p['commit'][:12]}, {p['precision']}, {p['threads']} threads, "
                 f"{p['cpu']} ({', '.join(p['cpu_flags'])}), torch {p['torch']}.")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--base", default="builtin", choices=("builtin", "train"))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a restorer setting on top of the demo's own (repeatable); needs --name")
    ap.add_argument("--name", default=None, help="a variant's name: results go to demo_seeds_NAME.*")
    args = ap.parse_args()
    if args.set and not args.name:
        ap.error("--set needs --name, so that a variant never overwrites the demo's own results")
    import torch

    import ladtalk
    from ladtalk.demo import default_overrides

    torch.set_num_threads(args.threads)
    summaries = []
    for seed in args.seeds:
        out = args.work / f"seed_{seed}"
        if not (out / "summary.json").is_file():
            over = default_overrides()
            over["sovqae"] += args.set
            ladtalk.demo(out, seed=seed, base=args.base, overrides=over)
        summaries.append(json.loads((out / "summary.json").read_text()))
    agg = aggregate(summaries)
    name = f"demo_seeds_{args.name}" if args.name else "demo_seeds"
    written = write_results(name, {"seeds": args.seeds, "base": args.base, "restorer_settings": args.set, **agg,
                                   "seconds": [s["seconds"] for s in summaries],
                                   "provenance": [s["provenance"] for s in summaries]})
    settings = f"Restorer settings on top of the demo's: {' '.join(args.set)}.\n\n" if args.set else ""
    results = written.parent  # bench/results, or $LADTALK_BENCH_OUT
    (results / f"{name}.md").write_text(settings + markdown(agg, summaries, args.seeds))
    strip = f"demo_strip_{args.name}" if args.name else "demo_strip"
    for paste in summaries[0]["pastes"]:
        shutil.copy2(args.work / f"seed_{args.seeds[0]}" / f"strip_{paste}.png", results / f"{strip}_{paste}.png")
    print((results / f"{name}.md").read_text())


if __name__ == "__main__":
    main()
