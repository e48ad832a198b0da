"""The one loader: a restorer and a lip-sync model with their geometry, on a backend; the restorer computing
only the mouth paste's rows leaves the rest of the face as it came and restores those rows as the network does."""

import numpy as np
import pytest
import torch

from ladtalk.checkpoint import save_component
from ladtalk.errors import InputError
from ladtalk.face.crop import lower_face_mask
from ladtalk.models.sovqae import SOVQAE, SOVQAEConfig
from ladtalk.pipeline.backends import available
from ladtalk.pipeline.loaders import load_lipsync, load_restorer, restorer_rows
from ladtalk.pipeline.restore import RestoreNet, load_sovqae, pasted_rows, restore
from ladtalk.runtime import Inference

CPU_FP32 = Inference(torch.device("cpu"), None, False)


@pytest.fixture
def guided_model(tmp_path):
    torch.manual_seed(0)
    model = SOVQAE(SOVQAEConfig(resolution=128, ch=8, ch_mult=(1, 2, 2, 4), num_res_blocks=1, attn_resolutions=(),
                                z_channels=16, embed_dim=16, n_embed=64, norm_groups=4, lowres_guide=True,
                                guide_scale=2))
    torch.nn.init.normal_(model.decoder.conv_out.weight, std=0.05)
    save_component(tmp_path / "sovqae", "sovqae", model.config, model.state_dict())
    return tmp_path / "sovqae"


def test_pasted_rows_hold_the_mouth_mask_and_keep_the_code_grid_aligned():
    for size, factor in ((256, 8), (128, 8), (64, 8)):
        rows = pasted_rows(size, factor)
        first_blended = int(np.flatnonzero(lower_face_mask(size).max(1) > 0)[0])
        assert rows.start % factor == 0 and rows.start <= first_blended - 2 and rows.stop == size


def test_whole_crop_restorer_is_restore(guided_model):
    faces = np.random.default_rng(0).integers(0, 256, (5, 128, 128, 3), dtype=np.uint8)
    restorer = load_restorer(guided_model, CPU_FP32, backend="torch")
    assert restorer.rows == slice(0, 128) and restorer.resolution == 128
    np.testing.assert_array_equal(restorer(faces), restore(load_sovqae(guided_model), faces, precision="fp32"))


def test_pasted_rows_restorer_restores_those_rows_and_keeps_the_rest(guided_model):
    images = torch.rand(3, 3, 128, 128)
    restorer = load_restorer(guided_model, CPU_FP32, backend="torch", rows="pasted")
    rows = restorer.rows
    assert 0 < rows.start < 128 * 0.45
    out = restorer(images)
    torch.testing.assert_close(out[:, :, :rows.start], images[:, :, :rows.start], rtol=0, atol=0)
    expected, _ = RestoreNet(load_sovqae(guided_model))(images[:, :, rows])
    torch.testing.assert_close(out[:, :, rows], expected, rtol=0, atol=1e-4)  # batches of 2 against 3


def test_unknown_rows_setting_is_refused(guided_model):
    with pytest.raises(InputError, match="rows"):
        load_restorer(guided_model, CPU_FP32, rows="lower")


def test_lipsync_loader_gives_the_generator_and_its_input_geometry(tiny_models):
    net = load_lipsync(tiny_models / "wav2lip", CPU_FP32, backend="torch")
    assert net.config.img_size == 48 and net.input_geometry in ("square_crop", "official")
    out = net(torch.randn(2, 1, 80, 16), torch.rand(2, 6, 48, 48))
    assert out.shape == (2, 3, 48, 48) and float(out.min()) >= 0 and float(out.max()) <= 1


def test_rows_auto_computes_only_the_pasted_rows_for_the_mouth_paste():
    assert restorer_rows("auto", "mouth") == "pasted"
    assert restorer_rows("auto", "hard") == restorer_rows("auto", "feather") == "all"
    assert restorer_rows("all", "mouth") == "all"
    with pytest.raises(InputError, match="mouth paste"):
        restorer_rows("pasted", "hard")
    with pytest.raises(InputError, match="rows"):
        restorer_rows("lower", "mouth")


@pytest.mark.skipif(not available("openvino"), reason="openvino (with onnx) is not installed")
def test_restorer_on_openvino_follows_a_bf16_run_whole_and_eager_keeps_its_encoder_fp32(guided_model):
    bf16 = Inference(torch.device("cpu"), torch.bfloat16, False)
    assert load_restorer(guided_model, bf16, backend="openvino").runner.name == "openvino bf16"
    assert load_restorer(guided_model, CPU_FP32, backend="openvino").runner.name == "openvino f32"
    assert load_restorer(guided_model, bf16, backend="torch").runner.name == "torch fp32 encoder, bf16 decoder"
