"""`reenact`: every paste with its three rows, gains read under the same paste, intervals and provenance."""

import json

import numpy as np
import pytest

from ladtalk.data.identity import Identity
from ladtalk.reenact import reenact


def test_reenact_scores_every_paste_against_the_test_frames(synthetic_identity, tiny_models, tmp_path):
    out = tmp_path / "report"
    with pytest.warns(UserWarning, match="under 4 s"):
        report = reenact(synthetic_identity, tiny_models / "wav2lip", out, sovqae_path=tiny_models / "sovqae",
                         device="cpu", lpips=False)
    ident = Identity.open(synthetic_identity)
    start, stop = report["test_frames"]
    assert start == ident.test_indices.min() and stop == ident.test_indices.max() + 1
    assert report["pastes"] == ["hard", "feather", "mouth"] and report["lipsync_face_size"] == 48
    scores = report["scores"]
    assert set(scores) == {f"{stage}_{p}" for stage in ("wav2lip", "cascade", "crop_ceiling")
                           for p in ("hard", "feather", "mouth")}
    for key, s in scores.items():
        assert {"frame_psnr_db", "face_psnr_db", "mouth_psnr_db", "face_ssim", "mouth_sharpness_ratio",
                "mouth_energy_ratio_octave_1", "face_warp_error_ratio", "face_own_flow_warp_error_ratio",
                "lipsync_r", "lipsync_best_lag_frames"} <= set(s), key
        low, high = s["ci95"]["face_psnr_db"]
        assert low <= s["face_psnr_db"] <= high
        assert -1 <= s["lipsync_r"] <= 1
    for p in ("hard", "feather", "mouth"):
        w2l, ceiling = scores[f"wav2lip_{p}"], scores[f"crop_ceiling_{p}"]
        assert w2l["mouth_psnr_db"] < w2l["face_psnr_db"] < w2l["frame_psnr_db"]  # the mouth is where frames differ
        # the true crops pasted the same way: what a perfect restorer at this crop size would score
        assert ceiling["face_psnr_db"] > scores[f"cascade_{p}"]["face_psnr_db"] + 3 and ceiling["mouth_psnr_db"] > 30
        assert ceiling["mouth_sharpness_of_ceiling"] == 1
        # a cascade's gain is against Wav2Lip alone under the same paste, with a paired interval
        gain = report["gains"][f"cascade_{p}"]
        assert gain["face_psnr_gain_db"] == pytest.approx(scores[f"cascade_{p}"]["face_psnr_db"]
                                                          - w2l["face_psnr_db"])
        assert gain["ci95"]["face_psnr_gain_db"][0] <= gain["face_psnr_gain_db"] <= gain["ci95"]["face_psnr_gain_db"][1]
    # the mouth paste keeps the upper face the identity's own: the paste's effect, reported on Wav2Lip alone
    assert report["paste_effect"]["wav2lip_mouth"]["face_psnr_gain_db"] > 0
    assert set(report["paste_effect"]) == {"wav2lip_feather", "wav2lip_mouth"}
    prov = report["provenance"]
    assert {"commit", "precision", "threads", "cpu", "cpu_flags", "torch"} <= set(prov)
    assert json.loads((out / "report.json").read_text()) == report
    md = (out / "report.md").read_text()
    assert "## hard paste" in md and "true crops pasted" in md and "Measured at commit" in md
    for name in ("report.json", "report.md", "strip.png", "wav2lip_only_mouth.mp4", "cascade_hard.mp4",
                 "ground_truth.mp4", "true_crops_pasted_feather.mp4"):
        assert (out / name).is_file(), name
    assert not [p for p in out.iterdir() if ".partial" in p.name]


def test_one_paste_the_temporal_row_and_lse_with_intervals(synthetic_identity, tiny_models, tmp_path):
    import torch

    from ladtalk.models.syncnet import SyncNetS

    torch.manual_seed(0)
    torch.save(SyncNetS().state_dict(), tmp_path / "syncnet_v2.model")  # the real layout, random weights
    with pytest.warns(UserWarning):
        report = reenact(synthetic_identity, tiny_models / "wav2lip", tmp_path / "r", paste="mouth", device="cpu",
                         lpips=False, max_frames=8, temporal_filter=True, syncnet_path=tmp_path / "syncnet_v2.model")
    assert set(report["scores"]) == {"wav2lip_mouth", "wav2lip_temporal_mouth", "crop_ceiling_mouth"}
    assert set(report["gains"]) == {"wav2lip_temporal_mouth"} and not report["paste_effect"]
    assert report["frames_scored"] == 8 and np.isfinite(report["scores"]["wav2lip_mouth"]["face_tof"])
    for row in (*report["scores"].values(), report["truth"]):  # LSE beside the other figures, with its interval
        for key in ("lse_d", "lse_c"):
            low, high = row["ci95"][key]
            assert low <= row[key] <= high, key
        assert "face_psnr_db" in row["ci95"] or row is report["truth"]
    md = (tmp_path / "r" / "report.md").read_text()
    assert "| lse_d | " in md and "Ground truth: lse_d " in md and "lse_d" in md.split("Ground truth:")[1]
