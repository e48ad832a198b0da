"""`ladtalk train sovqae`: the identity-specific SOVQAE, one plain loop (its pieces: docs/DESIGN.md, "How training
is organised"). Writes RUN_DIR/checkpoints/{last,best}, RUN_DIR/logs and RUN_DIR/model; re-running resumes."""

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
from ladtalk.errors import InputError
from ladtalk.io.atomic import check_writable_dir
from ladtalk.io.guard import refuse_output_over_inputs
from ladtalk.losses.codebook import min_code_distance
from ladtalk.models.sovqae import SOVQAEConfig, count_parameters
from ladtalk.presets import load_preset
from ladtalk.pretrained import resolve as resolve_builtin
from ladtalk.pretrained import restorer_overrides
from ladtalk.train.common import (
    CheckpointManager,
    RunLogger,
    Runtime,
    choose_preset,
    eval_mode,
    load_resumable,
    print_summary,
    progress,
    rng_state,
    seed_everything,
    set_rng_state,
    setup_runtime,
    unwrap,
)
from ladtalk.train.config import read_config
from ladtalk.train.lipsync_inputs import cached_lipsync_faces
from ladtalk.train.sovqae_config import SOVQAETrainConfig
from ladtalk.train.sovqae_data import Batches, CropStore, DeadCodes, init_codebook_from_data, open_identities
from ladtalk.train.sovqae_eval import crops_to_images, validate
from ladtalk.train.sovqae_step import Nets, build_nets, lr_factor, train_step

KIND = "sovqae"
# the validation figures the summaries show (train person's too), by their names in the measurements
FIGURES = {"recon_psnr": "clean faces back (PSNR dB)", "restore_psnr_mean": "degraded faces restored (PSNR dB)",
           "lipsync_psnr_input": "lip-sync faces as given (PSNR dB)",
           "lipsync_psnr_restored": "lip-sync faces restored (PSNR dB)"}


def train_sovqae(data_dirs: Sequence[str | os.PathLike] | str | os.PathLike, run_dir: str | os.PathLike,
                 preset: str | None = None, overrides: Sequence[str] = (), device: str = "auto",
                 wav2lip_path: str | os.PathLike | None = None, start_from: str | os.PathLike | None = None,
                 allow_gpu_preset_on_cpu: bool = False) -> Path:
    """Train (or resume) a SOVQAE on identity folders; returns RUN_DIR/model (the exported model folder).

    `preset`: a preset name or YAML path; by default restore-cpu on a CPU (the restorer this project trains on a
    CPU) and paper-256 on a GPU (the paper's recipe). `wav2lip_path`: a lip-sync model whose own faces on the train
    frames (driven by their own audio) become a `train.lipsync_share` of the inputs, with the true frames as
    targets (beyond the paper): the restorer then learns the errors it will really see (behind a shipped base only
    those, on whole-face patches: pretrained.restorer_overrides). Validation adds their PSNR
    before/after on the held-out frames. `start_from`: a checkpoint with its trainer state (another run's
    checkpoints/last or a kept step_N folder) that a new run continues from under its own settings, e.g. variants
    that share their first steps; ignored once RUN_DIR has checkpoints of its own. `allow_gpu_preset_on_cpu`: run
    paper-256 / paper-512 on a CPU anyway (days of work)."""
    preset = choose_preset(KIND, preset, device, allow_gpu_preset_on_cpu)
    # the shipped base's overrides first, so that the caller's own --set wins
    mcfg, t = read_sovqae_preset(preset, [*restorer_overrides(wav2lip_path, preset), *overrides])
    identities = open_identities(data_dirs)
    refuse_output_over_inputs(run_dir, [("training data", i.dir) for i in identities]
                              + [("--wav2lip weights", wav2lip_path), ("--start-from checkpoint", start_from)],
                              folder=True)
    run_dir = check_writable_dir(run_dir)
    rt = setup_runtime(device, precision=t.precision, channels_last=t.channels_last)
    seed_everything(t.seed)
    store, lip_share = open_store(identities, t, rt, run_dir, wav2lip_path)
    steps_per_epoch, total_steps = plan_steps(len(store), t)
    nets = build_nets(mcfg, t, rt)
    ckpt = CheckpointManager(run_dir / "checkpoints", KIND)
    step, best = resume(nets, ckpt, start_from, rt)
    if step == 0 and best == -math.inf and t.init_codebook == "data":
        init_codebook_from_data(nets.model, store, mcfg.resolution, t.seed)
    if t.compile:  # after any resume load
        nets.run_model = torch.compile(nets.model)
    log = RunLogger(run_dir / "logs")
    if step == 0:
        log.log(0, {"params": count_parameters(nets.model), "perceptual": nets.perceptual_name, "lr": nets.lr,
                    "precision": rt.precision, "train_frames": len(store), "steps": total_steps,
                    "device": str(rt.device)}, split="setup")
    val = Validation(store, t, rt, mcfg.resolution, lip_share, best)
    batches = Batches(store, t, rt, mcfg.resolution, lip_share, steps_per_epoch)
    dead_codes = DeadCodes(mcfg.n_embed, t.restart_dead_every, rt.device)
    start_time, start_step, last_saved = time.monotonic(), step, step
    end = math.inf if t.max_minutes is None else start_time + 60.0 * t.max_minutes  # checked every step
    bar = progress(total_steps, initial=step, desc="train sovqae")
    try:
        while step < total_steps:
            gen = torch.Generator().manual_seed(t.seed * 1_000_003 + step * 97)
            x_in, x = batches(step, gen)
            for group in nets.opt_ae.param_groups:
                group["lr"] = nets.lr * lr_factor(step, total_steps, t.lr_schedule, t.warmup_steps)
            out = train_step(rt, nets, x_in, x, step, t)
            out.update(dead_codes.update(nets.model, out.pop("indices"), x_in, step, gen))
            step += 1
            bar.update(1)
            if step % t.log_every == 0 or step == total_steps:
                seconds = max(time.monotonic() - start_time, 1e-9)
                values = {k: float(v.detach()) for k, v in out.items()}
                values.update(d_C=float(min_code_distance(nets.model.quantize.embedding.weight.detach())),
                              epoch=step // steps_per_epoch, lr=nets.opt_ae.param_groups[0]["lr"],
                              images_per_s=(step - start_step) * t.batch_size / seconds)
                log.log(step, values)
                bar.set_postfix(l2=f"{values['l2']:.4f}", d_C=f"{values['d_C']:.3f}", refresh=False)
            is_best = (step % t.val_every == 0 or step == total_steps) and val.run(nets, log, step)
            stop = step == total_steps or time.monotonic() >= end
            keep = t.keep_every > 0 and step % t.keep_every == 0
            if is_best or keep or stop or step % t.checkpoint_every == 0:
                save(ckpt, nets, rt, mcfg, step, steps_per_epoch, val.best, is_best, keep)
                last_saved = step
            if stop:
                break
    except KeyboardInterrupt:
        if step != last_saved:
            save(ckpt, nets, rt, mcfg, step, steps_per_epoch, val.best)
        raise
    finally:
        bar.close()
        log.close()
    return export(run_dir, nets, mcfg, t, val, step, preset, identities, store)


