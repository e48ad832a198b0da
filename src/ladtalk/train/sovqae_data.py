"""The SOVQAE trainer's data: identity crops held on the device or memory-mapped, the light augmentation and
the random patches the restorer presets train on (train/sovqae.py draws each step's inputs from here); and codes
drawn from the data for short runs (beyond the paper's uniform init): codes start as latents of training images,
and codes left unused move to where the latents are, so every code serves the data and takes part in d_C."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ladtalk.data.degrade import restoration_training_degradation
from ladtalk.data.identity import Identity
from ladtalk.errors import InputError
from ladtalk.models.sovqae import SOVQAE
from ladtalk.train.common import epoch_order
from ladtalk.train.sovqae_eval import crops_to_images


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
        self._rows = torch.from_numpy(self._gather(np.arange(len(self.index)))).to(device) if self.resident else None

    def __len__(self) -> int:
        return len(self.index)

    def attach_lipsync(self, faces: Sequence[np.ndarray]) -> None:
        """The lip-sync model's faces of each identity's train + holdout frames (in that order, as
        `lipsync_frames` lists them): training rows get theirs from `lipsync_batch`, validation the held-out ones."""
        self._lip = np.concatenate([f[:len(idx)] for f, (_, idx) in zip(faces, self.sources)])
        self.lip_holdout = np.concatenate([f[len(idx):] for f, (_, idx) in zip(faces, self.sources)])
        if self.resident:
            self._lip = torch.from_numpy(self._lip).to(self.device)

    def lipsync_frames(self) -> list[np.ndarray]:
        return [np.concatenate([src, held]) for (_, src), (_, held) in zip(self.sources, self.holdout)]

    def lipsync_batch(self, rows: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 (B,S,S,3) lip-sync faces of the given training rows, on the device (see `attach_lipsync`)."""
        resident = self._lip if isinstance(self._lip, torch.Tensor) else None
        return self._take(rows, resident, self._lip.__getitem__)

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
        """uint8 (B,S,S,3) crops of the given training rows, on the device."""
        return self._take(rows, self._rows, self._gather)

    def _take(self, rows: np.ndarray | torch.Tensor, resident: torch.Tensor | None, gather) -> torch.Tensor:
        """Rows of a device-resident tensor, or else of `gather(host rows)` uploaded."""
        if resident is not None:
            return resident[torch.as_tensor(rows, device=self.device)]
        rows = rows.cpu().numpy() if isinstance(rows, torch.Tensor) else rows
        return torch.from_numpy(gather(rows)).to(self.device, non_blocking=True)

    def sample(self, split: str, count: int) -> np.ndarray:
        """`count` evenly spaced uint8 crops of the "train" or "holdout" frames of all identities (host)."""
        groups = {"train": self.sources, "holdout": self.holdout}[split]
        pairs = [(ident, i) for ident, idx in groups for i in idx]
        if not pairs:
            raise InputError(f"the identity folders have no {split} frames with a face")
        pick = np.unique(np.linspace(0, len(pairs) - 1, min(count, len(pairs))).round().astype(int))
        return np.stack([pairs[p][0].crops[pairs[p][1]] for p in pick])


