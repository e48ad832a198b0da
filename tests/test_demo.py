"""The README's main job, `ladtalk demo`, end to end at a token training length (the real run takes ~7 minutes)."""

import json

from ladtalk.demo import demo


def test_demo_runs_end_to_end_and_scores_both_stages(tmp_path):
    steps = ["train.max_steps=3"]
    small_sovqae = steps + ["model.resolution=64", "train.patch_size=32", "train.val_frames=4"]
    summary = demo(tmp_path / "demo", device="cpu", train_seconds=6.0, test_seconds=1.5,
                   overrides={"syncnet": steps, "wav2lip": steps, "sovqae": small_sovqae}, lpips=False)
    assert summary["frames"] == 38  # 1.5 s at 25 fps, rounded
    for stage in ("wav2lip", "ladtalk", "wav2lip_feather", "ladtalk_feather"):
        s = summary["scores"][stage]
        assert -1.0 <= s["lipsync_r"] <= 1.0 and 0 < s["psnr_face_db"] < 60 and 0 < s["ssim_face"] <= 1
        assert s["psnr_mouth_db"] < 60 and s["mouth_sharpness_ratio"] > 0
    # the mouth paste leaves the upper face the identity's own: it scores at least as well as the whole-face paste
    assert summary["scores"]["wav2lip"]["psnr_face_db"] >= summary["scores"]["wav2lip_feather"]["psnr_face_db"]
    # the truth's own crops pasted back: the ceiling of any restorer at this crop size, far above both stages
    ceiling = summary["scores"]["crop_ceiling"]
    assert ceiling["psnr_face_db"] > summary["scores"]["ladtalk"]["psnr_face_db"] + 3 and ceiling["ssim_face"] > 0.9
    written = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert written["scores"] == summary["scores"]
    # the boxes it scored the face and the mouth in, for bench/restorer_headroom.py to use as they are
    (fx1, fy1, fx2, fy2), (mx1, my1, mx2, my2) = written["face_box"], written["mouth_box"]
    assert fx1 <= mx1 < mx2 <= fx2 and fy1 <= my1 < my2 <= fy2
    for name in ("wav2lip_only.mp4", "ladtalk.mp4", "ground_truth.mp4", "ladtalk_whole_face.mp4", "strip.png"):
        assert (tmp_path / "demo" / name).stat().st_size > 0
