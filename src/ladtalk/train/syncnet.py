"""`ladtalk train syncnet`: the lip-sync expert (Wav2Lip's SyncNet_color) on identity folders or LRS2-style roots.

Official recipe (color_syncnet_train.py): batch 64, Adam lr 1e-4, loss BCE(cos(a, v), y) on half in-sync and half
off-sync pairs (the face window moved, the mel kept); evaluation on held-out clips every 10k steps, where an eval
loss near 0.25 is a good expert. RUN_DIR/checkpoints/{last,best}, RUN_DIR/logs/metrics.jsonl (+ TensorBoard),
RUN_DIR/model (kind "syncnet_expert": the best-eval weights). Re-running the same command resumes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from ladtalk.checkpoint import load_state_dict, save_component, strict_load
from ladtalk.data.lipsync import SyncPairs, find_clips, usable
from ladtalk.io.atomic import check_writable_dir
from ladtalk.lipsync_weights import KIND_EXPERT
from ladtalk.losses.lipsync import cosine_bce
from ladtalk.models.syncnet import SyncNetColor, SyncNetConfig
from ladtalk.presets import load_preset
from ladtalk.train.common import (
    CheckpointManager,
    RunLogger,
    eval_mode,
    progress,
    rng_state,
    seed_everything,
    set_rng_state,
    setup_runtime,
    unwrap,
)
from ladtalk.train.config import read_config
from ladtalk.train.lipsync_common import Deadline, LipSyncTrainConfig, StepBatches, flush_denormals, loader


def evaluate_expert(model: torch.nn.Module, data: SyncPairs, batches: int, batch_size: int, rt) -> dict[str, float]:
    """Mean BCE and accuracy (cos > 0.5 == y) over fixed held-out batches."""
    total, correct, n = 0.0, 0, 0
    with eval_mode(model):
        for mel, face, y in loader(data, StepBatches(0, batches, batch_size), 0, False):
            mel, face, y = mel.to(rt.device), face.to(rt.device), y.to(rt.device)
            with rt.autocast():
                a, v = model(mel, face)
            total += float(cosine_bce(a, v, y)) * len(y)
            correct += int(((torch.cosine_similarity(a.float(), v.float()) > 0.5).float() == y.view(-1)).sum())
            n += len(y)
    return rt.mean_across_ranks({"loss": total / n, "accuracy": correct / n})


def train_syncnet(data_dirs: Sequence[str | os.PathLike], run_dir: str | os.PathLike, preset: str = "syncnet",
                  overrides: Sequence[str] = (), device: str = "auto") -> Path:
    """Train the expert; returns RUN_DIR/model (config.json + model.safetensors, kind 'syncnet_expert')."""
    cfg = load_preset(preset, overrides)
    mcfg, t = SyncNetConfig(**cfg["model"]), read_config(LipSyncTrainConfig, cfg["train"])
    train_clips = find_clips(data_dirs, mcfg.img_size, "train")
    val_clips = [c for c in find_clips(data_dirs, mcfg.img_size, "val") if usable(c)]
    val_clips = val_clips or train_clips  # a short identity's test split may hold no 5-frame window
    bs, max_steps = t.batch_size, t.max_steps
    train_data = SyncPairs(train_clips, length=2**62, seed=t.seed)
    val_data = SyncPairs(val_clips, length=2**62, seed=t.seed + 7919)
    run_dir = check_writable_dir(run_dir)  # only once the data is known to be usable
    rt = setup_runtime(device, precision=t.precision)
    seed_everything(t.seed, rank=rt.rank)

    model = rt.prepare(SyncNetColor(mcfg))
    ddp = rt.wrap_ddp(model)
    opt = torch.optim.Adam(model.parameters(), lr=t.lr)
    ckpt = CheckpointManager(run_dir / "checkpoints", KIND_EXPERT, is_main=rt.is_main)
    step, best = 0, math.inf
    resumed = ckpt.load_last()
    if resumed is not None:
        strict_load(model, resumed.state_dict, str(ckpt.last_dir))
        opt.load_state_dict(resumed.trainer_state["optimizer"])
        step, best = int(resumed.trainer_state["step"]), float(resumed.trainer_state["best"])
        set_rng_state(resumed.trainer_state["rng"])

    log = RunLogger(run_dir / "logs", enabled=rt.is_main)
    bar = progress(max_steps, initial=step, desc="train syncnet", disable=not rt.is_main)
    deadline = Deadline(t.max_minutes)

    def save() -> None:
        nonlocal best
        scores = evaluate_expert(model, val_data, t.eval_batches, bs, rt)
        log.log(step, scores, split="val")
        is_best = scores["loss"] < best
        best = min(best, scores["loss"])
        state = {"step": step, "best": best, "optimizer": opt.state_dict(), "rng": rng_state()}
        ckpt.save(mcfg, unwrap(model).state_dict(), state, extra={"val": scores}, best=is_best)
        rt.barrier()

    batches = StepBatches(step, max_steps, bs, rt.rank, rt.world_size)
    train_loader = loader(train_data, batches, t.num_workers, rt.device.type == "cuda")
    for mel, face, y in flush_denormals(train_loader, rt.device):
        model.train()
        mel, face, y = mel.to(rt.device), rt.images(face), y.to(rt.device)
        with rt.autocast():
            a, v = ddp(mel, face)
        loss = cosine_bce(a, v, y)
        opt.zero_grad(set_to_none=True)
        rt.backward(loss)
        rt.step(opt)
        rt.update()
        step += 1
        bar.update(1)
        if step % t.log_every == 0 or step == 1:
            log.log(step, {"loss": loss.item()})
            bar.set_postfix(loss=f"{loss.item():.3f}")
        stop = step >= max_steps or deadline.passed()
        if stop or step % t.eval_every == 0:
            save()
        if stop:
            break
    bar.close()
    if not (ckpt.last_dir / "config.json").is_file():
        save()
    out = run_dir / "model"
    if rt.is_main:
        source = ckpt.best_dir if (ckpt.best_dir / "model.safetensors").is_file() else ckpt.last_dir
        save_component(out, KIND_EXPERT, mcfg, load_state_dict(source), extra={"best_val_loss": best, "steps": step})
    log.close()
    rt.close()
    return out