def read_sovqae_preset(preset: str, overrides: Sequence[str] = ()) -> tuple[SOVQAEConfig, SOVQAETrainConfig]:
    """The model and train configs of a preset, checked before any work."""
    cfg = load_preset(preset, overrides)
    mcfg = SOVQAEConfig.from_dict(cfg["model"])
    t = read_config(SOVQAETrainConfig, cfg["train"])
    size = mcfg.resolution  # crops of another size are resized to it on the device
    if size % mcfg.downsample_factor:
        raise InputError(f"model.resolution {size} is not a multiple of the factor {mcfg.downsample_factor}")
    if t.patch_size and (t.patch_size > size or t.patch_size % mcfg.downsample_factor):
        raise InputError(f"train.patch_size {t.patch_size} must be at most model.resolution {size} and a multiple "
                         f"of the factor {mcfg.downsample_factor}")
    return mcfg, t


def open_store(identities, t: SOVQAETrainConfig, rt: Runtime, run_dir: Path,
               wav2lip_path: str | os.PathLike | None) -> tuple[CropStore, float]:
    """The training crops, with the lip-sync model's faces of them when one is given; and their share."""
    store = CropStore(identities, rt.device, t.data_on_device, t.holdout_fraction)
    if wav2lip_path is None:
        return store, 0.0
    wav2lip_path = resolve_builtin(wav2lip_path, "wav2lip")  # 'builtin': the shipped base's generator
    store.attach_lipsync(cached_lipsync_faces(run_dir, identities, store.lipsync_frames(), wav2lip_path,
                                              store.crop_size, rt.device, rt.amp_dtype))
    return store, t.lipsync_share


def plan_steps(frames: int, t: SOVQAETrainConfig) -> tuple[int, int]:
    """Steps per epoch and in all (the preset's epochs, capped by train.max_steps)."""
    steps_per_epoch = frames // t.batch_size
    if steps_per_epoch == 0:
        raise InputError(f"only {frames} training frames for batch size {t.batch_size}; lower train.batch_size")
    return steps_per_epoch, int(min(t.epochs * steps_per_epoch, t.max_steps or math.inf))


def resume(nets: Nets, ckpt: CheckpointManager, start_from: str | os.PathLike | None,
           rt: Runtime) -> tuple[int, float]:
    """Load the run's last checkpoint (or `start_from`'s) into the nets; the step and best score to go on from
    ((0, -inf) for a new run)."""
    resumed, source = ckpt.load_last(), ckpt.last_dir
    if resumed is None and start_from is not None:
        resumed = load_resumable(start_from, KIND, "give a run's checkpoints/last or a step_N kept by train.keep_every")
        source = Path(start_from)
    if resumed is None:
        return 0, -math.inf
    strict_load(nets.model, resumed.state_dict, str(source))
    ts = resumed.trainer_state
    strict_load(nets.disc, ts["disc"], f"{source} (discriminator)")
    nets.opt_ae.load_state_dict(ts["opt_ae"])
    nets.opt_d.load_state_dict(ts["opt_d"])
    if ts.get("scaler"):  # an fp16 run's (a disabled scaler's is empty)
        rt.scaler.load_state_dict(ts["scaler"])
    set_rng_state(ts["rng"])
    return int(ts["step"]), float(ts["best"])


