"""The infer part of bench/gpu_suite.py: the cascade's per-stage and end-to-end FPS on the identity clip driven by
synthetic speech (15 s and 60 s by default) against the naive baseline (fp32, batch 1, stages in sequence, as the
official inference), peak GPU memory at both lengths, and the SOVQAE's own FPS and TFLOP/s. Random weights of the
presets' sizes (speed does not depend on them). Each `generate` runs in a child process (this file run as a script)
so that each peak memory is its own."""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from gpu_parts import Recorder, attempt, cuda_timer, prepared_identity, seconds_left

MICRO_SECONDS = 2.5  # timed seconds per SOVQAE microbenchmark row
RUN_OVERHEAD_S = 15.0  # process start, model load, cuDNN autotune and librosa's first-call JIT of one child


def make_models(root: Path, wav2lip_preset: str, sovqae_preset: str) -> tuple[Path, Path, dict]:
    """Random-weight networks of the presets' sizes, saved as model folders generate() loads."""
    import torch

    from ladtalk.checkpoint import save_component
    from ladtalk.models.sovqae import SOVQAE, SOVQAEConfig, count_parameters
    from ladtalk.models.wav2lip import Wav2Lip, Wav2LipConfig
    from ladtalk.presets import load_preset

    torch.manual_seed(0)
    w2l = Wav2Lip(Wav2LipConfig(**load_preset(wav2lip_preset)["model"]))
    save_component(root / "wav2lip", "wav2lip", w2l.config, w2l.state_dict())
    cfg = SOVQAEConfig.from_dict(load_preset(sovqae_preset)["model"])
    sovqae = SOVQAE(cfg)
    save_component(root / "sovqae", "sovqae", cfg, sovqae.state_dict())
    info = {"wav2lip": {"preset": wav2lip_preset, "params": sum(p.numel() for p in w2l.parameters()),
                        "img_size": w2l.config.img_size},
            "sovqae": {"preset": sovqae_preset, "params": count_parameters(sovqae), "resolution": cfg.resolution},
            "weights": "random (speed does not depend on them)"}
    return root / "wav2lip", root / "sovqae", info


