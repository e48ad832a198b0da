"""weights.py: search order and safe loading (no code execution, clear errors)."""

import pickle

import pytest
import torch

from ladtalk.errors import CheckpointError, InputError
from ladtalk.weights import find_weight, load_torch_weights, torch_hub_checkpoints_dir


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_find_weight_order(tmp_path, monkeypatch):
    hub = tmp_path / "th" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / "w.pth").write_bytes(b"x")
    env_file = tmp_path / "env.pth"
    env_file.write_bytes(b"x")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert torch_hub_checkpoints_dir() == hub
    assert find_weight("w", hub_filename="w.pth") == hub / "w.pth"
    monkeypatch.setenv("LADTALK_TEST_W", str(env_file))
    assert find_weight("w", env_var="LADTALK_TEST_W", hub_filename="w.pth") == env_file
    assert find_weight("w", explicit_path=env_file, hub_filename="w.pth") == env_file
    with pytest.raises(InputError, match="does not exist"):
        find_weight("w", explicit_path=tmp_path / "missing.pth")
    monkeypatch.delenv("LADTALK_TEST_W")
    assert find_weight("w", hub_filename="nope.pth") is None
    p = find_weight("lpips heads", package="lpips", package_relpath="weights/v0.1/vgg.pth")
    if p is None:
        pytest.skip("the lpips wheel is not installed (pip install --no-deps lpips==0.1.4)")
    assert p.name == "vgg.pth"


def test_load_unwraps_and_strips(tmp_path):
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": {"module.a.weight": torch.ones(2), "step": 3}, "global_step": 5}, path)
    sd = load_torch_weights(path)
    assert list(sd) == ["a.weight"] and torch.equal(sd["a.weight"], torch.ones(2))


def test_load_refuses_code_truncation_and_non_dicts(tmp_path):
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as f:
        pickle.dump({"w": _Evil()}, f)
    with pytest.raises(CheckpointError, match="safely"):
        load_torch_weights(evil)
    good = tmp_path / "good.pth"
    torch.save({"w": torch.zeros(1000)}, good)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(good.read_bytes()[:300])
    with pytest.raises(CheckpointError, match="truncated"):
        load_torch_weights(cut)
    lst = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], lst)
    with pytest.raises(CheckpointError, match="not a state dict"):
        load_torch_weights(lst)
