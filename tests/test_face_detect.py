"""Face detection: the torch NMS against a plain greedy loop, the factory's errors, MTCNN on the real clips."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch

from ladtalk.errors import InputError
from ladtalk.face.detect import FaceDetector, batched_nms, box_overlap, make_detector


def _greedy(boxes, scores, thr, mode="union", offset=0.0):
    order = list(np.argsort(-scores, kind="stable"))
    keep = []
    while order:
        i = order.pop(0)
        keep.append(i)
        ov = box_overlap(torch.tensor(boxes[i:i + 1]), torch.tensor(boxes[order]), mode, offset)[0].numpy()
        order = [j for j, o in zip(order, ov) if o <= thr]
    return keep


@pytest.mark.parametrize("mode,offset", [("union", 0.0), ("min", 0.0), ("union", 1.0)])
def test_batched_nms_equals_greedy_per_group(mode, offset):
    rng = np.random.default_rng(0)
    n = 300
    xy = rng.uniform(0, 100, (n, 2))
    wh = rng.uniform(5, 40, (n, 2))
    boxes = np.concatenate([xy, xy + wh], 1)
    scores = rng.uniform(0, 1, n)
    groups = rng.integers(0, 4, n)
    keep = batched_nms(torch.tensor(boxes), torch.tensor(scores), torch.tensor(groups), 0.4, mode, offset).numpy()
    for g in range(4):
        sel = np.flatnonzero(groups == g)
        expect = sel[_greedy(boxes[sel], scores[sel], 0.4, mode, offset)]
        got = keep[groups[keep] == g]
        assert list(got) == list(expect)


def test_batched_nms_empty_and_single():
    assert batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long), 0.5).numel() == 0
    one = batched_nms(torch.tensor([[0.0, 0, 10, 10]]), torch.tensor([0.9]), torch.tensor([0]), 0.5)
    assert one.tolist() == [0]


def test_make_detector_errors(tmp_path):
    with pytest.raises(InputError, match="unknown face detector"):
        make_detector("blazeface")
    with pytest.raises(InputError, match="needs the weight file"):
        make_detector("s3fd")
    with pytest.raises(InputError, match="does not exist"):
        make_detector(f"s3fd:{tmp_path / 'nope.pth'}")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="could not be read"):
        make_detector(f"s3fd:{junk}")
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv1.weight": torch.zeros(3)}, wrong)
    with pytest.raises(InputError, match="not an S3FD state dict"):
        make_detector(f"s3fd:{wrong}")


@pytest.fixture(scope="module")
def mtcnn():
    try:
        return make_detector("mtcnn")
    except InputError as e:
        pytest.skip(f"MTCNN weights unavailable: {e}")


def test_mtcnn_is_a_face_detector_and_finds_nothing_in_noise(mtcnn):
    assert isinstance(mtcnn, FaceDetector) and mtcnn.name == "mtcnn"
    rng = np.random.default_rng(1)
    frames = np.stack([np.zeros((240, 320, 3), np.uint8), rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)])
    assert mtcnn.detect(frames) == [[], []]
    with pytest.raises(InputError, match="uint8"):
        mtcnn.detect(np.zeros((1, 64, 64, 3), np.float32))


def _sample_frames(path, every: int, keyframes_only: bool = False) -> np.ndarray:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        if keyframes_only:
            stream.codec_context.skip_frame = "NONKEY"
        frames = [f.to_ndarray(format="rgb24") for i, f in enumerate(c.decode(stream)) if i % every == 0]
    return np.stack(frames)


def _check_one_plausible_face(dets, frames):
    h, w = frames.shape[1:3]
    for i, found in enumerate(dets):
        assert len(found) == 1, f"frame {i}: {len(found)} faces"
        d = found[0]
        x1, y1, x2, y2 = d.box
        assert d.score > 0.9
        # Talking-head framing: the face spans 20-75% of the shorter side and its centre is in the frame.
        assert 0.2 * min(h, w) < x2 - x1 < 0.75 * min(h, w) and 0.2 * min(h, w) < y2 - y1 < 0.9 * min(h, w)
        assert 0 < (x1 + x2) / 2 < w and 0 < (y1 + y2) / 2 < h
        lm = d.landmarks
        assert lm.shape == (5, 2)
        assert (lm[:, 0] > x1).all() and (lm[:, 0] < x2).all() and (lm[:, 1] > y1).all() and (lm[:, 1] < y2).all()
        assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0], "left eye/mouth corner left of the right ones"
        assert max(lm[0, 1], lm[1, 1]) < lm[2, 1] < min(lm[3, 1], lm[4, 1]), "eyes above nose above mouth"


def test_mtcnn_macron_keyframes(mtcnn, macron_video):
    frames = _sample_frames(macron_video, 1, keyframes_only=True)
    assert len(frames) >= 10
    _check_one_plausible_face(mtcnn.detect(frames), frames)


def test_mtcnn_may(mtcnn, may_video):
    frames = _sample_frames(may_video, 8)
    _check_one_plausible_face(mtcnn.detect(frames), frames)


def test_mtcnn_obama_720p(mtcnn, obama_video):
    frames = _sample_frames(obama_video, 12)
    assert frames.shape[1:3] == (720, 1280)
    _check_one_plausible_face(mtcnn.detect(frames), frames)


def test_mtcnn_min_face_scales_with_the_frame(mtcnn):
    assert mtcnn.min_face_for(512, 512) == pytest.approx(0.15 * 512)
    assert mtcnn.min_face_for(720, 1280) == pytest.approx(0.15 * 720)
    assert mtcnn.min_face_for(64, 64) == 20.0
