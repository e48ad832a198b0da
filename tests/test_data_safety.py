"""Nothing the user gave is ever lost or half-read: every subcommand refuses an output that is (or resolves to,
through symlinks, hard links or relative paths) one of its inputs, before any work, and refuses NaN/inf audio and
absurd numbers with a message and exit code 2."""

import hashlib
import os
import shutil

import numpy as np
import pytest
import scipy.io.wavfile
import torch

from ladtalk.checkpoint import save_component
from ladtalk.cli import main
from ladtalk.errors import InputError
from ladtalk.io.audio import load_audio
from ladtalk.io.guard import refuse_output_over_inputs
from ladtalk.models.sovqae import SOVQAE, SOVQAEConfig
from ladtalk.models.wav2lip import Wav2Lip, Wav2LipConfig
from ladtalk.presets import load_preset


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def ws(synthetic_identity, synthetic_clip, tmp_path_factory):
    """A user's folder: a clip, a symlink to it, an identity copy, speech, and two model folders."""
    d = tmp_path_factory.mktemp("user")
    shutil.copy(synthetic_clip.video_path, d / "clip.mp4")
    (d / "link.mp4").symlink_to("clip.mp4")
    shutil.copy(synthetic_clip.audio_path, d / "speech.wav")
    shutil.copytree(synthetic_identity, d / "ident")
    torch.manual_seed(0)
    w2l = Wav2Lip(Wav2LipConfig(width=0.25, img_size=48))
    save_component(d / "w2l", "wav2lip", w2l.config, w2l.state_dict())
    cfg = SOVQAEConfig.from_dict(load_preset("tiny")["model"])
    save_component(d / "vq", "sovqae", cfg, SOVQAE(cfg).state_dict())
    (d / "notes").mkdir()
    (d / "notes" / "todo.txt").write_text("precious")
    return d


def _run(args, capsys, cwd):
    old = os.getcwd()
    os.chdir(cwd)  # relative paths, as a user types them
    try:
        code = main(args)
    finally:
        os.chdir(old)
    return code, capsys.readouterr().err


OVER_INPUT = {
    "enhance onto its own input": (["enhance", "clip.mp4", "--sovqae", "vq", "-o", "clip.mp4"], "same file"),
    "enhance onto a symlink of its input": (["enhance", "link.mp4", "--sovqae", "vq", "-o", "./notes/../clip.mp4"],
                                            "same file as the video"),
    "generate onto the identity's source video": (
        ["generate", "--identity", "ident", "--audio", "speech.wav", "--wav2lip", "w2l", "--no-sovqae", "-o", "SRC"],
        "identity's source video"),
    "generate onto its driving audio (a video)": (
        ["generate", "--identity", "ident", "--audio", "clip.mp4", "--wav2lip", "w2l", "--no-sovqae", "-o",
         "link.mp4"], "same file as the audio"),
    "generate onto its identity video": (
        ["generate", "--identity", "clip.mp4", "--audio", "speech.wav", "--wav2lip", "w2l", "--no-sovqae", "-o",
         "clip.mp4"], "same file as the identity"),
    "prepare into the folder holding its video": (["prepare", "clip.mp4", "-o", "."], "contains the identity video"),
    "prepare onto its video": (["prepare", "link.mp4", "-o", "clip.mp4"], "same file as the identity video"),
    "analyze into the identity": (["analyze", "vq", "ident", "-o", "ident"], "is the identity"),
    "analyze into the model": (["analyze", "vq", "ident", "-o", "vq/"], "is the SOVQAE model"),
    "analyze into a folder of other files": (["analyze", "vq", "ident", "-o", "notes"], "not an earlier"),
    "evaluate into the folder holding the videos": (
        ["evaluate", "--pred", "clip.mp4", "--gt", "link.mp4", "--align", "frames", "-o", "."], "contains"),
    "evaluate onto the prediction": (["evaluate", "--pred", "clip.mp4", "--gt", "link.mp4", "-o", "link.mp4"],
                                     "same file as the prediction"),
    "evaluate into a folder of other files": (["evaluate", "--pred", "clip.mp4", "--gt", "link.mp4", "-o", "notes"],
                                              "not an earlier"),
    "train sovqae into its identity": (["train", "sovqae", "ident", "-o", "ident/run"], "inside the training data"),
    "train syncnet onto its data": (["train", "syncnet", "ident", "-o", "ident"], "is the training data"),
    "train wav2lip onto its expert": (["train", "wav2lip", "ident", "--syncnet", "w2l", "-o", "w2l"],
                                      "is the --syncnet weights"),
}


