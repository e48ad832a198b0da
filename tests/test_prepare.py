"""`ladtalk prepare`: end to end on the synthetic clip, no-op re-runs, resume, and every kind of bad input."""

import json
import shutil

import av
import numpy as np
import pytest

from ladtalk.cli import main
from ladtalk.data.identity import Identity
from ladtalk.data.prepare import prepare
from ladtalk.data.synthetic import load_truth
from ladtalk.io.audio import write_wav
from ladtalk.io.video import VideoWriter


def test_identity_folder_contents(synthetic_identity, synthetic_clip):
    ident = Identity.open(synthetic_identity)
    n = len(synthetic_clip.mouth_openness)
    assert ident.frame_count == n and ident.fps == pytest.approx(25.0)
    assert ident.crops.shape == (n, 256, 256, 3) and ident.crops.dtype == np.uint8
    assert ident.has_face.all(), "the synthetic face is found on every frame"
    # split by time: last 10% for test, no overlap
    assert ident.test_indices.min() > ident.train_indices.max()
    assert len(ident.test_indices) == int(np.ceil(0.1 * n))
    # 16 kHz audio of the clip's length
    assert abs(len(ident.audio()) / 16000 - n / 25) < 0.05
    # crop boxes contain the true face box (the padded, squared track covers the face)
    truth = load_truth(synthetic_clip.truth_path)["face_boxes"]
    boxes = ident.crop_boxes
    cx_true = (truth[:, 0] + truth[:, 2]) / 2
    cx_crop = (boxes[:, 0] + boxes[:, 2]) / 2
    assert np.abs(cx_true - cx_crop).mean() < 0.1 * (truth[:, 2] - truth[:, 0]).mean()
    assert (boxes[:, 2] - boxes[:, 0] >= 0.9 * (truth[:, 2] - truth[:, 0])).all()
    meta = json.loads((synthetic_identity / "identity.json").read_text())
    assert meta["source"]["sha256"] and meta["detector"] == "mtcnn" and meta["detections_per_frame"]
    # nothing left beside the folder
    assert not list(synthetic_identity.parent.glob(".*"))


def test_rerun_is_a_noop(synthetic_identity, synthetic_clip, capsys):
    before = (synthetic_identity / "crops.npy").stat().st_mtime_ns
    prepare(synthetic_clip.video_path, synthetic_identity, size=256, device="cpu")
    assert (synthetic_identity / "crops.npy").stat().st_mtime_ns == before
    assert "up to date" in capsys.readouterr().out


def test_interrupted_run_resumes_from_the_detection_cache(synthetic_clip, tmp_path, monkeypatch):
    """Kill detection half way (KeyboardInterrupt), then re-run: only the missing frames are detected."""
    from ladtalk.face import mtcnn

    calls = []
    real = mtcnn.MTCNNDetector.detect

    def counting(self, frames):
        calls.append(len(frames))
        if sum(calls) > 40 and not getattr(counting, "resumed", False):
            raise KeyboardInterrupt
        return real(self, frames)

    monkeypatch.setattr(mtcnn.MTCNNDetector, "detect", counting)
    out = tmp_path / "ident"
    with pytest.raises(KeyboardInterrupt):
        prepare(synthetic_clip.video_path, out, device="cpu")
    assert not out.exists(), "no partial identity folder"
    detected_first = sum(calls[:-1])
    calls.clear()
    counting.resumed = True
    prepare(synthetic_clip.video_path, out, device="cpu")
    assert sum(calls) == len(synthetic_clip.mouth_openness) - detected_first
    assert Identity.open(out).has_face.all()
    assert not list(tmp_path.glob(".*")), "the cache is removed after success"


def _run(args, capsys):
    code = main(args)
    return code, capsys.readouterr().err


def _assert_clean(tmp_path, out):
    assert not out.exists()
    assert not [p for p in tmp_path.rglob("*") if ".partial" in p.name or "prepare-cache" in p.name]


def test_missing_file(tmp_path, capsys):
    code, err = _run(["prepare", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "id")], capsys)
    assert code == 2 and "does not exist" in err
    _assert_clean(tmp_path, tmp_path / "id")


def test_not_a_media_file(tmp_path, capsys):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video\n" * 100)
    code, err = _run(["prepare", str(bad), "-o", str(tmp_path / "id")], capsys)
    assert code == 2 and "not a media file" in err
    _assert_clean(tmp_path, tmp_path / "id")


def test_truncated_mp4(tmp_path, synthetic_clip, capsys):
    cut = tmp_path / "cut.mp4"
    data = synthetic_clip.video_path.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    code, err = _run(["prepare", str(cut), "-o", str(tmp_path / "id")], capsys)
    assert code == 2 and ("truncated" in err or "corrupt" in err)
    _assert_clean(tmp_path, tmp_path / "id")


def test_zero_frames(tmp_path, capsys):
    empty = tmp_path / "empty.mp4"
    with av.open(str(empty), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
    code, err = _run(["prepare", str(empty), "-o", str(tmp_path / "id")], capsys)
    assert code == 2 and "zero" in err
    _assert_clean(tmp_path, tmp_path / "id")


def test_audio_only_file(tmp_path, capsys):
    wav = tmp_path / "speech.wav"
    write_wav(wav, np.zeros(16000, np.float32), 16000)
    code, err = _run(["prepare", str(wav), "-o", str(tmp_path / "id")], capsys)
    assert code == 2 and "no video stream" in err
    _assert_clean(tmp_path, tmp_path / "id")


def test_clip_without_any_face(tmp_path, capsys):
    clip = tmp_path / "wall.mp4"
    rng = np.random.default_rng(0)
    with VideoWriter(clip, fps=25) as w:
        w.write((rng.random((10, 128, 128, 3)) * 60 + 100).astype(np.uint8))
    code, err = _run(["prepare", str(clip), "-o", str(tmp_path / "id")], capsys)
    assert code == 2 and "no face" in err
    _assert_clean(tmp_path, tmp_path / "id")


def test_output_folder_cannot_be_written(tmp_path, synthetic_clip, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    code, err = _run(["prepare", str(synthetic_clip.video_path), "-o", str(blocker / "id")], capsys)
    assert code == 2 and "cannot write" in err
    assert blocker.read_text() == "x"


def test_bad_size(tmp_path, synthetic_clip):
    with pytest.raises(SystemExit):
        main(["prepare", str(synthetic_clip.video_path), "-o", str(tmp_path / "id"), "--size", "300"])


def test_identity_from_another_version_is_refused(synthetic_identity, tmp_path):
    copy = tmp_path / "old"
    shutil.copytree(synthetic_identity, copy)
    meta = json.loads((copy / "identity.json").read_text())
    meta["format_version"] = 0
    (copy / "identity.json").write_text(json.dumps(meta))
    from ladtalk.errors import InputError

    with pytest.raises(InputError, match="incompatible"):
        Identity.open(copy)


def test_refuses_to_replace_a_folder_that_is_not_an_identity(synthetic_clip, tmp_path, capsys):
    precious = tmp_path / "videos"
    precious.mkdir()
    (precious / "holiday.mp4").write_bytes(b"keep me")
    code, err = _run(["prepare", str(synthetic_clip.video_path), "-o", str(precious)], capsys)
    assert code == 2 and "not an earlier identity folder" in err
    assert (precious / "holiday.mp4").read_bytes() == b"keep me"
