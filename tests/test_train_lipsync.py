"""Lip-sync training: a few steps run, the loss falls on one batch, runs resume, exports load."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _lipsync_fake import make_talking_identity

from ladtalk.data.augment import augment_faces, augment_mels
from ladtalk.data.lipsync import NEAR_OFFSETS, GeneratorSamples, SyncPairs, find_clips
from ladtalk.errors import CheckpointError, InputError
from ladtalk.lipsync_weights import load_syncnet_expert, load_wav2lip
from ladtalk.losses.lipsync import cosine_bce, expert_sync_loss, lower_half_stack
from ladtalk.models.syncnet import SyncNetColor, SyncNetConfig
from ladtalk.models.wav2lip import Wav2Lip, Wav2LipConfig
from ladtalk.train.syncnet import train_syncnet
from ladtalk.train.wav2lip import train_wav2lip

FAST = ["train.batch_size=4", "train.eval_batches=1", "train.log_every=1"]


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    return make_talking_identity(tmp_path_factory.mktemp("ident") / "id", seconds=3.0, size=64)


def _steps(run_dir, split="train"):
    lines = (run_dir / "logs" / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines if json.loads(line)["split"] == split]


def test_lower_half_stack_is_frame_major():
    frames = torch.arange(2 * 3 * 5 * 4 * 4, dtype=torch.float32).reshape(2, 3, 5, 4, 4)
    out = lower_half_stack(frames)
    assert out.shape == (2, 15, 2, 4)
    torch.testing.assert_close(out[:, 3:6], frames[:, :, 1, 2:])  # frame 1's B,G,R


@pytest.fixture
def flush_denormals():
    # tiny nets trained at a high rate produce denormal floats, which are many times slower on x86 CPUs
    torch.set_flush_denormal(True)
    yield
    torch.set_flush_denormal(False)


def test_losses_fall_on_one_batch(identity, flush_denormals):
    torch.manual_seed(0)
    clips = find_clips([identity], img_size=48)
    x, indiv, mel, gt = (torch.stack(v) for v in zip(*[GeneratorSamples(clips, 4, seed=0)[i] for i in range(4)]))
    gen = Wav2Lip(Wav2LipConfig(width=0.125, img_size=48))
    opt = torch.optim.Adam(gen.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = F.l1_loss(gen(indiv, x), gt)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < 0.8 * losses[0]
    mels, faces, ys = (torch.stack(v) for v in zip(*[SyncPairs(clips, 8, seed=0)[i] for i in range(8)]))
    expert = SyncNetColor(SyncNetConfig(width=0.125, img_size=48))
    opt = torch.optim.Adam(expert.parameters(), lr=2e-3)
    losses = []
    for _ in range(15):
        loss = cosine_bce(*expert(mels, faces), ys)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < 0.7 * losses[0]
    assert expert_sync_loss(expert, mels[:4], gt).item() > 0


def test_augmentation_moves_the_five_frames_alike_and_stays_in_range():
    g = torch.Generator().manual_seed(0)
    frame = torch.rand(4, 3, 24, 48)
    faces = frame.repeat(1, 5, 1, 1)  # five identical frames per sample
    out = augment_faces(faces, g)
    assert out.shape == faces.shape and 0 <= out.min() and out.max() <= 1
    torch.testing.assert_close(out[:, :3], out[:, 12:15])  # one transform for the whole window
    assert (out - faces).abs().mean() > 0.01  # and it did change the images
    mels = torch.rand(4, 1, 80, 16) * 8 - 4
    aug = augment_mels(mels, g)
    assert aug.shape == mels.shape and aug.min() >= -4 and aug.max() <= 4 and not torch.equal(aug, mels)


def test_near_negatives_lie_close_to_the_true_window(identity):
    clips = find_clips([identity], img_size=48)
    pairs = SyncPairs(clips, 64, seed=0, near_negatives=1.0)
    clip = pairs.clips[0]
    rng = np.random.default_rng(0)
    t = int(clip.starts[len(clip.starts) // 2])
    offsets = {abs(pairs._negative(rng, clip, t) - t) for _ in range(50)}
    assert min(offsets) >= NEAR_OFFSETS[0] and max(offsets) <= NEAR_OFFSETS[1]
    # without near negatives the draws are those of the original sampler (old runs resume identically)
    a, b = SyncPairs(clips, 8, seed=3), SyncPairs(clips, 8, seed=3, near_negatives=0.0)
    assert all(torch.equal(a[i][1], b[i][1]) for i in range(8))


def test_a_mouth_crop_expert_sees_the_mouth_only_and_round_trips(tmp_path):
    from ladtalk.checkpoint import save_component
    from ladtalk.models.syncnet import MOUTH_COLS, MOUTH_ROWS

    cfg = SyncNetConfig(width=0.125, img_size=96, mouth_crop=True)
    expert = SyncNetColor(cfg).eval()
    face = torch.rand(2, 15, 48, 96)
    elsewhere = torch.rand_like(face)
    elsewhere[:, :, MOUTH_ROWS, MOUTH_COLS] = face[:, :, MOUTH_ROWS, MOUTH_COLS]
    with torch.no_grad():  # cheeks, chin and background do not count; the mouth does
        torch.testing.assert_close(expert.embed_face(elsewhere), expert.embed_face(face))
        changed = face.clone()
        changed[:, :, MOUTH_ROWS, MOUTH_COLS] = 0.5
        assert not torch.allclose(expert.embed_face(changed), expert.embed_face(face))
    save_component(tmp_path / "mouth", "syncnet_expert", cfg, expert.state_dict())
    assert load_syncnet_expert(tmp_path / "mouth").config == cfg
    with pytest.raises(ValueError, match="img_size 96"):
        SyncNetConfig(img_size=48, mouth_crop=True)


def test_train_expert_then_generator_resume_and_export(identity, tmp_path, capsys):
    run = tmp_path / "sync"
    out = train_syncnet([identity], run, preset="syncnet-tiny",
                        overrides=[*FAST, "train.max_steps=3", "train.eval_every=2", "model.width=0.125",
                                   "train.augment=true", "train.near_negatives=0.5"],
                        device="cpu")
    said = capsys.readouterr().err
    # the summary names the model and what it reached, and warns that 4 held-out samples cannot tell
    assert str(out) in said and "held-out accuracy" in said and "warning: only 4 held-out samples" in said
    assert _steps(run) == [1, 2, 3] and _steps(run, "val") == [2, 3]
    out = train_syncnet([identity], run, preset="syncnet-tiny",
                        overrides=[*FAST, "train.max_steps=5", "train.eval_every=2", "model.width=0.125"],
                        device="cpu")
    assert _steps(run) == [1, 2, 3, 4, 5]  # resumed at step 4, not from scratch
    expert = load_syncnet_expert(out)
    assert expert.config == SyncNetConfig(width=0.125, img_size=48)
    # fine-tuning starts from the given weights and keeps their geometry over the preset's width
    tuned = load_syncnet_expert(train_syncnet([identity], tmp_path / "tuned", preset="syncnet-tiny", init_path=out,
                                              overrides=[*FAST, "train.max_steps=1", "train.lr=1e-9"], device="cpu"))
    assert tuned.config == expert.config  # (one step at lr 1e-9 moves no weight visibly; batch norm is a buffer)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(tuned.parameters(), expert.parameters()))

    wrun = tmp_path / "w2l"
    common = [*FAST, "train.eval_every=2", "model.width=0.125", "train.gan=true", "train.sync_threshold=100"]
    train_wav2lip([identity], wrun, syncnet_path=run, preset="wav2lip-tiny",
                  overrides=[*common, "train.max_steps=2"], device="cpu")
    model_dir = train_wav2lip([identity], wrun, syncnet_path=run / "model", preset="wav2lip-tiny",
                              overrides=[*common, "train.max_steps=4"], device="cpu")
    records = [json.loads(line) for line in (wrun / "logs" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["split"] == "train"]
    assert [r["step"] for r in train] == [1, 2, 3, 4]
    # the sync loss switched on at the first evaluation (threshold 100) and stayed on after the resume
    assert train[0]["syncnet_wt"] == 0.0 and train[2]["syncnet_wt"] == 0.03 and train[2]["sync"] > 0
    assert "disc" in train[0]
    extra = json.loads((model_dir / "config.json").read_text())["extra"]
    assert extra["sync_loss_on"] and extra["sync_loss_on_step"] == 2 and "l1" in extra["val"]
    assert extra["mel_offset_frames"] == -1  # what generate() must feed it (lipsync_weights.wav2lip_mel_offset)
    assert re.search(r"sync loss switched on at step +2", capsys.readouterr().err)
    assert any((wrun / "samples").glob("step_*.png"))
    gen = load_wav2lip(model_dir)
    assert gen.config == Wav2LipConfig(width=0.125, img_size=48)
    with torch.no_grad():
        assert gen(torch.zeros(1, 1, 80, 16), torch.rand(1, 6, 48, 48)).shape == (1, 3, 48, 48)
    # train.seed alone decides the generator's initial weights, whatever the process drew before the run
    def first_weights(name, seed):
        torch.rand(7)
        out = train_wav2lip([identity], tmp_path / name, syncnet_path=run / "model", preset="wav2lip-tiny",
                            overrides=[*FAST, "model.width=0.125", "train.max_steps=1", f"train.seed={seed}"],
                            device="cpu")
        return torch.cat([p.flatten() for p in load_wav2lip(out).parameters()])
    seed1 = first_weights("seed1", 1)
    assert torch.equal(seed1, first_weights("seed1_again", 1)) and not torch.allclose(seed1, first_weights("seed2", 2))
    # fine-tuning from the exported model, with an expert of another face size, is refused clearly
    big = tmp_path / "expert96"
    from ladtalk.checkpoint import save_component
    cfg96 = SyncNetConfig(width=0.125, img_size=96)
    save_component(big, "syncnet_expert", cfg96, SyncNetColor(cfg96).state_dict())
    with pytest.raises(InputError, match="img_size"):
        train_wav2lip([identity], tmp_path / "w2", syncnet_path=big, init_path=model_dir, preset="wav2lip-tiny",
                      overrides=FAST, device="cpu")
    with pytest.raises(CheckpointError, match="syncnet_expert"):
        train_wav2lip([identity], tmp_path / "w3", syncnet_path=model_dir, preset="wav2lip-tiny", device="cpu")
    assert not (tmp_path / "w2").exists() and not (tmp_path / "w3").exists()  # nothing partial written
    assert np.isfinite(json.loads((model_dir / "config.json").read_text())["extra"]["steps"])


def test_the_trainers_refuse_an_output_over_their_inputs_when_called_from_python(identity, tmp_path):
    with pytest.raises(InputError, match="is the training data"):
        train_syncnet([identity], identity, preset="syncnet-tiny", device="cpu")
    with pytest.raises(InputError, match="is the --syncnet weights"):
        train_wav2lip([identity], tmp_path / "expert", syncnet_path=tmp_path / "expert", preset="wav2lip-tiny",
                      device="cpu")
    assert not (tmp_path / "expert").exists()