class Validation:
    """Fixed held-out (and training) faces scored every `val_every` steps; the best score picks checkpoints/best.
    The score is the restorer's real job when measured (its PSNR on the lip-sync model's held-out faces), else
    the mean restoration PSNR over the standard degradations."""

    def __init__(self, store: CropStore, t: SOVQAETrainConfig, rt: Runtime, size: int, lip_share: float,
                 best: float):
        self.split = "holdout" if any(len(idx) for _, idx in store.holdout) else "train"
        self.held = crops_to_images(store.sample(self.split, t.val_frames), rt.device, size)
        self.train = crops_to_images(store.sample("train", t.val_frames), rt.device, size)
        self.lip = None
        if lip_share > 0 and len(store.lip_holdout):  # the lip-sync model's faces of `held`'s frames, and those
            pick = np.unique(np.linspace(0, len(store.lip_holdout) - 1, t.val_frames).round().astype(int))
            self.lip = (crops_to_images(store.lip_holdout[pick], rt.device, size), self.held)
        self.amp_dtype, self.seed, self.best, self.best_step = rt.amp_dtype, t.seed, best, None

    def measure(self, nets: Nets) -> dict[str, float]:
        with eval_mode(nets.model):
            return validate(unwrap(nets.model), self.held, self.train, self.amp_dtype, seed=self.seed,
                            lipsync=self.lip)

    @staticmethod
    def score(m: dict[str, float]) -> float:
        return m.get("lipsync_psnr_restored", m["restore_psnr_mean"])

    def run(self, nets: Nets, log: RunLogger, step: int) -> bool:
        """Validate, log; whether this is the best score so far."""
        m = self.measure(nets)
        log.log(step, m, split="val")
        if self.score(m) <= self.best:
            return False
        self.best, self.best_step = self.score(m), step
        return True


def save(ckpt: CheckpointManager, nets: Nets, rt: Runtime, mcfg: SOVQAEConfig, step: int, steps_per_epoch: int,
         best: float, is_best: bool = False, keep: bool = False) -> None:
    state = {"disc": unwrap(nets.disc).state_dict(), "opt_ae": nets.opt_ae.state_dict(),
             "opt_d": nets.opt_d.state_dict(), "scaler": rt.scaler.state_dict(),
             "step": step, "epoch": step // steps_per_epoch, "best": best, "rng": rng_state()}
    ckpt.save(mcfg, unwrap(nets.model).state_dict(), state, extra={"step": step, "perceptual": nets.perceptual_name},
              best=is_best, keep_step=step if keep else None)


def export(run_dir: Path, nets: Nets, mcfg: SOVQAEConfig, t: SOVQAETrainConfig, val: Validation,
           step: int, preset: str, identities, store: CropStore) -> Path:
    """RUN_DIR/model with its final validation, and the summary (paths, figures, warnings) printed."""
    final = val.measure(nets)
    model_dir = run_dir / "model"
    save_component(model_dir, KIND, mcfg, unwrap(nets.model).state_dict(),
                   extra={"step": step, "perceptual": nets.perceptual_name, "preset": preset,
                          "train": dataclasses.asdict(t), "identities": [str(i.dir) for i in identities],
                          "validation": final, "validation_split": val.split, "crop_size": store.crop_size,
                          "crop_geometry": identities[0].crop_geometry()})
    print_summary("SOVQAE trained", *summary_of(model_dir, final, val.best, val.best_step, step, run_dir, t.disc_start))
    return model_dir


def summary_of(model_dir: Path, final: dict[str, float], best: float, best_step: int | None, step: int,
               run_dir: Path, gan_start: int | None = None) -> tuple[dict, list[str]]:
    """The summary's figures and its plain warnings: a final validation worse than the best one (up to 1 dB less
    after a best from before the patch-GAN phase, which trades some PSNR for sharper detail by design, is a figure,
    not a warning), a restorer that makes the lip-sync faces worse than it was given them."""
    figures = {"model": str(model_dir), "steps": step, **{name: final[k] for k, name in FIGURES.items() if k in final}}
    warnings = []
    before, after = final.get("lipsync_psnr_input"), final.get("lipsync_psnr_restored")
    if after is not None and after < before:
        warnings.append(f"the restorer makes the lip-sync model's held-out faces worse ({before:.2f} -> "
                        f"{after:.2f} dB): train longer, or check that --wav2lip is the model you generate with")
    score = Validation.score(final)
    if best_step is not None and score < best - 0.1:
        if gan_start is not None and best_step <= gan_start < step and score >= best - 1.0:
            figures[f"before the patch-GAN phase (PSNR dB, step {best_step}; checkpoints/best)"] = best
        else:
            warnings.append(f"validation got worse: {score:.2f} dB at the end against {best:.2f} dB at step "
                            f"{best_step}; {run_dir / 'checkpoints' / 'best'} holds the better weights")
    return figures, warnings