@pytest.mark.parametrize("name", list(OVER_INPUT))
def test_output_over_an_input_is_refused_before_any_work(ws, capsys, name):
    args, needle = OVER_INPUT[name]
    src = str((ws / "ident" / "identity.json").read_text())
    src_video = __import__("json").loads(src)["source"]["path"]
    args = [src_video if a == "SRC" else a for a in args]
    before = {p: _digest(p) for p in ws.rglob("*") if p.is_file() and not p.is_symlink()}
    code, err = _run(args, capsys, ws)
    assert code == 2 and needle in err, err
    assert "destroy" in err or "replaced" in err
    after = {p: _digest(p) for p in ws.rglob("*") if p.is_file() and not p.is_symlink()}
    assert after == before  # nothing changed, nothing added (no partial files, no caches)


def test_hard_link_to_an_input_is_the_input(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"x")
    os.link(tmp_path / "a.wav", tmp_path / "b.mp4")
    with pytest.raises(InputError, match="same file as the audio"):
        refuse_output_over_inputs(tmp_path / "b.mp4", [("audio", tmp_path / "a.wav")])
    refuse_output_over_inputs(tmp_path / "c.mp4", [("audio", tmp_path / "a.wav")])  # a new name is fine
    refuse_output_over_inputs(tmp_path / "out", [("audio", tmp_path / "a.wav")])  # a sibling folder too


def _float_wav(path, bad):
    x = (0.3 * np.sin(np.arange(16000) / 10)).astype(np.float32)
    x[4000:4003] = bad
    scipy.io.wavfile.write(path, 16000, x)
    return path


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_audio_samples_are_named(tmp_path, bad):
    with pytest.raises(InputError, match=r"3 audio samples .* not numbers .* first at 0\.250 s"):
        load_audio(_float_wav(tmp_path / "bad.wav", bad))


def test_generate_with_nan_audio_fails_clearly(ws, tmp_path, capsys):
    wav = _float_wav(tmp_path / "nan.wav", np.nan)
    code, err = _run(["generate", "--identity", "ident", "--audio", str(wav), "--wav2lip", "w2l", "--no-sovqae",
                      "-o", str(tmp_path / "o.mp4"), "--device", "cpu"], capsys, ws)
    assert code == 2 and "not numbers (NaN or infinite)" in err and "Traceback" not in err
    assert not (tmp_path / "o.mp4").exists() and not [p for p in tmp_path.iterdir() if ".partial" in p.name]


ABSURD = {
    "prepare --fps nan": (["prepare", "clip.mp4", "-o", "OUT", "--fps", "nan"], "--fps must be a frame rate"),
    "prepare --fps 1e9": (["prepare", "clip.mp4", "-o", "OUT", "--fps", "1e9"], "--fps must be a frame rate"),
    "prepare --pads huge": (["prepare", "clip.mp4", "-o", "OUT", "--pads", "0 100000 0 0"], "reach beyond"),
    "enhance --pads huge": (["enhance", "clip.mp4", "--sovqae", "vq", "-o", "OUT.mp4", "--pads", "0 0 -9999 0"],
                            "reach beyond"),
    "analyze --max-frames 0": (["analyze", "vq", "ident", "-o", "OUT", "--max-frames", "0"], "at least 1"),
    "generate --batch-size 0": (["generate", "--identity", "ident", "--audio", "speech.wav", "--wav2lip", "w2l",
                                 "--no-sovqae", "-o", "OUT.mp4", "--batch-size", "0"], "at least 1"),
    "synth --seconds nan": (["synth", "-o", "OUT", "--seconds", "nan"], "seconds must be"),
    "train --set lr nan": (["train", "sovqae", "ident", "-o", "OUT", "--preset", "tiny", "--set",
                            "train.base_lr=nan"], "finite number"),
    "train --set steps negative": (["train", "sovqae", "ident", "-o", "OUT", "--preset", "tiny", "--set",
                                    "train.max_steps=-5"], "cannot be negative"),
    "train --set batch 0": (["train", "syncnet", "ident", "-o", "OUT", "--preset", "syncnet-tiny", "--set",
                             "train.batch_size=0"], "at least 1"),
    "train --set a word for a number": (["train", "wav2lip", "ident", "--syncnet", "w2l", "-o", "OUT", "--preset",
                                         "wav2lip-tiny", "--set", "train.batch_size=many"], "give a number"),
}


@pytest.mark.parametrize("name", list(ABSURD))
def test_absurd_numbers_are_refused(ws, tmp_path, capsys, name):
    args, needle = ABSURD[name]
    args = [str(tmp_path / a) if a.startswith("OUT") else a for a in args]
    code, err = _run(args + (["--device", "cpu"] if args[0] not in ("synth",) else []), capsys, ws)
    assert code == 2 and needle in err and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []
