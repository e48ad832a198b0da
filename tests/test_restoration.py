"""The restorer's training options (degradation-aware inputs, patches, dead-code restarts, held-out slice), the
training fixes of issue 14, the mouth paste, and the self-reenactment protocol end to end."""

import json

import numpy as np
import pytest
import torch
from _sovqae_fake import make_identity, one_thread

from ladtalk.data.degrade import restoration_training_degradation
from ladtalk.data.identity import Identity
from ladtalk.face.crop import lower_face_mask, paste_faces
from ladtalk.losses.codebook import min_code_distance
from ladtalk.metrics.spectrum import laplacian_energy
from ladtalk.models.sovqae import SOVQAE, SOVQAEConfig
from ladtalk.presets import load_preset
from ladtalk.reenact import reenact
from ladtalk.train.sovqae import train_sovqae
from ladtalk.train.sovqae_data import CropStore, DeadCodes, random_patches

_ = one_thread


def test_lower_face_mask_keeps_the_upper_face():
    m = lower_face_mask(100)
    assert m[:45].max() == 0.0  # eyes and brows: the reference frame's own pixels
    assert m[75, 50] == pytest.approx(1.0)  # the mouth: fully replaced
    assert m[75, 0] < 0.1 and m[-1, 50] < 0.1  # feathered at the sides and the bottom


def test_mouth_paste_changes_only_the_lower_face():
    frames = np.full((1, 64, 64, 3), 100, np.uint8)
    faces = np.full((1, 32, 32, 3), 200, np.uint8)
    out = paste_faces(frames, faces, np.array([[16.0, 16, 48, 48]]), mode="mouth")
    assert (out[0, :30] == 100).all()  # above 45% of the box nothing moves
    assert out[0, 40, 32, 0] > 190  # the mouth is the pasted face
    hard = paste_faces(frames, faces, np.array([[16.0, 16, 48, 48]]), mode="hard")
    assert (hard[0, 16:48, 16:48] == 200).all()


def test_training_degradation_is_seeded_and_keeps_a_clean_share():
    x = torch.rand(6, 3, 64, 64)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    a = restoration_training_degradation(x, g1, clean_share=0.0)
    b = restoration_training_degradation(x, g2, clean_share=0.0)
    assert torch.equal(a, b) and a.shape == x.shape and 0 <= a.min() and a.max() <= 1
    assert all((a[i] - x[i]).abs().mean() > 1e-3 for i in range(6))  # every image degraded
    clean = restoration_training_degradation(x, torch.Generator().manual_seed(1), clean_share=1.0)
    assert torch.equal(clean, x)


def test_random_patches_cut_the_same_window_from_input_and_target():
    x = torch.arange(2 * 3 * 16 * 16, dtype=torch.float32).view(2, 3, 16, 16)
    a, b = random_patches([x, x + 1], 8, torch.Generator().manual_seed(0))
    assert a.shape == (2, 3, 8, 8) and torch.equal(a + 1, b)


def test_holdout_slice_is_the_end_of_the_train_split_and_never_trained_on(tmp_path):
    ident = Identity.open(make_identity(tmp_path / "id", n_frames=40, size=32))
    store = CropStore([ident], torch.device("cpu"), "auto", holdout_fraction=0.1)
    train, held = store.sources[0][1], store.holdout[0][1]
    assert len(held) == round(0.1 * len(ident.train_indices))
    assert set(train).isdisjoint(held) and held.min() > train.max()
    assert set(store.index[:, 1]) == set(train)


def test_dead_codes_restart_on_latents_and_used_codes_stay():
    torch.manual_seed(0)
    cfg = SOVQAEConfig.from_dict(load_preset("tiny")["model"])
    model = SOVQAE(cfg)
    before = model.quantize.embedding.weight.detach().clone()
    dead_codes = DeadCodes(cfg.n_embed, every=2, device=torch.device("cpu"))
    x, gen = torch.rand(2, 3, 64, 64) * 2 - 1, torch.Generator().manual_seed(0)
    assert dead_codes.update(model, torch.arange(5), x, 0, gen) == {}  # codes 0-4 used at step 0: no restart yet
    n = dead_codes.update(model, torch.arange(5, 10), x, 1, gen)["restarted_codes"]  # 5-9 at step 1: restart
    after = model.quantize.embedding.weight.detach()
    assert n == cfg.n_embed - 10 and dead_codes.counts.sum() == 0
    assert torch.equal(after[:10], before[:10]) and not torch.equal(after[10:], before[10:])
    # the restarted codes sit at the latents, far from taming's uniform(+-1/N) init
    assert after[10:].norm(dim=1).mean() > 10 * before[10:].norm(dim=1).mean()


