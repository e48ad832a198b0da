"""Measurements on a SOVQAE shared by training validation and `ladtalk analyze`, under the same names: PSNR of the
reconstruction and of degraded / restored faces, `codes_unchanged` (the share of code indices a degradation left
as they were: the paper's robustness claim, measured), d_C and gamma. The SOVQAE runs as in inference
(`pipeline.restore.restore_images_with_latents`); images are float (B,3,H,W) RGB in [0,1] unless stated."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ladtalk.data import degrade
from ladtalk.losses.codebook import min_code_distance
from ladtalk.metrics.image import psnr, ssim_images
from ladtalk.metrics.nroub import gamma_stats, nearest_codes
from ladtalk.models.sovqae import SOVQAE, usage_tensors
from ladtalk.pipeline.restore import restore_images_with_latents
from ladtalk.pixels import to_frames, to_images

PSNR_CAP_DB = 100.0  # identical images: report a finite cap instead of inf


def crops_to_images(crops: np.ndarray | torch.Tensor, device: torch.device | str, size: int | None = None
                    ) -> torch.Tensor:
    """uint8 (B,S,S,3) RGB crops -> float (B,3,size,size) in [0,1] on `device` (area/bicubic resize if needed)."""
    x = to_images(crops, device)
    if size is not None and x.shape[-1] != size:
        mode = "area" if x.shape[-1] > size else "bicubic"
        x = F.interpolate(x, size=(size, size), mode=mode).clamp(0, 1)
    return x.contiguous()


def psnr01(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) PSNR in dB of [0,1] images after rounding to uint8 levels (metrics.image.psnr, capped at PSNR_CAP_DB for
    identical images); `mask` (B,1,H,W) limits the pixels."""
    values = psnr(to_frames(pred.float()), to_frames(gt.float()), mask=None if mask is None else mask[:, 0] > 0)
    return torch.from_numpy(np.minimum(values, PSNR_CAP_DB))


def scores_of_restoration(clean01: torch.Tensor, degraded01: torch.Tensor, restored: torch.Tensor,
                          indices: torch.Tensor, clean_indices: torch.Tensor, mask: torch.Tensor | None
                          ) -> dict[str, float]:
    """PSNR degraded/restored vs clean (whole crop and region) and the share of code indices that did not change
    (`indices`: the codes the degraded faces chose)."""
    out = {
        "psnr_degraded": float(psnr01(degraded01, clean01).mean()),
        "psnr_restored": float(psnr01(restored, clean01).mean()),
        "codes_unchanged": float((indices == clean_indices).float().mean()),
    }
    if mask is not None:
        out["psnr_degraded_region"] = float(psnr01(degraded01, clean01, mask).mean())
        out["psnr_restored_region"] = float(psnr01(restored, clean01, mask).mean())
    return out


@torch.no_grad()
def validate(model: SOVQAE, test01: torch.Tensor, train01: torch.Tensor, amp_dtype: torch.dtype | None,
             seed: int = 0, lipsync: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, float]:
    """Validation metrics: reconstruction PSNR/SSIM, restoration PSNR, d_C, gamma, codebook usage/perplexity;
    with `lipsync` (a lip-sync model's faces, their true faces) the PSNR of those faces before and after."""
    size = test01.shape[-1]
    recon, indices, _ = restore_images_with_latents(model, test01, amp_dtype)
    usage, ppl = usage_tensors(indices, model.config.n_embed)
    train_dists, train_indices = nearest_codes(model, train01, amp_dtype)  # one encoder pass for gamma and d_C_used
    # d_C over the codes test and training images use, and how many neither uses: dead codes decide d_C over all
    # codes without ever being chosen, so the regulariser acts on nothing that matters
    codes = model.quantize.embedding.weight
    used = torch.unique(torch.cat([indices.flatten(), train_indices.flatten()]))
    m: dict[str, float] = {
        "recon_psnr": float(psnr01(recon, test01).mean()),
        "recon_ssim": float(ssim_images(recon.double() * 255, test01.double() * 255).mean()),
        "d_C": float(min_code_distance(codes)),
        "d_C_used": float(min_code_distance(codes[used])) if len(used) > 1 else float("nan"),
        "dead_codes": float(len(codes) - len(used)),
        "gamma": gamma_stats(train_dists)["gamma"],
        "usage": float(usage), "perplexity": float(ppl),
    }
    g = torch.Generator().manual_seed(seed)
    boxes = degrade.random_regions(len(test01), size, size, degrade.scaled_region(size), g)
    mask = degrade.region_mask(boxes, size, size, test01.device)
    # moderate blur and noise in the paper's random region, and the lip-sync model's 96x96 down-up
    degradations = {"blur_s2": degrade.gaussian_blur(test01, 2.0 * size / 256),
                    "noise_0.1": degrade.gaussian_noise(test01, 0.1, g),
                    "down96": degrade.down_up(test01, degrade.lipsync_size(size))}
    for name, degraded in degradations.items():
        if name != "down96":
            degraded = degrade.in_region(test01, degraded, boxes)
        restored, degraded_indices, _ = restore_images_with_latents(model, degraded, amp_dtype)
        r = scores_of_restoration(test01, degraded, restored, degraded_indices, indices,
                                  None if name == "down96" else mask)
        m.update({f"{name}_{key}": r[key] for key in ("psnr_degraded", "psnr_restored", "codes_unchanged")})
    m["restore_psnr_mean"] = float(np.mean([m[f"{name}_psnr_restored"] for name in degradations]))
    if lipsync is not None:
        faces, truth = lipsync
        m["lipsync_psnr_input"] = float(psnr01(faces, truth).mean())
        restored = restore_images_with_latents(model, faces, amp_dtype)[0]
        m["lipsync_psnr_restored"] = float(psnr01(restored, truth).mean())
    return m
