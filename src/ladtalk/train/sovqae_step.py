"""One SOVQAE optimisation step: the paper's objective on taming's VQGAN recipe (LaDTalk Sec. 3.2, Eq. for L_SOVQAE)
    L = rec(x, x_rec) + w_p * perceptual(x, x_rec) + lambda_adv * g_adv + w_q * L_vq + w_reg * |d_C - theta|
with rec the paper's L2 and lambda_adv taming's adaptive weight, active from `disc_start` (the discriminator trains
from then too); and the learning-rate schedule."""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from ladtalk.losses.codebook import codebook_regularizer
from ladtalk.losses.gan import adaptive_weight, d_loss, generator_loss
from ladtalk.losses.perceptual import build_perceptual
from ladtalk.models.discriminator import PatchDiscriminator
from ladtalk.models.sovqae import SOVQAE, SOVQAEConfig
from ladtalk.train.common import Runtime
from ladtalk.train.sovqae_config import SOVQAETrainConfig


@dataclasses.dataclass
class Nets:
    """Everything one training step touches (run_model: the model, or its torch.compile wrapper)."""

    model: SOVQAE
    disc: PatchDiscriminator
    run_model: torch.nn.Module
    perceptual: torch.nn.Module | None
    perceptual_name: str
    opt_ae: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    lr: float


def build_nets(mcfg: SOVQAEConfig, t: SOVQAETrainConfig, rt: Runtime) -> Nets:
    """Model, discriminator, frozen perceptual net and the two Adam optimisers (lr = base_lr * batch)."""
    model = rt.prepare(SOVQAE(mcfg))
    disc = rt.prepare(PatchDiscriminator(t.disc_ndf, t.disc_layers))
    perceptual, perceptual_name = build_perceptual(t.perceptual if t.perceptual_weight > 0 else "none", rt.device)
    if perceptual is not None and rt.channels_last:
        perceptual = perceptual.to(memory_format=torch.channels_last)
    lr = t.base_lr * t.batch_size
    return Nets(model, disc, model, perceptual, perceptual_name,
                torch.optim.Adam(model.parameters(), lr=lr, betas=t.adam_betas),
                torch.optim.Adam(disc.parameters(), lr=lr, betas=t.adam_betas), lr)


def train_step(rt: Runtime, nets: Nets, x_in: torch.Tensor, x: torch.Tensor, step: int,
               t: SOVQAETrainConfig) -> dict[str, torch.Tensor]:
    """One optimisation step: the autoencoder maps x_in (x itself, or a degraded copy) to the clean x, both
    (B,3,H,W) in [-1,1]; then the discriminator once the GAN is on."""
    gan_on = float(step >= t.disc_start)  # neither G's adversarial term nor D trains before disc_start
    zero = torch.zeros((), device=rt.device)
    with rt.autocast():
        recon, vq, info = nets.run_model(x_in)
        rec = F.mse_loss(recon.float(), x.float())  # LaDTalk's L2, where taming uses L1
        nll, p_loss = rec, zero
        if nets.perceptual is not None:
            p_loss = nets.perceptual(recon, x).mean()
            nll = nll + t.perceptual_weight * p_loss
    # the regulariser's pairwise distances are computed in full precision outside autocast (losses/codebook.py)
    codes = nets.model.quantize.embedding.weight
    reg = codebook_regularizer(codes, t.reg_theta, t.reg_mode)
    total = nll + t.codebook_weight * vq + t.reg_weight * reg
    g_loss = lam = zero
    if gan_on:
        with rt.autocast():
            g_loss = generator_loss(nets.disc(recon))
        # gradients of the scaled losses: under fp16 the unscaled L2 gradient underflows (the ratio is scale-free)
        lam = adaptive_weight(rt.scaler.scale(nll), rt.scaler.scale(g_loss), nets.model.decoder.conv_out.weight,
                              t.disc_weight)
        total = total + lam * gan_on * g_loss
    rt.scaler.scale(total).backward()
    rt.scaler.step(nets.opt_ae)
    nets.opt_ae.zero_grad(set_to_none=True)

    dl = zero
    if gan_on:
        nets.opt_d.zero_grad(set_to_none=True)  # drop what the generator's term left on D
        with rt.autocast():
            # real and fake in separate batches (taming: BatchNorm statistics per set)
            logits_real, logits_fake = nets.disc(x.detach()), nets.disc(recon.detach())
            dl = gan_on * d_loss(logits_real, logits_fake, t.disc_loss)
        rt.scaler.scale(dl).backward()
        rt.scaler.step(nets.opt_d)
        nets.opt_d.zero_grad(set_to_none=True)
    rt.scaler.update()
    return {"loss": total, "l2": rec, "perceptual": p_loss, "vq": vq, "reg": reg,
            "g_loss": g_loss, "d_loss": dl, "usage": info["usage"], "perplexity": info["perplexity"],
            "adaptive_weight": lam, "indices": info["indices"]}


def lr_factor(step: int, total_steps: int, schedule: str, warmup_steps: int) -> float:
    """Learning-rate multiplier: taming's constant rate, or a linear warm-up then a cosine decay to 10%."""
    if schedule == "constant":
        return 1.0
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress_ = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress_)))
