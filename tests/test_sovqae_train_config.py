"""The SOVQAE trainer's config: every SOVQAE preset reads into it, the restorer's keys default to the paper's
behaviour, and a wrong key or value fails by name before the run folder exists."""

import re

import pytest
import yaml
from _sovqae_fake import make_identity

from ladtalk.errors import InputError
from ladtalk.presets import load_preset, preset_names
from ladtalk.train.config import read_config
from ladtalk.train.sovqae import train_sovqae
from ladtalk.train.sovqae_config import SOVQAETrainConfig

SOVQAE_PRESETS = [p for p in preset_names() if p.split("-")[0] not in ("syncnet", "wav2lip")]


def test_the_sovqae_presets_are_the_five_shipped():
    assert SOVQAE_PRESETS == ["demo", "paper-256", "paper-512", "restore-cpu", "tiny"]


@pytest.mark.parametrize("preset", SOVQAE_PRESETS)
def test_every_sovqae_preset_reads_into_its_config(preset):
    t = read_config(SOVQAETrainConfig, load_preset(preset)["train"])
    assert t.adam_betas == (0.5, 0.9) and isinstance(t.base_lr, float) and t.batch_size > 0


def test_keys_only_the_restorer_sets_default_to_the_paper():
    paper = read_config(SOVQAETrainConfig, load_preset("paper-256")["train"])
    assert (paper.degrade, paper.patch_size, paper.restart_dead_every, paper.lr_schedule, paper.warmup_steps,
            paper.init_codebook, paper.holdout_fraction, paper.lipsync_share) == (0.0, 0, 0, "constant", 0,
                                                                                 "uniform", 0.05, 0.5)
    restorer = read_config(SOVQAETrainConfig, load_preset("restore-cpu")["train"])
    assert (restorer.degrade, restorer.patch_size, restorer.lr_schedule, restorer.init_codebook) == (
        0.75, 128, "cosine", "data")
    # the restorer's patch-GAN acts in its last steps only (from the start it cost 3.5 dB on CPU budgets)
    assert 0 < restorer.max_steps - restorer.disc_start <= restorer.max_steps // 4


def _tiny(*overrides):
    return read_config(SOVQAETrainConfig, load_preset("tiny", overrides)["train"])


def test_values_are_checked_by_name():
    assert _tiny("train.base_lr=1e-4").base_lr == 1e-4  # YAML reads 1e-4 as a string: taken as the number
    assert _tiny("train.data_on_device=false").data_on_device is False
    for override, needle in [("train.batch_size=8.5", "train.batch_size must be an integer, got 8.5"),
                             ("train.augment=maybe", "train.augment must be true or false, got 'maybe'"),
                             ("train.reg_mode=max", "train.reg_mode must be 'min' or 'mean', got 'max'"),
                             ("train.init_codebook=zeros", "train.init_codebook must be 'uniform' or 'data'"),
                             ("train.disc_loss=wgan", "train.disc_loss must be 'hinge' or 'vanilla'"),
                             ("train.perceptual=vgg", "train.perceptual must be 'auto' or 'lpips_vgg'"),
                             ("train.data_on_device=gpu", "train.data_on_device must be true or false or 'auto'"),
                             ("train.precision=fp8", "train.precision must be 'auto' or 'fp32' or 'bf16' or 'fp16'"),
                             ("train.val_every=0", "train.val_every must be above zero")]:
        with pytest.raises(InputError, match=re.escape(needle)):
            _tiny(override)
    t = load_preset("restore-cpu")["train"]
    for key, value, needle in [("lr_schedule", "step", "train.lr_schedule must be 'constant' or 'cosine'"),
                               ("degrade", 1.5, "train.degrade must be between 0 and 1, got 1.5"),
                               ("patch_size", -8, "train.patch_size must be at least 0, got -8")]:
        with pytest.raises(InputError, match=re.escape(needle)):
            read_config(SOVQAETrainConfig, {**t, key: value})
    del t["epochs"]
    with pytest.raises(InputError, match=r"train lacks \['epochs'\]"):
        read_config(SOVQAETrainConfig, t)


@pytest.mark.parametrize("key, value, needle", [("val_evry", 5, r"unknown train keys \['val_evry'\]"),
                                                ("batch_size", "eight", "train.batch_size must be an integer"),
                                                # options measured, rejected and removed (docs/results.md)
                                                ("temporal_weight", 0, r"unknown train keys \['temporal_weight'\]"),
                                                ("reg_mode", "softmin", "train.reg_mode must be 'min' or 'mean'")])
def test_a_bad_train_value_fails_before_the_run_folder_exists(tmp_path, key, value, needle):
    ident = make_identity(tmp_path / "id", n_frames=8, size=32)
    cfg = load_preset("tiny")
    cfg["train"][key] = value
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(InputError, match=needle):
        train_sovqae([ident], tmp_path / "run", preset=str(tmp_path / "mine.yaml"), device="cpu")
    assert not (tmp_path / "run").exists()


def test_a_gpu_preset_on_a_cpu_needs_the_flag_and_no_preset_means_the_cpu_one(tmp_path, capsys):
    ident = make_identity(tmp_path / "id", n_frames=8, size=32)
    with pytest.raises(InputError, match="sized for a GPU.*--preset restore-cpu.*--allow-gpu-preset-on-cpu"):
        train_sovqae([ident], tmp_path / "run", preset="paper-256", device="cpu")
    assert not (tmp_path / "run").exists()
    from ladtalk.train.common import choose_preset

    assert choose_preset("sovqae", None, "cpu") == "restore-cpu"
    assert "no --preset given: using 'restore-cpu' on this CPU" in capsys.readouterr().err
    assert choose_preset("wav2lip", "wav2lip", "cpu", allow_gpu_preset_on_cpu=True) == "wav2lip"
