"""The README's main job, `ladtalk demo`, end to end at a token training length (the real run takes ~8 minutes)."""

import json

from ladtalk.demo import demo


def test_demo_runs_end_to_end_and_scores_every_paste(tmp_path):
    steps = ["train.max_steps=3"]
    small_sovqae = steps + ["model.resolution=64", "train.patch_size=32", "train.val_frames=4"]
    summary = demo(tmp_path / "demo", device="cpu", train_seconds=6.0, test_seconds=1.5,
                   overrides={"syncnet": steps, "wav2lip": steps, "sovqae": small_sovqae}, lpips=False,
                   base="train")
    assert summary["frames"] == 38  # 1.5 s at 25 fps, rounded
    scores = summary["scores"]
    assert set(scores) == {f"{stage}_{p}" for stage in ("wav2lip", "cascade", "cascade_temporal", "crop_ceiling")
                           for p in ("hard", "feather", "mouth")}
    for key, s in scores.items():
        assert -1.0 <= s["lipsync_r"] <= 1.0 and 0 < s["face_psnr_db"] < 60 and 0 < s["face_ssim"] <= 1, key
        assert s["mouth_psnr_db"] < 60 and s["mouth_sharpness_ratio"] > 0
        low, high = s["ci95"]["face_psnr_db"]
        assert low <= s["face_psnr_db"] <= high and high > low  # 38 frames: more than two blocks of 15
    # the mouth paste leaves the upper face the identity's own: the paste's effect, on Wav2Lip alone
    assert summary["paste_effect"]["wav2lip_mouth"]["face_psnr_gain_db"] >= 0
    assert set(summary["gains"]) == {f"{stage}_{p}" for stage in ("cascade", "cascade_temporal")
                                     for p in ("hard", "feather", "mouth")}
    # the truth's own crops pasted back: the ceiling of any restorer at this crop size, far above both stages
    for p in ("hard", "feather", "mouth"):
        ceiling = scores[f"crop_ceiling_{p}"]
        assert ceiling["face_psnr_db"] > scores[f"cascade_{p}"]["face_psnr_db"] + 3 and ceiling["face_ssim"] > 0.9
    written = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert written["scores"] == summary["scores"] and written["provenance"]["threads"] >= 1
    assert summary["lipsync_face_size"] == 48
    # the boxes it scored the face and the mouth in, for bench/restorer_headroom.py to use as they are
    (fx1, fy1, fx2, fy2), (mx1, my1, mx2, my2) = written["face_box"], written["mouth_box"]
    assert fx1 <= mx1 < mx2 <= fx2 and fy1 <= my1 < my2 <= fy2
    for name in ("wav2lip_only_mouth.mp4", "ladtalk_hard.mp4", "ground_truth.mp4", "ladtalk_feather.mp4",
                 "true_crops_pasted_hard.mp4", "strip_mouth.png"):
        assert (tmp_path / "demo" / name).stat().st_size > 0


def test_demo_with_the_builtin_base_trains_only_the_persons_restorer(tmp_path):
    small_sovqae = ["train.max_steps=2", "model.resolution=64", "train.patch_size=32", "train.val_frames=4"]
    summary = demo(tmp_path / "demo", device="cpu", train_seconds=4.0, test_seconds=1.0,
                   overrides={"sovqae": small_sovqae}, lpips=False)  # base="builtin", the default
    assert summary["lipsync_base"].startswith("built-in") and summary["lipsync_face_size"] == 48
    runs = {p.name for p in (tmp_path / "demo" / "runs").iterdir()}
    assert runs == {"sovqae"}  # no lip-sync training on the demo's person
    assert all(-1.0 <= s["lipsync_r"] <= 1.0 for s in summary["scores"].values())
