"""The restore part of bench/gpu_suite.py: the lip-sync expert, the identity's Wav2Lip and the SOVQAE trained on its
train split for the time the suite leaves (shares of it; the dry run caps steps instead), then `ladtalk analyze`
and the self-reenactment protocol (`ladtalk.reenact`) on its test split."""

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


def perceptual_override(preset: str) -> tuple[bool, list[str], str | None]:
    """(whether this machine has LPIPS-VGG or ST-LPIPS-VGG weight files, the overrides, a note): perceptual=none
    when the preset wants a perceptual loss whose weights are not here."""
    from ladtalk.errors import InputError
    from ladtalk.losses.perceptual import build_perceptual
    from ladtalk.presets import load_preset

    try:
        available = build_perceptual("auto", "cpu")[0] is not None
    except InputError:
        available = False
    if available or load_preset(preset)["train"].get("perceptual", "none") == "none":
        return available, [], None
    return available, ["train.perceptual=none"], ("perceptual loss off: no LPIPS-VGG / ST-LPIPS-VGG weight files "
                                                  "on this machine (reenact's LPIPS column is left out too)")


def last_logged(run_dir: Path, key: str) -> float | None:
    """The last training-log value of `key` (e.g. images_per_s of the real loop, data and schedule included)."""
    import json

    value = None
    path = run_dir / "logs" / "metrics.jsonl"
    for line in path.read_text().splitlines() if path.is_file() else []:
        record = json.loads(line)
        if record.get("split") == "train" and key in record:
            value = record[key]
    return value


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
                    "model_dir": str(model_dir), "extra": meta.get("extra", {}),
                    "last_images_per_s": last_logged(run_dir / stage, "images_per_s")})
    return model_dir


def part_restore(a: argparse.Namespace, rec: Recorder, deadline: float) -> None:
    from gpu_report import restoration_strip

    from ladtalk.analyze import analyze
    from ladtalk.reenact import reenact
    from ladtalk.train.sovqae import train_sovqae
    from ladtalk.train.syncnet import train_syncnet
    from ladtalk.train.wav2lip import train_wav2lip

    identity = prepared_identity(a)
    runs = a.work / "restore"
    shutil.rmtree(runs, ignore_errors=True)
    runs.mkdir(parents=True)
    lpips, extra, note = perceptual_override(a.sovqae_preset)
    if note:
        rec.set("perceptual_note", note)

    syncnet = train_stage(a, rec, "syncnet", deadline, runs, train_syncnet)
    wav2lip = train_stage(a, rec, "wav2lip", deadline, runs, train_wav2lip, syncnet_path=syncnet)
    sovqae = train_stage(a, rec, "sovqae", deadline, runs, train_sovqae, extra=extra,
                         wav2lip_path=None if a.sovqae_clean_only else wav2lip)

    t0 = time.perf_counter()
    rep = attempt(rec, "analyze", analyze, sovqae, identity, runs / "analysis",
                  max_frames=4 if a.dry_run else None, device=a.device)
    if rep:
        rec.set("analyze", {"seconds": round(time.perf_counter() - t0, 1), "test_frames": rep["test_frames"],
                            "theory": rep["theory"], "experiments": rep["experiments"]})
    attempt(rec, "restoration_strip", lambda: rec.set("restoration_strip", restoration_strip(
        sovqae, identity, a.out / "restoration_strip.png", a.device)))

    t0 = time.perf_counter()
    report = attempt(rec, "reenact", reenact, identity, wav2lip, runs / "reenact", sovqae_path=sovqae,
                     device=a.device, max_frames=16 if a.dry_run else None, lpips=lpips, paste="mouth")
    if report is not None:
        rec.set("reenact", {"status": "ok", "seconds": round(time.perf_counter() - t0, 1), "report": report})
        strip = runs / "reenact" / "strip.png"  # reenact's own: ground truth | Wav2Lip only | cascade
        if strip.is_file():
            shutil.copyfile(strip, a.out / "reenact_strip.png")
            rec.set("reenact_strip", {"file": "reenact_strip.png", "bytes": strip.stat().st_size})

