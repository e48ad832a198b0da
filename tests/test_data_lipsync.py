"""Lip-sync samples: shapes, BGR order, masks, mel alignment and LRS2-style folders with gaps."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from _lipsync_fake import make_talking_identity

from ladtalk.data import lipsync
from ladtalk.data.lipsync import GeneratorSamples, SyncPairs, faces_bgr, find_clips
from ladtalk.errors import InputError
from ladtalk.features.mel import sync_window, training_windows
from ladtalk.io.audio import write_wav


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    return make_talking_identity(tmp_path_factory.mktemp("ident") / "id", seconds=3.0, size=64)


def test_faces_bgr_order_and_range():
    rgb = np.zeros((1, 8, 8, 3), np.uint8)
    rgb[..., 0] = 255  # pure red
    out = faces_bgr(rgb, 4)
    assert out.shape == (1, 3, 4, 4) and out.dtype == np.float32
    assert np.allclose(out[0, 2], 1.0) and np.allclose(out[0, :2], 0.0)


def test_sync_pairs(identity):
    (clip,) = find_clips([identity], img_size=48)
    data = SyncPairs([clip], length=64, seed=3)
    labels = []
    for i in range(40):
        mel, face, y = data[i]
        assert mel.shape == (1, 80, 16) and face.shape == (15, 24, 48) and y.shape == (1,)
        labels.append(float(y))
    assert 0.2 < np.mean(labels) < 0.8
    # same index -> same sample (resumable); positives show the window at the mel's own frame
    for i in range(40):
        mel, face, y = data[i]
        torch.testing.assert_close(data[i][1], face)
        if y == 1:
            t = [t for t in clip.starts if np.array_equal(sync_window(clip.mel, clip.fps, int(t)), mel.numpy())]
            want = clip.load_faces(np.arange(t[0], t[0] + 5))[:, :, 24:].reshape(15, 24, 48)
            np.testing.assert_array_equal(face.numpy(), want)
            break


def test_generator_samples(identity):
    (clip,) = find_clips([identity], img_size=48)
    x, indiv, mel, gt = GeneratorSamples([clip], length=8, seed=1)[5]
    assert x.shape == (6, 5, 48, 48) and indiv.shape == (5, 1, 80, 16) and mel.shape == (1, 80, 16)
    assert gt.shape == (3, 5, 48, 48)
    assert torch.all(x[:3, :, 24:] == 0)
    torch.testing.assert_close(x[:3, :, :24], gt[:, :, :24])
    assert not torch.equal(x[3:], gt)  # the reference is another window
    starts = [int(t) for t in clip.starts
              if np.array_equal(clip.load_faces(np.arange(t, t + 5)).transpose(1, 0, 2, 3), gt.numpy())]
    assert starts, "gt is a window of the clip"
    np.testing.assert_array_equal(indiv.numpy(), training_windows(clip.mel, clip.fps, starts[0]))
    np.testing.assert_array_equal(mel.numpy(), sync_window(clip.mel, clip.fps, starts[0]))


def test_lrs2_root_with_gaps(tmp_path, monkeypatch):
    monkeypatch.setattr(lipsync, "VAL_FRACTION", 0.0)
    root = tmp_path / "lrs2"
    vid = root / "spk1" / "00001"
    vid.mkdir(parents=True)
    write_wav(vid / "audio.wav", np.random.default_rng(0).uniform(-0.3, 0.3, 16000 * 2).astype(np.float32), 16000)
    present = [k for k in range(45) if k not in (12, 30)]
    for k in present:
        img = np.zeros((60, 60, 3), np.uint8)
        img[..., 0] = 200  # blue in OpenCV's BGR order
        img[:, :, 1] = k  # frame index in the green channel
        cv2.imwrite(str(vid / f"{k}.jpg"), img)
    clips = find_clips([root], img_size=48, split="train")
    assert len(clips) == 1 and clips[0].fps == 25.0
    starts = set(clips[0].starts.tolist())
    assert all(not ({12, 30} & set(range(t, t + 5))) for t in starts)
    assert 0 not in starts and 7 in starts and 8 not in starts and 13 in starts
    faces = clips[0].load_faces(np.array([13]))
    assert faces[0, 0].mean() > 0.7 and faces[0, 2].mean() < 0.05  # channel 0 = blue
    mel, face, y = SyncPairs(clips, length=4)[0]
    assert face.shape == (15, 24, 48)
    assert find_clips([root], img_size=48, split="val") == []


def test_bad_folders(tmp_path):
    with pytest.raises(InputError, match="neither"):
        find_clips([tmp_path / "missing"], img_size=48)
    with pytest.raises(InputError, match="LRS2-style"):
        find_clips([tmp_path], img_size=48)
