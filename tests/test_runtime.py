"""runtime.py: the CPU's bf16 support decides `precision="auto"`; bf16 inference agrees with fp32."""

import time

import numpy as np
import pytest
import torch

from ladtalk.errors import InputError
from ladtalk.metrics.image import psnr
from ladtalk.models.wav2lip import Wav2Lip, Wav2LipConfig
from ladtalk.pipeline.stages import lipsync
from ladtalk.pixels import to_frames
from ladtalk.runtime import (
    autocast_dtype,
    command_started_at,
    cpu_flags,
    cpu_has_fast_bf16,
    inference_settings,
)

XEON_AMX = "processor\t: 0\nmodel name\t: Intel Xeon\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile amx_bf16\n"
EPYC_MILAN = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 fma sha_ni\n"


def test_bf16_is_chosen_only_where_the_cpu_has_bf16_units(tmp_path, monkeypatch):
    for name, text, fast in (("amx", XEON_AMX, True), ("avx2", EPYC_MILAN, False)):
        (tmp_path / name).write_text(text)
        flags = cpu_flags(tmp_path / name)
        assert ("amx_bf16" in flags) == fast and "avx2" in flags
        monkeypatch.setattr("platform.machine", lambda: "x86_64")
        assert cpu_has_fast_bf16(flags) is fast
    assert cpu_flags(tmp_path / "absent") == frozenset()

    monkeypatch.setattr("ladtalk.runtime.cpu_has_fast_bf16", lambda flags=None: True)
    amx = inference_settings("cpu", "auto")
    assert amx.amp_dtype is torch.bfloat16 and amx.channels_last and amx.precision == "bf16"
    assert inference_settings("cpu", "fp32").amp_dtype is None  # fp32 on request
    monkeypatch.setattr("ladtalk.runtime.cpu_has_fast_bf16", lambda flags=None: False)
    plain = inference_settings("cpu", "auto")
    assert plain.amp_dtype is None and not plain.channels_last
    assert inference_settings("cpu", "bf16").amp_dtype is torch.bfloat16  # bf16 on request, even emulated
    with pytest.raises(InputError, match="unknown precision"):
        autocast_dtype(torch.device("cpu"), "int4")


def test_process_start_is_before_now():
    elapsed = time.perf_counter() - command_started_at()
    assert 0 <= elapsed < 24 * 3600


def test_bf16_lipsync_agrees_with_fp32(macron_video):
    """The faces a user sees: bf16 autocast with channels_last vs fp32, on real face crops, >= 40 dB."""
    from ladtalk.io.video import iter_frames

    frames = np.stack([f for _, f in zip(range(4), iter_frames(macron_video))])
    faces = torch.from_numpy(frames[:, 130:418, 112:400]).permute(0, 3, 1, 2).float() / 255  # the face
    torch.manual_seed(0)
    model = Wav2Lip(Wav2LipConfig(width=0.25, img_size=48)).eval()
    mels = torch.randn(4, 1, 80, 16)
    out = {}
    for precision in ("fp32", "bf16"):
        rt = inference_settings("cpu", precision)
        out[precision] = to_frames(lipsync(rt.prepare(model), faces, mels, rt.amp_dtype))
        model = model.to(memory_format=torch.contiguous_format)
    db = psnr(out["bf16"], out["fp32"])
    assert db.min() >= 40.0, db
