"""The CLI is its functions' signatures: a flag for every public parameter, defaults only in the signature."""

import argparse
import functools
import importlib
import inspect

import pytest

from ladtalk import cli


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    for word in command.split():
        choices = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
        parser = choices[word]
    return parser


@pytest.fixture(scope="module")
def parser():
    return cli.build_parser()


@pytest.mark.parametrize("command", list(cli.COMMANDS))
def test_every_parameter_has_a_flag_and_every_default_is_the_signatures(parser, command):
    actions = {a.dest: a for a in _subparser(parser, command)._actions if a.dest != "help"}
    for func in map(cli.resolve, cli.COMMANDS[command].functions):
        for name in inspect.signature(func).parameters:
            if not cli.is_flag(command, name):
                continue  # cli.NOT_FLAGS says why
            assert name in actions, f"`ladtalk {command}` has no flag for {func.__name__}({name}=)"
            action = actions[name]
            assert action.help, f"`ladtalk {command}` {name}: no help in the docstring or cli.FLAGS"
            if name not in cli.COMMANDS[command].positional:
                # a flag left out is not passed, so the function's own default applies: nothing to drift
                assert action.default is argparse.SUPPRESS, f"`ladtalk {command}` restates the default of {name}"
    assert set(actions) <= {n for f in map(cli.resolve, cli.COMMANDS[command].functions)
                            for n in inspect.signature(f).parameters} | set(cli.CLI_ONLY), \
        "a flag with no parameter behind it"


def test_every_parameter_left_out_is_one_of_a_command():
    names = {(command, n) for command, spec in cli.COMMANDS.items() for f in map(cli.resolve, spec.functions)
             for n in inspect.signature(f).parameters}
    for key in cli.NOT_FLAGS:
        command, _, name = key.rpartition(":")
        assert any(n == name and command in ("", c) for c, n in names), f"NOT_FLAGS[{key!r}] names no parameter"


def test_the_table_does_not_restate_what_a_docstring_says():
    for command, spec in cli.COMMANDS.items():
        for func in map(cli.resolve, spec.functions):
            for name in cli.documented(func):
                assert f"{command}:{name}" not in cli.FLAGS, f"{command}:{name} is described in the docstring"


def test_docstring_descriptions_are_read_per_parameter():
    def f(a, b_path, c):
        """Do it.

        `a`: the first one. `b_path`: the second (default: none); see `c`.

        c: the third, which spans
        two lines. `not_a_parameter` ends here."""
    assert cli.documented(f) == {"a": "the first one.", "b_path": "the second (default: none); see `c`.",
                                 "c": "the third, which spans two lines."}


def _record(monkeypatch, target):
    """Replace `module:function` with one that records its keyword arguments (and keeps the signature)."""
    module, name = target.split(":")
    real = cli.resolve(target)
    calls = []

    @functools.wraps(real)
    def fake(**kwargs):
        calls.append(kwargs)
    # the module object, not its dotted name: ladtalk.reenact (like demo, analyze, evaluate) is the function
    monkeypatch.setattr(importlib.import_module(module), name, fake)
    return calls


def test_parsed_values_pass_straight_through(monkeypatch, tmp_path):
    calls = _record(monkeypatch, "ladtalk.data.prepare:prepare")
    assert cli.main(["prepare", "v.mp4", "-o", "out"]) == 0
    assert calls[-1] == {"video_path": "v.mp4", "out_dir": "out"}  # nothing the user did not give
    assert cli.main(["prepare", "v.mp4", "-o", "out", "--pads", "0 5 0 0", "--test-fraction", "0.2",
                     "--size", "512", "--track", "1"]) == 0
    assert calls[-1] == {"video_path": "v.mp4", "out_dir": "out", "pads": (0, 5, 0, 0), "test_fraction": 0.2,
                         "size": 512, "track": 1}

    calls = _record(monkeypatch, "ladtalk.train.wav2lip:train_wav2lip")
    run = str(tmp_path / "run")
    assert cli.main(["train", "wav2lip", "a", "b", "--syncnet", "s.pth", "-o", run, "--set", "x=1", "--set",
                     "y=2"]) == 0
    # the one value the user did not give: on this CPU, the CPU preset instead of the official 500,000 steps
    assert calls[-1] == {"data_dirs": ["a", "b"], "syncnet_path": "s.pth", "run_dir": run, "overrides": ["x=1", "y=2"],
                         "preset": "wav2lip-identity"}

    calls = _record(monkeypatch, "ladtalk.pipeline.generate:generate")
    assert cli.main(["generate", "--identity", "i", "--audio", "a.wav", "--wav2lip", "w", "--no-sovqae",
                     "--no-overlap-io", "-o", "o.mp4"]) == 0
    started_at = calls[-1].pop("started_at")
    assert isinstance(started_at, float)  # the CLI's own
    assert calls[-1] == {"identity": "i", "audio_path": "a.wav", "wav2lip_path": "w", "no_sovqae": True,
                         "overlap_io": False, "out_path": "o.mp4"}

    calls = _record(monkeypatch, "ladtalk.reenact:reenact")
    assert cli.main(["reenact", "ident", "--wav2lip", "w", "-o", "r", "--no-lpips", "--max-frames", "9"]) == 0
    assert calls[-1] == {"identity": "ident", "wav2lip_path": "w", "out_dir": "r", "lpips": False, "max_frames": 9}