def test_regulariser_distance_is_exact_under_bf16_autocast():
    """Codes of norm ~15 whose closest pair is 0.3 apart: bf16 matmuls would cancel catastrophically."""
    g = torch.Generator().manual_seed(0)
    e = torch.randn(256, 64, generator=g)
    e = 15 * e / e.norm(dim=1, keepdim=True)
    e[1] = e[0] + 0.3 * torch.nn.functional.normalize(torch.randn(64, generator=g), dim=0)
    exact = float(torch.cdist(e.double(), e.double()).fill_diagonal_(float("inf")).min())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        d = float(min_code_distance(e))
    assert d == pytest.approx(exact, rel=1e-5)


def test_restorer_preset_trains_on_patches_with_degraded_inputs(tmp_path):
    ident = make_identity(tmp_path / "id", n_frames=24, size=32)
    over = ["model.resolution=32", "model.ch=8", "train.patch_size=16", "train.batch_size=4", "train.max_steps=4",
            "train.restart_dead_every=2", "train.val_every=1000", "train.val_frames=4", "train.log_every=1",
            "train.warmup_steps=2"]
    model_dir = train_sovqae([ident], tmp_path / "run", preset="restore-cpu", overrides=over, device="cpu")
    meta = json.loads((model_dir / "config.json").read_text())
    assert meta["extra"]["validation_split"] == "holdout"
    assert {"d_C_used", "dead_codes"} <= set(meta["extra"]["validation"])
    logs = [json.loads(x) for x in (tmp_path / "run" / "logs" / "metrics.jsonl").read_text().splitlines()]
    lrs = [x["lr"] for x in logs if x.get("split") == "train"]
    assert lrs[0] < lrs[1]  # warm-up
    with pytest.raises(Exception, match="patch_size"):
        train_sovqae([ident], tmp_path / "bad", preset="restore-cpu", overrides=over + ["train.patch_size=12"],
                     device="cpu")


def test_laplacian_energy_tells_sharp_from_blurred():
    rng = np.random.default_rng(0)
    sharp = (rng.random((2, 32, 32, 3)) * 255).astype(np.uint8)
    import cv2
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 2) for f in sharp])
    assert (laplacian_energy(blurred) < 0.2 * laplacian_energy(sharp)).all()


def test_guided_decoder_starts_as_the_enlarged_thumbnail_and_needs_its_input():
    torch.manual_seed(0)
    cfg = SOVQAEConfig.from_dict({**load_preset("tiny")["model"], "lowres_guide": True})
    model = SOVQAE(cfg).eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        recon, _, _ = model(x)
        thumb = torch.nn.functional.interpolate(x, size=(8, 8), mode="area")
        base = torch.nn.functional.interpolate(thumb, scale_factor=8, mode="bicubic", align_corners=False)
    assert torch.allclose(recon, base, atol=1e-6)
    with pytest.raises(ValueError, match="guide"):
        model.decode(model.encode(x)[0])


def test_a_finer_guide_starts_as_that_thumbnail_enlarged_and_the_scale_is_checked():
    torch.manual_seed(0)
    tiny = load_preset("tiny")["model"]
    model = SOVQAE(SOVQAEConfig.from_dict({**tiny, "lowres_guide": True, "guide_scale": 2})).eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        recon, _, _ = model(x)
        thumb = torch.nn.functional.interpolate(x, size=(16, 16), mode="area")  # 2 x the 8x8 code grid
        base = torch.nn.functional.interpolate(thumb, size=(64, 64), mode="bicubic", align_corners=False)
    assert torch.allclose(recon, base, atol=1e-6)
    with pytest.raises(ValueError, match="guide_scale"):
        SOVQAEConfig.from_dict({**tiny, "lowres_guide": True, "guide_scale": 16})


def test_skip_fusion_starts_as_the_model_without_it_and_its_correction_is_trained():
    torch.manual_seed(0)
    tiny = {**load_preset("tiny")["model"], "lowres_guide": True}
    fused = SOVQAE(SOVQAEConfig.from_dict({**tiny, "skip_levels": 2}))
    torch.nn.init.normal_(fused.decoder.conv_out.weight, std=0.01)  # as after a step: gradients reach the decoder
    plain = SOVQAE(SOVQAEConfig.from_dict(tiny))
    missing, unexpected = plain.load_state_dict(fused.state_dict(), strict=False)
    assert not missing and unexpected and all(k.startswith("decoder.fuse.") for k in unexpected)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    recon, vq, _ = fused(x)
    with torch.no_grad():
        assert torch.allclose(recon, plain(x)[0], atol=1e-6)
        assert torch.allclose(fused.decode(fused.encode(x)[0], x), recon, atol=1e-6)  # features recomputed
    (recon.pow(2).mean() + vq).backward()
    assert fused.decoder.fuse[0].conv2.weight.grad.abs().sum() > 0
    with torch.no_grad():
        fused.decoder.fuse[0].conv2.weight.normal_(std=0.1)  # a trained fusion (a uniform one GroupNorm undoes)
        assert not torch.allclose(fused(x)[0], recon.detach(), atol=1e-3)
    assert not any(".fuse." in k for k in SOVQAE(SOVQAEConfig.from_dict(tiny)).state_dict())
    with pytest.raises(ValueError, match="skip_levels"):
        SOVQAEConfig.from_dict({**tiny, "skip_levels": len(tiny["ch_mult"])})


