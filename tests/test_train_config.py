"""Training configs: each lip-sync preset reads into its typed config; a wrong key or value fails by name, early."""

import re

import pytest
import yaml
from _lipsync_fake import make_talking_identity

from ladtalk.errors import InputError
from ladtalk.presets import load_preset, preset_names
from ladtalk.train.config import read_config
from ladtalk.train.syncnet import SyncNetTrainConfig, train_syncnet
from ladtalk.train.wav2lip import Wav2LipTrainConfig

CONFIGS = {"syncnet": SyncNetTrainConfig, "wav2lip": Wav2LipTrainConfig}


@pytest.mark.parametrize("preset", [p for p in preset_names() if p.split("-")[0] in CONFIGS])
def test_every_lip_sync_preset_reads_into_its_config(preset):
    t = read_config(CONFIGS[preset.split("-")[0]], load_preset(preset)["train"])
    assert t.batch_size > 0 and isinstance(t.lr, float)
    if isinstance(t, SyncNetTrainConfig):
        assert 0 <= t.near_negatives <= 1 and t.weight_decay >= 0
    if isinstance(t, Wav2LipTrainConfig):
        assert t.adam_betas == (0.9, 0.999) and t.expert_bn in ("train", "eval")


def _wav2lip(*overrides):
    return read_config(Wav2LipTrainConfig, load_preset("wav2lip-tiny", overrides)["train"])


def test_values_are_checked_by_name():
    assert _wav2lip("train.lr=1e-4").lr == 1e-4  # YAML reads 1e-4 as a string: taken as the number it is
    assert _wav2lip("train.max_minutes=5").max_minutes == 5.0
    assert _wav2lip("train.num_workers=2").num_workers == 2
    for override, needle in [("train.batch_size=8.5", "train.batch_size must be an integer, got 8.5"),
                             ("train.gan=maybe", "train.gan must be true or false, got 'maybe'"),
                             ("train.expert_bn=frozen", "train.expert_bn must be 'train' or 'eval', got 'frozen'"),
                             ("train.adam_betas=[0.9]", "train.adam_betas must be a list of 2: a number, a number"),
                             ("train.precision=fp8", "train.precision must be 'auto' or 'fp32' or 'bf16' or 'fp16'")]:
        with pytest.raises(InputError, match=re.escape(needle)):
            _wav2lip(override)
    t = load_preset("wav2lip-tiny")["train"]
    with pytest.raises(InputError, match=r"unknown train keys \['lr_rate'\]"):
        read_config(Wav2LipTrainConfig, {**t, "lr_rate": 0.1})
    with pytest.raises(InputError, match="train.eval_every must be above zero"):
        read_config(Wav2LipTrainConfig, {**t, "eval_every": 0})
    with pytest.raises(InputError, match=re.escape("train.num_workers must be an integer or 'auto', got 'many'")):
        read_config(Wav2LipTrainConfig, {**t, "num_workers": "many"})
    del t["gan"]
    with pytest.raises(InputError, match=r"train lacks \['gan'\]"):
        read_config(Wav2LipTrainConfig, t)
    del t["max_minutes"]  # optional
    t["gan"] = False
    assert read_config(Wav2LipTrainConfig, t).max_minutes is None


def test_a_bad_key_in_a_preset_file_fails_before_the_run_folder_exists(tmp_path):
    ident = make_talking_identity(tmp_path / "id", seconds=1.0, size=64)
    cfg = load_preset("syncnet-tiny")
    cfg["train"]["eval_evry"] = 5
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(InputError, match=r"unknown train keys \['eval_evry'\]"):
        train_syncnet([ident], tmp_path / "run", preset=str(tmp_path / "mine.yaml"), device="cpu")
    assert not (tmp_path / "run").exists()
