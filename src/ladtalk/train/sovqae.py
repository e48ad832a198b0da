"""`ladtalk train sovqae`: train the identity-specific SOVQAE on prepared identity folders.

The driver: run folder, resume, the epoch loop that draws each step's inputs, validation, checkpoints, export.
The step and its loss live in train/sovqae_step.py, the data in train/sovqae_data.py, the codebook upkeep in
train/sovqae_codebook.py.
Data: the train split of each identity's crops, held on the GPU when they fit (else read from the
memory-mapped crops), light on-device jitter. RUN_DIR/checkpoints/{last,best}, RUN_DIR/logs/metrics.jsonl
(+ TensorBoard), and at the end RUN_DIR/model/ (config.json + model.safetensors, kind "sovqae").
Re-running the same command resumes from checkpoints/last. Under torchrun every rank takes its share.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ladtalk.checkpoint import save_component, strict_load
from ladtalk.data.degrade import restoration_training_degradation
from ladtalk.errors import InputError
from ladtalk.io.atomic import check_writable_dir
from ladtalk.losses.codebook import min_code_distance
from ladtalk.models.sovqae import SOVQAEConfig, count_parameters
from ladtalk.presets import load_preset
from ladtalk.train.common import (
    CheckpointManager,
    RunLogger,
    epoch_order,
    eval_mode,
    load_resumable,
    progress,
    rng_state,
    seed_everything,
    set_rng_state,
    setup_runtime,
    unwrap,
)
from ladtalk.train.config import read_config
from ladtalk.train.lipsync_inputs import cached_lipsync_faces
from ladtalk.train.sovqae_codebook import init_codebook_from_data, restart_dead_codes
from ladtalk.train.sovqae_config import SOVQAETrainConfig
from ladtalk.train.sovqae_data import CropStore, jitter, open_identities, random_patches
from ladtalk.train.sovqae_eval import crops_to_images, validate
from ladtalk.train.sovqae_step import build_nets, lr_factor, train_step, wrap_nets

KIND = "sovqae"


def train_sovqae(data_dirs: Sequence[str | os.PathLike] | str | os.PathLike, run_dir: str | os.PathLike,
                 preset: str = "paper-256", overrides: Sequence[str] = (), device: str = "auto",
                 wav2lip_path: str | os.PathLike | None = None, start_from: str | os.PathLike | None = None) -> Path:
    """Train (or resume) a SOVQAE on identity folders; returns RUN_DIR/model (the exported model folder).

    `wav2lip_path`: a lip-sync model whose own faces on the train frames (driven by their own audio) become a
    `train.lipsync_share` of the inputs, with the true frames as targets (beyond the paper): the restorer then
    learns the errors it will really see. Validation adds their PSNR before/after on the held-out frames.
    `start_from`: a checkpoint with its trainer state (another run's checkpoints/last or a kept step_N folder) that
    a new run continues from under its own settings, e.g. variants that share their first steps; ignored once
    RUN_DIR has checkpoints of its own."""
    cfg = load_preset(preset, overrides)
    mcfg = SOVQAEConfig.from_dict(cfg["model"])
    t = read_config(SOVQAETrainConfig, cfg["train"])
    size = mcfg.resolution  # crops of another size are resized to it on the device
    if size % mcfg.downsample_factor:
        raise InputError(f"model.resolution {size} is not a multiple of the factor {mcfg.downsample_factor}")
    patch = t.patch_size  # 0: whole crops at model.resolution (the paper)
    if patch and (patch > size or patch % mcfg.downsample_factor):
        raise InputError(f"train.patch_size {patch} must be at most model.resolution {size} and a multiple of "
                         f"the factor {mcfg.downsample_factor}")
    run_dir = check_writable_dir(run_dir)
    identities = open_identities(data_dirs)
    rt = setup_runtime(device, precision=t.precision, channels_last=t.channels_last)
    seed = t.seed
    seed_everything(seed, rank=rt.rank)
    store = CropStore(identities, rt.device, t.data_on_device, t.holdout_fraction)
    lip_share = t.lipsync_share if wav2lip_path is not None else 0.0
    if wav2lip_path is not None:
        store.attach_lipsync(cached_lipsync_faces(run_dir, identities, store.lipsync_frames(), wav2lip_path,
                                                  store.crop_size, rt.device, rt.amp_dtype))

    nets = build_nets(mcfg, t, rt)
    model, disc, opt_ae, opt_d, lr = nets.model, nets.disc, nets.opt_ae, nets.opt_d, nets.lr
    perceptual_name = nets.perceptual_name
    bs = t.batch_size

    pairs = t.temporal_weight > 0  # each batch: bs/2 frames in the epoch's order, then their neighbours
    draw = bs // 2 if pairs else bs  # frames taken from the epoch's order per step
    steps_per_epoch = len(store) // (draw * rt.world_size)
    if steps_per_epoch == 0:
        raise InputError(f"only {len(store)} training frames for batch size {bs} x {rt.world_size} processes; "
                         "lower train.batch_size")
    total_steps = t.epochs * steps_per_epoch
    if t.max_steps is not None:
        total_steps = min(total_steps, t.max_steps)

    ckpt = CheckpointManager(run_dir / "checkpoints", KIND, is_main=rt.is_main)
    step, best = 0, -math.inf
    resumed, source = ckpt.load_last(), ckpt.last_dir
    if resumed is None and start_from is not None:
        resumed = load_resumable(start_from, KIND, "give a run's checkpoints/last or a step_N kept by train.keep_every")
        source = Path(start_from)
    if resumed is not None:
        strict_load(model, resumed.state_dict, str(source))
        ts = resumed.trainer_state
        strict_load(disc, ts["disc"], f"{source} (discriminator)")
        opt_ae.load_state_dict(ts["opt_ae"])
        opt_d.load_state_dict(ts["opt_d"])
        if rt.scaler is not None and ts.get("scaler"):
            rt.scaler.load_state_dict(ts["scaler"])
        step, best = int(ts["step"]), float(ts["best"])
        set_rng_state(ts["rng"])
    elif t.init_codebook == "data":
        init_codebook_from_data(model, store, size, seed)

    wrap_nets(nets, rt, t.compile)
    log = RunLogger(run_dir / "logs", enabled=rt.is_main)
    if rt.is_main and step == 0:
        log.log(0, {"params": count_parameters(model), "perceptual": perceptual_name, "lr": lr,
                    "precision": rt.precision, "train_frames": len(store), "steps": total_steps,
                    "device": str(rt.device), "world_size": rt.world_size}, split="setup")
    val_split = "holdout" if any(len(idx) for _, idx in store.holdout) else "train"
    val_held = crops_to_images(store.sample(val_split, t.val_frames), rt.device, size)
    val_train = crops_to_images(store.sample("train", t.val_frames), rt.device, size)
    val_lip = None
    if lip_share > 0 and len(store.lip_holdout):
        pick = np.unique(np.linspace(0, len(store.lip_holdout) - 1, t.val_frames).round().astype(int))
        val_lip = (crops_to_images(store.lip_holdout[pick], rt.device, size),
                   crops_to_images(store.truth_holdout[pick], rt.device, size))
    code_counts = torch.zeros(mcfg.n_embed, device=rt.device)
    neighbours = store.neighbours() if pairs else None
    if pairs and store.resident:
        neighbours = torch.as_tensor(neighbours, device=rt.device)

    def save(is_best: bool = False, keep: bool = False) -> None:
        state = {"disc": unwrap(disc).state_dict(), "opt_ae": opt_ae.state_dict(), "opt_d": opt_d.state_dict(),
                 "scaler": rt.scaler.state_dict() if rt.scaler is not None else {}, "step": step,
                 "epoch": step // steps_per_epoch, "best": best, "rng": rng_state()}
        ckpt.save(mcfg, unwrap(model).state_dict(), state, extra={"step": step, "perceptual": perceptual_name},
                  best=is_best, keep_step=step if keep else None)

    def run_validation() -> dict[str, float]:
        nonlocal best
        with eval_mode(model):
            m = validate(unwrap(model), val_held, val_train, rt.amp_dtype, seed=seed, lipsync=val_lip)
        score = m.get("lipsync_psnr_restored", m["restore_psnr_mean"])  # the restorer's real job, when measured
        is_best = score > best
        best = max(best, score)
        log.log(step, m, split="val")
        return {**m, "is_best": is_best}

    start_time, start_step, last_saved = time.monotonic(), step, step
    bar = progress(total_steps, initial=step, desc="train sovqae", disable=not rt.is_main)
    model.train()
    disc.train()
    try:
        order_epoch, order = -1, None
        while step < total_steps:
            epoch, pos = divmod(step, steps_per_epoch)
            if epoch != order_epoch:  # upload the epoch's order once: no host-to-device copy per step
                order_epoch = epoch
                order = epoch_order(len(store), epoch, seed, rt.rank, rt.world_size)
                order = torch.as_tensor(order, device=rt.device) if store.resident else order
            rows = order[pos * draw:(pos + 1) * draw]
            if pairs:
                rows = torch.cat([rows, neighbours[rows]]) if store.resident else \
                    np.concatenate([rows, neighbours[rows]])
            gen = torch.Generator().manual_seed(seed * 1_000_003 + step * 97 + rt.rank)
            x = crops_to_images(store.batch(rows), rt.device, size) * 2 - 1
            lip = crops_to_images(store.lipsync_batch(rows), rt.device, size) * 2 - 1 if lip_share > 0 else None
            if t.augment:  # the same shift and gain for a face and its lip-sync input
                x = jitter(x if lip is None else torch.cat([x, lip], 1), gen, pairs=pairs)
                x, lip = (x, None) if lip is None else x.split(3, 1)
            x = rt.images(x)
            x_in = x
            if t.degrade > 0:  # 0 = the paper: the autoencoder only ever sees clean faces
                x_in = rt.images(restoration_training_degradation((x + 1) / 2, gen, 1 - t.degrade) * 2 - 1)
            use = None
            if lip is not None:
                use = torch.rand(len(x), generator=gen) < lip_share
                if pairs:  # both frames of a pair are lip-sync faces, or neither
                    use = torch.cat([use[:bs // 2], use[:bs // 2]])
                x_in = torch.where(use.to(x.device)[:, None, None, None], rt.images(lip), x_in)
            if patch:
                lower = use.tolist() if use is not None and t.lipsync_patch_lower else None
                x_in, x = random_patches([x_in, x], patch, gen, lower, pairs=pairs)
            for group in opt_ae.param_groups:
                group["lr"] = lr * lr_factor(step, total_steps, t.lr_schedule, t.warmup_steps)
            out = train_step(rt, nets, x_in, x, step, t)
            if t.restart_dead_every:
                flat = out.pop("indices").reshape(-1)
                code_counts.scatter_add_(0, flat, torch.ones_like(flat, dtype=torch.float32))
                if (step + 1) % t.restart_dead_every == 0:
                    restarted = restart_dead_codes(model, code_counts, x_in, gen)
                    if rt.distributed:
                        torch.distributed.broadcast(model.quantize.embedding.weight.data, 0)
                    out["restarted_codes"] = torch.tensor(float(restarted))
                    code_counts.zero_()
            out.pop("indices", None)
            step += 1
            bar.update(1)

            if step % t.log_every == 0 or step == total_steps:
                values = {k: float(v.detach()) for k, v in out.items()}
                values.update(d_C=float(min_code_distance(model.quantize.embedding.weight.detach())),
                              epoch=epoch, lr=opt_ae.param_groups[0]["lr"],
                              images_per_s=(step - start_step) * bs * rt.world_size
                              / max(time.monotonic() - start_time, 1e-9))
                log.log(step, rt.mean_across_ranks(values))
                bar.set_postfix(l2=f"{values['l2']:.4f}", d_C=f"{values['d_C']:.3f}", refresh=False)
            is_best = False
            if rt.is_main and (step % t.val_every == 0 or step == total_steps):
                is_best = run_validation()["is_best"]
            out_of_time = False
            if t.max_minutes is not None and step % t.log_every == 0:
                # decided jointly so that all ranks stop at the same step
                late = float(time.monotonic() - start_time > 60 * t.max_minutes)
                out_of_time = rt.mean_across_ranks({"late": late})["late"] > 0
            # not per epoch: an identity's epoch is ~100 steps, and the batch order resumes at any step anyway
            keep = t.keep_every > 0 and step % t.keep_every == 0
            periodic = step % t.checkpoint_every == 0 or step == total_steps or out_of_time or keep
            if periodic or is_best:
                save(is_best, keep)  # rank 0 only
                last_saved = step
            if periodic:
                rt.barrier()
            if out_of_time:
                break
    except KeyboardInterrupt:
        if step != last_saved:
            save()
        raise
    finally:
        bar.close()
        log.close()

    model_dir = run_dir / "model"
    if rt.is_main:
        with eval_mode(model):
            final = validate(unwrap(model), val_held, val_train, rt.amp_dtype, seed=seed, lipsync=val_lip)
        save_component(model_dir, KIND, mcfg, unwrap(model).state_dict(),
                       extra={"step": step, "perceptual": perceptual_name, "preset": preset,
                              "train": dataclasses.asdict(t), "identities": [str(i.dir) for i in identities],
                              "validation": final, "validation_split": val_split, "crop_size": store.crop_size,
                              "crop_geometry": identities[0].crop_geometry()})
    rt.barrier()
    rt.close()
    return model_dir

