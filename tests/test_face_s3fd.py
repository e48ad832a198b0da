"""S3FD: the official layout, the official function (the fixtures' oracle), strict loading and the decode."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from oracle import inp, oracle_fill

from ladtalk.errors import InputError
from ladtalk.face.detect import make_detector
from ladtalk.face.s3fd import S3FD, S3FDDetector, decode_s3fd


def test_layout_matches_the_official_checkpoint(fixtures_dir):
    layout = json.loads((fixtures_dir / "official_checkpoint_layouts.json").read_text())["s3fd"]
    state = S3FD().state_dict()
    assert sum(v.numel() for v in state.values()) == layout["num_parameters"] == 22_459_110
    assert {k: list(v.shape) for k, v in state.items()} == {k: list(v) for k, v in layout["state_dict"].items()}


def test_oracle_all_twelve_outputs(fixtures_dir):
    oracle = np.load(fixtures_dir / "official_models_oracle.npz")
    net = S3FD().eval()
    oracle_fill(net)
    with torch.no_grad():
        outs = net(inp((1, 3, 128, 128), 7) * 255 - 100)
    assert len(outs) == 12
    for i, out in enumerate(outs):
        ref = oracle[f"s3fd_out{i}"]
        assert out.shape == ref.shape, i
        err = np.abs(out.numpy() - ref).max() / np.abs(ref).max()
        # exact (float64) arithmetic is 6.9e-4 from the float32 oracle on the worst output, so float32 kernels of
        # other CPUs land anywhere within about that; a wrong layer or weight gives errors of O(1)
        assert err < 2e-3, f"s3fd_out{i}: relative error {err:.2e}"


def test_user_file_loads_strictly_and_detects(tmp_path):
    net = S3FD()
    path = tmp_path / "s3fd.pth"
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, path)  # a DataParallel save loads too
    det = make_detector(f"s3fd:{path}")
    assert isinstance(det, S3FDDetector) and det.name == "s3fd"
    for k, v in net.state_dict().items():
        assert torch.equal(det.net.state_dict()[k], v)
    found = det.detect(np.zeros((2, 64, 64, 3), np.uint8))
    assert len(found) == 2


def test_decode_puts_a_prior_where_the_official_code_does():
    # One confident cell at level 1 (stride 8, prior side 32), row 2, column 3; x shifted by half a
    # variance-scaled prior, height doubled.
    outs = []
    for size in [32, 16, 8, 8, 4, 2]:
        cls = torch.zeros(1, 2, size, size)
        cls[:, 0] = 5.0  # background everywhere
        outs += [cls, torch.zeros(1, 4, size, size)]
    outs[2][0, :, 2, 3] = torch.tensor([-5.0, 5.0])
    outs[3][0, :, 2, 3] = torch.tensor([0.5, 0.0, 0.0, np.log(2) / 0.2])
    boxes, scores, images = decode_s3fd(outs)
    assert len(boxes) == 1 and images.tolist() == [0] and scores[0] > 0.99
    cx, cy = 4 + 3 * 8 + 0.5 * 0.1 * 32, 4 + 2 * 8
    w, h = 32, 64
    np.testing.assert_allclose(boxes[0].numpy(), [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], rtol=1e-6)


def test_detector_keeps_confident_non_overlapping_faces():
    class FakeNet(torch.nn.Module):
        def forward(self, x):
            outs = []
            for size in [x.shape[2] // 4 // 2 ** i for i in range(6)]:
                size = max(size, 1)
                cls = torch.zeros(x.shape[0], 2, size, size)
                cls[:, 0] = 5.0
                outs += [cls, torch.zeros(x.shape[0], 4, size, size)]
            outs[0][0, :, 4, 4] = torch.tensor([0.0, 3.0])  # face, p=0.95
            outs[0][0, :, 4, 5] = torch.tensor([0.0, 2.0])  # overlapping weaker face: suppressed
            outs[0][0, :, 12, 12] = torch.tensor([0.0, -0.5])  # p=0.38: a candidate but below keep
            return outs

    det = S3FDDetector(FakeNet())
    found = det.detect(np.zeros((1, 64, 64, 3), np.uint8))[0]
    assert len(found) == 1 and found[0].score == pytest.approx(torch.sigmoid(torch.tensor(3.0)).item(), rel=1e-5)
    np.testing.assert_allclose(found[0].box, [2 + 16 - 8, 2 + 16 - 8, 2 + 16 + 8, 2 + 16 + 8])


def test_detect_in_chunks_equals_one_pass_and_rejects_tiny_frames():
    torch.manual_seed(0)
    net = S3FD()
    frames = np.random.default_rng(0).integers(0, 256, (3, 32, 40, 3), dtype=np.uint8)
    whole = S3FDDetector(net).detect(frames)
    one_frame_passes = S3FDDetector(net)
    one_frame_passes.max_pixels_per_pass = 32 * 40
    chunked = one_frame_passes.detect(frames)
    assert [len(f) for f in whole] == [len(f) for f in chunked] and sum(len(f) for f in whole) > 0
    for a, b in zip(whole, chunked):
        np.testing.assert_allclose([d.box for d in a], [d.box for d in b], rtol=1e-4, atol=1e-3)
    with pytest.raises(InputError, match="at least 32x32"):
        S3FDDetector(net).detect(frames[:, :16])
