"""Official-style and ladtalk-folder lip-sync checkpoints load strictly; bad files raise CheckpointError."""

from __future__ import annotations

import json
import os

import pytest
import torch

from ladtalk.checkpoint import save_component
from ladtalk.errors import CheckpointError
from ladtalk.lipsync_weights import (
    detect_kind,
    load_syncnet_expert,
    load_syncnet_s,
    load_wav2lip,
)
from ladtalk.models.syncnet import SyncNetColor, SyncNetConfig, SyncNetS
from ladtalk.models.wav2lip import Wav2Lip, Wav2LipConfig


def official_checkpoint(state_dict: dict[str, torch.Tensor]) -> dict:
    """The dict layout of the official training scripts' .pth files."""
    return {"state_dict": {"module." + k: v for k, v in state_dict.items()}, "optimizer": None,
            "global_step": 0, "global_epoch": 0}


def _randomize(model: torch.nn.Module) -> torch.nn.Module:
    # non-default BN statistics so that a load that silently skipped them would be noticed
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if "running" in name:
                buf.copy_(torch.rand(buf.shape, generator=g) + 0.5)
    return model.eval()


@pytest.fixture(scope="module")
def official_generator(tmp_path_factory):
    """A full-size generator saved the way wav2lip.pth is: nested state_dict with 'module.' prefixes."""
    model = _randomize(Wav2Lip())
    path = tmp_path_factory.mktemp("official") / "wav2lip.pth"
    torch.save(official_checkpoint(model.state_dict()), path)
    return model, path


def test_official_generator_file_loads_strictly(official_generator):
    model, path = official_generator
    loaded = load_wav2lip(path)
    assert not loaded.training
    audio, face = torch.rand(1, 1, 80, 16), torch.rand(1, 6, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(loaded(audio, face), model(audio, face))


def test_official_expert_and_others_load(tmp_path):
    expert = _randomize(SyncNetColor())
    torch.save({"state_dict": expert.state_dict(), "optimizer": None, "global_step": 5, "global_epoch": 1},
               tmp_path / "lipsync_expert.pth")
    got = load_syncnet_expert(tmp_path / "lipsync_expert.pth")
    for k, v in expert.state_dict().items():
        assert torch.equal(got.state_dict()[k], v), k
    torch.save(SyncNetS().state_dict(), tmp_path / "syncnet_v2.model")
    assert isinstance(load_syncnet_s(tmp_path / "syncnet_v2.model"), SyncNetS)
    # the expert handed over as the generator: named, not a list of missing keys
    with pytest.raises(CheckpointError, match="lip-sync expert.*generator"):
        load_wav2lip(tmp_path / "lipsync_expert.pth")
    with pytest.raises(CheckpointError, match="syncnet_python"):
        load_syncnet_expert(tmp_path / "syncnet_v2.model")


def test_missing_num_batches_tracked_is_fine(tmp_path):
    # checkpoints from torch < 0.4.1 carry no num_batches_tracked
    state = {k: v for k, v in SyncNetColor().state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save({"state_dict": state}, tmp_path / "old.pth")
    load_syncnet_expert(tmp_path / "old.pth")


def test_truncated_file(official_generator, tmp_path):
    _, path = official_generator
    cut = tmp_path / "wav2lip.pth"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(CheckpointError, match="truncated"):
        load_wav2lip(cut)


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch PWNED_BY_PICKLE",))


def test_malicious_pickle_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"state_dict": {"x": torch.zeros(1)}, "payload": _RunsCode()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="safely"):
        load_wav2lip(tmp_path / "evil.pth")
    assert not (tmp_path / "PWNED_BY_PICKLE").exists()


def test_model_folders(tmp_path):
    cfg = Wav2LipConfig(width=0.125, img_size=48)
    model = _randomize(Wav2Lip(cfg))
    save_component(tmp_path / "run" / "model", "wav2lip", cfg, model.state_dict())
    for where in (tmp_path / "run" / "model", tmp_path / "run"):
        got = load_wav2lip(where)
        assert got.config == cfg
        with torch.no_grad():
            x = (torch.rand(2, 1, 80, 16), torch.rand(2, 6, 48, 48))
            torch.testing.assert_close(got(*x), model(*x))
    # a folder of another kind
    save_component(tmp_path / "sovqae", "sovqae", {"codebook_size": 8}, {"w": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="sovqae"):
        load_wav2lip(tmp_path / "sovqae")
    exp_cfg = SyncNetConfig(width=0.125, img_size=48)
    save_component(tmp_path / "expert", "syncnet_expert", exp_cfg, SyncNetColor(exp_cfg).state_dict())
    assert load_syncnet_expert(tmp_path / "expert").config == exp_cfg
    with pytest.raises(CheckpointError, match="syncnet_expert"):
        load_wav2lip(tmp_path / "expert")
    # a folder from an incompatible format version
    meta_path = tmp_path / "run" / "model" / "config.json"
    meta = json.loads(meta_path.read_text())
    meta["format_version"] = 99
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="format version"):
        load_wav2lip(tmp_path / "run")
    with pytest.raises(CheckpointError, match="not a ladtalk model"):
        load_wav2lip(tmp_path / "nothing_here" if (tmp_path / "nothing_here").mkdir() is None else tmp_path)


def test_detect_kind():
    assert detect_kind(Wav2Lip(Wav2LipConfig(width=0.125)).state_dict()) == "wav2lip"
    assert detect_kind({"encoder.weight": torch.zeros(1)}) is None
