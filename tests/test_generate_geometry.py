"""`generate` feeds Wav2Lip the official boxes that `prepare` stores (identity format 2)."""


import numpy as np
import pytest
import torch

from ladtalk.checkpoint import save_component
from ladtalk.data.identity import Identity
from ladtalk.face.wav2lip_geometry import official_boxes
from ladtalk.io.audio import write_wav
from ladtalk.io.video import iter_frames
from ladtalk.models.wav2lip import Wav2Lip, Wav2LipConfig
from ladtalk.pipeline.generate import generate


def _wav2lip(root):
    torch.manual_seed(0)
    w2l = Wav2Lip(Wav2LipConfig(width=0.25, img_size=48)).eval()
    save_component(root / "wav2lip", "wav2lip", w2l.config, w2l.state_dict())
    return root / "wav2lip"


def _speech(path, seconds=0.2):
    t = np.arange(int(seconds * 16000)) / 16000
    write_wav(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    return path


def test_identity_stores_the_official_boxes_of_its_raw_track(synthetic_identity):
    ident = Identity.open(synthetic_identity)
    raw = np.array(ident.meta["raw_boxes"], dtype=np.float64)
    expect = official_boxes(raw, ident.frame_size, tuple(ident.meta["pads"]))
    np.testing.assert_array_equal(ident.wav2lip_boxes, expect)
    w = ident.wav2lip_boxes[:, 2] - ident.wav2lip_boxes[:, 0]
    assert (w > 0).all() and not np.array_equal(ident.wav2lip_boxes, np.round(ident.crop_boxes))


def test_plain_hard_paste_changes_only_the_official_box(synthetic_identity, tmp_path):
    """--no-sovqae --paste hard is the official output: pixels outside the official box (but inside the larger
    square SOVQAE crop) keep the source's values up to the codec's noise."""
    out = tmp_path / "plain.mp4"
    generate(synthetic_identity, _speech(tmp_path / "s.wav"), out, wav2lip_path=_wav2lip(tmp_path),
             no_sovqae=True, paste="hard", device="cpu")
    ident = Identity.open(synthetic_identity)
    gen, src = next(iter_frames(out)).astype(int), next(iter_frames(ident.source_path)).astype(int)
    x1, y1, x2, y2 = ident.wav2lip_boxes[0]
    inside = np.zeros(gen.shape[:2], bool)
    inside[y1:y2, x1:x2] = True
    diff = np.abs(gen - src).mean(axis=2)
    ring = ~inside
    ring[:, :max(x1 - 3, 0)] = ring[:, x2 + 3:] = False  # next to the box the codec blurs the edge
    ring[max(y1 - 3, 0):y2 + 3, x1 - 3:x2 + 3] = False
    assert diff[ring].mean() < 3
    assert diff[inside].mean() > 10  # a random generator's face replaced the box


class _Stop(Exception):
    pass


@pytest.mark.parametrize("given, expect_pads, says", [
    (None, (0, 20, 0, 0), None),
    ((0, 10, 0, 0), (0, 10, 0, 0), "differ(s) from the (0, 20, 0, 0)"),
])
def test_enhance_cuts_faces_as_the_model_was_trained(tmp_path, monkeypatch, capsys, given, expect_pads, says):
    from ladtalk.models.sovqae import SOVQAE, SOVQAEConfig
    from ladtalk.pipeline import enhance as enhance_mod
    from ladtalk.presets import load_preset

    cfg = SOVQAEConfig.from_dict(load_preset("tiny")["model"])
    geometry = {"detector": "mtcnn", "pads": [0, 20, 0, 0]}
    save_component(tmp_path / "vq", "sovqae", cfg, SOVQAE(cfg).state_dict(), extra={"crop_geometry": geometry})
    seen = {}

    def track_video(video_path, detector, pads, device):
        seen.update(detector=detector, pads=pads)
        raise _Stop
    monkeypatch.setattr(enhance_mod, "track_video", track_video)
    video = tmp_path / "v.mp4"
    from ladtalk.io.video import VideoWriter
    with VideoWriter(video, fps=25) as w:
        w.write(np.zeros((2, 64, 64, 3), np.uint8))
    with pytest.raises(_Stop):
        enhance_mod.enhance(video, tmp_path / "o.mp4", tmp_path / "vq", pads=given, device="cpu")
    assert seen == {"detector": "mtcnn", "pads": expect_pads}
    out = capsys.readouterr().out
    assert (says in out) if says else "warning" not in out
