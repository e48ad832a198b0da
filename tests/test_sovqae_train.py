"""SOVQAE training on the CPU: overfitting one batch, resume == uninterrupted run, export and restore API."""

import dataclasses

import numpy as np
import pytest
import torch
from _sovqae_fake import make_identity, one_thread
from safetensors.torch import load_file

from ladtalk.errors import CheckpointError
from ladtalk.losses.vq import reconstruction_l2
from ladtalk.models.sovqae import SOVQAE, SOVQAEConfig
from ladtalk.pipeline.restore import load_sovqae, restore
from ladtalk.presets import load_preset
from ladtalk.train.sovqae import train_sovqae

pytestmark = pytest.mark.usefixtures("one_thread")
_ = one_thread
SMALL = ["train.image_size=32", "train.batch_size=4", "train.val_frames=4", "train.val_every=1000",
         "train.disc_start=2", "train.checkpoint_every=2", "train.log_every=1"]


def test_overfits_one_batch():
    torch.manual_seed(0)
    cfg = dataclasses.replace(SOVQAEConfig.from_dict(load_preset("tiny")["model"]), n_embed=64)
    model = SOVQAE(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")
    x = torch.stack([torch.stack([torch.sin(3 * xx + k), torch.cos(2 * yy - k), xx * yy]) for k in range(4)])
    losses = []
    for _ in range(60):
        recon, vq, _ = model(x)
        loss = reconstruction_l2(recon, x) + vq
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(reconstruction_l2(recon, x).detach()))
    assert losses[-1] < 0.25 * losses[0], losses[::10]


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    return make_identity(tmp_path_factory.mktemp("id") / "ident", n_frames=20, size=32)


def test_resume_equals_uninterrupted_run(identity, tmp_path):
    a = train_sovqae([identity], tmp_path / "a", preset="tiny", overrides=SMALL + ["train.max_steps=4"],
                     device="cpu")
    train_sovqae([identity], tmp_path / "b", preset="tiny", overrides=SMALL + ["train.max_steps=2"], device="cpu")
    b = train_sovqae([identity], tmp_path / "b", preset="tiny", overrides=SMALL + ["train.max_steps=4"],
                     device="cpu")
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys()
    worst = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
    assert worst <= 1e-6, worst
    lines = (tmp_path / "a" / "logs" / "metrics.jsonl").read_text().splitlines()
    assert any('"split": "val"' in ln for ln in lines) and any('"d_loss"' in ln for ln in lines)
    assert (tmp_path / "a" / "checkpoints" / "best" / "model.safetensors").is_file()

    # the exported folder loads strictly and restores frames (same kind out as in)
    model = load_sovqae(tmp_path / "a", device="cpu")
    assert not model.training and model.config.resolution == 64
    frames = (np.random.default_rng(0).random((3, 32, 32, 3)) * 255).astype(np.uint8)
    out = restore(model, frames, batch_size=2, out_size=32)
    assert out.dtype == np.uint8 and out.shape == (3, 32, 32, 3)
    imgs = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    out_f = restore(model, imgs, out_size=32)
    assert out_f.dtype == torch.float32 and out_f.shape == (3, 3, 32, 32) and 0 <= out_f.min() <= out_f.max() <= 1
    assert np.abs(out.astype(int) - (out_f.permute(0, 2, 3, 1).numpy() * 255).round()).max() <= 1
    with pytest.raises(CheckpointError):
        load_sovqae(identity)
