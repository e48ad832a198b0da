"""Codebook upkeep for short runs (beyond the paper's uniform init): codes start as latents of training images,
and codes left unused move to where the latents are, so every code serves the data and takes part in d_C."""

from __future__ import annotations

import numpy as np
import torch

from ladtalk.models.sovqae import SOVQAE
from ladtalk.train.sovqae_data import CropStore
from ladtalk.train.sovqae_eval import crops_to_images


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
    uniform(+-1/N): every code starts in use, which avoids the early collapse of small runs."""
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
