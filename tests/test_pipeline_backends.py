"""The CPU backends run the same networks as eager torch: outputs within 40 dB PSNR of eager fp32 (the issue's
bar), the restorer's codes the same, the export cached next to the weights; a missing backend falls back."""

import math

import pytest
import torch

from ladtalk.checkpoint import save_component
from ladtalk.errors import InputError
from ladtalk.models.sovqae import SOVQAE, SOVQAEConfig
from ladtalk.models.wav2lip import Wav2Lip, Wav2LipConfig
from ladtalk.pipeline import backends
from ladtalk.pipeline.backends import TorchRunner, make_runner, pick_backend
from ladtalk.pipeline.restore import RestoreNet
from ladtalk.runtime import Inference

CPU_FP32 = Inference(torch.device("cpu"), None, False)
EXPORTED = [pytest.param(b, marks=pytest.mark.skipif(not backends.available(b), reason=f"{b} is not installed"))
            for b in ("onnxruntime", "openvino")]


def psnr_db(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float((a.float() - b.float()).pow(2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def guided_sovqae() -> SOVQAE:
    """A small SOVQAE with the restore-cpu preset's guide; its output layer re-drawn (a fresh guided model
    returns the guide's thumbnail alone)."""
    torch.manual_seed(0)
    model = SOVQAE(SOVQAEConfig(resolution=32, ch=8, ch_mult=(1, 2, 2, 4), num_res_blocks=1, attn_resolutions=(),
                                z_channels=16, embed_dim=16, n_embed=64, norm_groups=4, lowres_guide=True,
                                guide_scale=2)).eval()
    torch.nn.init.normal_(model.decoder.conv_out.weight, std=0.05)
    return model


def test_unknown_backend_is_refused():
    with pytest.raises(InputError, match="unknown backend"):
        pick_backend("tensorrt", CPU_FP32)


def test_missing_backend_falls_back_to_torch_with_a_note(monkeypatch, capsys):
    monkeypatch.setattr(backends, "available", lambda b: b == "torch")
    assert pick_backend("openvino", CPU_FP32) == "torch"
    assert "not installed" in capsys.readouterr().out
    assert pick_backend("auto", CPU_FP32) == "torch"


def test_an_exported_backend_without_onnx_is_not_available(monkeypatch):
    """torch.onnx.export needs the `onnx` package: a clean install with openvino but no onnx must run eager torch
    instead of failing at the first export (it did, in CI)."""
    real = backends.importlib.util.find_spec
    monkeypatch.setattr(backends.importlib.util, "find_spec", lambda m: None if m == "onnx" else real(m))
    assert not backends.available("openvino") and not backends.available("onnxruntime")
    assert pick_backend("auto", CPU_FP32) == "torch"


def test_gpus_run_eager_torch():
    assert pick_backend("auto", Inference(torch.device("cuda"), None, False)) == "torch"


@pytest.mark.parametrize("backend", EXPORTED)
def test_exported_restorer_matches_eager_and_is_cached(backend, tmp_path):
    model = guided_sovqae()
    save_component(tmp_path / "sovqae", "sovqae", model.config, model.state_dict())
    images = torch.rand(3, 3, 24, 32)  # a batch other than the export's: batch is dynamic
    examples = (torch.zeros(1, 3, 24, 32),)
    ref, ref_codes = TorchRunner(RestoreNet(model), CPU_FP32)(images)
    runner = make_runner(RestoreNet(model), examples, CPU_FP32, backend, weights_path=tmp_path / "sovqae",
                         tag="restore", autocast=False)
    out, codes = runner(images)
    assert psnr_db(out, ref) > 40
    assert torch.equal(codes.long(), ref_codes)
    cached = list((tmp_path / "sovqae.ladtalk-cache").iterdir())
    assert cached, "the export is kept next to the weights"
    again, _ = make_runner(RestoreNet(model), examples, CPU_FP32, backend, weights_path=tmp_path / "sovqae",
                           tag="restore", autocast=False)(images)
    assert sorted((tmp_path / "sovqae.ladtalk-cache").iterdir()) == sorted(cached)  # read, not exported again
    assert psnr_db(again, ref) > 40


@pytest.mark.parametrize("backend", EXPORTED)
def test_exported_wav2lip_matches_eager(backend):
    torch.manual_seed(0)
    model = Wav2Lip(Wav2LipConfig(width=0.25, img_size=48)).eval()
    mels, faces = torch.randn(2, 1, 80, 16), torch.rand(2, 6, 48, 48)
    ref = TorchRunner(model, CPU_FP32)(mels, faces)[0]
    out = make_runner(model, (mels[:1], faces[:1]), CPU_FP32, backend)(mels, faces)[0]
    assert out.shape == ref.shape and psnr_db(out, ref) > 40


@pytest.mark.skipif(not backends.available("openvino"), reason="openvino is not installed")
def test_openvino_never_uses_its_model_converter(monkeypatch):
    import openvino

    def converter(*args, **kwargs):  # it reports its use over the network (telemetry): never called
        raise AssertionError("ov.convert_model was called")

    monkeypatch.setattr(openvino, "convert_model", converter)
    torch.manual_seed(0)
    model = Wav2Lip(Wav2LipConfig(width=0.25, img_size=48)).eval()
    mels, faces = torch.randn(2, 1, 80, 16), torch.rand(2, 6, 48, 48)
    out = make_runner(model, (mels[:1], faces[:1]), CPU_FP32, "openvino")(mels, faces)[0]
    assert psnr_db(out, TorchRunner(model, CPU_FP32)(mels, faces)[0]) > 40
