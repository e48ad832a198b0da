"""How long the restoration recipe trains on this machine (issue 14: at most 45 minutes in all on 2 cores): each
stage's steady per-step time over a short run of its preset (the SyncNet expert, the Wav2Lip base, the SOVQAE's L2
and patch-GAN phases), times the preset's own step counts, plus the SOVQAE's set-up (among it the Wav2Lip's pass
over the train frames). Periodic evaluations and checkpoints are not counted.
Results: bench/results/training_budget_NAME.json.

    python bench/training_budget.py --identity runs/macron/identity --work /tmp/budget --name macron
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from common import training_log, write_results

import ladtalk
from ladtalk.presets import load_preset

QUIET = ["train.eval_every=100000"]


def seconds_per_step(run: Path, first: int, last: int | None = None) -> float:
    """Mean seconds per step between the logged train steps `first` and `last` (the last logged by default)."""
    rows = [r for r in training_log(run)
            if r.get("split") == "train" and r["step"] >= first and (last is None or r["step"] <= last)]
    return (rows[-1]["time"] - rows[0]["time"]) / (rows[-1]["step"] - rows[0]["step"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--identity", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--steps", type=int, default=60, help="steps of each short run (the SOVQAE's half with the GAN)")
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    n, work = a.steps, a.work
    syncnet = ladtalk.train_syncnet([a.identity], work / "syncnet", preset="syncnet-identity", device=a.device,
                                    overrides=QUIET + [f"train.max_steps={n}"])
    wav2lip = ladtalk.train_wav2lip([a.identity], work / "wav2lip", syncnet_path=syncnet, preset="wav2lip-identity",
                                    device=a.device, overrides=QUIET + [f"train.max_steps={n}"])
    t0 = time.perf_counter()
    ladtalk.train_sovqae([a.identity], work / "sovqae", preset="restore-cpu", device=a.device, wav2lip_path=wav2lip,
                         overrides=[f"train.max_steps={2 * n}", f"train.disc_start={n}", "train.log_every=5",
                                    "train.val_every=100000", "train.checkpoint_every=100000"])
    l2, gan = seconds_per_step(work / "sovqae", 10, n - 5), seconds_per_step(work / "sovqae", n + 5)
    setup = time.perf_counter() - t0 - n * (l2 + gan)  # crops, the Wav2Lip's pass, codebook init, export
    sn, w2l, sv = (load_preset(p)["train"] for p in ("syncnet-identity", "wav2lip-identity", "restore-cpu"))
    stages = {
        "syncnet": (sn["max_steps"], seconds_per_step(work / "syncnet", 10)),
        "wav2lip": (w2l["max_steps"], seconds_per_step(work / "wav2lip", 10)),
        "sovqae_l2": (sv["disc_start"], l2),
        "sovqae_gan": (sv["max_steps"] - sv["disc_start"], gan),
    }
    minutes = {k: steps * s / 60 for k, (steps, s) in stages.items()}
    minutes["sovqae_setup"] = max(0.0, setup) / 60
    out = {"steps_per_short_run": n, "seconds_per_step": {k: s for k, (_, s) in stages.items()},
           "preset_steps": {k: steps for k, (steps, _) in stages.items()}, "minutes": minutes,
           "total_minutes": sum(minutes.values())}
    write_results(f"training_budget_{a.name}", out)
    for k, v in minutes.items():
        print(f"{k:22s} {v:6.1f} min")
    print(f"{'total':22s} {out['total_minutes']:6.1f} min (evaluations and checkpoints not counted)")


if __name__ == "__main__":
    main()
