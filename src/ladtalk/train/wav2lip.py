"""`ladtalk train wav2lip`: the Wav2Lip generator (optionally with the visual-quality GAN) on identity folders
or LRS2-style roots, supervised by a frozen lip-sync expert. Official recipe (hq_)wav2lip_train.py: batch 16, Adam
lr 1e-4;
    loss = (1 - w) * L1(g, gt) + w * sync                                   (no GAN)
    loss = w * sync + 0.07 * BCE(D(g), 1) + (1 - w - 0.07) * L1(g, gt)      (GAN, Adam betas (0.5, 0.999))
w = 0 until an evaluation's sync loss drops below 0.75, then 0.01 (0.03 with the GAN), a switch kept in the
checkpoint (the original forgets it on resume). D: BCE(D(gt), 1) + BCE(D(g.detach()), 0). The expert's BatchNorm
stays in training mode as in the original (`expert_bn: eval` freezes it). Writes RUN_DIR/checkpoints/{last,best},
logs, samples/*.png and model."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ladtalk.checkpoint import load_state_dict, save_component, strict_load
from ladtalk.data.lipsync import GeneratorSamples, find_clips, usable
from ladtalk.errors import InputError
from ladtalk.io.atomic import atomic_path, check_writable_dir
from ladtalk.io.guard import refuse_output_over_inputs
from ladtalk.lipsync_weights import KIND_DISC, KIND_WAV2LIP, load_syncnet_expert, load_wav2lip
from ladtalk.losses.lipsync import bce_prob, expert_sync_loss
from ladtalk.models.wav2lip import Wav2Lip, Wav2LipConfig, Wav2LipQualityDiscriminator
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
from ladtalk.train.config import check_positive, read_config
from ladtalk.train.lipsync_common import LipSyncTrainConfig, loader, run_steps


@dataclass(frozen=True, kw_only=True)
class Wav2LipTrainConfig(LipSyncTrainConfig):
    """The `train` map of the generator's presets (configs/wav2lip*.yaml; the official values in wav2lip.yaml)."""

    adam_betas: tuple[float, float]
    adam_betas_gan: tuple[float, float]  # for G and D when `gan`
    gan: bool                            # add the visual-quality discriminator (hq_wav2lip_train.py)
    disc_wt: float
    disc_lr: float
    syncnet_wt: float                    # w once the sync loss is switched on (no GAN)
    syncnet_wt_gan: float                # w once switched on (GAN)
    sync_threshold: float                # switch on when an evaluation's sync loss drops below this
    expert_bn: Literal["train", "eval"]  # the expert's BatchNorm mode; the original leaves it training
    mel_offset_frames: int               # per-frame mels start this many frames early (the original: -1)

    def __post_init__(self):
        super().__post_init__()
        check_positive(self, "disc_lr")


def evaluate_generator(gen, expert, data: GeneratorSamples, batches: int, batch_size: int, rt) -> dict[str, float]:
    """Mean L1 and expert sync loss over fixed held-out batches (generator in eval mode, expert as in training)."""
    l1 = sync = 0.0
    with eval_mode(gen):
        for batch in loader(data, 0, batches, batch_size, 0, False):
            x, indiv, mel, gt = (v.to(rt.device, non_blocking=True) for v in batch)
            with rt.autocast():
                g = gen(indiv, x)
                sync += float(expert_sync_loss(expert, mel, g))
            l1 += float(F.l1_loss(g.float(), gt))
    return {"l1": l1 / batches, "sync": sync / batches}


def save_samples(path: Path, x: torch.Tensor, g: torch.Tensor, gt: torch.Tensor, max_items: int = 4) -> None:
    """A PNG collage: rows = items, per frame [reference | generated | ground truth] (BGR [0,1] tensors)."""
    def tiles(v: torch.Tensor) -> np.ndarray:  # (B,3,T,S,S) -> (B, S, T*S, 3)
        v = v[:max_items].detach().float().clamp(0, 1).cpu().numpy()
        return v.transpose(0, 3, 2, 4, 1).reshape(v.shape[0], v.shape[3], -1, 3)
    img = np.concatenate([np.concatenate([a, b, c], axis=1) for a, b, c in zip(tiles(x[:, 3:]), tiles(g), tiles(gt))])
    with atomic_path(path) as tmp:
        cv2.imwrite(str(tmp), (img * 255).round().astype(np.uint8))


