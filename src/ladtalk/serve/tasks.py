"""What each job kind does, in the job's own process: a call of the public functions the CLI calls, with paths
the server has already checked, returning a JSON-able summary for the page. No logic of the method lives here."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ladtalk.face import DEFAULT_PADS


def prepare_task(video_path: str | None, out_dir: str, device: str, size: int = 256,
                 pads: tuple[int, int, int, int] = DEFAULT_PADS, synthetic_seconds: float | None = None,
                 synthetic_path: str | None = None, synthetic_name: str = "") -> dict:
    """Prepare an uploaded video, or first render the built-in synthetic identity into `synthetic_path`."""
    import ladtalk

    if synthetic_seconds is not None:
        clip = ladtalk.synthesize(Path(out_dir).parent / "synthetic", seconds=synthetic_seconds, seed=0)
        target = Path(synthetic_path)
        # kept as an upload (generate reads its frames later), listed like one
        record = {"id": target.stem, "kind": "video", "bytes": Path(clip.video_path).stat().st_size,
                  "name": f"{synthetic_name} (synthetic)", "seconds": synthetic_seconds, "has_video": True,
                  "has_audio": True}
        target.with_name(f".{target.stem}.json").write_text(json.dumps(record))
        os.replace(clip.video_path, target)
        video_path = synthetic_path
    ladtalk.prepare(video_path, out_dir, size=size, pads=tuple(pads), device=device)
    return {"identity": Path(out_dir).name}


def train_task(identity_dir: str, run_dir: str, device: str, component: str = "sovqae", preset: str = "tiny",
               overrides: list[str] = (), wav2lip_path: str | None = None, syncnet_path: str | None = None,
               expert_dir: str | None = None, expert_preset: str | None = None) -> dict:
    """One of the CLI's trainers on one identity. `lipsync`: the lip-sync base, the expert (`expert_preset` into
    `expert_dir`) and then the generator (`preset` into `run_dir`) with it; each resumes from its checkpoints."""
    from ladtalk.train.sovqae import train_sovqae
    from ladtalk.train.syncnet import train_syncnet
    from ladtalk.train.wav2lip import train_wav2lip

    overrides = list(overrides)
    if component == "sovqae":
        model_dir = train_sovqae([identity_dir], run_dir, preset=preset, overrides=overrides, device=device,
                                 wav2lip_path=wav2lip_path)
    elif component == "syncnet":
        model_dir = train_syncnet([identity_dir], run_dir, preset=preset, overrides=overrides, device=device)
    else:
        if component == "lipsync":
            syncnet_path = str(train_syncnet([identity_dir], expert_dir, preset=expert_preset, overrides=overrides,
                                             device=device))
        model_dir = train_wav2lip([identity_dir], run_dir, syncnet_path=syncnet_path, preset=preset,
                                  overrides=overrides, device=device)
    return {"model": Path(run_dir).name, "model_dir": Path(model_dir).name, "component": component}


def _report(report) -> dict:
    return {"frames": report.frames, "seconds": round(report.seconds, 3), "fps": round(report.fps, 2),
            "stage_seconds": {k: round(v, 3) for k, v in report.stage_seconds.items()}}


def generate_task(identity_dir: str, audio_path: str, out_dir: str, wav2lip_path: str, sovqae_path: str | None,
                  device: str, paste: str = "mouth", temporal_filter: bool = False) -> dict:
    """The cascade and, for comparison, the plain Wav2Lip result from the same audio (both with the temporal filter
    when asked, so that they differ only by the restorer)."""
    import ladtalk

    out = Path(out_dir)
    result = {"videos": {}, "timings": {}}
    runs = [("wav2lip_only", True)] + ([("ladtalk", False)] if sovqae_path else [])
    for name, plain in runs:
        rep = ladtalk.generate(identity_dir, audio_path, out / f"{name}.mp4", wav2lip_path=wav2lip_path,
                               sovqae_path=None if plain else sovqae_path, no_sovqae=plain, paste=paste,
                               device=device, temporal_filter=temporal_filter)
        result["videos"][name] = f"{name}.mp4"
        result["timings"][name] = _report(rep)
    return result


def enhance_task(video_path: str, out_dir: str, sovqae_path: str, device: str,
                 pads: tuple[int, int, int, int] = DEFAULT_PADS) -> dict:
    import ladtalk

    rep = ladtalk.enhance(video_path, Path(out_dir) / "enhanced.mp4", sovqae_path=sovqae_path, pads=tuple(pads),
                          device=device)
    return {"videos": {"enhanced": "enhanced.mp4"}, "timings": {"enhanced": _report(rep)}}


def analyze_task(model_path: str, identity_dir: str, out_dir: str, device: str, max_frames: int | None = 64) -> dict:
    import ladtalk

    ladtalk.analyze(model_path, identity_dir, Path(out_dir) / "report", max_frames=max_frames, device=device)
    return {"report": "report/report.json", "markdown": "report/report.md"}


def evaluate_task(pred_path: str, gt_path: str, out_dir: str, device: str, align: str = "sliding",
                  max_frames: int | None = None) -> dict:
    import ladtalk

    metrics = ladtalk.evaluate(pred_path, gt_path, Path(out_dir) / "report", align=align, device=device,
                               max_frames=max_frames)
    return {"report": "report/metrics.json", "markdown": "report/report.md", "metrics": metrics}


TASKS = {"prepare": prepare_task, "train": train_task, "generate": generate_task, "enhance": enhance_task,
         "analyze": analyze_task, "evaluate": evaluate_task}