def sovqae_microbench(model_dir: Path, device: str, batch: int, dry: bool) -> list[dict]:
    """FPS and TFLOP/s of `restore()` (encode -> nearest code -> decode) on device-resident images."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from ladtalk.pipeline.restore import load_sovqae, restore
    from ladtalk.runtime import autocast_dtype

    dev = torch.device(device)
    model = load_sovqae(model_dir, dev)
    size = model.config.resolution
    with FlopCounterMode(display=False) as counter:
        restore(model, torch.rand(1, 3, size, size, device=dev), batch_size=1, precision="fp32")
    flops = float(counter.get_total_flops())
    start, stop = cuda_timer(dev)
    rows = []
    cases = [(1, "fp32", False), (batch, "auto", False), (batch, "auto", True), (2 * batch, "auto", True)]
    for b, precision, channels_last in cases:
        model = model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        x = torch.rand(b, 3, size, size, device=dev)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        for _ in range(1 if dry else 2):
            restore(model, x, batch_size=b, precision=precision)
        reps, t_host, ev = 0, time.perf_counter(), start()
        while reps < 2 or (not dry and time.perf_counter() - t_host < MICRO_SECONDS and reps < 500):
            restore(model, x, batch_size=b, precision=precision)
            reps += 1
        seconds = stop(ev)
        fps = b * reps / seconds
        label = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[autocast_dtype(dev, precision)]
        rows.append({"batch": b, "precision": label,
                     "channels_last": channels_last, "fps": round(fps, 1), "gflop_per_image": round(flops / 1e9, 1),
                     "achieved_tflops": round(fps * flops / 1e12, 2), "resolution": size})
    return rows


def run_order(lengths: list[float]) -> list[tuple[float, bool]]:
    """Short fast, short naive (the ratio), long fast (the target and the memory), long naive (last: slowest)."""
    short, long = sorted(lengths)
    return [(short, False), (short, True), (long, False), (long, True)]


def generate_row(r: dict, seconds: float, naive: bool, batch: int) -> dict:
    stages = {k: r["frames"] / v for k, v in r["stage_seconds"].items() if v > 0}
    return {"audio_s": seconds, "mode": "naive" if naive else "ladtalk",
            "setup": "fp32, batch 1, decode in sequence" if naive else f"batch {batch}, auto precision, overlapped I/O",
            "frames": r["frames"], "end_to_end_fps": round(r["fps"], 2),
            **{f"{k}_fps": round(v, 1) for k, v in stages.items()},
            "stage_seconds": {k: round(v, 2) for k, v in r["stage_seconds"].items()},
            "peak_rss_mib": round(r["peak_rss_mib"]),
            "peak_gpu_mib": None if r["peak_gpu_mib"] is None else round(r["peak_gpu_mib"])}


def part_infer(a: argparse.Namespace, rec: Recorder, deadline: float) -> None:
    import shutil

    from gpu_report import video_strip

    identity = prepared_identity(a)
    work = a.work / "infer"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    w2l_dir, sovqae_dir, info = make_models(work / "models", a.wav2lip_preset, a.sovqae_preset)
    rec.set("networks", info)
    for row in attempt(rec, "sovqae_microbench", sovqae_microbench, sovqae_dir, a.device, a.infer_batch,
                       a.dry_run) or []:
        rec.append("sovqae_microbench", row)

    fps_seen: dict[bool, float] = {}
    for seconds, naive in run_order(a.infer_seconds):
        mode = "naive" if naive else "ladtalk"
        need = RUN_OVERHEAD_S + (seconds * 25 / fps_seen[naive] if naive in fps_seen else 0)
        if need > seconds_left(deadline) and not a.dry_run:
            rec.append("not_run", {"audio_s": seconds, "mode": mode,
                                   "reason": f"about {need:.0f} s needed, {seconds_left(deadline):.0f} s left"})
            continue
        audio = make_audio(work / f"speech_{seconds:g}s.wav", seconds)
        batch = 1 if naive else a.infer_batch
        try:
            r = generate_in_child(identity, audio, (w2l_dir, sovqae_dir), a.device, batch, naive, work)
        except RuntimeError as e:
            rec.append("rows", {"audio_s": seconds, "mode": mode, "error": str(e)[-1500:]})
            continue
        fps_seen[naive] = r["fps"]
        rec.append("rows", generate_row(r, seconds, naive, batch))
        summarise(rec)  # after every run: a part stopped at its budget keeps its ratios too
        if not naive and seconds == max(a.infer_seconds):
            attempt(rec, "strip", lambda: rec.set("strip", video_strip(
                work / "out.mp4", a.out / "inference_strip.png", count=4,
                title="generate output\nrandom weights:\nshows the paste,\nnot quality")))


def summarise(rec: Recorder) -> None:
    """Speed-up over the naive run at each length, and whether peak memory stays flat from short to long."""
    rows = [r for r in rec.data["figures"].get("rows", []) if "error" not in r]
    out = {}
    for seconds in sorted({r["audio_s"] for r in rows}):
        fast = [r for r in rows if r["audio_s"] == seconds and r["mode"] == "ladtalk"]
        naive = [r for r in rows if r["audio_s"] == seconds and r["mode"] == "naive"]
        if fast and naive:
            out[f"speedup_vs_naive_{seconds:g}s"] = round(fast[0]["end_to_end_fps"] / naive[0]["end_to_end_fps"], 2)
    fast = sorted((r for r in rows if r["mode"] == "ladtalk"), key=lambda r: r["audio_s"])
    if len(fast) >= 2:
        key = "peak_gpu_mib" if fast[0]["peak_gpu_mib"] is not None else "peak_rss_mib"
        out["memory"] = {"measure": key, "short": fast[0][key], "long": fast[-1][key],
                         "long_over_short": round(fast[-1][key] / max(fast[0][key], 1), 3)}
    rec.set("summary", out)


def make_audio(path: Path, seconds: float) -> Path:
    """Seeded synthetic speech of `seconds` as a 16 kHz WAV."""
    from ladtalk.data.synthetic_speech import synth_speech
    from ladtalk.io.audio import SAMPLE_RATE, write_wav

    audio, _ = synth_speech(seconds, SAMPLE_RATE, seed=1)
    write_wav(path, audio, SAMPLE_RATE)
    return path


def generate_in_child(identity: Path, audio: Path, models: tuple[Path, Path], device: str, batch: int, naive: bool,
                      work: Path) -> dict:
    """One `generate` in a fresh process (its own allocator and peak memory); naive: fp32, I/O in sequence."""
    cmd = [sys.executable, __file__, str(identity), str(audio), str(models[0]), str(models[1]), str(work / "out.mp4"),
           device, str(batch)] + (["--naive"] if naive else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not line:
        raise RuntimeError(f"generate child failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[0][len("RESULT "):])


def child_main() -> None:
    """The child: runs `generate` and prints a RESULT line (frames, per-stage seconds, peak RSS and GPU memory)."""
    ap = argparse.ArgumentParser()
    for name in ("identity", "audio", "wav2lip", "sovqae", "out", "device"):
        ap.add_argument(name)
    ap.add_argument("batch", type=int)
    ap.add_argument("--naive", action="store_true")
    a = ap.parse_args()
    import torch

    from ladtalk.pipeline.generate import generate

    cuda = torch.device(a.device).type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    report = generate(a.identity, a.audio, a.out, wav2lip_path=a.wav2lip, sovqae_path=a.sovqae, batch_size=a.batch,
                      precision="fp32" if a.naive else "auto", device=a.device, overlap_io=not a.naive)
    print("RESULT " + json.dumps({
        "frames": report.frames, "seconds": report.seconds, "fps": report.fps, "stage_seconds": report.stage_seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None}))


if __name__ == "__main__":
    child_main()
