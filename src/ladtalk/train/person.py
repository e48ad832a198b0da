"""`ladtalk train person VIDEO -o RUN`: one command from a person's video to their models, in stages each skipped
once its model exists (an interrupted one resumes, as its trainer does): prepare (RUN/identity) -> the lip-sync
expert (RUN/syncnet) -> generator (RUN/wav2lip; neither with `wav2lip_path`) -> the restorer (RUN/sovqae, on the
generator's own faces too). RUN/person.json records a run's options; RUN/summary.json its models and figures."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ladtalk.checkpoint import read_meta
from ladtalk.data.identity import Identity
from ladtalk.data.prepare import prepare
from ladtalk.errors import InputError
from ladtalk.io.atomic import check_writable_dir
from ladtalk.io.guard import refuse_output_over_inputs
from ladtalk.io.video import VideoInfo, probe_video
from ladtalk.presets import GPU_PRESETS, load_preset
from ladtalk.pretrained import resolve as resolve_builtin
from ladtalk.runtime import resolve_device
from ladtalk.train.common import print_summary, set_threads
from ladtalk.train.sovqae import FIGURES as SOVQAE_FIGURES
from ladtalk.train.sovqae import train_sovqae
from ladtalk.train.syncnet import CHANCE_WARNING_ACCURACY, train_syncnet
from ladtalk.train.wav2lip import train_wav2lip


@dataclass(frozen=True)
class Recipe:
    """The presets of the three trainers (and `--set` overrides for each), by stage name."""

    presets: dict[str, str]
    overrides: dict[str, tuple[str, ...]] = field(default_factory=dict)


RECIPES = {
    # what restoration_macron_lipsync measured (docs/results.md, earlier studies): ~45 minutes on 2 idle cores
    # for a 50 s video
    "cpu": Recipe({"syncnet": "syncnet-identity", "wav2lip": "wav2lip-identity", "sovqae": "restore-cpu"}),
    # the paper's restorer (taming's f=16 VQGAN); the lip-sync base stays the identity one, quick on a GPU
    "gpu": Recipe({"syncnet": "syncnet-identity", "wav2lip": "wav2lip-identity", "sovqae": "paper-256"}),
    # a few steps of the tiny networks: proves the whole chain runs (tests, CI), not a usable model
    "tiny": Recipe({"syncnet": "syncnet-tiny", "wav2lip": "wav2lip-tiny", "sovqae": "tiny"}, {
        "syncnet": ("train.max_steps=3", "train.eval_every=3", "train.eval_batches=1", "train.batch_size=4"),
        "wav2lip": ("train.max_steps=3", "train.eval_every=3", "train.eval_batches=1", "train.batch_size=2"),
        "sovqae": ("train.max_steps=4", "train.val_every=4", "train.checkpoint_every=4", "train.val_frames=4",
                   "train.batch_size=4")}),
}
RECIPE_NAMES = ("auto", *RECIPES)

# Seconds per training step on 2 idle cores of this project's CPU machine (bench/results/training_budget_macron.json)
# and prepare's seconds per second of 512x512 video (bench/results/prepare.json): the estimate printed up front.
CPU_SECONDS_PER_STEP = {"syncnet-identity": 0.20, "wav2lip-identity": 0.83, "restore-cpu": 0.64}
CPU_SETUP_SECONDS = {"restore-cpu": 80.0}  # the lip-sync faces of every train frame, the codebook's start
PREPARE_SECONDS_PER_VIDEO_SECOND = 0.8


def train_person(video_path: str | os.PathLike, run_dir: str | os.PathLike,
                 wav2lip_path: str | os.PathLike | None = None, recipe: str = "auto", device: str = "auto",
                 threads: int | None = None, allow_gpu_preset_on_cpu: bool = False) -> dict[str, Any]:
    """Prepare a person's video and train their models in RUN_DIR; returns the summary (also RUN_DIR/summary.json).

    `wav2lip_path`: a lip-sync generator you already have (wav2lip.pth, wav2lip_gan.pth, a `train wav2lip` model
    folder, or `builtin`: the base shipped in the package, the recommended one on a CPU): the expert and generator
    stages are skipped and the restorer learns that generator's faces.
    `recipe`: cpu (the CPU recipe: identity lip-sync base + restore-cpu), gpu (the paper's restorer, paper-256),
    tiny (a few steps of tiny networks, to check the chain) or auto (cpu or gpu by the device).
    `threads`: torch threads for the whole run (default: torch's own choice).
    `allow_gpu_preset_on_cpu`: run the gpu recipe on a CPU anyway (days of work)."""
    set_threads(threads)
    video_path, run_dir = Path(video_path), Path(run_dir)
    on_cpu = resolve_device(device).type == "cpu"
    name = ("cpu" if on_cpu else "gpu") if recipe == "auto" else recipe
    if name not in RECIPES:
        raise InputError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPE_NAMES)}")
    chosen = RECIPES[name]
    gpu_sized = sorted(p for p in chosen.presets.values() if p in GPU_PRESETS)
    if on_cpu and gpu_sized and not allow_gpu_preset_on_cpu:
        raise InputError(f"the {name} recipe uses {', '.join(gpu_sized)}, sized for a GPU; on this CPU use "
                         "--recipe cpu, or add --allow-gpu-preset-on-cpu to run it anyway")
    if not video_path.is_file():
        raise InputError(f"{video_path} is not a file; give the person's video (any format FFmpeg reads)")
    info = probe_video(video_path)  # a file FFmpeg cannot read is refused before RUN_DIR is made
    if wav2lip_path is not None:
        wav2lip_path = resolve_builtin(wav2lip_path, "wav2lip")  # 'builtin': the shipped base's generator
    if wav2lip_path is not None and not Path(wav2lip_path).exists():
        raise InputError(f"--wav2lip {wav2lip_path} does not exist; give a wav2lip.pth / wav2lip_gan.pth file or a "
                         "`ladtalk train wav2lip` model folder, 'builtin', or leave --wav2lip out to train one")
    refuse_output_over_inputs(run_dir, [("person's video", video_path), ("--wav2lip weights", wav2lip_path)],
                              folder=True)
    started = _start_run(run_dir, {"video": str(video_path.resolve()), "recipe": name,
                                   "wav2lip": str(Path(wav2lip_path).resolve()) if wav2lip_path else None})
    stages = ["prepare", "sovqae"] if wav2lip_path else ["prepare", "syncnet", "wav2lip", "sovqae"]
    _print_plan(run_dir, stages, chosen, info, on_cpu)
    ident, syncnet, wav2lip, sovqae = (run_dir / s for s in ("identity", "syncnet", "wav2lip", "sovqae"))
    wav2lip_model = Path(wav2lip_path) if wav2lip_path else wav2lip / "model"

    def run(stage: str, train) -> None:
        if _done(run_dir / stage):
            print(f"[{stage}] done before: {run_dir / stage / 'model'}", file=sys.stderr)
            return
        print(f"[{stage}] {chosen.presets[stage]} -> {run_dir / stage}", file=sys.stderr)
        train(preset=chosen.presets[stage], overrides=list(chosen.overrides.get(stage, ())), device=device)

    print(f"[prepare] {video_path} -> {ident}", file=sys.stderr)
    prepare(video_path, ident, size=256, device=device)  # a no-op once done; resumes when interrupted
    if not wav2lip_path:
        run("syncnet", lambda **kw: train_syncnet([ident], syncnet, **kw))
        run("wav2lip", lambda **kw: train_wav2lip([ident], wav2lip, syncnet_path=syncnet / "model", **kw))
    run("sovqae", lambda **kw: train_sovqae([ident], sovqae, wav2lip_path=wav2lip_model,
                                            allow_gpu_preset_on_cpu=allow_gpu_preset_on_cpu, **kw))
    summary = summarize(run_dir, wav2lip_model, time.monotonic() - started)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    figures = {k: v for k, v in summary.items() if k not in ("warnings", "stages")}
    for stage, values in summary["stages"].items():
        figures.update({f"{stage}: {k}": v for k, v in values.items()})
    print_summary(f"ladtalk train person: {run_dir}", figures, summary["warnings"])
    return summary


def _done(stage_dir: Path) -> bool:
    """Whether a stage's model was exported (a trainer writes it last, each file atomically)."""
    return all((stage_dir / "model" / name).is_file() for name in ("config.json", "model.safetensors"))


def _start_run(run_dir: Path, options: dict[str, Any]) -> float:
    """Create RUN_DIR (or check that it is this run's: a run resumed with other options would mix models)."""
    record = run_dir / "person.json"
    if record.is_file():
        before = json.loads(record.read_text())
        if before != options:
            changed = ", ".join(f"{k}: {before.get(k)} -> {v}" for k, v in options.items() if before.get(k) != v)
            raise InputError(f"{run_dir} is a run started with other options ({changed}); give the same options to "
                             "resume it, or a new -o folder")
    elif run_dir.is_file() or (run_dir.is_dir() and any(run_dir.iterdir())):
        raise InputError(f"{run_dir} exists and is not a `ladtalk train person` run (no person.json in it); choose "
                         "a new or empty folder")
    check_writable_dir(run_dir)
    record.write_text(json.dumps(options, indent=2))
    return time.monotonic()


def _length(preset: str, overrides: tuple[str, ...]) -> tuple[int | None, str]:
    """A stage's steps and the plan's words for them: a SOVQAE preset without train.max_steps counts epochs, whose
    steps depend on the frames (None: not known before prepare)."""
    t = load_preset(preset, overrides)["train"]
    steps = t.get("max_steps")
    return steps, f"{steps} steps" if steps is not None else f"{t['epochs']} epochs"


def _print_plan(run_dir: Path, stages: list[str], recipe: Recipe, info: VideoInfo, on_cpu: bool) -> None:
    """The stages still to run, their presets and steps, and the time they should take on this machine."""
    todo = [s for s in stages if s == "prepare" or not _done(run_dir / s)]
    seconds, known = 0.0, on_cpu
    lines = []
    for stage in todo:
        if stage == "prepare":
            seconds += info.frame_count / info.fps * PREPARE_SECONDS_PER_VIDEO_SECOND
            lines.append(f"  prepare  {info.frame_count} frames at 256 px")
            continue
        preset = recipe.presets[stage]
        steps, length = _length(preset, recipe.overrides.get(stage, ()))
        lines.append(f"  {stage:8s} {preset}, {length}")
        rate = CPU_SECONDS_PER_STEP.get(preset)
        known = known and rate is not None and steps is not None
        seconds += (steps or 0) * (rate or 0) + CPU_SETUP_SECONDS.get(preset, 0)
    estimate = (f"about {math.ceil(seconds / 60)} min on 2 idle CPU cores (a busy machine takes longer)" if known
                else "no estimate for these presets on this device (not measured)")
    print("\n".join([f"ladtalk train person -> {run_dir}: {estimate}", *lines]), file=sys.stderr, flush=True)


def summarize(run_dir: Path, wav2lip_model: Path, seconds: float) -> dict[str, Any]:
    """Where the models are, each stage's validation figures, and plain warnings about any that look wrong."""
    ident = Identity.open(run_dir / "identity")
    stages: dict[str, dict[str, Any]] = {"prepare": {
        "frames": ident.frame_count, "frames with a face": int(ident.has_face.sum()),
        "train frames": len(ident.train_indices), "test frames": len(ident.test_indices)}}
    warnings: list[str] = []
    if ident.has_face.mean() < 0.9:
        warnings.append(f"a face was found on only {100 * ident.has_face.mean():.0f}% of the frames; the others "
                        "train nothing (a video with the face always in view works best)")
    if (run_dir / "syncnet" / "model").is_dir():
        extra = read_meta(run_dir / "syncnet" / "model").get("extra", {})
        loss, held_out = float(extra.get("best_val_loss", math.nan)), extra.get("val", {})
        accuracy = float(held_out.get("accuracy", math.nan))
        stages["syncnet"] = {"steps": extra.get("steps"), "best validation loss": loss,
                             "held-out accuracy": accuracy, "held-out AUC": held_out.get("auc")}
        if not accuracy >= CHANCE_WARNING_ACCURACY:  # chance is 0.5 (an older expert without it: NaN, warned)
            warnings.append(f"the lip-sync expert is near chance (held-out accuracy {accuracy:.2f}, loss "
                            f"{loss:.3f}; chance 0.5 / 0.693): the generator gets little lip-sync signal from it; "
                            "a longer video or more steps help")
    if (run_dir / "wav2lip" / "model").is_dir():
        extra = read_meta(run_dir / "wav2lip" / "model").get("extra", {})
        stages["wav2lip"] = {"steps": extra.get("steps"), "sync loss on": extra.get("sync_loss_on")}
        if not extra.get("sync_loss_on"):
            warnings.append("the generator's sync loss never switched on (the expert never judged its faces in "
                            "sync): its mouths follow the audio only through the reconstruction loss")
    validation = read_meta(run_dir / "sovqae" / "model").get("extra", {}).get("validation", {})
    stages["sovqae"] = {name: validation[k] for k, name in SOVQAE_FIGURES.items() if k in validation}
    if validation.get("lipsync_psnr_restored", math.inf) < validation.get("lipsync_psnr_input", -math.inf):
        warnings.append("the restorer makes the lip-sync faces worse on held-out frames "
                        f"({validation['lipsync_psnr_input']:.2f} -> {validation['lipsync_psnr_restored']:.2f} dB)")
    identity, sovqae = run_dir / "identity", run_dir / "sovqae"
    return {"identity": str(identity), "wav2lip": str(wav2lip_model), "sovqae": str(sovqae / "model"),
            "minutes": round(seconds / 60, 1), "stages": stages, "warnings": warnings,
            "next": f"ladtalk generate --identity {identity} --audio SPEECH.wav --wav2lip {wav2lip_model} "
                    f"--sovqae {sovqae} -o out.mp4"}
