"""`ladtalk evaluate`: the report renders, sliding alignment, absent metrics, and the ordering on a real clip."""

import csv
import importlib
import json

import cv2
import numpy as np
import pytest
from _lipsync_fake import render_frames

from ladtalk.cli import main
from ladtalk.evaluate import LOWER_IS_BETTER, evaluate
from ladtalk.io.audio import load_audio
from ladtalk.io.video import VideoWriter, iter_frames


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """An empty torch hub cache: FID and LPIPS-VGG weights are absent whatever this machine holds."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    for var in ("LADTALK_INCEPTION", "LADTALK_SYNCNET", "LADTALK_VGG16"):
        monkeypatch.delenv(var, raising=False)


def _write(path, frames, audio=None):
    with VideoWriter(path, 25, audio=audio, sample_rate=16000) as w:
        w.write(frames)


def test_report_renders_with_synthetic_truth(tmp_path, no_weights):
    openness = np.clip(0.5 + 0.5 * np.sin(np.arange(12) * 0.7), 0, 1)
    frames, boxes = render_frames(openness, size=64, seed=1)
    clip = tmp_path / "clip"
    clip.mkdir()
    _write(clip / "video.mp4", frames)
    (clip / "truth.json").write_text(json.dumps({"face_boxes": boxes.tolist(),
                                                 "mouth_openness": openness.tolist()}))
    _write(tmp_path / "pred.mp4", frames[3:10])             # a shorter prediction that starts at frame 3
    out = tmp_path / "report"
    res = evaluate(tmp_path / "pred.mp4", clip / "video.mp4", out, device="cpu")
    assert res["offset"] == 3 and res["offset_applies_to"] == "gt" and res["frames"]["compared"] == 7
    m = res["metrics"]
    assert m["frame_psnr_db"] > 35 and m["frame_ssim"] > 0.95 and "frame_st_lpips" in m and "frame_lpips" not in m
    assert {"frame_warp_error", "frame_own_flow_warp_error", "frame_tof", "mouth_psnr_db", "lipsync_r"} <= set(m)
    lo, hi = res["ci95"]["frame_psnr_db"]
    assert lo <= m["frame_psnr_db"] <= hi and res["provenance"]["precision"] == "fp32"
    assert "pt_inception-2015-12-05-6726825d.pth" in res["absent"]["fid"]
    assert "syncnet_v2.model" in res["absent"]["lse_d"] and "vgg16-397923af.pth" in res["absent"]["frame_lpips"]
    assert "fid" not in m and "lse_c" not in m
    for name in ("metrics.json", "report.md", "psnr.png", "flicker.png", "strip.png", "per_frame.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0
    assert json.loads((out / "metrics.json").read_text())["metrics"] == m
    strip = cv2.imread(str(out / "strip.png"))
    assert strip.shape[0] == 3 * 160
    md = (out / "report.md").read_text()
    assert "frame_st_lpips" in md and "Measured at commit" in md
    # plain frame-aligned evaluation compares frame k with frame k: much worse here
    res2 = evaluate(tmp_path / "pred.mp4", clip / "video.mp4", out, align="frames", device="cpu")
    assert res2["offset"] == 0 and res2["metrics"]["frame_psnr_db"] < m["frame_psnr_db"]


def test_identical_videos_report_inf_psnr(tmp_path, no_weights):
    frames = np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    _write(tmp_path / "a.mp4", frames)
    res = evaluate(tmp_path / "a.mp4", tmp_path / "a.mp4", tmp_path / "r", device="cpu")
    assert res["metrics"]["frame_psnr_db"] == "inf" and res["metrics"]["frame_ssim"] == pytest.approx(1.0)
    assert res["metrics"]["frame_st_lpips"] == pytest.approx(0.0, abs=1e-6)
    json.loads((tmp_path / "r" / "metrics.json").read_text())        # strict JSON


def test_missing_inputs_are_reported(tmp_path, capsys):
    assert main(["evaluate", "--pred", str(tmp_path / "x.mp4"), "--gt", str(tmp_path / "y.mp4"),
                 "-o", str(tmp_path / "r")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "cases.csv").write_text("a,b\n1,2\n")
    assert main(["evaluate", "--cases", str(tmp_path / "cases.csv"), "-o", str(tmp_path / "r")]) == 2
    assert "name,pred,gt" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_orders_degradations_on_a_real_clip(may_video, tmp_path, no_weights):
    """One second of the May clip (64x64 to keep the perceptual network cheap) against two degraded copies."""
    n = 25
    frames = np.stack([cv2.resize(f, (64, 64), interpolation=cv2.INTER_AREA)
                       for f in iter_frames(may_video, max_frames=n)])
    audio = load_audio(may_video, 16000)[: n * 640]
    _write(tmp_path / "gt.mp4", frames, audio)
    rng = np.random.default_rng(0)
    for name, sigma, gain in (("light", 3, 0.01), ("heavy", 10, 0.04)):
        g = 1 + gain * rng.standard_normal((n, 1, 1, 1))                 # per-frame brightness flicker
        _write(tmp_path / f"{name}.mp4", np.clip(frames * g + rng.normal(0, sigma, frames.shape), 0, 255)
               .astype(np.uint8), audio)
    (tmp_path / "cases.tsv").write_text("name\tpred\tgt\nlight\tlight.mp4\tgt.mp4\nheavy\theavy.mp4\tgt.mp4\n")
    assert main(["evaluate", "--cases", str(tmp_path / "cases.tsv"), "-o", str(tmp_path / "rep"),
                 "--device", "cpu"]) == 0
    summary = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    light, heavy = (c["metrics"] for c in summary["cases"])
    assert set(light) == {"frame_psnr_db", "frame_ssim", "frame_st_lpips", "frame_warp_error",
                          "frame_own_flow_warp_error", "frame_tof"}
    for k in light:
        better = light[k] < heavy[k] if k in LOWER_IS_BETTER else light[k] > heavy[k]
        assert better, f"{k}: light {light[k]} vs heavy {heavy[k]}"
    rows = list(csv.reader((tmp_path / "rep" / "summary.csv").read_text().splitlines()))
    assert [r[0] for r in rows] == ["name", "light", "heavy", "average"]
    assert float(rows[3][1]) == pytest.approx((light["frame_psnr_db"] + heavy["frame_psnr_db"]) / 2)
    for case in ("light", "heavy"):
        assert (tmp_path / "rep" / case / "strip.png").is_file()
    print("ordering:", {k: (round(light[k], 5), round(heavy[k], 5)) for k in light})


@pytest.mark.slow
def test_fid_and_lse_paths_with_stand_in_weights(tmp_path, no_weights, monkeypatch):
    """Weight files with the real layouts (random FID Inception, random SyncNet S) drive FID and LSE."""
    import torch

    ev = importlib.import_module("ladtalk.evaluate.scores")  # where FID is computed
    from ladtalk.metrics.fid import INCEPTION_FILENAME, fid_from_features
    # scipy's sqrtm of a 2048x2048 product takes about a minute on 2 cores; the Frechet math has its own
    # tests, so here the distance is taken on the first 32 feature dimensions.
    seen = {}

    def small_fid(fa, fb):
        seen["dims"] = (fa.shape, fb.shape)
        return fid_from_features(fa[:, :32], fb[:, :32])

    monkeypatch.setattr(ev, "fid_from_features", small_fid)
    from ladtalk.models.inception import FIDInceptionV3
    from ladtalk.models.syncnet import SyncNetS
    torch.manual_seed(0)
    inception = {k: v for k, v in FIDInceptionV3().state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(inception, tmp_path / INCEPTION_FILENAME)
    torch.save(SyncNetS().state_dict(), tmp_path / "syncnet_v2.model")
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (7, 64, 64, 3), dtype=np.uint8)
    audio = (0.1 * rng.standard_normal(7 * 640)).astype(np.float32)
    _write(tmp_path / "gt.mp4", frames, audio)
    _write(tmp_path / "pred.mp4", np.clip(frames.astype(int) + 20, 0, 255).astype(np.uint8), audio)
    res = evaluate(tmp_path / "pred.mp4", tmp_path / "gt.mp4", tmp_path / "r",
                   syncnet_path=tmp_path / "syncnet_v2.model", inception_path=tmp_path / INCEPTION_FILENAME,
                   device="cpu", lse_crop="frame")  # noise frames have no face to crop
    m = res["metrics"]
    assert np.isfinite(m["fid"]) and m["fid"] > 0 and seen["dims"] == ((7, 2048), (7, 2048))
    # the whole-frame variant only under its own name, never as the published LSE-D / LSE-C
    assert np.isfinite(m["lse_d_whole_frame"]) and m["lse_c_whole_frame"] >= 0 and "lse_d" not in m
    for key in ("lse_d_whole_frame", "lse_c_whole_frame"):  # with its block-bootstrap interval, as every figure
        assert res["ci95"][key][0] <= m[key] <= res["ci95"][key][1]
    assert set(res["gt_reference"]) >= {"lse_d_whole_frame", "lse_c_whole_frame"}
    assert "lse_av_offset_frames_pred_whole_frame" in res["info"]
    assert "fid" not in res["absent"] and "lse_d" not in res["absent"]
    assert any("FID from 7 frames" in n for n in res["notes"])
