"""Which lever makes one person's lip-sync expert generalise to held-out frames (issue 28)?

Trains SyncNetColor on an identity's train split with one variant and scores it every 100 steps on every window of
the test split: BCE and accuracy against one random off-sync window (>= 3 frames away), AUC (in-sync cosine above
off-sync), and `offset_hit`: the share of windows whose best audio offset within +-15 frames is within +-1 of the
truth (chance ~0.1). Variants (joined with +): base, aug (data.augment), near (half the negatives 3-25 frames
away), mw (multi-way: the true audio among 16 offsets, cross-entropy + BCE, as Chung et al.'s "Perfect Match"),
s48 (48-px faces), mouth (SyncNetConfig.mouth_crop: the 24x48 mouth of the 96-px face, rows 58-82 and columns
24-72, through the 48-px network: the mouth at twice the s48 resolution without cheeks and background to memorise),
lr4 (Adam 1e-4 instead of 5e-4). INIT=FILE starts from a state dict; VAL=DIR scores on another
identity's test split (e.g. train on synthetic speakers, score on a real person).

    python bench/expert_levers.py IDENTITY[,IDENTITY...] VARIANT STEPS [SEED]
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ladtalk.data.augment import augment_faces, augment_mels
from ladtalk.data.lipsync import SyncPairs, find_clips, usable
from ladtalk.features.mel import sync_window
from ladtalk.losses.lipsync import cosine_bce
from ladtalk.models.syncnet import SyncNetColor, SyncNetConfig

OFFSETS = [0] + [o for o in range(-15, 16, 2) if abs(o) >= 3]  # multi-way candidates: the truth first


def held_out_windows(clips):
    out = []
    for c in clips:
        for t in c.starts:
            faces = c.load_faces(np.arange(t, t + 5))
            half = faces.shape[-2] // 2
            out.append((c, int(t), faces[:, :, half:].reshape(-1, half, faces.shape[-1])))
    return out


@torch.no_grad()
def evaluate(model, windows, rng) -> dict[str, float]:
    model.eval()
    v_emb = model.embed_face(torch.from_numpy(np.stack([w[2] for w in windows])))
    pos, neg, hits, rank = [], [], 0, []
    for k, (c, t, _) in enumerate(windows):
        offs = [o for o in range(-15, 16) if sync_window(c.mel, c.fps, t + o) is not None]
        a = model.embed_audio(torch.from_numpy(np.stack([sync_window(c.mel, c.fps, t + o) for o in offs])))
        cos = (a @ v_emb[k]).numpy()
        pos.append(cos[offs.index(0)])
        far = [i for i, o in enumerate(offs) if abs(o) >= 3]
        neg.append(cos[far[rng.integers(len(far))]])
        hits += abs(offs[int(np.argmax(cos))]) <= 1
        rank.append(float((cos[far] < cos[offs.index(0)]).mean()))
    pos, neg = np.array(pos), np.array(neg)
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    p = np.clip(np.r_[pos, neg], 1e-6, 1 - 1e-6)
    model.train()
    return {"bce": float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()), "acc": float(((p > 0.5) == y).mean()),
            "auc": float((pos[:, None] > neg[None, :]).mean()), "offset_hit": hits / len(windows),
            "auc_all": float(np.mean(rank))}  # the truth above every off-sync offset >= 3 frames: ~25x the pairs


def multiway_loss(model, train: SyncPairs, rng, g, n: int, augment: bool) -> torch.Tensor:
    clip = train.clips[0]
    ok = [t for t in clip.starts if all(sync_window(clip.mel, clip.fps, t + o) is not None for o in OFFSETS)]
    ts = rng.choice(ok, n)
    faces = np.stack([train.window(clip, int(t)) for t in ts])
    half = faces.shape[-2] // 2
    face = torch.from_numpy(faces[:, :, :, half:].reshape(n, -1, half, faces.shape[-1]))
    mel = torch.from_numpy(np.stack([[sync_window(clip.mel, clip.fps, int(t) + o) for o in OFFSETS] for t in ts]))
    mel = mel.reshape(n * len(OFFSETS), 1, 80, -1)
    if augment:
        mel, face = augment_mels(mel, g), augment_faces(face, g)
    cos = (model.embed_audio(mel).reshape(n, len(OFFSETS), -1) * model.embed_face(face)[:, None]).sum(-1)
    wrong = torch.from_numpy(rng.integers(1, len(OFFSETS), n))
    p = torch.cat([cos[:, 0], cos[torch.arange(n), wrong]]).clamp(1e-6, 1 - 1e-6)
    return F.cross_entropy(cos / 0.07, torch.zeros(n, dtype=torch.long)) + \
        F.binary_cross_entropy(p, torch.cat([torch.ones(n), torch.zeros(n)]))


def main() -> None:
    idents, variant, steps = sys.argv[1].split(","), sys.argv[2], int(sys.argv[3])
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    opts = set(variant.split("+"))
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    torch.manual_seed(seed)
    img = 48 if "s48" in opts else 96
    train = SyncPairs(find_clips(idents, img, "train"), 2**62, seed, near_negatives=0.5 if "near" in opts else 0.0)
    windows = held_out_windows([c for c in find_clips([os.environ.get("VAL", idents[0])], img, "val") if usable(c)])
    model = SyncNetColor(SyncNetConfig(width=0.25, img_size=img, mouth_crop="mouth" in opts))
    if os.environ.get("INIT"):
        model.load_state_dict(torch.load(os.environ["INIT"], weights_only=True))
    opt = torch.optim.Adam(model.parameters(), lr=1e-4 if "lr4" in opts else 5e-4)
    g, rng, eval_rng = torch.Generator().manual_seed(seed), np.random.default_rng(seed + 5), np.random.default_rng(123)
    t0, hist, bs = time.time(), [], 32
    for step in range(1, steps + 1):
        if "mw" in opts:
            loss = multiway_loss(model, train, rng, g, 16, "aug" in opts)
        else:
            mel, face, y = (torch.stack(v) for v in zip(*[train[i] for i in range(step * bs, step * bs + bs)]))
            if "aug" in opts:
                mel, face = augment_mels(mel, g), augment_faces(face, g)
            loss = cosine_bce(*model(mel, face), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps:
            row = {"step": step, "train_loss": round(loss.item(), 3), "min": round((time.time() - t0) / 60, 2),
                   **{k: round(v, 3) for k, v in evaluate(model, windows, eval_rng).items()}}
            hist.append(row)
            print(json.dumps(row), flush=True)
    out = Path(os.environ.get("OUT", "."))
    (out / f"expert_{variant}_{seed}.json").write_text(json.dumps({"variant": variant, "seed": seed, "hist": hist}))
    torch.save(model.state_dict(), out / f"expert_{variant}_{seed}.pt")


if __name__ == "__main__":
    main()