def test_inference_encodes_once_and_matches_the_separate_passes():
    from ladtalk.metrics.nroub import difference_ratios
    from ladtalk.pipeline.restore import restore_images_with_latents

    torch.manual_seed(0)
    tiny = {**load_preset("tiny")["model"], "lowres_guide": True, "skip_levels": 2}
    model = SOVQAE(SOVQAEConfig.from_dict(tiny)).eval()
    torch.nn.init.normal_(model.decoder.fuse[0].conv2.weight, std=0.1)  # a fusion that changes the output
    clean = torch.rand(3, 3, 64, 64)
    noisy = (clean + 0.1 * torch.randn_like(clean)).clamp(0, 1)
    restored, indices, latents = restore_images_with_latents(model, noisy, batch_size=2)
    with torch.no_grad():
        x = noisy * 2 - 1
        z_q, _, expected_indices = model.encode(x)
        expected = ((model.decode(z_q, x) + 1) / 2).clamp(0, 1)  # skip features recomputed from the input
        assert torch.allclose(latents, model.encode_latent(x), atol=1e-5)  # batches of 2 against 3
        ratios = difference_ratios(model.encode_latent(clean * 2 - 1), model.encode_latent(x), clean * 2 - 1, x)
    assert torch.equal(indices, expected_indices) and torch.allclose(restored, expected, atol=1e-5)
    _, _, clean_latents = restore_images_with_latents(model, clean)
    assert torch.allclose(difference_ratios(clean_latents, latents, clean * 2 - 1, x), ratios, rtol=1e-4)


def test_lipsync_patches_can_be_held_to_the_lower_face():
    rows = torch.arange(8, dtype=torch.float32)[:, None, None, None] + torch.zeros(8, 3, 256, 256)
    rows[:, :, :, :] += torch.arange(256, dtype=torch.float32)[None, None, :, None] * 10  # value = row + 10 * y
    lower = [i % 2 == 0 for i in range(8)]
    for seed in range(20):
        (p,) = random_patches([rows], 128, torch.Generator().manual_seed(seed), lower)
        top = ((p[:, 0, 0, 0] - torch.arange(8)) / 10).round().long()  # the y where each window starts
        assert all(64 <= int(y) <= 128 for y, on in zip(top, lower) if on)
        assert all(0 <= int(y) <= 128 for y in top)


def test_reenact_refuses_a_report_folder_over_its_inputs(synthetic_identity, tiny_models):
    from ladtalk.errors import InputError

    with pytest.raises(InputError, match="destroy"):
        reenact(synthetic_identity, tiny_models / "wav2lip", synthetic_identity / "report", device="cpu", lpips=False)


def test_restorer_learns_from_the_lipsync_models_own_faces(synthetic_identity, tiny_models, tmp_path):
    from ladtalk.train.lipsync_inputs import lipsync_faces_of_frames

    over = ["model.resolution=32", "model.ch=8", "train.patch_size=16", "train.batch_size=4", "train.max_steps=3",
            "train.val_every=1000", "train.val_frames=4", "train.log_every=1", "train.lipsync_share=1.0"]
    run = tmp_path / "run"
    model_dir = train_sovqae([synthetic_identity], run, preset="restore-cpu", overrides=over, device="cpu",
                             wav2lip_path=tiny_models / "wav2lip")
    ident = Identity.open(synthetic_identity)
    faces = np.load(run / "lipsync_inputs.npy")
    assert faces.shape == (len(ident.train_indices), ident.crop_size, ident.crop_size, 3)
    validation = json.loads((model_dir / "config.json").read_text())["extra"]["validation"]
    assert 5 < validation["lipsync_psnr_input"] < 100 and 0 < validation["lipsync_psnr_restored"] < 100
    # the stored faces are what the cascade hands the restorer for those frames driven by their own audio
    frame = int(ident.train_indices[7])
    again = lipsync_faces_of_frames(ident, tiny_models / "wav2lip", np.array([frame]), ident.crop_size,
                                    torch.device("cpu"))
    # (alone or in a batch of 32: the kernels may round one level differently)
    assert np.abs(again[0].astype(int) - faces[7]).max() <= 2
    # a resumed run reuses them rather than running the lip-sync model again
    stamp = (run / "lipsync_inputs.npy").stat().st_mtime_ns
    train_sovqae([synthetic_identity], run, preset="restore-cpu", overrides=over[:4] + ["train.max_steps=4"]
                 + over[5:], device="cpu", wav2lip_path=tiny_models / "wav2lip")
    assert (run / "lipsync_inputs.npy").stat().st_mtime_ns == stamp


def test_the_lipsync_down_up_is_wav2lips_96_px_or_three_eighths_of_small_crops():
    from ladtalk.data.degrade import lipsync_size

    assert [lipsync_size(s) for s in (512, 256, 192, 128, 16)] == [96, 96, 96, 48, 8]
