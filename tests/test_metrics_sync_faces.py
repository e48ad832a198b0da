"""LSE on syncnet_python's real-video face crops: the crop geometry, and the whole path on a real clip with the
oracle-filled SyncNet S (shapes, determinism, offsets, and how it differs from the whole-frame variant)."""

import json

import numpy as np
import pytest
import torch
from conftest import shared_file
from oracle import oracle_fill

from ladtalk.face.detect import make_detector
from ladtalk.io.audio import load_audio
from ladtalk.io.video import iter_frames
from ladtalk.metrics.sync import lse_scores
from ladtalk.metrics.sync_faces import PAD_VALUE, lse_face_input, syncnet_face_crops, syncnet_track


def test_crop_is_2_8_half_sides_reaching_below_the_face():
    """Box 100..200 square: s = 50, centre 150; rows [150 - 50, 150 + 90), columns [150 - 70, 150 + 70)."""
    frame = np.random.default_rng(0).integers(0, 256, (1, 400, 400, 3), dtype=np.uint8)
    track = syncnet_track(np.array([[100, 100, 200, 200]] * 13))
    np.testing.assert_allclose(track, [[150, 150, 50]] * 13)
    crop = syncnet_face_crops(frame, track[:1], size=140)  # side 2.8 s = 140: no resize
    np.testing.assert_array_equal(crop[0], frame[0, 100:240, 80:220])


def test_crop_past_the_frame_edge_is_filled_with_110():
    frame = np.zeros((1, 100, 100, 3), np.uint8)
    # s = 30 at (10, 50): columns -32..52, rows 20..104 of the frame; side 84, so no resize
    crop = syncnet_face_crops(frame, np.array([[10.0, 50.0, 30.0]]), size=84)
    assert (crop[0, :80, :32] == PAD_VALUE).all() and (crop[0, :80, 32:] == 0).all()
    assert (crop[0, 80:] == PAD_VALUE).all()


def test_median_filter_removes_a_one_frame_jump():
    boxes = np.array([[100, 100, 200, 200]] * 20, dtype=float)
    boxes[10] += 80
    assert np.allclose(syncnet_track(boxes)[10], [150, 150, 50])


@pytest.fixture(scope="module")
def oracle_syncnet_s():
    from ladtalk.models.syncnet import SyncNetS

    layout = json.loads(shared_file("fixtures/official_checkpoint_layouts.json").read_text())["syncnet_python_S"]
    torch.manual_seed(0)
    net = SyncNetS()
    assert set(net.state_dict()) == set(layout["state_dict"])
    return oracle_fill(net)


N = 12  # MTCNN on 512x512 frames is the slow part


def test_lse_on_face_crops_of_a_real_clip(oracle_syncnet_s, capsys):
    video = shared_file("data/video/may_5s_real3dportrait.mp4")  # 25 fps, 512x512
    frames = np.stack(list(iter_frames(video, max_frames=N)))
    audio = load_audio(video, sample_rate=16000)
    crops, cut, (start, stop) = lse_face_input(frames, audio, make_detector("mtcnn", device="cpu"))
    assert crops.shape == (stop - start, 224, 224, 3) and crops.dtype == np.uint8
    assert (start, stop) == (0, N) and len(cut) == len(audio)
    # the face fills about 1 / 1.4 of the crop's side (the crop is 2.8 half sides of the face box)
    face = make_detector("mtcnn", device="cpu").detect(crops[:1])[0][0]
    assert 0.55 < max(face.width, face.height) / 224 < 0.85
    a = lse_scores(oracle_syncnet_s, crops, cut, batch_size=8)
    b = lse_scores(oracle_syncnet_s, crops, cut, batch_size=20)
    assert a.mean_dists.shape == (31,)
    np.testing.assert_allclose(a.mean_dists, b.mean_dists, rtol=1e-5)  # deterministic, batch-independent
    assert -15 <= a.offset <= 15 and a.lse_c >= 0
    whole = lse_scores(oracle_syncnet_s, frames, audio, batch_size=20)
    assert not np.allclose(a.mean_dists, whole.mean_dists, rtol=1e-3)  # the crop is what the network sees
    with capsys.disabled():
        print(f"\nMay clip, {N} frames, oracle-filled SyncNet S: face crops LSE-D {a.lse_d:.4f} LSE-C {a.lse_c:.4f} "
              f"offset {a.offset}; whole frames LSE-D {whole.lse_d:.4f} LSE-C {whole.lse_c:.4f} offset {whole.offset}")


def test_lse_on_a_known_face_track_takes_25_fps_and_the_run_with_a_face(monkeypatch):
    """30 fps frames whose first 6 have no face box: the frames go to 25 fps (nearest), the run with a face is cropped
    as syncnet_python crops it and its audio starts with it."""
    import ladtalk.metrics.sync_faces as sf

    seen = {}

    def fake_lse(net, crops, audio, device="cpu"):
        seen.update(crops=crops, audio=audio)
        return type("S", (), {"lse_d": 7.0, "lse_c": 2.0, "offset": 1,
                              "ci95": {"lse_d": [6.5, 7.5], "lse_c": [1.5, 2.5]}})()

    monkeypatch.setattr(sf, "lse_scores", fake_lse)
    frames = np.random.default_rng(0).integers(0, 256, (36, 120, 120, 3), dtype=np.uint8)
    boxes = np.tile([30.0, 30.0, 90.0, 90.0], (36, 1))
    boxes[:6] = np.nan
    audio = np.arange(36 * 16000 // 30, dtype=np.float32)
    out = sf.lse_on_face_track(None, frames, 30.0, audio, boxes)
    assert out == {"lse_d": 7.0, "lse_c": 2.0, "lse_av_offset_frames": 1, "lse_frames": 25,
                   "ci95": {"lse_d": [6.5, 7.5], "lse_c": [1.5, 2.5]}}
    # 25 fps frame k is 30 fps frame round(1.2 k); frames 0..5 at 30 fps (0..4 at 25 fps) have no face
    idx = np.round(np.arange(5, 30) * 1.2).astype(int)
    expected = syncnet_face_crops(frames[idx], syncnet_track(boxes[idx]))
    np.testing.assert_array_equal(seen["crops"], expected)
    assert seen["audio"][0] == 5 * 640  # the audio of 25 fps frame 5
