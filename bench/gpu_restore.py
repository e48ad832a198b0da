"""The restore part of bench/gpu_suite.py: the full-size recipe on the identity's train split for the time the
suite has left - the lip-sync expert, the per-identity Wav2Lip, then the SOVQAE - then `ladtalk analyze` and the
self-reenactment protocol (`ladtalk.reenact`) on its held-out test split.

On the GPU each trainer gets a share of the time left (max_minutes; evaluation shortened to fit); the dry run
instead caps steps, so the CPU test is quick and does not depend on the machine's speed."""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from gpu_parts import Recorder, attempt, prepared_identity, seconds_left

# shares of the training time (the rest of the part's budget after RESERVE_S) and fixed costs per trainer
SHARES = {"syncnet": 0.2, "wav2lip": 0.3, "sovqae": 0.5}
RESERVE_S = 60.0          # analyze (~10 s), reenact (~30 s), strips, process start
TRAINER_OVERHEAD_S = 12.0  # building, data loading, the final evaluation and checkpoint of one trainer
DRY_OVERRIDES = {"syncnet": ["train.max_steps=2", "train.eval_batches=1", "train.batch_size=4"],
                 "wav2lip": ["train.max_steps=2", "train.eval_batches=1", "train.batch_size=2"],
                 "sovqae": ["train.max_steps=2", "train.val_frames=2", "train.batch_size=4"]}
GPU_OVERRIDES = {"syncnet": ["train.eval_batches=8"], "wav2lip": ["train.eval_batches=8"], "sovqae": []}


def minutes_for(stage: str, deadline: float) -> float:
    """This stage's share of the training time still left (later stages share what earlier ones left)."""
    later = list(SHARES)[list(SHARES).index(stage):]
    share = SHARES[stage] / sum(SHARES[s] for s in later)
    usable = seconds_left(deadline) - RESERVE_S - TRAINER_OVERHEAD_S * len(later)
    return max(0.1, share * usable / 60.0)


def perceptual_override(preset: str) -> tuple[list[str], str | None]:
    """perceptual=none when the preset's perceptual weights are not on this machine (said in the results)."""
    from ladtalk.errors import InputError
    from ladtalk.losses.perceptual import build_perceptual
    from ladtalk.presets import load_preset

    kind = load_preset(preset)["train"].get("perceptual", "none")
    if kind == "none":
        return [], None
    try:
        build_perceptual(kind, "cpu")
        return [], None
    except InputError as e:
        return ["train.perceptual=none"], f"perceptual loss off: {e}"


def train_stage(a: argparse.Namespace, rec: Recorder, stage: str, deadline: float, run_dir: Path, fn,
                **kw) -> Path:
    from ladtalk.checkpoint import read_meta

    preset = {"syncnet": a.syncnet_preset, "wav2lip": a.wav2lip_preset, "sovqae": a.sovqae_preset}[stage]
    user = {"syncnet": a.set_syncnet, "wav2lip": a.set_wav2lip, "sovqae": a.set_sovqae}[stage]
    overrides = list(DRY_OVERRIDES[stage] if a.dry_run else
                     [f"train.max_minutes={minutes_for(stage, deadline):.2f}", *GPU_OVERRIDES[stage]])
    overrides += kw.pop("extra", []) + list(user)
    t0 = time.perf_counter()
    model_dir = fn([prepared_identity(a)], run_dir / stage, preset=preset, overrides=overrides, device=a.device,
                   **kw)
    meta = read_meta(model_dir)
    rec.set(stage, {"preset": preset, "overrides": overrides, "seconds": round(time.perf_counter() - t0, 1),
                    "model_dir": str(model_dir), "extra": meta.get("extra", {})})
    return model_dir


def part_restore(a: argparse.Namespace, rec: Recorder, deadline: float) -> None:
    from gpu_report import restoration_strip, videos_strip

    from ladtalk.analyze import analyze
    from ladtalk.train.sovqae import train_sovqae
    from ladtalk.train.syncnet import train_syncnet
    from ladtalk.train.wav2lip import train_wav2lip

    identity = prepared_identity(a)
    runs = a.work / "restore"
    shutil.rmtree(runs, ignore_errors=True)
    runs.mkdir(parents=True)
    extra, note = perceptual_override(a.sovqae_preset)
    if note:
        rec.set("perceptual_note", note)

    syncnet = train_stage(a, rec, "syncnet", deadline, runs, train_syncnet)
    wav2lip = train_stage(a, rec, "wav2lip", deadline, runs, train_wav2lip, syncnet_path=syncnet)
    sovqae = train_stage(a, rec, "sovqae", deadline, runs, train_sovqae, extra=extra)

    t0 = time.perf_counter()
    rep = attempt(rec, "analyze", analyze, sovqae, identity, runs / "analysis",
                  max_frames=4 if a.dry_run else None, device=a.device)
    if rep:
        rec.set("analyze", {"seconds": round(time.perf_counter() - t0, 1), "test_frames": rep["test_frames"],
                            "theory": rep["theory"], "experiments": rep["experiments"]})
    strip = attempt(rec, "restoration_strip", restoration_strip, sovqae, identity,
                    a.out / "restoration_strip.png", a.device)
    if strip:
        rec.set("restoration_strip", strip)

    reenact = _reenact_function()
    if reenact is None:
        rec.set("reenact", {"status": "reenact not available",
                            "reason": "ladtalk.reenact is not in this tree yet (issue 14)"})
        return
    t0 = time.perf_counter()
    report = attempt(rec, "reenact", reenact, identity, wav2lip, runs / "reenact", sovqae_path=sovqae,
                     device=a.device, max_frames=16 if a.dry_run else None)
    if report is not None:
        rec.set("reenact", {"status": "ok", "seconds": round(time.perf_counter() - t0, 1), "report": report})
        strip = attempt(rec, "reenact_strip", videos_strip, sorted((runs / "reenact").rglob("*.mp4")),
                        a.out / "reenact_strip.png")
        if strip:
            rec.set("reenact_strip", strip)


def _reenact_function():
    """`ladtalk.reenact` where this tree has it (issue 14), else None."""
    try:
        from ladtalk import reenact
    except ImportError:
        return None
    return getattr(reenact, "reenact", reenact)  # the function, also when `reenact` resolves to its module
