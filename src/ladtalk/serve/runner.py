"""One job in its own process (so it can be interrupted or killed, its memory with it):
`python -m ladtalk.serve.runner JOB_DIR` runs JOB_DIR/job.json and writes result.json, or error.json with the CLI's
message. Every tqdm bar the library draws is mirrored into progress.json, for the page to show.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

import ladtalk  # the public functions load on first use: no module binds tqdm before _mirror_progress
from ladtalk.errors import LadtalkError
from ladtalk.serve.paths import write_json


def _mirror_progress(job_dir: Path) -> None:
    """Make every tqdm bar also write progress.json (before ladtalk's functions load: modules bind `tqdm` on import)."""
    import tqdm.auto
    import tqdm.std

    class JobBar(tqdm.std.tqdm):
        def display(self, msg=None, pos=None):
            d = self.format_dict
            write_json(job_dir / "progress.json", {"desc": d.get("prefix") or "", "n": d["n"], "total": d["total"],
                                                   "rate": d.get("rate"), "elapsed": d["elapsed"],
                                                   "unit": d.get("unit", "it"), "time": time.time()})
            return super().display(msg, pos)

    tqdm.tqdm = tqdm.auto.tqdm = JobBar


# ---- what each job kind does: a call of the public functions the CLI calls, with paths the server has
# already checked, returning a JSON-able summary for the page (ladtalk's functions load once progress is mirrored)


def prepare_task(name: str, video_path: str | None, out_dir: str, device: str, size: int,
                 pads: tuple[int, int, int, int], synthetic_seconds: float | None = None,
                 synthetic_path: str | None = None) -> dict:
    """Prepare an uploaded video, or first render the built-in synthetic identity into `synthetic_path`."""
    if synthetic_seconds is not None:
        clip = ladtalk.synthesize(Path(out_dir).parent / "synthetic", seconds=synthetic_seconds, seed=0)
        target = Path(synthetic_path)
        # kept as an upload (generate reads its frames later), listed like one
        write_json(target.with_name(f".{target.stem}.json"), {
            "id": target.stem, "kind": "video", "bytes": Path(clip.video_path).stat().st_size, "has_video": True,
            "name": f"{name} (synthetic)", "seconds": synthetic_seconds, "has_audio": True})
        os.replace(clip.video_path, target)
        video_path = synthetic_path
    ladtalk.prepare(video_path, out_dir, size=size, pads=tuple(pads), device=device)
    return {"identity": name}


def train_task(identity_dir: str, run_dir: str, device: str, component: str = "sovqae", preset: str = "tiny",
               overrides: list[str] = (), wav2lip_path: str | None = None, syncnet_path: str | None = None,
               expert_dir: str | None = None, expert_preset: str | None = None) -> dict:
    """One of the CLI's trainers on one identity. `lipsync`: the lip-sync base, the expert (`expert_preset` into
    `expert_dir`) and then the generator (`preset` into `run_dir`) with it; each resumes from its checkpoints."""
    common = {"overrides": overrides, "device": device}
    if component == "lipsync":
        syncnet_path = str(ladtalk.train_syncnet([identity_dir], expert_dir, preset=expert_preset, **common))
    if component == "sovqae":
        model_dir = ladtalk.train_sovqae([identity_dir], run_dir, preset=preset, wav2lip_path=wav2lip_path, **common)
    elif component == "syncnet":
        model_dir = ladtalk.train_syncnet([identity_dir], run_dir, preset=preset, **common)
    else:
        model_dir = ladtalk.train_wav2lip([identity_dir], run_dir, syncnet_path=syncnet_path, preset=preset, **common)
    return {"model": Path(run_dir).name, "model_dir": Path(model_dir).name, "component": component}


def _report(report) -> dict:
    return {"frames": report.frames, "seconds": round(report.seconds, 3), "fps": round(report.fps, 2),
            "stage_seconds": {k: round(v, 3) for k, v in report.stage_seconds.items()}}


def generate_task(identity_dir: str, audio_path: str, out_dir: str, wav2lip_path: str, sovqae_path: str | None,
                  device: str, paste: str = "mouth", temporal_filter: bool = False) -> dict:
    """The cascade and, for comparison, the plain Wav2Lip result from the same audio (both with the temporal filter
    when asked, so that they differ only by the restorer)."""
    runs = {"wav2lip_only": None} | ({"ladtalk": sovqae_path} if sovqae_path else {})
    reports = {name: ladtalk.generate(identity_dir, audio_path, Path(out_dir) / f"{name}.mp4", sovqae_path=sovqae,
                                      no_sovqae=sovqae is None, wav2lip_path=wav2lip_path, paste=paste,
                                      device=device, temporal_filter=temporal_filter) for name, sovqae in runs.items()}
    return {"videos": {n: f"{n}.mp4" for n in reports}, "timings": {n: _report(r) for n, r in reports.items()}}


def enhance_task(video_path: str, out_dir: str, sovqae_path: str, device: str, pads: tuple[int, int, int, int]) -> dict:
    rep = ladtalk.enhance(video_path, Path(out_dir) / "enhanced.mp4", sovqae_path=sovqae_path, pads=tuple(pads),
                          device=device)
    return {"videos": {"enhanced": "enhanced.mp4"}, "timings": {"enhanced": _report(rep)}}


def analyze_task(model_path: str, identity_dir: str, out_dir: str, device: str, max_frames: int | None = 64) -> dict:
    ladtalk.analyze(model_path, identity_dir, Path(out_dir) / "report", max_frames=max_frames, device=device)
    return {"report": "report/report.json", "markdown": "report/report.md"}


def evaluate_task(pred_path: str, gt_path: str, out_dir: str, device: str, align: str = "sliding",
                  max_frames: int | None = None) -> dict:
    metrics = ladtalk.evaluate(pred_path, gt_path, Path(out_dir) / "report", align=align, device=device,
                               max_frames=max_frames)
    return {"report": "report/metrics.json", "markdown": "report/report.md", "metrics": metrics}


TASKS = {"prepare": prepare_task, "train": train_task, "generate": generate_task, "enhance": enhance_task,
         "analyze": analyze_task, "evaluate": evaluate_task}


def main(job_dir: str) -> int:
    job_dir = Path(job_dir)
    spec = json.loads((job_dir / "job.json").read_text())
    _mirror_progress(job_dir)
    try:
        result = TASKS[spec["kind"]](**spec["call"])
    except LadtalkError as e:
        write_json(job_dir / "error.json", {"message": f"ladtalk {spec['kind']}: error: {e}"})
        return 2
    except KeyboardInterrupt:  # the server stopped the job (training saves its checkpoint first)
        return 130
    except Exception as e:  # noqa: BLE001 - the page shows one line; the traceback stays in log.txt
        traceback.print_exc()
        message = (f"ladtalk {spec['kind']}: unexpected error ({type(e).__name__}: {e}); "
                   f"GET /api/jobs/{job_dir.name}/log has the details")
        write_json(job_dir / "error.json", {"message": message})
        return 1
    write_json(job_dir / "result.json", result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
