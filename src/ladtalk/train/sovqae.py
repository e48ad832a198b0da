"""`ladtalk train sovqae`: train the identity-specific SOVQAE on prepared identity folders.

Loss per step (the paper's objective on taming's VQGAN recipe):
    L = ||x - x_rec||^2 + w_p * perceptual(x, x_rec) + lambda_adv * g_adv + w_q * L_vq + w_reg * |d_C - theta|
with lambda_adv taming's adaptive weight, active from `disc_start` (the discriminator trains from then too).
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
import torch.nn.functional as F

from ladtalk.checkpoint import save_component, strict_load
from ladtalk.data.degrade import restoration_training_degradation
from ladtalk.data.identity import Identity
from ladtalk.errors import InputError
from ladtalk.io.atomic import check_writable_dir
from ladtalk.losses.codebook import codebook_regularizer, min_code_distance
from ladtalk.losses.gan import adaptive_weight, d_loss, disc_factor, generator_loss
from ladtalk.losses.perceptual import build_perceptual
from ladtalk.losses.vq import edge_l1, reconstruction_l1, reconstruction_l2
from ladtalk.models.discriminator import PatchDiscriminator, PatchDiscriminatorConfig
from ladtalk.models.sovqae import SOVQAE, SOVQAEConfig, count_parameters
from ladtalk.presets import load_preset
from ladtalk.train.common import (
    CheckpointManager,
    RunLogger,
    Runtime,
    epoch_order,
    eval_mode,
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
from ladtalk.train.sovqae_eval import crops_to_images, validate

KIND = "sovqae"


class CropStore:
    """Train/test crops of one or more identities; uint8 rows on the GPU when they fit, else memory-mapped."""

    def __init__(self, identities: Sequence[Identity], device: torch.device, on_device: str = "auto",
                 holdout_fraction: float = 0.0):
        # the last `holdout_fraction` of each train split (a block in time) is never trained on: validation and
        # the choice of checkpoints/best use it, so the test split stays unseen until evaluation
        splits = [(ident, ident.train_indices) for ident in identities]
        cut = [len(idx) - (max(1, round(holdout_fraction * len(idx))) if holdout_fraction > 0 and len(idx) > 1 else 0)
               for _, idx in splits]
        self.sources = [(ident, idx[:c]) for (ident, idx), c in zip(splits, cut)]
        self.holdout = [(ident, idx[c:]) for (ident, idx), c in zip(splits, cut)]
        self.tests = [(ident, ident.test_indices) for ident in identities]
        self.index = np.concatenate([np.stack([np.full(len(idx), k), idx], 1)
                                     for k, (_, idx) in enumerate(self.sources)]).astype(np.int64)
        if len(self.index) == 0:
            raise InputError("the identity folders hold no training frames with a face; check `ladtalk prepare`")
        sizes = {ident.crop_size for ident in identities}
        if len(sizes) != 1:
            raise InputError(f"identity folders have different crop sizes {sorted(sizes)}; prepare them alike")
        self.crop_size = sizes.pop()
        self.device = device
        self._lip, self.lip_holdout = None, np.zeros((0, self.crop_size, self.crop_size, 3), np.uint8)
        nbytes = len(self.index) * self.crop_size ** 2 * 3
        fits = device.type == "cuda" and nbytes < 0.3 * torch.cuda.mem_get_info(device)[0]
        self.resident = on_device is True or (on_device == "auto" and fits)
        self._rows = None
        if self.resident:
            self._rows = torch.from_numpy(self._gather(np.arange(len(self.index)))).to(device)

    def __len__(self) -> int:
        return len(self.index)

    def attach_lipsync(self, faces: Sequence[np.ndarray]) -> None:
        """The lip-sync model's faces of each identity's train + holdout frames (in that order, as
        `lipsync_frames` lists them): training rows get theirs from `lipsync_batch`, validation the held-out ones."""
        self._lip = np.concatenate([f[:len(idx)] for f, (_, idx) in zip(faces, self.sources)])
        self.lip_holdout = np.concatenate([f[len(idx):] for f, (_, idx) in zip(faces, self.sources)])
        self.truth_holdout = np.concatenate([ident.crops[idx] for ident, idx in self.holdout])
        if self.resident:
            self._lip = torch.from_numpy(self._lip).to(self.device)

    def lipsync_frames(self) -> list[np.ndarray]:
        return [np.concatenate([src, held]) for (_, src), (_, held) in zip(self.sources, self.holdout)]

    def lipsync_batch(self, rows: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 (B,S,S,3) lip-sync faces of the given training rows, on the device (see `attach_lipsync`)."""
        if isinstance(self._lip, torch.Tensor):
            return self._lip[torch.as_tensor(rows, device=self.device)]
        rows = rows.cpu().numpy() if isinstance(rows, torch.Tensor) else rows
        return torch.from_numpy(self._lip[rows]).to(self.device, non_blocking=True)

    def _gather(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), self.crop_size, self.crop_size, 3), np.uint8)
        for k, (ident, _) in enumerate(self.sources):
            sel = np.nonzero(self.index[rows, 0] == k)[0]
            if len(sel):
                frames = self.index[rows[sel], 1]
                order = np.argsort(frames)  # sequential reads from the memory map
                out[sel[order]] = ident.crops[frames[order]]
        return out

    def batch(self, rows: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 (B,S,S,3) crops of the given training rows (a device tensor when resident), on the device."""
        if self._rows is not None:
            return self._rows[torch.as_tensor(rows, device=self.device)]
        rows = rows.cpu().numpy() if isinstance(rows, torch.Tensor) else rows
        return torch.from_numpy(self._gather(rows)).to(self.device, non_blocking=True)

    def sample(self, split: str, count: int) -> np.ndarray:
        """`count` evenly spaced uint8 crops of the "train", "holdout" or "test" frames of all identities (host)."""
        groups = {"train": self.sources, "holdout": self.holdout, "test": self.tests}[split]
        pairs = [(ident, i) for ident, idx in groups for i in idx]
        if not pairs:
            raise InputError(f"the identity folders have no {split} frames with a face")
        pick = np.unique(np.linspace(0, len(pairs) - 1, min(count, len(pairs))).round().astype(int))
        return np.stack([pairs[p][0].crops[pairs[p][1]] for p in pick])


def jitter(x: torch.Tensor, gen: torch.Generator, amount: float = 0.02) -> torch.Tensor:
    """Light augmentation keeping faces aligned: whole-pixel shifts up to +-amount of the size (reflected
    borders, no resampling blur) and +-5% brightness; x (B,3,H,W) in [-1,1]."""
    b, _, h, w = x.shape
    m = max(1, round(amount * max(h, w)))
    offs = torch.randint(0, 2 * m + 1, (b, 2), generator=gen).tolist()  # host ints: no device sync
    padded = F.pad(x, (m, m, m, m), mode="reflect")
    y = torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offs)])
    # drawn on the device from a generator seeded on the host: no blocking host-to-device copy
    dev_gen = torch.Generator(device=x.device).manual_seed(int(torch.randint(0, 2**62, (1,), generator=gen)))
    gain = (1 + 0.05 * (torch.rand(b, 1, 1, 1, generator=dev_gen, device=x.device) * 2 - 1)).to(x.dtype)
    return ((y + 1) * gain - 1).clamp(-1, 1)


def random_patches(images: Sequence[torch.Tensor], patch: int, gen: torch.Generator,
                   lower: Sequence[bool] | None = None) -> list[torch.Tensor]:
    """The same random patch x patch window of each image of every (B,3,H,W) tensor in `images` (a window per
    image). The autoencoder is fully convolutional, so training on patches of full-size crops teaches full-size
    detail at the cost of a smaller image. Rows marked in `lower` take windows that hold the middle of the lower
    half (where the mouth is)."""
    b, _, h, w = images[0].shape
    ys = torch.randint(0, h - patch + 1, (b,), generator=gen).tolist()
    if lower is not None:
        low = min(max(0, h // 2 - patch // 2), h - patch)
        ys = [low + y * (h - patch - low) // max(1, h - patch) if on else y for y, on in zip(ys, lower)]
    xs = torch.randint(0, w - patch + 1, (b,), generator=gen).tolist()
    return [torch.stack([x[i, :, y:y + patch, xx:xx + patch] for i, (y, xx) in enumerate(zip(ys, xs))])
            for x in images]


def _open_identities(data_dirs: Sequence[str | os.PathLike] | str | os.PathLike) -> list[Identity]:
    if isinstance(data_dirs, (str, os.PathLike)):
        data_dirs = [data_dirs]
    if not data_dirs:
        raise InputError("give at least one identity folder")
    return [Identity.open(d) for d in data_dirs]


@dataclasses.dataclass
class Nets:
    """Everything one training step touches (run_* are the DDP/compiled wrappers of model/disc)."""

    model: SOVQAE
    disc: PatchDiscriminator
    run_model: torch.nn.Module
    run_disc: torch.nn.Module
    perceptual: torch.nn.Module | None
    perceptual_name: str
    opt_ae: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    lr: float


def build_nets(mcfg: SOVQAEConfig, t: SOVQAETrainConfig, rt: Runtime) -> Nets:
    """Model, discriminator, frozen perceptual net and the two Adam optimisers (lr = base_lr * batch * world)."""
    model = rt.prepare(SOVQAE(mcfg))
    disc = rt.prepare(PatchDiscriminator(PatchDiscriminatorConfig(3, t.disc_ndf, t.disc_layers)))
    perceptual, perceptual_name = build_perceptual(t.perceptual if t.perceptual_weight > 0 else "none", rt.device)
    if perceptual is not None and rt.channels_last:
        perceptual = perceptual.to(memory_format=torch.channels_last)
    lr = t.base_lr * t.batch_size * rt.world_size
    return Nets(model, disc, model, disc, perceptual, perceptual_name,
                torch.optim.Adam(model.parameters(), lr=lr, betas=t.adam_betas),
                torch.optim.Adam(disc.parameters(), lr=lr, betas=t.adam_betas), lr)


def wrap_nets(nets: Nets, rt: Runtime, compile: bool) -> None:
    """DDP wrappers under torchrun, then optional torch.compile of the autoencoder (after any resume load)."""
    run_model = rt.wrap_ddp(nets.model)
    nets.run_model = torch.compile(run_model) if compile else run_model
    nets.run_disc = rt.wrap_ddp(RealFake(nets.disc))


class RealFake(torch.nn.Module):
    """Calls the discriminator on each image set separately (taming: BatchNorm statistics per set) inside one
    forward, so that DDP still sees a single forward per backward."""

    def __init__(self, disc: PatchDiscriminator):
        super().__init__()
        self.disc = disc

    def forward(self, *image_sets: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.disc(x) for x in image_sets)


def train_step(rt: Runtime, nets: Nets, x_in: torch.Tensor, x: torch.Tensor, step: int,
               t: SOVQAETrainConfig) -> dict[str, torch.Tensor]:
    """One optimisation step: the autoencoder maps x_in (x itself, or a degraded copy) to the clean x, both
    (B,3,H,W) in [-1,1]; then the discriminator once the GAN is on."""
    gan_on = disc_factor(step, t.disc_start)
    zero = torch.zeros((), device=rt.device)
    with rt.autocast():
        recon, vq, info = nets.run_model(x_in)
        rec = reconstruction_l2(recon, x)  # logged as l2 whatever the loss, so runs stay comparable
        nll, p_loss = (rec if t.rec_loss == "l2" else reconstruction_l1(recon, x)), zero
        if t.edge_weight > 0:
            nll = nll + t.edge_weight * edge_l1(recon, x)
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
            g_loss = generator_loss(nets.run_disc(recon)[0])
        # gradients of the scaled losses: under fp16 the unscaled L2 gradient underflows (the ratio is scale-free)
        lam = adaptive_weight(rt.scaled(nll), rt.scaled(g_loss), nets.model.last_layer, t.disc_weight)
        total = total + lam * gan_on * g_loss
    rt.backward(total)
    rt.step(nets.opt_ae)
    nets.opt_ae.zero_grad(set_to_none=True)

    dl = zero
    if gan_on:
        nets.opt_d.zero_grad(set_to_none=True)  # drop what the generator's term left on D
        with rt.autocast():
            logits_real, logits_fake = nets.run_disc(x.detach(), recon.detach())
            dl = gan_on * d_loss(logits_real, logits_fake, t.disc_loss)
        rt.backward(dl)
        rt.step(nets.opt_d)
        nets.opt_d.zero_grad(set_to_none=True)
    rt.update()
    return {"loss": total, "l2": rec, "perceptual": p_loss, "vq": vq, "reg": reg, "g_loss": g_loss,
            "d_loss": dl, "usage": info["usage"], "perplexity": info["perplexity"], "adaptive_weight": lam,
            "indices": info["indices"]}


def lr_factor(step: int, total_steps: int, schedule: str, warmup_steps: int) -> float:
    """Learning-rate multiplier: taming's constant rate, or a linear warm-up then a cosine decay to 10%."""
    if schedule == "constant":
        return 1.0
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress_ = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress_)))


