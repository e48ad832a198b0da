"""SOVQAE training on the CPU: overfitting one batch, resume == uninterrupted run, export and restore API."""

import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _sovqae_fake import make_identity, one_thread
from safetensors.torch import load_file

from ladtalk.data.identity import Identity
from ladtalk.errors import CheckpointError
from ladtalk.models.sovqae import SOVQAE, SOVQAEConfig
from ladtalk.pipeline.restore import CPU_BATCH, batch_for, crop_geometry, load_sovqae, restore
from ladtalk.presets import load_preset
from ladtalk.train.sovqae import train_sovqae

pytestmark = pytest.mark.usefixtures("one_thread")
_ = one_thread
SMALL = ["model.resolution=32", "train.batch_size=4", "train.val_frames=4", "train.val_every=1000",
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
        loss = F.mse_loss(recon, x) + vq
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(F.mse_loss(recon, x).detach()))
    assert losses[-1] < 0.25 * losses[0], losses[::10]


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    return make_identity(tmp_path_factory.mktemp("id") / "ident", n_frames=20, size=32)


@pytest.fixture(scope="module")
def trained_run(identity, tmp_path_factory):
    """An uninterrupted 4-step run (GAN on from step 2); one thread for the module's training."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("runs") / "a"
    train_sovqae([identity], run, preset="tiny", overrides=SMALL + ["train.max_steps=4"], device="cpu")
    torch.set_num_threads(before)
    return run


def test_resume_equals_uninterrupted_run(identity, trained_run, tmp_path):
    train_sovqae([identity], tmp_path / "b", preset="tiny", overrides=SMALL + ["train.max_steps=2"], device="cpu")
    b = train_sovqae([identity], tmp_path / "b", preset="tiny", overrides=SMALL + ["train.max_steps=4"],
                     device="cpu")
    wa = load_file(str(trained_run / "model" / "model.safetensors"))
    wb = load_file(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys()
    worst = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
    assert worst <= 1e-6, worst
    lines = (trained_run / "logs" / "metrics.jsonl").read_text().splitlines()
    assert any('"split": "val"' in ln for ln in lines) and any('"d_loss"' in ln for ln in lines)
    assert (trained_run / "checkpoints" / "best" / "model.safetensors").is_file()


def test_a_kept_step_forks_a_new_run_that_continues_it(identity, trained_run, tmp_path):
    src = tmp_path / "src"
    train_sovqae([identity], src, preset="tiny", device="cpu",
                 overrides=SMALL + ["train.max_steps=3", "train.keep_every=1", "train.checkpoint_every=1000"])
    kept = sorted(p.name for p in (src / "checkpoints").glob("step_*"))
    assert kept == ["step_0000001", "step_0000002", "step_0000003"]
    # a new run from step 2 under the settings of the uninterrupted run ends where that run ended
    fork = train_sovqae([identity], tmp_path / "fork", preset="tiny", device="cpu",
                        overrides=SMALL + ["train.max_steps=4"], start_from=src / "checkpoints" / "step_0000002")
    wa = load_file(str(trained_run / "model" / "model.safetensors"))
    wf = load_file(str(fork / "model.safetensors"))
    assert max(float((wa[k] - wf[k]).abs().max()) for k in wa) <= 1e-6
    lines = (tmp_path / "fork" / "logs" / "metrics.jsonl").read_text().splitlines()
    assert min(json.loads(ln)["step"] for ln in lines) == 3  # it trained steps 3-4 only
    with pytest.raises(CheckpointError, match="trainer state"):  # best holds weights only
        train_sovqae([identity], tmp_path / "bad", preset="tiny", device="cpu", overrides=SMALL,
                     start_from=src / "checkpoints" / "best")


def test_export_loads_and_restores(identity, trained_run):
    model = load_sovqae(trained_run, device="cpu")  # a run folder resolves to run/model
    assert not model.training and model.config.resolution == 32
    frames = (np.random.default_rng(0).random((3, 32, 32, 3)) * 255).astype(np.uint8)
    out = restore(model, frames, batch_size=2)
    assert out.dtype == np.uint8 and out.shape == (3, 32, 32, 3)
    imgs = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    out_f = restore(model, imgs)
    assert out_f.dtype == torch.float32 and out_f.shape == (3, 3, 32, 32) and 0 <= out_f.min() <= out_f.max() <= 1
    assert np.abs(out.astype(int) - (out_f.permute(0, 2, 3, 1).numpy() * 255).round()).max() <= 1
    # on a CPU the faces go through a few at a time whatever batch is asked (the same result, faster)
    assert batch_for(torch.device("cpu"), 16) == CPU_BATCH and batch_for(torch.device("cuda"), 64) == 64
    assert np.array_equal(restore(model, frames, batch_size=16), restore(model, frames, batch_size=1))
    with pytest.raises(CheckpointError):
        load_sovqae(identity)
    # the model remembers how its faces were cut, for enhance/generate to default to
    assert crop_geometry(trained_run) == Identity.open(identity).crop_geometry()
    assert crop_geometry(trained_run)["detector"] == "fake" and crop_geometry(trained_run)["pads"] == [0, 10, 0, 0]


def test_analysis_end_to_end(identity, trained_run, tmp_path):
    from ladtalk.analyze import analyze

    rep = analyze(trained_run / "model", identity, tmp_path / "report", max_frames=2, device="cpu", seed=0)
    out = tmp_path / "report"
    assert {"report.json", "report.md", "blur.png", "noise.png"} <= {p.name for p in out.iterdir()}
    t = rep["theory"]
    assert t["codes"]["d_C"] > 0 and t["gamma"]["gamma"] >= t["gamma"]["p50"] > 0
    # each convolution's FFT upper bound is at least its power-iteration lower estimate (a wrong bound fails here,
    # unlike a composed 10^9 against a Jacobian near 1)
    lip = t["lipschitz"]
    assert lip["convs"] >= 10 and lip["conv_bound_over_estimate_min"] >= 1 - 1e-4
    assert lip["log10_L_E_local_bound"] >= lip["log10_L_E_power_iteration_estimate"]
    # the Jacobian and degradation gains are lower estimates of the same L_E, measured along the data
    assert 0 < t["L_E_jacobian_estimate"] and 0 < t["L_E_degradation_gain_estimate"]
    assert t["nroub_jacobian_estimate"] == pytest.approx(
        (t["codes"]["d_C"] - 2 * t["gamma"]["gamma"]) / (2 * t["L_E_jacobian_estimate"]))
    assert t["gamma_test"]["count"] > 0 and 0 <= t["test_latents_within_gamma"] <= 1
    md = (out / "report.md").read_text()
    assert "local bound" in md and "lower estimate" in md and "upper estimate" in md and "gamma over test" in md
    kinds = [r["kind"] for r in rep["experiments"]]
    assert kinds.count("blur") == 5 and kinds.count("noise") == 5 and "down_up" in kinds
    none = rep["experiments"][0]
    assert none["codes_unchanged"] == 1.0 and none["psnr_degraded"] == 100.0
    noise = [r for r in rep["experiments"] if r["kind"] == "noise"]
    assert noise[0]["psnr_degraded_region"] > noise[-1]["psnr_degraded_region"]
    assert "NRoUB" in (out / "report.md").read_text()


def test_the_summary_warns_of_a_validation_that_got_worse_and_of_faces_made_worse(tmp_path):
    from ladtalk.train.sovqae import summary_of

    final = {"recon_psnr": 30.0, "restore_psnr_mean": 28.0, "lipsync_psnr_input": 31.0, "lipsync_psnr_restored": 30.5}
    figures, warnings = summary_of(tmp_path / "model", final, best=31.2, best_step=250, step=500, run_dir=tmp_path)
    assert figures["model"] == str(tmp_path / "model") and figures["lip-sync faces restored (PSNR dB)"] == 30.5
    assert len(warnings) == 2
    assert "makes the lip-sync model's held-out faces worse (31.00 -> 30.50 dB)" in warnings[0]
    assert "validation got worse: 30.50 dB at the end against 31.20 dB at step 250" in warnings[1]
    assert str(tmp_path / "checkpoints" / "best") in warnings[1]
    better = {**final, "lipsync_psnr_restored": 31.15}  # within 0.1 dB of the best: no warning
    assert summary_of(tmp_path / "model", better, best=31.2, best_step=250, step=500, run_dir=tmp_path)[1] == []
    # the patch-GAN phase after the best trades up to 1 dB for sharper detail by design: a figure, not a warning
    figures, warnings = summary_of(tmp_path / "model", {**final, "lipsync_psnr_restored": 31.5}, best=31.9,
                                   best_step=400, step=500, run_dir=tmp_path, gan_start=400)
    assert warnings == [] and figures["before the patch-GAN phase (PSNR dB, step 400; checkpoints/best)"] == 31.9
    worse = summary_of(tmp_path / "model", {**final, "lipsync_psnr_restored": 31.5}, best=32.6, best_step=400,
                       step=500, run_dir=tmp_path, gan_start=400)[1]
    assert len(worse) == 1 and "validation got worse" in worse[0]  # more than 1 dB is still a warning
