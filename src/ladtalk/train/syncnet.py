"""`ladtalk train syncnet`: the lip-sync expert (Wav2Lip's SyncNet_color) on identity folders or LRS2-style roots.
Official recipe (color_syncnet_train.py): batch 64, Adam lr 1e-4, loss BCE(cos(a, v), y) on half in-sync and half
off-sync pairs (the face window moved, the mel kept); an eval loss near 0.25 is a good expert. Writes
RUN_DIR/checkpoints/{last,best}, logs and model (the best-eval weights); re-running resumes."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ladtalk.checkpoint import load_state_dict, save_component, strict_load
from ladtalk.data.augment import augment_faces, augment_mels
from ladtalk.data.lipsync import SyncPairs, find_clips, usable
from ladtalk.errors import InputError
from ladtalk.io.atomic import check_writable_dir
from ladtalk.io.guard import refuse_output_over_inputs
from ladtalk.lipsync_weights import KIND_EXPERT, load_syncnet_expert
from ladtalk.losses.lipsync import cosine_bce
from ladtalk.models.syncnet import SyncNetColor, SyncNetConfig
from ladtalk.presets import load_preset
from ladtalk.train.common import (
    CheckpointManager,
    RunLogger,
    eval_mode,
    print_summary,
    rng_state,
    seed_everything,
    set_rng_state,
    setup_runtime,
    unwrap,
)
from ladtalk.train.config import read_config
from ladtalk.train.lipsync_common import LipSyncTrainConfig, loader, run_steps

CHANCE_WARNING_ACCURACY = 0.6  # held-out accuracy below this: the expert has not learned sync (chance is 0.5)
MIN_TRUSTED_SAMPLES = 96       # fewer held-out samples leave +-0.1 of binomial noise on the accuracy


@dataclass(frozen=True, kw_only=True)
class SyncNetTrainConfig(LipSyncTrainConfig):
    """The expert's `train` map: the shared lip-sync fields plus what keeps one person's expert from memorising."""

    augment: bool = False          # data.augment on every batch (faces and mels)
    near_negatives: float = 0.0    # share of off-sync windows drawn 3-25 frames from the true one
    weight_decay: float = 0.0      # AdamW's decoupled decay (0: the official Adam)

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 <= self.near_negatives <= 1.0:
            raise InputError(f"train.near_negatives must be a share in [0, 1], got {self.near_negatives}")


def evaluate_expert(model: torch.nn.Module, data: SyncPairs, batches: int, batch_size: int, rt) -> dict[str, float]:
    """Mean BCE, accuracy (cos > 0.5 == y) and AUC (P(cos of an in-sync pair > cos of an off-sync one)) over
    fixed held-out batches."""
    total, cos, ys = 0.0, [], []
    with eval_mode(model):
        for mel, face, y in loader(data, 0, batches, batch_size, 0, False):
            mel, face, y = mel.to(rt.device), face.to(rt.device), y.to(rt.device)
            with rt.autocast():
                a, v = model(mel, face)
            total += float(cosine_bce(a, v, y)) * len(y)
            cos.append(torch.cosine_similarity(a.float(), v.float()).cpu())
            ys.append(y.view(-1).cpu())
    cos, ys = torch.cat(cos), torch.cat(ys).bool()
    pos, neg = cos[ys], cos[~ys]
    auc = float((pos[:, None] > neg[None, :]).float().mean()) if len(pos) and len(neg) else math.nan
    return {"loss": total / len(ys), "accuracy": float(((cos > 0.5) == ys).float().mean()), "auc": auc}


def train_syncnet(data_dirs: Sequence[str | os.PathLike], run_dir: str | os.PathLike, preset: str = "syncnet",
                  overrides: Sequence[str] = (), device: str = "auto",
                  init_path: str | os.PathLike | None = None) -> Path:
    """Train (or fine-tune from `init_path`) the expert; returns RUN_DIR/model (kind 'syncnet_expert')."""
    refuse_output_over_inputs(run_dir, [("training data", d) for d in data_dirs] + [("--init weights", init_path)],
                              folder=True)
    cfg = load_preset(preset, overrides)
    t = read_config(SyncNetTrainConfig, cfg["train"])
    # fine-tuned weights bring their own geometry; a new expert is built after seeding, so its start is the seed's
    init = load_syncnet_expert(init_path, "cpu") if init_path else None
    mcfg = init.config if init is not None else SyncNetConfig(**cfg["model"])
    train_clips = find_clips(data_dirs, mcfg.img_size, "train")
    val_clips = [c for c in find_clips(data_dirs, mcfg.img_size, "val") if usable(c)]
    val_clips = val_clips or train_clips  # a short identity's test split may hold no 5-frame window
    bs = t.batch_size
    train_data = SyncPairs(train_clips, length=2**62, seed=t.seed, near_negatives=t.near_negatives)
    # held out with the same negatives as training, so its accuracy is comparable with the training loss
    val_data = SyncPairs(val_clips, length=2**62, seed=t.seed + 7919, near_negatives=t.near_negatives)
    run_dir = check_writable_dir(run_dir)  # only once the data is known to be usable
    rt = setup_runtime(device, precision=t.precision)
    seed_everything(t.seed)

    model = rt.prepare(init.train() if init is not None else SyncNetColor(mcfg))
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    ckpt = CheckpointManager(run_dir / "checkpoints", KIND_EXPERT)
    step, best, best_scores = 0, math.inf, {}
    resumed = ckpt.load_last()
    if resumed is not None:
        strict_load(model, resumed.state_dict, str(ckpt.last_dir))
        opt.load_state_dict(resumed.trainer_state["optimizer"])
        step, best = int(resumed.trainer_state["step"]), float(resumed.trainer_state["best"])
        best_scores = resumed.trainer_state.get("best_scores", {})
        set_rng_state(resumed.trainer_state["rng"])

    log = RunLogger(run_dir / "logs")
    augment = torch.Generator().manual_seed(t.seed + 104729 * step)  # a resumed run goes on with new draws

    def train_step(batch: list[torch.Tensor]) -> tuple[dict[str, torch.Tensor], None]:
        mel, face, y = batch
        model.train()
        if t.augment:
            mel, face = augment_mels(mel, augment), augment_faces(face, augment)
        mel, face, y = mel.to(rt.device), rt.images(face), y.to(rt.device)
        with rt.autocast():
            a, v = model(mel, face)
        loss = cosine_bce(a, v, y)
        opt.zero_grad(set_to_none=True)
        rt.scaler.scale(loss).backward()
        rt.scaler.step(opt)
        rt.scaler.update()
        return {"loss": loss.detach()}, None

    def save(step: int, _sample: None) -> None:
        nonlocal best, best_scores
        scores = evaluate_expert(model, val_data, t.eval_batches, bs, rt)
        log.log(step, scores, split="val")
        is_best = scores["loss"] < best
        best = min(best, scores["loss"])
        best_scores = {**scores, "step": step} if is_best else best_scores
        state = {"step": step, "best": best, "best_scores": best_scores, "optimizer": opt.state_dict(),
                 "rng": rng_state()}
        ckpt.save(mcfg, unwrap(model).state_dict(), state, extra={"val": scores}, best=is_best)

    step = run_steps(train_data, t, rt, step, "train syncnet", log, ckpt, train_step, save,
                     lambda values: {"loss": f"{values['loss']:.3f}"})
    out = run_dir / "model"
    source = ckpt.best_dir if (ckpt.best_dir / "model.safetensors").is_file() else ckpt.last_dir
    save_component(out, KIND_EXPERT, mcfg, load_state_dict(source),
                   extra={"best_val_loss": best, "steps": step, "val": best_scores})
    acc, n_val = best_scores.get("accuracy", math.nan), t.eval_batches * bs
    warnings = []
    if not acc >= CHANCE_WARNING_ACCURACY:
        warnings.append(f"held-out accuracy {acc:.2f} is near chance (0.5): this expert has not learned lip "
                        "sync, and a generator trained with it will not either. Give more video of the person "
                        "(minutes, not seconds), train longer, or use the official lipsync_expert.pth")
    if n_val < MIN_TRUSTED_SAMPLES:
        warnings.append(f"only {n_val} held-out samples per evaluation: too few to tell a learned expert from "
                        "chance; raise train.eval_batches")
    print_summary("lip-sync expert", {
        "model": out, "steps": step, "held-out accuracy (chance 0.5)": acc, "held-out AUC (chance 0.5)":
        best_scores.get("auc", math.nan), "held-out loss (chance 0.693)": best, "best at step":
        best_scores.get("step")}, warnings)
    log.close()
    return out
