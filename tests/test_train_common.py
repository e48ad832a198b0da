"""train/common.py: RNG state round trip, checkpoints with resume, epoch order, logging."""

import json
import random

import numpy as np
import pytest
import torch

from ladtalk.checkpoint import load_trainer_state
from ladtalk.errors import CheckpointError
from ladtalk.runtime import cpu_has_fast_bf16
from ladtalk.train.common import (
    CheckpointManager,
    RunLogger,
    epoch_order,
    rng_state,
    seed_everything,
    set_rng_state,
    setup_runtime,
    unwrap,
)


def test_rng_state_survives_a_safe_checkpoint(tmp_path):
    seed_everything(3)
    net = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(net.parameters())
    net(torch.ones(1, 2)).sum().backward()
    opt.step()
    ckpt = CheckpointManager(tmp_path / "ckpt", kind="toy")
    ckpt.save({"n": 2}, net.state_dict(), {"step": 7, "opt": opt.state_dict(), "rng": rng_state()}, best=True)
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    res = ckpt.load_last()
    assert res.trainer_state["step"] == 7
    assert load_trainer_state(tmp_path / "ckpt" / "best") is None  # best holds weights only
    set_rng_state(res.trainer_state["rng"])
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected
    opt2 = torch.optim.Adam(net.parameters())
    opt2.load_state_dict(res.trainer_state["opt"])
    assert CheckpointManager(tmp_path / "none", kind="toy").load_last() is None
    with pytest.raises(CheckpointError, match="'toy' model"):  # the kind is checked on resume
        CheckpointManager(tmp_path / "ckpt", kind="other").load_last()


def test_epoch_order_is_a_seeded_partition():
    a = epoch_order(10, epoch=1, seed=0)
    assert sorted(a) == list(range(10)) and np.array_equal(a, epoch_order(10, 1, 0))
    assert not np.array_equal(a, epoch_order(10, 2, 0))


def test_runtime_and_logger(tmp_path):
    rt = setup_runtime("cpu", precision="auto", channels_last=True)
    assert rt.precision == ("bf16" if cpu_has_fast_bf16() else "fp32") and not rt.scaler.is_enabled()
    assert setup_runtime("cpu", precision="fp32").precision == "fp32"
    bf16 = setup_runtime("cpu", precision="bf16", channels_last=False)
    assert bf16.precision == "bf16" and bf16.channels_last  # oneDNN's bf16 kernels want NHWC
    m = rt.prepare(torch.nn.Conv2d(3, 4, 3))
    assert unwrap(m) is m
    log = RunLogger(tmp_path / "logs")
    log.log(5, {"loss": torch.tensor(0.5), "name": "x"})
    log.close()
    rec = json.loads((tmp_path / "logs" / "metrics.jsonl").read_text().splitlines()[0])
    assert rec["step"] == 5 and rec["loss"] == 0.5 and rec["name"] == "x"


def test_the_summary_names_each_figure_and_each_warning_on_its_own_line(capsys):
    from ladtalk.train.common import print_summary

    print_summary("expert trained", {"model": "runs/x/model", "validation loss": 0.691234, "steps": 300},
                  ["the expert is near chance"])
    assert capsys.readouterr().err.splitlines() == ["== expert trained ==", "  model            runs/x/model",
                                                    "  validation loss  0.6912", "  steps            300",
                                                    "  warning: the expert is near chance"]
    print_summary("expert trained", {"steps": 300})
    assert capsys.readouterr().err == "== expert trained ==\n  steps  300\n"