def test_evaluate_calls_the_pair_or_the_table_version(monkeypatch, capsys):
    pair = _record(monkeypatch, "ladtalk.evaluate:evaluate")
    table = _record(monkeypatch, "ladtalk.evaluate:evaluate_cases")
    assert cli.main(["evaluate", "--pred", "p.mp4", "--gt", "g.mp4", "--truth", "t.json", "--max-frames", "5",
                     "-o", "r"]) == 0
    assert pair == [{"pred_path": "p.mp4", "gt_path": "g.mp4", "truth_path": "t.json", "max_frames": 5,
                     "report_dir": "r"}]
    assert cli.main(["evaluate", "--cases", "c.csv", "--lse-crop", "frame", "-o", "r"]) == 0
    assert table == [{"cases_path": "c.csv", "lse_crop": "frame", "report_dir": "r"}]
    assert cli.main(["evaluate", "-o", "r"]) == 2
    assert "give --pred and --gt, or --cases" in capsys.readouterr().err
    assert cli.main(["evaluate", "--cases", "c.csv", "--truth", "t.json", "-o", "r"]) == 2
    assert "--truth cannot be combined with --cases" in capsys.readouterr().err
    assert len(pair) == len(table) == 1


def test_a_bad_value_is_refused_by_the_parser():
    for args in (["prepare", "v.mp4", "-o", "o", "--pads", "1 2 3"], ["prepare", "v.mp4", "-o", "o", "--size", "300"],
                 ["generate", "--identity", "i", "--audio", "a", "--wav2lip", "w", "-o", "o", "--paste", "x"],
                 ["train", "syncnet", "d", "-o", "r", "--wav2lip", "w"]):
        with pytest.raises(SystemExit) as e:
            cli.main(args)
        assert e.value.code == 2, args


def test_a_training_without_a_preset_gets_the_cpu_one_and_a_gpu_preset_needs_the_flag(monkeypatch, tmp_path, capsys):
    calls = _record(monkeypatch, "ladtalk.train.syncnet:train_syncnet")
    run = str(tmp_path / "run")
    assert cli.main(["train", "syncnet", "d", "-o", run, "--device", "cpu"]) == 0
    assert calls[-1]["preset"] == "syncnet-identity"
    assert "no --preset given: using 'syncnet-identity' on this CPU" in capsys.readouterr().err
    assert cli.main(["train", "syncnet", "d", "-o", run, "--device", "cpu", "--preset", "syncnet"]) == 2
    assert "sized for a GPU" in capsys.readouterr().err and len(calls) == 1
    assert cli.main(["train", "syncnet", "d", "-o", run, "--device", "cpu", "--preset", "syncnet",
                     "--allow-gpu-preset-on-cpu"]) == 0
    assert calls[-1]["preset"] == "syncnet" and "allow_gpu_preset_on_cpu" not in calls[-1]


def test_preset_help_lists_only_that_models_presets(parser):
    for command, mine, other in [("train syncnet", "syncnet-identity", "restore-cpu"),
                                 ("train wav2lip", "wav2lip-tiny", "syncnet-tiny"),
                                 ("train sovqae", "restore-cpu", "wav2lip-identity")]:
        text = next(a.help for a in _subparser(parser, command)._actions if a.dest == "preset")
        assert mine in text and other not in text, (command, text)


def test_threads_sets_torchs_threads_and_is_not_passed_on(monkeypatch, tmp_path):
    import torch

    calls = _record(monkeypatch, "ladtalk.data.prepare:prepare")
    before = torch.get_num_threads()
    try:
        assert cli.main(["prepare", "v.mp4", "-o", str(tmp_path / "o"), "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1 and "threads" not in calls[-1]
        assert cli.main(["prepare", "v.mp4", "-o", str(tmp_path / "o"), "--threads", "0"]) == 2
    finally:
        torch.set_num_threads(before)


def test_train_person_passes_its_options_through(monkeypatch, tmp_path):
    calls = _record(monkeypatch, "ladtalk.train.person:train_person")
    run = str(tmp_path / "run")
    assert cli.main(["train", "person", "v.mp4", "-o", run, "--wav2lip", "w.pth", "--recipe", "tiny",
                     "--threads", "1"]) == 0
    assert calls[-1] == {"video_path": "v.mp4", "run_dir": run, "wav2lip_path": "w.pth", "recipe": "tiny",
                         "threads": 1}
