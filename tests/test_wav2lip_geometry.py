"""The official Wav2Lip geometry against ../shared/fixtures/official_wav2lip_geometry.npz (see its README)."""

import numpy as np
import pytest
import torch
from conftest import shared_file

from ladtalk.face.wav2lip_geometry import official_boxes, official_inputs, smooth_forward
from ladtalk.pipeline.stages import lipsync_frames


@pytest.fixture(scope="module")
def geometry():
    return dict(np.load(shared_file("fixtures/official_wav2lip_geometry.npz")))


class RecordingGenerator(torch.nn.Module):
    """Stands in for the generator: records the 6-channel input it is fed and returns the fixture's output."""

    class config:  # noqa: N801 - read as `wav2lip.config.img_size`, like Wav2LipConfig
        img_size = 96

    def __init__(self, output_bgr: np.ndarray):
        super().__init__()
        self.output = torch.from_numpy(output_bgr).permute(0, 3, 1, 2)
        self.seen: torch.Tensor | None = None

    def forward(self, mels, faces):
        self.seen = faces.clone()
        return self.output.clone()


def _boxes(g):
    return official_boxes(g["detector_rects_xyxy"], (512, 512), tuple(int(p) for p in g["pads_tblr"]))


def test_boxes_match_the_official_pads_clamp_and_forward_smoothing_exactly(geometry):
    y1, y2, x1, x2 = geometry["official_coords_y1y2x1x2"].T
    np.testing.assert_array_equal(_boxes(geometry), np.stack([x1, y1, x2, y2], axis=1))


def test_generator_input_and_hard_paste_match_the_official_script(geometry):
    """Through the pipeline's own stage: inputs within 1/255, pasted frames bit-exact (truncation, hard paste)."""
    gen = RecordingGenerator(geometry["generator_output_bgr"])
    mels = torch.zeros(12, 1, 80, 16)
    pasted_rgb = lipsync_frames(gen, geometry["frames_rgb"], _boxes(geometry), mels)
    seen = gen.seen.permute(0, 2, 3, 1).numpy()  # (12,96,96,6) BGR, [masked, reference]
    assert np.abs(seen - geometry["official_inputs_bgr"]).max() <= 1 / 255
    np.testing.assert_array_equal(pasted_rgb[..., ::-1], geometry["official_pasted_bgr"])


def test_inputs_are_stretched_not_squared(geometry):
    """A tall box fills the whole 96x96 width: the first and last columns are face pixels of the box's edges."""
    frame = geometry["frames_rgb"][:1]
    box = np.array([[100, 50, 200, 350]])  # 100 wide, 300 tall
    face = official_inputs(frame, box)[0]
    col = frame[0, 50:350, 100, 1].astype(float)
    resized_col = face[:, 0, 1].astype(float)
    assert np.abs(np.interp(np.linspace(0, 299, 96), np.arange(300), col) - resized_col).mean() < 5  # squared: ~80


def test_smoothing_stays_within_runs_of_faces():
    """Frames without a face (-1 rows) split the track: no window reaches across them (the official script has no
    such frames; it stops)."""
    boxes = np.array([[0, 0, 10, 10]] * 3 + [[-1] * 4] + [[i * 10, 0, i * 10 + 10, 10] for i in range(7)])
    out = smooth_forward(boxes, window=5)
    np.testing.assert_array_equal(out[:3], boxes[:3])  # a run shorter than the window averages itself
    assert (out[3] == -1).all()
    np.testing.assert_array_equal(out[4:], smooth_forward(boxes[4:], window=5))
    assert out[4, 0] == 20  # mean of 0, 10, 20, 30, 40: a forward window
