"""frames (uint8 B,H,W,3) <-> images (float B,3,H,W in [0,1]): exact round trip, rounding, clamping."""

import numpy as np
import torch

from ladtalk.pixels import to_frames, to_images


def test_round_trip_is_exact_and_out_of_range_values_are_clamped():
    frames = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    images = to_images(frames)
    assert images.shape == (2, 3, 5, 7) and images.dtype == torch.float32
    assert float(images.min()) >= 0 and float(images.max()) <= 1
    np.testing.assert_array_equal(to_frames(images), frames)
    np.testing.assert_array_equal(to_frames(to_images(torch.from_numpy(frames), dtype=torch.float64)), frames)
    odd = torch.tensor([-0.5, 0.4 / 255, 0.6 / 255, 2.0]).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    assert to_frames(odd)[0, 0, :, 0].tolist() == [0, 0, 1, 255]  # rounded, not truncated