def train_wav2lip(data_dirs: Sequence[str | os.PathLike], run_dir: str | os.PathLike,
                  syncnet_path: str | os.PathLike, init_path: str | os.PathLike | None = None,
                  preset: str = "wav2lip", overrides: Sequence[str] = (), device: str = "auto") -> Path:
    """Train (or fine-tune from `init_path`) the generator; returns RUN_DIR/model (kind 'wav2lip')."""
    refuse_output_over_inputs(run_dir, [("training data", d) for d in data_dirs] + [
        ("--syncnet weights", syncnet_path), ("--init weights", init_path)], folder=True)
    cfg = load_preset(preset, overrides)
    t = read_config(Wav2LipTrainConfig, cfg["train"])
    seed_everything(t.seed)  # before the generator is built, so train.seed decides its initial weights
    # every input is checked before RUN_DIR is created, so a bad argument leaves nothing behind
    gen = load_wav2lip(init_path, "cpu").train() if init_path else Wav2Lip(Wav2LipConfig(**cfg["model"]))
    gcfg: Wav2LipConfig = gen.config
    expert = load_syncnet_expert(syncnet_path, "cpu")
    if expert.config.img_size != gcfg.img_size:
        raise InputError(f"the expert sees {expert.config.img_size}px faces but the generator makes "
                         f"{gcfg.img_size}px faces; train the expert with the same img_size")
    train_clips = find_clips(data_dirs, gcfg.img_size, "train")
    val_clips = [c for c in find_clips(data_dirs, gcfg.img_size, "val") if usable(c)]
    val_clips = val_clips or train_clips  # a short identity's test split may hold no 5-frame window
    bs, max_steps, use_gan = t.batch_size, t.max_steps, t.gan
    train_data = GeneratorSamples(train_clips, 2**62, seed=t.seed, mel_offset_frames=t.mel_offset_frames)
    val_data = GeneratorSamples(val_clips, 2**62, seed=t.seed + 7919, mel_offset_frames=t.mel_offset_frames)

    run_dir = check_writable_dir(run_dir)
    rt = setup_runtime(device, precision=t.precision)
    expert = expert.to(rt.device).requires_grad_(False)
    expert.train(t.expert_bn == "train")  # the original never switches the expert to eval()

    gen = rt.prepare(gen)
    betas = t.adam_betas_gan if use_gan else t.adam_betas
    opt = torch.optim.Adam(gen.parameters(), lr=t.lr, betas=betas)
    disc = opt_d = None
    if use_gan:
        disc = rt.prepare(Wav2LipQualityDiscriminator(gcfg))
        opt_d = torch.optim.Adam(disc.parameters(), lr=t.disc_lr, betas=betas)

    ckpt = CheckpointManager(run_dir / "checkpoints", KIND_WAV2LIP)
    dckpt = CheckpointManager(run_dir / "checkpoints" / "disc", KIND_DISC)
    step, best, sync_on, sync_on_step, last_scores = 0, math.inf, False, None, {}
    resumed = ckpt.load_last()
    if resumed is not None:
        ts = resumed.trainer_state
        strict_load(gen, resumed.state_dict, str(ckpt.last_dir))
        opt.load_state_dict(ts["optimizer"])
        step, best, sync_on = int(ts["step"]), float(ts["best"]), bool(ts["sync_on"])
        sync_on_step, last_scores = ts.get("sync_on_step"), ts.get("last_scores", {})
        if use_gan:
            dres = dckpt.load_last()
            if dres is None or "optimizer_d" not in ts:
                raise InputError(f"{run_dir} was trained without the GAN; resume with the same settings")
            strict_load(disc, dres.state_dict, str(dckpt.last_dir))
            opt_d.load_state_dict(ts["optimizer_d"])
        set_rng_state(ts["rng"])

    disc_wt = t.disc_wt if use_gan else 0.0
    sync_wt_on = t.syncnet_wt_gan if use_gan else t.syncnet_wt
    log = RunLogger(run_dir / "logs")

    def train_step(batch: list[torch.Tensor]) -> tuple[dict[str, torch.Tensor | float], tuple[torch.Tensor, ...]]:
        x, indiv, mel, gt = (v.to(rt.device, non_blocking=True) for v in batch)
        gen.train()
        w = sync_wt_on if sync_on else 0.0
        with rt.autocast():
            g = gen(indiv, x)
            sync = expert_sync_loss(expert, mel, g) if w > 0 else torch.zeros((), device=rt.device)
            # D's weights get no update from this term (its grads are cleared before D's own step)
            adv = bce_prob(disc(g), real=True) if use_gan else torch.zeros((), device=rt.device)
        l1 = F.l1_loss(g.float(), gt)
        loss = w * sync + disc_wt * adv + (1.0 - w - disc_wt) * l1
        opt.zero_grad(set_to_none=True)
        rt.scaler.scale(loss).backward()
        rt.scaler.step(opt)
        values = {"loss": loss.detach(), "l1": l1.detach(), "sync": sync.detach(), "syncnet_wt": w}
        if use_gan:
            with rt.autocast():
                pred = disc(torch.cat([gt, g.detach()]))  # (T*2B, 1): real items first, time-major per half
            real_pred, fake_pred = pred.reshape(gt.shape[2], 2, -1).unbind(1)
            d_loss = bce_prob(real_pred, real=True) + bce_prob(fake_pred, real=False)
            opt_d.zero_grad(set_to_none=True)
            rt.scaler.scale(d_loss).backward()
            rt.scaler.step(opt_d)
            values.update(adv=adv.detach(), disc=d_loss.detach())
        rt.scaler.update()
        return values, (x, g, gt)

    def save(step: int, sample: tuple[torch.Tensor, ...] | None) -> None:
        nonlocal best, sync_on, sync_on_step, last_scores
        scores = last_scores = evaluate_generator(gen, expert, val_data, t.eval_batches, bs, rt)
        if scores["sync"] < t.sync_threshold and not sync_on:
            sync_on, sync_on_step = True, step
        log.log(step, {**scores, "syncnet_wt": sync_wt_on if sync_on else 0.0}, split="val")
        # the official scripts keep every checkpoint; here "best" = lowest eval L1 + sync
        score = scores["l1"] + scores["sync"]
        is_best = score < best
        best = min(best, score)
        state = {"step": step, "best": best, "sync_on": sync_on, "sync_on_step": sync_on_step,
                 "last_scores": scores, "optimizer": opt.state_dict(), "rng": rng_state()}
        if use_gan:
            state["optimizer_d"] = opt_d.state_dict()
            dckpt.save(gcfg, unwrap(disc).state_dict(), {"step": step})
        ckpt.save(gcfg, unwrap(gen).state_dict(), state, extra={"val": scores}, best=is_best)
        if sample is not None:
            save_samples(run_dir / "samples" / f"step_{step:09d}.png", *sample)

    step = run_steps(train_data, t, rt, step, "train wav2lip", log, ckpt, train_step, save, lambda values: {
        "l1": f"{values['l1']:.4f}", "sync": f"{values['sync']:.3f}", "w": values["syncnet_wt"]})
    out = run_dir / "model"
    # the last weights: the sync loss only enters late, so an early "best" may lack lip sync
    save_component(out, KIND_WAV2LIP, gcfg, load_state_dict(ckpt.last_dir),
                   extra={"steps": step, "sync_loss_on": sync_on, "sync_loss_on_step": sync_on_step,
                          "val": last_scores, "gan": use_gan, "mel_offset_frames": t.mel_offset_frames,
                          # what generate must feed it: the identity's square crops, or detector-box faces
                          "input_geometry": "square_crop" if all((Path(d) / "identity.json").is_file()
                                                                 for d in data_dirs) else "official"})
    warnings = []
    if not sync_on:
        held_out = last_scores.get("sync", math.nan)
        warnings.append(f"the sync loss never switched on (held-out expert loss {held_out:.3f} stayed above "
                        f"{t.sync_threshold}): this generator learned from L1 alone and its mouths "
                        "will follow the audio only loosely; check the expert's held-out accuracy first")
    elif sync_on_step > max_steps // 2:
        warnings.append(f"the sync loss switched on late (step {sync_on_step} of {max_steps}): train longer")
    print_summary("lip-sync generator", {
        "model": out, "steps": step, "held-out L1": last_scores.get("l1", math.nan), "held-out sync loss (expert)":
        last_scores.get("sync", math.nan), "sync loss switched on at step": sync_on_step or "never"}, warnings)
    log.close()
    return out
