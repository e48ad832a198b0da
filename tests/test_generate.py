"""`generate` and `enhance` end to end with small random-weight networks saved as model folders, and bad input."""

import pickle
import time

import numpy as np
import pytest
import torch

from ladtalk.cli import main
from ladtalk.data.identity import Identity
from ladtalk.io.audio import load_audio, write_wav
from ladtalk.io.video import iter_frames, probe_video
from ladtalk.pipeline.enhance import enhance
from ladtalk.pipeline.generate import generate


def _speech(path, seconds, sample_rate=16000, channels=1):
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    x = 0.3 * np.sin(2 * np.pi * 220 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    write_wav(path, x.astype(np.float32), sample_rate)
    return path


@pytest.mark.parametrize("seconds", [1.5, 5.0])  # shorter and longer than the 4 s identity video
def test_generate_any_audio_length(synthetic_identity, tiny_models, tmp_path, seconds):
    out = tmp_path / "out.mp4"
    report = generate(synthetic_identity, _speech(tmp_path / "s.wav", seconds), out,
                      wav2lip_path=tiny_models / "wav2lip", sovqae_path=tiny_models / "sovqae", device="cpu")
    info = probe_video(out)
    assert info.has_audio and info.fps == pytest.approx(25.0)
    assert info.frame_count == round(seconds * 25) == report.frames
    assert abs(len(load_audio(out)) / 16000 - seconds) < 0.1
    assert set(report.stage_seconds) >= {"mel", "decode", "wav2lip", "sovqae", "paste", "encode"}
    # outside the pasted face the identity video is unchanged
    ident = Identity.open(synthetic_identity)
    gen = next(iter_frames(out))
    src = next(iter_frames(ident.source_path))
    x1, y1, x2, y2 = ident.crop_boxes[0]
    outside = np.ones(gen.shape[:2], bool)
    outside[max(0, int(y1)):int(y2) + 1, max(0, int(x1)):int(x2) + 1] = False
    assert np.abs(gen.astype(int) - src.astype(int))[outside].mean() < 3
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


def test_no_sovqae_and_hard_paste(synthetic_identity, tiny_models, tmp_path):
    out = tmp_path / "plain.mp4"
    report = generate(synthetic_identity, _speech(tmp_path / "s.wav", 1.0), out, wav2lip_path=tiny_models / "wav2lip",
                      no_sovqae=True, paste="hard", device="cpu")
    assert "sovqae" not in report.stage_seconds and probe_video(out).frame_count == report.frames


def test_audio_formats(synthetic_identity, tiny_models, tmp_path):
    """48 kHz stereo M4A drives generation like a 16 kHz WAV."""
    m4a = tmp_path / "speech.m4a"
    t = np.arange(48000) / 48000
    stereo = np.stack([np.sin(2 * np.pi * 200 * t), np.sin(2 * np.pi * 300 * t)], 1).astype(np.float32) * 0.3
    import av
    with av.open(str(m4a), "w") as c:
        s = c.add_stream("aac", rate=48000, layout="stereo")
        frame = av.AudioFrame.from_ndarray(stereo.T.copy(), format="fltp", layout="stereo")
        frame.sample_rate = 48000
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    out = tmp_path / "o.mp4"
    generate(synthetic_identity, m4a, out, wav2lip_path=tiny_models / "wav2lip", sovqae_path=tiny_models / "sovqae",
             device="cpu")
    assert abs(probe_video(out).frame_count - 25) <= 2


def test_silent_audio_still_makes_a_video(synthetic_identity, tiny_models, tmp_path, capsys):
    silent = tmp_path / "silence.wav"
    write_wav(silent, np.zeros(16000, np.float32), 16000)
    generate(synthetic_identity, silent, tmp_path / "o.mp4", wav2lip_path=tiny_models / "wav2lip", no_sovqae=True,
             device="cpu")
    assert "silent" in capsys.readouterr().out


@pytest.mark.parametrize("temporal", [False, True])
def test_enhance_keeps_length_audio_and_background(synthetic_clip, tiny_models, tmp_path, temporal):
    out = tmp_path / "enhanced.mp4"
    report = enhance(synthetic_clip.video_path, out, sovqae_path=tiny_models / "sovqae", device="cpu", batch_size=7,
                     temporal_filter=temporal)
    src, dst = probe_video(synthetic_clip.video_path), probe_video(out)
    assert dst.frame_count == src.frame_count == report.frames and dst.has_audio
    assert ("temporal" in report.stage_seconds) == temporal
    a, b = next(iter_frames(synthetic_clip.video_path)), next(iter_frames(out))
    assert np.abs(a.astype(int) - b.astype(int))[:20].mean() < 3  # the top rows are outside the face


def _cli(args, capsys):
    code = main(args)
    return code, capsys.readouterr().err


@pytest.fixture
def base_args(synthetic_identity, tiny_models, tmp_path):
    speech = _speech(tmp_path / "s.wav", 1.0)
    return ["generate", "--identity", str(synthetic_identity), "--audio", str(speech),
            "--wav2lip", str(tiny_models / "wav2lip"), "--sovqae", str(tiny_models / "sovqae"), "--device", "cpu"]


def _replace(args, flag, value):
    args = list(args)
    args[args.index(flag) + 1] = str(value)
    return args


def test_bad_inputs_fail_clearly_and_leave_nothing(base_args, tiny_models, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    cases = {
        "missing audio": (_replace(base_args, "--audio", tmp_path / "none.wav"), "does not exist"),
        "wrong kind of checkpoint": (_replace(base_args, "--wav2lip", tiny_models / "sovqae"), "'sovqae' model"),
        "sovqae given a wav2lip": (_replace(base_args, "--sovqae", tiny_models / "wav2lip"), "'wav2lip' model"),
        "not an identity": (_replace(base_args, "--identity", tmp_path), "not an identity folder"),
    }
    trunc = tmp_path / "trunc.pth"
    torch.save({"state_dict": {"module.x": torch.zeros(1000)}}, trunc)
    trunc.write_bytes(trunc.read_bytes()[:200])
    cases["truncated checkpoint"] = (_replace(base_args, "--wav2lip", trunc), "is truncated or not a torch weight")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"state_dict": Evil()}))
    cases["malicious pickle"] = (_replace(base_args, "--wav2lip", evil), "cannot be loaded safely")
    for name, (args, needle) in cases.items():
        code = main(args + ["-o", str(out)])
        printed, err = capsys.readouterr()
        assert code == 2, name
        assert needle and needle in err, (name, err)
        assert "pwned" not in printed + err, name  # the pickle's code never ran
        assert not out.exists(), name
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


