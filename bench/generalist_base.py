"""The shipped lip-sync base: an expert and a generator trained on many synthetic speakers, never on the demo's
person (issue 30: the paper's setting, a generalist Wav2Lip in front of a person's own restorer).

Speakers come from `ladtalk.data.speakers` (seeds 100..), the expert and the generator from the official recipe
(`train_syncnet`, `train_wav2lip`: the sync loss switched on by the official rule) at the 48-px tiny size. Every
stage resumes, so the run can be finished over several sessions. At the end it scores the expert on speakers it
never saw, writes src/ladtalk/pretrained/NAME/{syncnet,wav2lip,recipe.json} and bench/results/generalist_base.json.

    python bench/generalist_base.py --work runs/generalist --threads 2
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch
from common import write_results

from ladtalk.data.lipsync import SyncPairs, find_clips
from ladtalk.data.speakers import FIRST_SEED, synthetic_speakers
from ladtalk.lipsync_weights import load_syncnet_expert
from ladtalk.metrics.provenance import provenance
from ladtalk.train.common import setup_runtime
from ladtalk.train.syncnet import evaluate_expert, train_syncnet
from ladtalk.train.wav2lip import train_wav2lip

PRETRAINED = Path(__file__).resolve().parents[1] / "src" / "ladtalk" / "pretrained"
UNSEEN_SEEDS = 500  # speakers for the unseen-speaker check start here


def unseen_speaker_scores(expert_dir: Path, work: Path, count: int, seconds: float) -> dict:
    """The expert's held-out figures on whole speakers it never saw (their train and test frames alike)."""
    folders = synthetic_speakers(work / "unseen", count=count, seconds=seconds, first_seed=UNSEEN_SEEDS,
                                 device="cpu")
    expert = load_syncnet_expert(expert_dir)  # evaluate_expert runs it in eval mode, as the held-out figures
    clips = find_clips(folders, expert.config.img_size, "train") + find_clips(folders, expert.config.img_size, "val")
    rt = setup_runtime("cpu", precision="fp32")
    return evaluate_expert(expert, SyncPairs(clips, 2**62, seed=1), batches=16, batch_size=32, rt=rt)


def reference_output(generator_dir: Path) -> dict:
    """The generator's output on a fixed seeded input: tests check that the shipped file reproduces it."""
    from ladtalk.lipsync_weights import load_wav2lip

    gen = load_wav2lip(generator_dir)
    g = torch.Generator().manual_seed(0)
    size = gen.config.img_size
    mel, faces = torch.rand(2, 1, 80, 16, generator=g) * 8 - 4, torch.rand(2, 6, size, size, generator=g)
    with torch.no_grad():
        out = gen(mel, faces)
    return {"input": "torch.Generator().manual_seed(0): mel rand(2,1,80,16)*8-4, then faces rand(2,6,S,S)",
            "output_mean": float(out.mean()), "output_std": float(out.std()),
            "output_first": [round(float(v), 6) for v in out.flatten()[:8]]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, required=True, help="folder for the speakers and the runs (resumable)")
    ap.add_argument("--name", default="synthetic-48", help="folder name under src/ladtalk/pretrained")
    ap.add_argument("--speakers", type=int, default=24)
    ap.add_argument("--seconds", type=float, default=12.0, help="speech per speaker")
    ap.add_argument("--expert-steps", type=int, default=3000)
    ap.add_argument("--generator-steps", type=int, default=3000)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    minutes: dict[str, float] = {}

    def timed(key: str, fn):
        t0 = time.perf_counter()
        out = fn()
        minutes[key] = round((time.perf_counter() - t0) / 60, 2)
        return out

    speakers = timed("speakers", lambda: synthetic_speakers(args.work / "speakers", count=args.speakers,
                                                             seconds=args.seconds, device="cpu"))
    common = ["train.eval_every=250", "train.eval_batches=8"]
    expert = timed("expert", lambda: train_syncnet(
        speakers, args.work / "syncnet", preset="syncnet-tiny", device="cpu",
        overrides=[*common, f"train.max_steps={args.expert_steps}"]))
    generator = timed("generator", lambda: train_wav2lip(
        speakers, args.work / "wav2lip", syncnet_path=expert, preset="wav2lip-tiny", device="cpu",
        overrides=[*common, f"train.max_steps={args.generator_steps}"]))
    unseen = timed("unseen_check", lambda: unseen_speaker_scores(expert, args.work, count=4, seconds=args.seconds))

    extra = {part: json.loads((d / "config.json").read_text())["extra"] for part, d in
             (("syncnet", expert), ("wav2lip", generator))}
    recipe = {
        "name": args.name, "made_by": "bench/generalist_base.py",
        "data": {"kind": "ladtalk.data.speakers (synthetic faces and speech)", "speakers": args.speakers,
                 "seeds": [FIRST_SEED, FIRST_SEED + args.speakers - 1], "seconds_each": args.seconds,
                 "frame_size": 256, "fps": 25.0, "never_includes": "the demo's person (seed 0)"},
        "expert": {"preset": "syncnet-tiny", "steps": extra["syncnet"]["steps"], "held_out": extra["syncnet"]["val"],
                   "unseen_speakers": unseen, "unseen_seeds": [UNSEEN_SEEDS, UNSEEN_SEEDS + 3]},
        "generator": {"preset": "wav2lip-tiny", "steps": extra["wav2lip"]["steps"],
                      "sync_loss_on_step": extra["wav2lip"]["sync_loss_on_step"], "held_out": extra["wav2lip"]["val"]},
        "reference_output": reference_output(generator), "minutes_this_run": minutes,
        "provenance": provenance("cpu", "fp32"),
    }
    out = PRETRAINED / args.name
    for part, src in (("syncnet", expert), ("wav2lip", generator)):
        shutil.rmtree(out / part, ignore_errors=True)
        (out / part).mkdir(parents=True)
        for f in ("config.json", "model.safetensors"):
            shutil.copy2(src / f, out / part / f)
    (out / "recipe.json").write_text(json.dumps(recipe, indent=2) + "\n")
    write_results("generalist_base", recipe)
    print(json.dumps(recipe, indent=2))


if __name__ == "__main__":
    main()