def jitter(x: torch.Tensor, gen: torch.Generator, amount: float = 0.02) -> torch.Tensor:
    """Light augmentation keeping faces aligned: whole-pixel shifts up to +-amount of the size (reflected
    borders, no resampling blur) and +-5% brightness; x (B,C,H,W) in [-1,1]."""
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
    """The same random patch x patch window of each image in every (B,3,H,W) tensor of `images`: the autoencoder is
    fully convolutional, so patches of full-size crops teach full-size detail at a smaller cost. Rows marked in
    `lower` take windows that hold the middle of the lower half (where the mouth is)."""
    b, _, h, w = images[0].shape
    ys = torch.randint(0, h - patch + 1, (b,), generator=gen).tolist()
    if lower is not None:
        low = min(max(0, h // 2 - patch // 2), h - patch)
        ys = [low + y * (h - patch - low) // max(1, h - patch) if on else y for y, on in zip(ys, lower)]
    xs = torch.randint(0, w - patch + 1, (b,), generator=gen).tolist()
    return [torch.stack([x[i, :, y:y + patch, xx:xx + patch] for i, (y, xx) in enumerate(zip(ys, xs))])
            for x in images]


def open_identities(data_dirs: Sequence[str | os.PathLike] | str | os.PathLike) -> list[Identity]:
    if isinstance(data_dirs, (str, os.PathLike)):
        data_dirs = [data_dirs]
    if not data_dirs:
        raise InputError("give at least one identity folder")
    return [Identity.open(d) for d in data_dirs]


class Batches:
    """Each step's (input, target) pair of (B,3,S,S) images in [-1,1]: targets are training crops in a seeded
    order per epoch; inputs are the same crops, degraded for a `train.degrade` share and replaced by the lip-sync
    model's faces of those frames for a `lip_share`, then cut to the preset's patches."""

    def __init__(self, store: CropStore, t, rt, size: int, lip_share: float, steps_per_epoch: int):
        self.store, self.t, self.rt, self.size, self.lip_share = store, t, rt, size, lip_share
        self.steps_per_epoch = steps_per_epoch
        self._epoch, self._order = -1, None

    def _rows(self, step: int):
        epoch, pos = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:  # upload the epoch's order once: no host-to-device copy per step
            order = epoch_order(len(self.store), epoch, self.t.seed)
            self._epoch = epoch
            self._order = torch.as_tensor(order, device=self.rt.device) if self.store.resident else order
        bs = self.t.batch_size
        return self._order[pos * bs:(pos + 1) * bs]

    def __call__(self, step: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        t, rt, store = self.t, self.rt, self.store
        rows = self._rows(step)
        x = crops_to_images(store.batch(rows), rt.device, self.size) * 2 - 1
        lip = crops_to_images(store.lipsync_batch(rows), rt.device, self.size) * 2 - 1 if self.lip_share else None
        if t.augment:  # the same shift and gain for a face and its lip-sync input
            x = jitter(x if lip is None else torch.cat([x, lip], 1), gen)
            x, lip = (x, None) if lip is None else x.split(3, 1)
        x = x_in = rt.images(x)
        if t.degrade > 0:  # 0 = the paper: the autoencoder only ever sees clean faces
            x_in = rt.images(restoration_training_degradation((x + 1) / 2, gen, 1 - t.degrade) * 2 - 1)
        use = None
        if lip is not None:
            use = torch.rand(len(x), generator=gen) < self.lip_share
            x_in = torch.where(use.to(x.device)[:, None, None, None], rt.images(lip), x_in)
        if t.patch_size:
            lower = use.tolist() if use is not None and t.lipsync_patch_lower else None
            x_in, x = random_patches([x_in, x], t.patch_size, gen, lower)
        return x_in, x


class DeadCodes:
    """Counts each code's use; every `every` steps (0: never) the codes unused since the last restart take the
    latents of random positions of that step's batch (plus a little noise), so every code keeps serving the data
    and takes part in d_C."""

    def __init__(self, n_embed: int, every: int, device: torch.device) -> None:
        self.every, self.counts = every, torch.zeros(n_embed, device=device)

    @torch.no_grad()
    def update(self, model: SOVQAE, indices: torch.Tensor, x: torch.Tensor, step: int, gen: torch.Generator) -> dict:
        """Count a step's code indices (x: its inputs (B,3,H,W) in [-1,1]); at a restart step, {"restarted_codes":
        how many} for the log."""
        if not self.every:
            return {}
        flat = indices.reshape(-1)
        self.counts.scatter_add_(0, flat, torch.ones_like(flat, dtype=torch.float32))
        if (step + 1) % self.every:
            return {}
        dead = torch.nonzero(self.counts == 0).flatten()
        self.counts.zero_()
        if len(dead):
            z = model.encode_latent(x).float()
            lat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
            pick = torch.randint(0, len(lat), (len(dead),), generator=gen).to(lat.device)
            noise = torch.randn((len(dead), lat.shape[1]), generator=gen).to(lat.device) * 0.01 * lat.std()
            model.quantize.embedding.weight[dead] = lat[pick] + noise
        return {"restarted_codes": torch.tensor(float(len(dead)))}


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