@torch.no_grad()
def restart_dead_codes(model: SOVQAE, counts: torch.Tensor, x: torch.Tensor, gen: torch.Generator) -> int:
    """Codes unused since the last restart take the latents of random positions of the batch x (B,3,H,W) in
    [-1,1] (plus a little noise), so every code keeps serving the data and takes part in d_C. Returns how many."""
    dead = torch.nonzero(counts == 0).flatten()
    if len(dead) == 0:
        return 0
    z = model.encode_latent(x).float()
    flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
    pick = torch.randint(0, len(flat), (len(dead),), generator=gen).to(flat.device)
    noise = torch.randn((len(dead), flat.shape[1]), generator=gen).to(flat.device) * 0.01 * flat.std()
    model.quantize.embedding.weight[dead] = flat[pick] + noise
    return len(dead)


@torch.no_grad()
def init_codebook_from_data(model: SOVQAE, store: CropStore, size: int, seed: int, max_images: int = 64) -> None:
    """Codes := distinct latents of training images under the initial encoder (plus 1% noise), not taming's
    uniform(+-1/N): every code starts in use, which avoids the early collapse of small runs. Identical on all ranks.
    """
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(store), min(len(store), max_images), replace=False))
    n = model.config.n_embed
    lat = []
    for s in range(0, len(rows), 32):
        x = crops_to_images(store.batch(rows[s:s + 32]), store.device, size) * 2 - 1
        z = model.encode_latent(x).float()
        lat.append(z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]))
    lat = torch.cat(lat)
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(lat), generator=g)[:n].to(lat.device)
    codes = lat[pick]
    if len(codes) < n:  # fewer latents than codes: repeat them; the noise keeps the copies apart
        codes = codes[torch.arange(n, device=codes.device) % len(codes)]
    noise = torch.randn(codes.shape, generator=g).to(codes.device) * 0.01 * lat.std()
    model.quantize.embedding.weight.copy_(codes + noise)


def train_sovqae(data_dirs: Sequence[str | os.PathLike] | str | os.PathLike, run_dir: str | os.PathLike,
                 preset: str = "paper-256", overrides: Sequence[str] = (), device: str = "auto",
                 wav2lip_path: str | os.PathLike | None = None) -> Path:
    """Train (or resume) a SOVQAE on identity folders; returns RUN_DIR/model (the exported model folder).

    `wav2lip_path`: a lip-sync model whose own faces on the train frames (driven by their own audio) become a
    `train.lipsync_share` of the inputs, with the true frames as targets (beyond the paper): the restorer then
    learns the errors it will really see. Validation adds their PSNR before/after on the held-out frames."""
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
    identities = _open_identities(data_dirs)
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

    steps_per_epoch = len(store) // (bs * rt.world_size)
    if steps_per_epoch == 0:
        raise InputError(f"only {len(store)} training frames for batch size {bs} x {rt.world_size} processes; "
                         "lower train.batch_size")
    total_steps = t.epochs * steps_per_epoch
    if t.max_steps is not None:
        total_steps = min(total_steps, t.max_steps)

    ckpt = CheckpointManager(run_dir / "checkpoints", KIND, is_main=rt.is_main)
    step, best = 0, -math.inf
    resumed = ckpt.load_last()
    if resumed is not None:
        strict_load(model, resumed.state_dict, str(ckpt.last_dir))
        ts = resumed.trainer_state
        strict_load(disc, ts["disc"], f"{ckpt.last_dir} (discriminator)")
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

    def save(is_best: bool = False) -> None:
        state = {"disc": unwrap(disc).state_dict(), "opt_ae": opt_ae.state_dict(), "opt_d": opt_d.state_dict(),
                 "scaler": rt.scaler.state_dict() if rt.scaler is not None else {}, "step": step,
                 "epoch": step // steps_per_epoch, "best": best, "rng": rng_state()}
        ckpt.save(mcfg, unwrap(model).state_dict(), state, extra={"step": step, "perceptual": perceptual_name},
                  best=is_best)

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
            rows = order[pos * bs:(pos + 1) * bs]
            gen = torch.Generator().manual_seed(seed * 1_000_003 + step * 97 + rt.rank)
            x = crops_to_images(store.batch(rows), rt.device, size) * 2 - 1
            lip = crops_to_images(store.lipsync_batch(rows), rt.device, size) * 2 - 1 if lip_share > 0 else None
            if t.augment:  # the same shift and gain for a face and its lip-sync input
                x = jitter(x if lip is None else torch.cat([x, lip], 1), gen)
                x, lip = (x, None) if lip is None else x.split(3, 1)
            x = rt.images(x)
            x_in = x
            if t.degrade > 0:  # 0 = the paper: the autoencoder only ever sees clean faces
                x_in = rt.images(restoration_training_degradation((x + 1) / 2, gen, 1 - t.degrade) * 2 - 1)
            use = None
            if lip is not None:
                use = torch.rand(len(x), generator=gen) < lip_share
                x_in = torch.where(use.to(x.device)[:, None, None, None], rt.images(lip), x_in)
            if patch:
                lower = use.tolist() if use is not None and t.lipsync_patch_lower else None
                x_in, x = random_patches([x_in, x], patch, gen, lower)
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
            periodic = step % t.checkpoint_every == 0 or step == total_steps or out_of_time
            if periodic or is_best:
                save(is_best)  # rank 0 only
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

