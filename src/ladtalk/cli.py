"""`ladtalk` command line: each subcommand calls one public function with the same parameter names.

The flags are derived from that function's signature (names, types, which are required) and the parsed values are
passed straight through as keyword arguments; a flag left out is not passed, so every default lives in the
signature alone. Help comes from the function's docstring where it describes a parameter, else from `FLAGS` below.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import sys
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ladtalk.errors import LadtalkError
from ladtalk.presets import DEFAULT_PRESETS, preset_names

EPILOG = ("Run `ladtalk demo -o demo_out` for a complete example on built-in synthetic data, and "
          "`ladtalk train person VIDEO -o RUN` to train the models of a person from their video.")


@dataclass(frozen=True)
class Command:
    functions: tuple[str, ...]  # "module:function"; with several, the first whose required parameters are given
    help: str
    positional: tuple[str, ...] = ()  # parameters taken as positional arguments, in this order
    description: str | None = None


@dataclass(frozen=True)
class Flag:
    help: str
    names: tuple[str, ...] = ()  # default: --name, less a `_path` suffix (see `_flag_names`)
    metavar: str | None = None
    choices: tuple | str | None = None  # a tuple, or "module:NAME" of one (read when the flags are built)


COMMANDS = {
    "prepare": Command(
        ("ladtalk.data.prepare:prepare",), "detect and track the face in an identity video; write an identity folder",
        positional=("video_path",),
        description="Detect, track and crop the face of an identity video into an identity folder (crops, 16 kHz "
        "audio, boxes, train/test split). Re-running is a no-op; an interrupted run resumes."),
    "synth": Command(("ladtalk.data.synthetic:synthesize",),
                     "render the seeded synthetic talking face (MP4 + WAV + ground truth)"),
    "train person": Command(("ladtalk.train.person:train_person",),
                            "one command from a person's video to their models: prepare, lip-sync expert, "
                            "generator, restorer (resumable)", positional=("video_path",)),
    "train sovqae": Command(("ladtalk.train.sovqae:train_sovqae",),
                            "identity-specific Space-Optimized VQ autoencoder", positional=("data_dirs",)),
    "train syncnet": Command(("ladtalk.train.syncnet:train_syncnet",), "the lip-sync expert (Wav2Lip's SyncNet_color)",
                             positional=("data_dirs",)),
    "train wav2lip": Command(("ladtalk.train.wav2lip:train_wav2lip",),
                             "the Wav2Lip generator (optionally with the visual-quality GAN)",
                             positional=("data_dirs",)),
    "analyze": Command(("ladtalk.analyze:analyze",), "measure the paper's theory on a trained SOVQAE: d_C, gamma, L_E, "
                       "NRoUB, robustness to blur / noise / Wav2Lip-like degradation",
                       positional=("model_path", "identity_dir")),
    "generate": Command(("ladtalk.pipeline.generate:generate",),
                        "speech -> lip-synced video of the identity (Wav2Lip -> SOVQAE cascade)"),
    "enhance": Command(("ladtalk.pipeline.enhance:enhance",),
                       "plug-and-play: repair the faces of any talking-head video of the identity",
                       positional=("video_path",)),
    "evaluate": Command(("ladtalk.evaluate:evaluate", "ladtalk.evaluate:evaluate_cases"),
                        "PSNR, SSIM, LPIPS, FID, LSE-C/D, temporal stability; JSON + report"),
    "reenact": Command(("ladtalk.reenact:reenact",), "the paper's self-reenactment protocol: drive the identity's test "
                       "split by its own audio, score Wav2Lip only and the cascade against the real frames",
                       positional=("identity",)),
    "demo": Command(("ladtalk.demo:demo",), "end to end on built-in synthetic data: synth -> prepare -> train -> "
                    "generate -> evaluate (CPU, a few minutes)"),
    "serve": Command(("ladtalk.serve:serve",),
                     "the whole workflow in a web page and an HTTP API (needs ladtalk[serve])"),
}
GROUPS = {"train": "train a person's models from their video (person), or one component: sovqae, syncnet or "
                   "wav2lip"}

# Help for the parameters the docstrings do not describe; "command:parameter" wins over "parameter".
FLAGS = {
    "device": Flag("cpu, cuda, cuda:N or auto"),
    "serve:device": Flag("one job worker per device: cpu, cuda:0,cuda:1 or auto"),
    "precision": Flag("compute precision", choices="ladtalk.runtime:PRECISIONS"),
    "seed": Flag("random seed"),
    "batch_size": Flag("faces per batch (default: 64 on a GPU, 16 on the CPU, where the SOVQAE still takes 2 at a "
                       "time: faster there)"),
    "max_frames": Flag("use at most this many frames"),
    "out_dir": Flag("folder to write", metavar="DIR"),
    "prepare:out_dir": Flag("identity folder to write", metavar="IDENTITY_DIR"),
    "reenact:out_dir": Flag("report folder to write", metavar="REPORT_DIR"),
    "run_dir": Flag("run folder: checkpoints, logs and the exported model (resumes if it exists)",
                    metavar="RUN_DIR"),
    "report_dir": Flag("report folder to write", metavar="REPORT_DIR"),
    "out_path": Flag("video to write", metavar="OUT.mp4"),
    "video_path": Flag("identity video (any container FFmpeg reads)", metavar="VIDEO"),
    "train person:video_path": Flag("the person's video: a few minutes, one face in view, speaking (any format "
                                    "FFmpeg reads)", metavar="VIDEO"),
    "train person:run_dir": Flag("run folder: the identity, the models and summary.json (resumes if it exists)",
                                 metavar="RUN_DIR"),
    "threads": Flag("", metavar="N"),  # help: the docstring, or CLI_ONLY's
    "recipe": Flag("", choices="ladtalk.train.person:RECIPE_NAMES"),  # help: train_person's docstring
    "enhance:video_path": Flag("talking-head video of the identity", metavar="VIDEO"),
    "size": Flag("face crop size in pixels", choices=(256, 512)),
    "synth:size": Flag("frame size in pixels (square)"),
    "fps": Flag("resample the video to this frame rate (default: keep)"),
    "synth:fps": Flag("frame rate"),
    "seconds": Flag("length of the clip"),
    "sample_rate": Flag("audio sample rate in Hz"),
    "detector": Flag("'mtcnn' (offline weights from facenet-pytorch) or 's3fd:PATH' to your s3fd.pth"),
    "enhance:detector": Flag("'mtcnn' or 's3fd:PATH' (default: the one the SOVQAE's training faces were found with)"),
    "evaluate:detector": Flag("face detector for the LSE face crops: 'mtcnn' or 's3fd:PATH'"),
    "track": Flag("index of the face track to keep when several people are visible (default: main)"),
    "pads": Flag("Wav2Lip-style padding of the face box in pixels", metavar="'T B L R'"),
    "enhance:pads": Flag("face box padding (default: the pads the SOVQAE's identity was prepared with)",
                         metavar="'T B L R'"),
    "test_fraction": Flag("share of the frames held out as the test split (the last ones)"),
    "data_dirs": Flag("identity folders or LRS2-style dataset roots (<spk>/<vid>/{k}.jpg + audio.wav)",
                      metavar="DATA_DIR"),
    "train sovqae:data_dirs": Flag("identity folder(s) written by `ladtalk prepare`", metavar="DATA_DIR"),
    "preset": Flag("preset name ({presets}) or a YAML path (default: {default_presets})"),  # names from configs/
    "overrides": Flag("override one preset value, e.g. --set train.max_steps=500 (repeatable)", names=("--set",),
                      metavar="KEY=VALUE"),
    "syncnet_path": Flag("syncnet_v2.model for LSE-C / LSE-D"),
    "train wav2lip:syncnet_path": Flag("trained expert: lipsync_expert.pth, a `train syncnet` run/model folder, or "
                                       "'builtin' (the shipped synthetic-48 expert)"),
    "start_from": Flag("", metavar="CHECKPOINT"),  # help: train_sovqae's docstring
    "init_path": Flag("start from these generator weights (wav2lip.pth, a model folder or 'builtin') to fine-tune"),
    "train syncnet:init_path": Flag("start from these expert weights (lipsync_expert.pth, a model folder or "
                                    "'builtin') to fine-tune"),
    "model_path": Flag("SOVQAE model or run folder", metavar="MODEL"),
    "identity_dir": Flag("prepared identity folder", metavar="IDENTITY_DIR"),
    "identity": Flag("identity folder or a video of the person"),
    "reenact:identity": Flag("prepared identity folder (its test split is used)", metavar="IDENTITY_DIR"),
    "audio_path": Flag("driving speech (wav, mp3, m4a, any rate)"),
    "wav2lip_path": Flag("wav2lip.pth / wav2lip_gan.pth, a `train wav2lip` model folder, or 'builtin' (the "
                         "shipped synthetic-48 base, never trained on any real person)"),
    "sovqae_path": Flag("SOVQAE model or run folder"),
    "reenact:sovqae_path": Flag("SOVQAE model or run folder (the cascade row)"),
    "no_sovqae": Flag("plain Wav2Lip result, for comparison"),
    "paste": Flag("'mouth' (blend the lower face only; the rest stays the identity's own frame), 'feather' (the whole "
                  "face box, feathered) or 'hard' (the whole box, the paper's paste)",
                  choices="ladtalk.face.crop:PASTE_MODES"),
    "reenact:paste": Flag("score only this paste (default: hard, feather and mouth, each with its own rows)",
                          choices="ladtalk.face.crop:PASTE_MODES"),
    "temporal_limit": Flag("the most the temporal filter moves a pixel, in levels of 8 bits: lower keeps more of a "
                           "mouth that opens for one frame, higher steadies more", metavar="LEVELS"),
    "overlap_io": Flag("decode and encode in the main thread (the sequential baseline of bench/generate.py)"),
    "pred_path": Flag("generated video"),
    "gt_path": Flag("ground-truth video"),
    "cases_path": Flag("CSV/TSV table of cases (name, pred, gt) for a batch report"),
    "inception_path": Flag("pt_inception-2015-12-05-6726825d.pth for FID (default: torch hub cache)"),
    "lse_crop": Flag("LSE on syncnet_python's face crops (the published protocol) or on whole frames (reported as "
                     "LSE-D_whole_frame / LSE-C_whole_frame)", choices=("face", "frame")),
    "align": Flag("sliding window (the paper's) or plain frame-aligned evaluation", choices=("sliding", "frames")),
    "lpips": Flag("skip the perceptual distance (slow on CPU)"),
    "train_seconds": Flag("length of the synthetic identity video"),
    "test_seconds": Flag("length of the new speech"),
    "data_dir": Flag("the server's own folder: uploads, identities, models, job results", metavar="DIR"),
    "host": Flag("address to listen on; 127.0.0.1 is this machine only"),
    "port": Flag("port to listen on"),
    "token": Flag("require this token (needed when --host is not loopback; default: $LADTALK_SERVE_TOKEN)"),
    "max_upload_mb": Flag("largest upload accepted"),
}
OUTPUTS = ("out_dir", "run_dir", "report_dir", "out_path")  # written by the command: -o
# Options of the command line itself, for commands whose function has no such parameter: (commands, flag).
CLI_ONLY = {
    "threads": (("prepare", "train", "analyze", "generate", "enhance", "evaluate", "reenact", "demo", "synth"),
                Flag("torch threads (default: torch's choice, one per core); fewer can be faster on a busy machine",
                     metavar="N")),
    "allow_gpu_preset_on_cpu": (("train syncnet", "train wav2lip"),
                                Flag("run a GPU-sized preset (the official 500,000-step recipes) on a CPU anyway")),
}
# Parameters of the public functions that are not flags, and why.
NOT_FLAGS = {
    "started_at": "set by the CLI to the process start, so that the report's total includes the start-up",
    "frame_indices": "an array of frames, for callers in Python (reenact)",
    "demo:overrides": "a --set list per trainer, for callers in Python (tests, bench)",
}
SUPPLIED = {"started_at": lambda: importlib.import_module("ladtalk.runtime").command_started_at()}


def resolve(target: str) -> Callable:
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def _flag(command: str, name: str) -> Flag:
    return FLAGS.get(f"{command}:{name}") or FLAGS.get(name) or Flag("")  # no entry: the docstring describes it


def _flag_names(name: str, param: inspect.Parameter, flag: Flag) -> tuple[str, ...]:
    if flag.names:
        return flag.names
    if name in OUTPUTS:
        return "-o", "--" + name.replace("_", "-")
    if param.default is True:
        return ("--no-" + name.replace("_", "-"),)
    return ("--" + name.removesuffix("_path").replace("_", "-"),)


def is_flag(command: str, name: str) -> bool:
    return name not in NOT_FLAGS and f"{command}:{name}" not in NOT_FLAGS


def documented(func: Callable) -> dict[str, str]:
    """The parameters the docstring describes as "`name`: text" (or "name: text") at the start of a paragraph or
    sentence, each up to the next such description, the next sentence that opens with `code` or the paragraph's end."""
    names = "|".join(inspect.signature(func).parameters)
    found = {}
    for paragraph in (inspect.getdoc(func) or "").split("\n\n"):
        text = " ".join(paragraph.split())
        for part in re.split(r"(?<=\.) (?=`)", text):
            marks = list(re.finditer(rf"(?:^|(?<=\. ))`?({names})`?: ", part))
            for mark, after in zip(marks, marks[1:] + [None]):
                found[mark.group(1)] = part[mark.end():after.start() if after else None].strip()
    return found


