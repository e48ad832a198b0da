"""A lever for one person's lip sync with almost nothing to memorise (issue 28): the mouth in a fixed linear space.

The visual side is not learned: the person's gray mouth crops (rows 58-82, columns 24-72 of the 96-px face, as
SyncNetConfig.mouth_crop) projected on their first K principal components (fit on the train split), each
standardised. The audio side is small: mel windows at -3, 0, +3 frames pooled to 20 bands, a ridge regression or a
one-hidden-layer MLP (dropout, input noise) predicting the 5 frames' coefficients. Held-out (the test split):
r of the centre frame's PCs 1-3 with the truth, and the learned experts' figures: auc_all (predicted trajectory
closer to the true window than to every window >= 3 frames away) and offset_hit (best offset within +-1).

    python bench/expert_mouth_space.py IDENTITY [SEEDS]    e.g. /work/exp/s15/macron 0,1
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import torch

from ladtalk.data.lipsync import find_clips
from ladtalk.features.mel import sync_window
from ladtalk.metrics.provenance import provenance
from ladtalk.models.syncnet import MOUTH_COLS, MOUTH_ROWS

K, CONTEXT = 8, (-3, 0, 3)


def mouths(identity: str, split: str):
    clip = find_clips([identity], 96, split)[0]
    faces = clip.load_faces(np.asarray(clip.frame_ids))
    lower = faces[:, :, 48:]
    return clip, lower[:, :, MOUTH_ROWS, MOUTH_COLS].mean(1).reshape(len(faces), -1)


def windows(clip, z: np.ndarray, context=CONTEXT):
    """(audio features, the 5 frames' coefficients, frame index) of every window with audio on all sides."""
    xs, ys, ts = [], [], []
    for i in range(len(z) - 5):
        ws = [sync_window(clip.mel, clip.fps, int(clip.frame_ids[i]) + d) for d in context]
        if any(w is None for w in ws):
            continue
        xs.append(np.concatenate([w.reshape(20, 4, 16).mean(1).ravel() for w in ws]))
        ys.append(z[i:i + 5].ravel())
        ts.append(i)
    return np.array(xs), np.array(ys), np.array(ts)


def held_out(pred: np.ndarray, truth: np.ndarray, ts: np.ndarray) -> dict:
    at = {t: i for i, t in enumerate(ts)}
    rank, hits = [], 0
    for i, t in enumerate(ts):
        score = {o: -np.sum((pred[i] - truth[at[t + o]]) ** 2) for o in range(-15, 16) if t + o in at}
        far = [v for o, v in score.items() if abs(o) >= 3]
        rank.append(np.mean([score[0] > v for v in far]))
        hits += abs(max(score, key=score.get)) <= 1
    r = {f"r_pc{k + 1}": round(float(np.corrcoef(pred[:, 2 * K + k], truth[:, 2 * K + k])[0, 1]), 3)
         for k in range(3)}
    return {"auc_all": round(float(np.mean(rank)), 3), "offset_hit": round(hits / len(ts), 3), **r}


def mlp(a: np.ndarray, y: np.ndarray, seed: int, steps: int = 1500) -> torch.nn.Module:
    torch.manual_seed(seed)
    x, t = torch.tensor(a, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    net = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(x.shape[1], 256), torch.nn.ReLU(),
                              torch.nn.Dropout(0.3), torch.nn.Linear(256, t.shape[1]))
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=0.05)
    for _ in range(steps):
        i = torch.randint(0, len(x), (128,))
        loss = (net(x[i] + 0.3 * torch.randn_like(x[i])) - t[i]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def main() -> None:
    identity = sys.argv[1]
    seeds = [int(s) for s in (sys.argv[2] if len(sys.argv) > 2 else "0,1").split(",")]
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))
    train_clip, train_m = mouths(identity, "train")
    val_clip, val_m = mouths(identity, "val")
    mean = train_m.mean(0)
    _, s, vt = np.linalg.svd(train_m - mean, full_matrices=False)
    z_train, z_val = (train_m - mean) @ vt[:K].T, (val_m - mean) @ vt[:K].T
    sd = z_train.std(0)
    rows = []
    print(f"PCA: {K} components keep {float((s[:K] ** 2).sum() / (s ** 2).sum()):.2f} of the mouths' variance")
    for name, context in (("ridge, mel at 0", (0,)), ("ridge, mel at -3, 0, +3", CONTEXT)):
        xa, ya, _ = windows(train_clip, z_train / sd, context)
        xb, yb, tb = windows(val_clip, z_val / sd, context)
        mu, scale = xa.mean(0), xa.std(0) + 1e-6
        a, b = (xa - mu) / scale, (xb - mu) / scale
        w = np.linalg.solve(a.T @ a + 10 * np.eye(a.shape[1]), a.T @ ya)
        rows.append({"audio model": name, **held_out(b @ w, yb, tb)})
        print(rows[-1], flush=True)
    for seed in seeds:
        net = mlp(a, ya, seed)
        with torch.no_grad():
            pred = net(torch.tensor(b, dtype=torch.float32)).numpy()
        rows.append({"audio model": f"mlp, mel at -3, 0, +3, seed {seed}", **held_out(pred, yb, tb)})
        print(rows[-1], flush=True)
    out = os.environ.get("OUT")
    if out:
        with open(out, "w") as f:
            json.dump({"identity": identity, "k": K, "rows": rows,
                       "provenance": {**provenance("cpu"), "precision": "fp32"}}, f, indent=1)


if __name__ == "__main__":
    main()