def test_identity_of_an_incompatible_version(base_args, synthetic_identity, tmp_path, capsys):
    import json
    import shutil
    old = tmp_path / "old_identity"
    shutil.copytree(synthetic_identity, old)
    meta = json.loads((old / "identity.json").read_text())
    meta["format_version"] = 99
    (old / "identity.json").write_text(json.dumps(meta))
    code, err = _cli(_replace(base_args, "--identity", old) + ["-o", str(tmp_path / "o.mp4")], capsys)
    assert code == 2 and "incompatible" in err and not (tmp_path / "o.mp4").exists()


def test_output_must_be_a_video_name(base_args, tmp_path, capsys):
    code, err = _cli(base_args + ["-o", str(tmp_path / "out.txt")], capsys)
    assert code == 2 and ".mp4" in err


def test_identity_video_is_prepared_once(synthetic_clip, tiny_models, tmp_path, monkeypatch):
    monkeypatch.setenv("LADTALK_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "o.mp4"
    generate(synthetic_clip.video_path, _speech(tmp_path / "s.wav", 1.0), out, wav2lip_path=tiny_models / "wav2lip",
             no_sovqae=True, device="cpu")
    assert len(list((tmp_path / "cache" / "identities").iterdir())) == 1 and out.exists()


def test_writer_failure_mid_run_leaves_no_file(synthetic_identity, tiny_models, tmp_path, monkeypatch):
    from ladtalk.pipeline import generate as gen_mod

    def boom(*a, **k):
        raise RuntimeError("simulated crash")
    monkeypatch.setattr(gen_mod, "paste_faces", boom)
    out = tmp_path / "o.mp4"
    with pytest.raises(RuntimeError):
        generate(synthetic_identity, _speech(tmp_path / "s.wav", 1.0), out, wav2lip_path=tiny_models / "wav2lip",
                 no_sovqae=True, device="cpu")
    assert not out.exists() and not [p for p in tmp_path.iterdir() if ".partial" in p.name]



def test_identity_whose_source_video_is_gone(base_args, synthetic_identity, tmp_path, capsys):
    import json
    import shutil
    moved = tmp_path / "moved_identity"
    shutil.copytree(synthetic_identity, moved)
    meta = json.loads((moved / "identity.json").read_text())
    meta["source"]["path"] = str(tmp_path / "gone.mp4")
    (moved / "identity.json").write_text(json.dumps(meta))
    code, err = _cli(_replace(base_args, "--identity", moved) + ["-o", str(tmp_path / "o.mp4")], capsys)
    assert code == 2 and "source video" in err and not (tmp_path / "o.mp4").exists()


def test_output_keeps_the_driving_audio_and_reports_whole_and_steady_fps(synthetic_identity, tiny_models, tmp_path,
                                                                         capsys):
    """Stereo 44.1 kHz speech stays stereo 44.1 kHz (not a 16 kHz mono downmix); the closing line gives the whole
    run's FPS from the command's start and the steady state beside it."""
    import wave

    from ladtalk.io.audio import AudioInfo, probe_audio

    rate = 44100
    t = np.arange(int(1.2 * rate)) / rate
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 220 * t), 0.3 * np.sin(2 * np.pi * 330 * t)], 1)
    with wave.open(str(tmp_path / "stereo.wav"), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.round(stereo * 32767).astype("<i2").tobytes())
    started = time.perf_counter() - 5.0  # as if imports had taken 5 s
    report = generate(synthetic_identity, tmp_path / "stereo.wav", tmp_path / "o.mp4",
                      wav2lip_path=tiny_models / "wav2lip", no_sovqae=True, batch_size=8, started_at=started)
    assert probe_audio(tmp_path / "o.mp4") == AudioInfo(rate, 2)
    assert len(load_audio(tmp_path / "o.mp4", rate)) == pytest.approx(len(t), abs=2048)
    assert report.seconds >= 5.0 and report.steady_frames == report.frames - 8
    line = capsys.readouterr().out
    assert f"{report.fps:.1f} FPS end to end" in line and f"{report.steady_fps:.1f} FPS steady state" in line
