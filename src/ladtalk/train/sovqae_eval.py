"""Measurements on a SOVQAE shared by training validation and `ladtalk analyze`.

Images here are float (B,3,H,W) RGB in [0,1] unless stated; PSNR follows metrics/image.py (per image on
uint8-rounded values, data range 255) and may be restricted to a region mask.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ladtalk.data import degrade
from ladtalk.metrics.image import psnr, ssim_images
from ladtalk.models.sovqae import SOVQAE, codebook_usage
from ladtalk.pixels import to_frames, to_images

PSNR_CAP_DB = 100.0  # identical images: report a finite cap instead of inf


def crops_to_images(crops: np.ndarray | torch.Tensor, device: torch.device | str, size: int | None = None,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 (B,S,S,3) RGB crops -> float (B,3,size,size) in [0,1] on `device` (area/bicubic resize if needed)."""
    x = to_images(crops, device, dtype)
    if size is not None and x.shape[-1] != size:
        mode = "area" if x.shape[-1] > size else "bicubic"
        x = F.interpolate(x, size=(size, size), mode=mode).clamp(0, 1)
    return x.contiguous()


def psnr01(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) PSNR in dB of [0,1] images after rounding to uint8 levels (metrics.image.psnr, capped at PSNR_CAP_DB for
    identical images); `mask` (B,1,H,W) limits the pixels."""
    values = psnr(to_frames(pred.float()), to_frames(gt.float()), mask=None if mask is None else mask[:, 0] > 0)
    return torch.from_numpy(np.minimum(values, PSNR_CAP_DB))


@torch.no_grad()
def run_model(model: SOVQAE, images01: torch.Tensor, amp_dtype: torch.dtype | None = None,
              batch_size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """(restored images (B,3,H,W) in [0,1] fp32, code indices (B,h,w)) for images in [0,1]."""
    outs, codes = [], []
    for s in range(0, len(images01), batch_size):
        x = images01[s:s + batch_size] * 2 - 1
        with torch.autocast(x.device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            z_q, _, idx = model.encode(x)
            y = model.decode(z_q, x)
        outs.append(((y.float() + 1) / 2).clamp(0, 1))
        codes.append(idx)
    return torch.cat(outs), torch.cat(codes)


@torch.no_grad()
def latent_distances(model: SOVQAE, images01: torch.Tensor, amp_dtype: torch.dtype | None = None,
                     batch_size: int = 16) -> torch.Tensor:
    """Flat fp32 distances of every latent vector of the images to its nearest code (for gamma)."""
    e = model.quantize.embedding.weight.float()
    out = []
    for s in range(0, len(images01), batch_size):
        x = images01[s:s + batch_size] * 2 - 1
        with torch.autocast(x.device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            z = model.encode_latent(x)
        flat = z.float().permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        out.append(torch.cdist(flat, e).min(1).values)
    return torch.cat(out)


def standard_degradations(size: int) -> dict[str, Callable[[torch.Tensor, torch.Generator], torch.Tensor]]:
    """The validation set: moderate blur, moderate noise (in the paper's random region) and 96x96 down-up."""
    return {
        "blur_s2": lambda x, g: degrade.gaussian_blur(x, 2.0 * size / 256),
        "noise_0.1": lambda x, g: degrade.gaussian_noise(x, 0.1, g),
        "down96": lambda x, g: degrade.down_up(x, 96 if size >= 192 else max(8, size * 3 // 8)),
    }


@torch.no_grad()
def restoration_scores(model: SOVQAE, clean01: torch.Tensor, degraded01: torch.Tensor,
                       clean_codes: torch.Tensor, mask: torch.Tensor | None,
                       amp_dtype: torch.dtype | None = None) -> dict[str, float]:
    """PSNR degraded/restored vs clean (whole crop and region) and the share of codes that did not change."""
    restored, codes = run_model(model, degraded01, amp_dtype)
    out = {
        "psnr_degraded": float(psnr01(degraded01, clean01).mean()),
        "psnr_restored": float(psnr01(restored, clean01).mean()),
        "codes_unchanged": float((codes == clean_codes).float().mean()),
    }
    if mask is not None:
        out["psnr_degraded_region"] = float(psnr01(degraded01, clean01, mask).mean())
        out["psnr_restored_region"] = float(psnr01(restored, clean01, mask).mean())
    return out


@torch.no_grad()
def used_code_stats(model: SOVQAE, codes: torch.Tensor, train01: torch.Tensor,
                    amp_dtype: torch.dtype | None) -> dict[str, float]:
    """d_C over the codes the given and the training images use, and how many codes neither uses (dead codes
    decide d_C over all codes without ever being chosen, so the regulariser acts on nothing that matters)."""
    from ladtalk.losses.codebook import min_code_distance

    _, train_codes = run_model(model, train01, amp_dtype)
    used = torch.unique(torch.cat([codes.flatten(), train_codes.flatten()]))
    e = model.quantize.embedding.weight
    d_used = float(min_code_distance(e[used])) if len(used) > 1 else float("nan")
    return {"d_C_used": d_used, "dead_codes": float(e.shape[0] - len(used))}


@torch.no_grad()
def validate(model: SOVQAE, test01: torch.Tensor, train01: torch.Tensor, amp_dtype: torch.dtype | None,
             seed: int = 0, lipsync: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, float]:
    """Validation metrics: reconstruction PSNR/SSIM, restoration PSNR, d_C, gamma, codebook usage/perplexity;
    with `lipsync` (a lip-sync model's faces, their true faces) the PSNR of those faces before and after."""
    from ladtalk.losses.codebook import min_code_distance

    size = test01.shape[-1]
    recon, codes = run_model(model, test01, amp_dtype)
    usage, ppl = codebook_usage(codes, model.config.n_embed)
    m: dict[str, float] = {
        "recon_psnr": float(psnr01(recon, test01).mean()),
        "recon_ssim": float(ssim_images(recon.double() * 255, test01.double() * 255).mean()),
        "d_C": float(min_code_distance(model.quantize.embedding.weight)),
        **used_code_stats(model, codes, train01, amp_dtype),
        "gamma": float(latent_distances(model, train01, amp_dtype).max()),
        "usage": usage, "perplexity": ppl,
    }
    g = torch.Generator().manual_seed(seed)
    boxes = degrade.random_regions(len(test01), size, size, degrade.scaled_region(size), g)
    mask = degrade.region_mask(boxes, size, size, test01.device)
    scores = []
    for name, fn in standard_degradations(size).items():
        degraded = fn(test01, g)
        if name != "down96":
            degraded = degrade.in_region(test01, degraded, boxes)
        r = restoration_scores(model, test01, degraded, codes, None if name == "down96" else mask, amp_dtype)
        m[f"{name}_psnr_degraded"] = r["psnr_degraded"]
        m[f"{name}_psnr_restored"] = r["psnr_restored"]
        m[f"{name}_codes_unchanged"] = r["codes_unchanged"]
        scores.append(r["psnr_restored"])
    m["restore_psnr_mean"] = float(np.mean(scores))
    if lipsync is not None:
        faces, truth = lipsync
        m["lipsync_psnr_input"] = float(psnr01(faces, truth).mean())
        m["lipsync_psnr_restored"] = float(psnr01(run_model(model, faces, amp_dtype)[0], truth).mean())
    return m