def _pads(text: str) -> tuple[int, int, int, int]:
    parts = [int(p) for p in text.replace(",", " ").split()]
    if len(parts) != 4:
        raise argparse.ArgumentTypeError("pads are four integers: top bottom left right, e.g. '0 10 0 0'")
    return tuple(parts)  # type: ignore[return-value]


def _value_type(hint) -> tuple[Callable | None, bool]:
    """argparse's type for an annotation (None for a bool: a switch) and whether it takes several values."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    for option in options:
        if typing.get_origin(option) is tuple:
            return _pads, False  # the one tuple parameter: pads
        if typing.get_origin(option) in (list, Sequence):
            return _value_type(typing.get_args(option)[0])[0], True
    for kind in (bool, int, float):
        if kind in options:
            return (None if kind is bool else kind), False
    return str, False


def _default_note(default) -> str:
    if default is None or default is inspect.Parameter.empty or isinstance(default, bool) or default == ():
        return ""
    return f" (default: {' '.join(map(str, default)) if isinstance(default, tuple) else default})"


def parameters(command: str) -> dict[str, tuple[inspect.Parameter, object, int]]:
    """The command's flag parameters: each with its annotation and in how many of the command's functions it is
    required (a flag is required when it is in all of them)."""
    found: dict[str, tuple[inspect.Parameter, object, int]] = {}
    for func in map(resolve, COMMANDS[command].functions):
        hints = typing.get_type_hints(func)
        for name, param in inspect.signature(func).parameters.items():
            if is_flag(command, name):
                first, hint, required_in = found.get(name, (param, hints[name], 0))
                found[name] = (first, hint, required_in + (param.default is inspect.Parameter.empty))
    return found


def _add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    spec = COMMANDS[command]
    docs = {k: v for func in reversed(spec.functions) for k, v in documented(resolve(func)).items()}
    params = parameters(command)
    for name in spec.positional + tuple(n for n in params if n not in spec.positional):
        param, hint, required_in = params[name]
        flag = _flag(command, name)
        preset_of_model = name == "preset" and _model(command) is not None  # the same help for the three trainers
        text = (flag.help if preset_of_model else docs.get(name) or flag.help).replace(
            "{presets}", ", ".join(preset_names(_model(command))))
        if _model(command) in DEFAULT_PRESETS:
            cpu, gpu = DEFAULT_PRESETS[_model(command)]
            text = text.replace("{default_presets}", f"{cpu} on a CPU, {gpu} on a GPU")
        kind, many = _value_type(hint)
        if name in spec.positional:
            parser.add_argument(name, metavar=flag.metavar or name.upper(), help=text, type=kind,
                                nargs="+" if many else None)
        elif kind is None:
            parser.add_argument(*_flag_names(name, param, flag), dest=name, default=argparse.SUPPRESS, help=text,
                                action="store_false" if param.default else "store_true")
        else:
            choices = resolve(flag.choices) if isinstance(flag.choices, str) else flag.choices
            parser.add_argument(*_flag_names(name, param, flag), dest=name, default=argparse.SUPPRESS, type=kind,
                                action="append" if many else "store", required=required_in == len(spec.functions),
                                metavar=flag.metavar, choices=choices,
                                help=text + ("" if preset_of_model else _default_note(param.default)))


def _model(command: str) -> str | None:
    """The trainer a `train X` command runs ("syncnet", "wav2lip", "sovqae"), else None."""
    group, _, name = command.partition(" ")
    return name if group == "train" and name in DEFAULT_PRESETS else None


def _cli_only(command: str) -> dict[str, Flag]:
    """The command line's own options that this command takes (its function has no parameter of the name)."""
    params = parameters(command)
    return {name: flag for name, (commands, flag) in CLI_ONLY.items()
            if name not in params and any(command == c or command.startswith(c + " ") for c in commands)}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or with `only` (a command's first word) one whose other commands have no flags yet: what
    the command named needs, without importing every module (torch and all) for a start-up or `--help`."""
    parser = argparse.ArgumentParser(prog="ladtalk", description=__doc__.split("\n")[0], epilog=EPILOG)
    from ladtalk import __version__
    parser.add_argument("--version", action="version", version=f"ladtalk {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups = {}
    for command, spec in COMMANDS.items():
        group, _, name = command.rpartition(" ")
        if group and group not in groups:
            groups[group] = sub.add_parser(group, help=GROUPS[group]).add_subparsers(dest="component", required=True)
        p = (groups[group] if group else sub).add_parser(name, help=spec.help, description=spec.description)
        p.set_defaults(command_spec=command)
        if only is None or command.split()[0] == only:
            _add_arguments(p, command)
            for name, flag in _cli_only(command).items():  # a value where it has a metavar (threads), else a switch
                value = {"type": int, "metavar": flag.metavar} if flag.metavar else {"action": "store_true"}
                p.add_argument("--" + name.replace("_", "-"), dest=name, default=argparse.SUPPRESS, help=flag.help,
                               **value)
    return parser


def run(command: str, given: dict) -> object:
    """Call the command's function with the parsed values (and what the CLI itself supplies) as keyword arguments."""
    funcs = [resolve(f) for f in COMMANDS[command].functions]
    required = [[n for n, p in inspect.signature(f).parameters.items() if p.default is inspect.Parameter.empty]
                for f in funcs]
    for func, needs in zip(funcs, required):
        if all(n in given for n in needs):
            params = inspect.signature(func).parameters
            extra = [n for n in given if n not in params]
            if extra:
                own = [n for n in needs if not all(n in r for r in required)]
                raise LadtalkError(f"{_shown(command, extra)} cannot be combined with {_shown(command, own)}")
            return func(**given, **{n: make() for n, make in SUPPLIED.items() if n in params})
    raise LadtalkError("give " + ", or ".join(_shown(command, [n for n in r if n not in given]) for r in required))


def _shown(command: str, names: list[str]) -> str:
    """How the user spells these parameters on the command line, e.g. '--pred and --gt'."""
    params = parameters(command)
    spelled = [(_flag(command, name).metavar or name.upper()) if name in COMMANDS[command].positional
               else _flag_names(name, params[name][0], _flag(command, name))[-1] for name in names]
    return " and ".join(spelled)


def _apply_cli_only(command: str, given: dict) -> None:
    """Take the command line's own options out of `given` and act on them: threads, and for the lip-sync
    trainers (whose functions default to the official GPU recipes) the preset that suits the device."""
    own = {name: given.pop(name) for name in _cli_only(command) if name in given}
    if "threads" in _cli_only(command):
        from ladtalk.train.common import set_threads
        set_threads(own.get("threads"))
    if "allow_gpu_preset_on_cpu" in _cli_only(command):
        from ladtalk.train.common import choose_preset
        given["preset"] = choose_preset(_model(command), given.get("preset"), given.get("device", "auto"),
                                        own.get("allow_gpu_preset_on_cpu", False))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # only the named command's flags are built: its module is imported, the others are not
    args = vars(build_parser(only=next((a for a in argv if not a.startswith("-")), "")).parse_args(argv))
    command = args.pop("command_spec")
    name = args.pop("command")
    args.pop("component", None)
    try:
        _apply_cli_only(command, args)
        run(command, args)
    except LadtalkError as e:
        print(f"ladtalk {name}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        again = "resume" if name in ("prepare", "train", "demo") else "start again"
        print(f"ladtalk {name}: interrupted; re-run the same command to {again}", file=sys.stderr)
        return 130
    return 0
