"""The `train` map of the SOVQAE presets (configs/paper-*.yaml, demo, tiny, restore-cpu) as a frozen dataclass,
read once by `train_sovqae` through `train.config.read_config`. Fields with defaults are the restorer's additions
beyond the paper (restore-cpu.yaml); their defaults are the paper's behaviour."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ladtalk.errors import InputError
from ladtalk.runtime import PRECISIONS
from ladtalk.train.config import check_positive


@dataclass(frozen=True, kw_only=True)
class SOVQAETrainConfig:
    seed: int
    batch_size: int
    base_lr: float                     # taming's scaling on one device: lr = base_lr * batch_size
    adam_betas: tuple[float, float]
    epochs: int                        # passes over the train split
    max_steps: int | None = None       # stop earlier after this many optimiser steps (None: no limit)
    max_minutes: float | None = None   # stop earlier after this wall time and export (None: no limit)
    codebook_weight: float             # weight of the VQ loss
    perceptual: Literal["auto", "lpips_vgg", "stlpips_vgg", "none"]
    perceptual_weight: float           # 0 turns the perceptual net off whatever `perceptual` says
    disc_start: int                    # optimiser step at which the GAN terms (and the discriminator) switch on
    disc_weight: float
    disc_loss: Literal["hinge", "vanilla"]
    disc_ndf: int
    disc_layers: int
    reg_weight: float                  # lambda of L_reg = |d_C - theta|
    reg_theta: float
    reg_mode: Literal["min", "mean"]   # min: the paper; mean: its ablation
    init_codebook: Literal["uniform", "data"] = "uniform"  # taming's +-1/N, or latents of training images
    restart_dead_every: int = 0        # steps after which unused codes move to batch latents (0: never)
    degrade: float = 0.0               # share of inputs degraded (0: the paper, clean inputs only)
    lipsync_share: float = 0.5         # with a lip-sync model: share of inputs that are its faces
    lipsync_patch_lower: bool = False  # their patches hold the lower face (all the lip-sync model changed)
    patch_size: int = 0                # train on random patches of this size (0: whole crops, the paper)
    lr_schedule: Literal["constant", "cosine"] = "constant"  # taming's constant rate, or warm-up + cosine
    warmup_steps: int = 0              # of the cosine schedule
    holdout_fraction: float = 0.05     # end of each train split kept for validation and checkpoints/best
    augment: bool                      # light on-device jitter (shifts and brightness)
    precision: Literal[PRECISIONS]
    channels_last: bool
    compile: bool
    data_on_device: bool | Literal["auto"]  # keep all crops on the GPU ("auto": when they fit)
    val_every: int                     # steps between validations (also at the end)
    val_frames: int                    # frames per validation
    checkpoint_every: int              # steps between checkpoints (also at the end)
    keep_every: int = 0                # >0: also keep a resumable checkpoints/step_NNNNNNN every this many steps
    log_every: int

    def __post_init__(self):
        check_positive(self, "batch_size", "base_lr", "epochs", "disc_ndf", "disc_layers", "val_every",
                       "val_frames", "checkpoint_every", "log_every")
        for name in ("restart_dead_every", "patch_size", "warmup_steps", "keep_every"):
            if getattr(self, name) < 0:
                raise InputError(f"train.{name} must be at least 0, got {getattr(self, name)}")
        for name in ("degrade", "lipsync_share", "holdout_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise InputError(f"train.{name} must be between 0 and 1, got {getattr(self, name)}")

