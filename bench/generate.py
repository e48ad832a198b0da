"""Benchmark `ladtalk generate` on the CPU against a baseline that runs the way the official Wav2Lip inference does.

Every figure is end to end, from the process's start (imports and model loading included) to the closed output
file, with the steady-state FPS (after the first batch) beside it; each run is its own process, so its peak
memory is its own. The identity is the real 512x512 Macron clip prepared at 256 (face detection is therefore not
timed, for either side); the driving audio is the clip's own 48 kHz stereo track. Networks have random weights of
the official sizes (speed does not depend on the values).

Runs, all in one invocation so that the comparisons are ratios taken under the same load:
- `official-like`: fp32, every frame decoded into memory first, batch 128, an intermediate video (x264
  ultrafast, standing for the official XVID .avi) then a separate mux pass that re-encodes it as the official
  `ffmpeg -i audio -i temp/result.avi out.mp4` does (libx264 defaults: medium, CRF 23) with AAC audio;
- `ladtalk --no-sovqae`: `generate()` with its defaults (precision auto, batch 16, decode and encode threads), on
  eager torch (`--backend torch`, the code before issue 33) and on the backend `auto` picks;
- the cascade with the real `restore-cpu` preset's SOVQAE (256 px, its low-resolution guide included), on eager
  torch, on the `auto` backend, and on the `auto` backend computing only the rows the mouth paste keeps
  (`--sovqae-rows pasted`), all with the default mouth paste, and the `demo` layout (128 px);
- the SOVQAE stage alone (network only, batch 4) for `demo` and `paper-256`, in fp32 and bf16;
- peak memory at the short and at the long audio length, with a small Wav2Lip on a 256x256 synthetic identity
  (so that 10 minutes of audio finish in minutes on a shared 2-core machine; what could grow with the length,
  the audio, the mel and the schedule, is the same code whatever the networks and the picture size; the smaller
  base makes the 10% criterion stricter).

    python bench/generate.py                                   # the issue's figures: 40 s, 10 min
    python bench/generate.py --seconds 4 --long-seconds 20     # a quick look
    python bench/generate.py --avx2 --precision fp32 ...       # torch and oneDNN limited to AVX2 (no AMX/AVX-512)

Exported backends are exported once before the timed runs (into the models' `.ladtalk-cache`, as a user's first
run does), so the timed runs load them as any later run would. Every row carries the CPU, the torch ISA, the
thread count, the precision and what ran each network.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table, write_results  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "avx512_vnni", "avx_vnni")


def cpu_record() -> dict:
    import torch

    from ladtalk.runtime import cpu_flags, cpu_has_fast_bf16, cpu_model

    flags = cpu_flags()
    return {"cpu_model": cpu_model(), "limited_to_avx2": os.environ.get("ATEN_CPU_CAPABILITY") == "avx2",
            "cpu_flags": {f: f in flags for f in FLAGS_OF_INTEREST},
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch_threads": torch.get_num_threads(),
            "fast_bf16": cpu_has_fast_bf16(), "loadavg_at_start": os.getloadavg()}


def peak_rss_mib() -> float:
    """This process's own peak resident memory, MiB. On Linux VmHWM, which starts afresh at exec: getrusage's
    ru_maxrss keeps the parent's high-water mark across fork+exec, so a child of a large parent (one that has just
    built 10 minutes of audio) would report the parent's peak, whatever it did itself."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_models(root: Path) -> dict[str, Path]:
    import torch

    from ladtalk.checkpoint import save_component
    from ladtalk.models.sovqae import SOVQAE, SOVQAEConfig
    from ladtalk.models.wav2lip import Wav2Lip, Wav2LipConfig
    from ladtalk.presets import load_preset

    torch.manual_seed(0)
    out = {}
    for name, cfg in (("wav2lip", Wav2LipConfig()), ("wav2lip_small", Wav2LipConfig(width=0.25, img_size=48))):
        save_component(root / name, "wav2lip", cfg, Wav2Lip(cfg).state_dict())
        out[name] = root / name
    layouts = {preset: load_preset(preset)["model"] for preset in ("demo", "paper-256")}
    layouts["restore-cpu"] = load_preset("restore-cpu")["model"]  # the real preset: its guide included
    for name, layout in layouts.items():
        cfg = SOVQAEConfig.from_dict(layout)
        model = SOVQAE(cfg)
        torch.nn.init.normal_(model.decoder.conv_out.weight, std=0.02)  # not the guide's thumbnail alone
        save_component(root / f"sovqae_{name}", "sovqae", cfg, model.state_dict())
        out[f"sovqae_{name}"] = root / f"sovqae_{name}"
    return out


def synthetic_identity(work: Path, reuse: Path | None = None) -> Path:
    if reuse is not None:
        return reuse
    from ladtalk.data.prepare import prepare
    from ladtalk.data.synthetic import synthesize

    clip = synthesize(work / "synthetic", seconds=8.0, fps=25.0, size=256, seed=3)
    return prepare(clip.video_path, work / "synthetic_identity", size=256, device="cpu")


def make_audio(video: Path, path: Path, seconds: float) -> Path:
    """The clip's own track (48 kHz stereo), repeated to `seconds`, as 16-bit WAV (written a repeat at a time)."""
    from ladtalk.io.audio import iter_audio, probe_audio

    info = probe_audio(video)
    pcm = np.round(np.concatenate(list(iter_audio(video))) * 32767).astype("<i2")
    remaining = int(seconds * info.sample_rate)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(info.channels)
        w.setsampwidth(2)
        w.setframerate(info.sample_rate)
        while remaining > 0:
            w.writeframes(pcm[:remaining].tobytes())
            remaining -= len(pcm)
    return path


def official_like(identity: Path, audio_path: Path, out_path: Path, wav2lip_path: Path, started_at: float,
                  batch: int = 128):
    """The official inference's order of work on a prepared identity (see the module docstring)."""
    import torch

    from ladtalk.data.identity import Identity
    from ladtalk.face.crop import paste_faces
    from ladtalk.features.mel import mel_windows, melspectrogram
    from ladtalk.io.audio import SAMPLE_RATE, iter_audio, load_audio, mux_format, probe_audio
    from ladtalk.io.video import VideoWriter, iter_frame_batches
    from ladtalk.lipsync_weights import load_wav2lip
    from ladtalk.pipeline.frames import SourceFrames, pingpong_indices
    from ladtalk.pipeline.generate import RunReport
    from ladtalk.pipeline.stages import lipsync
    from ladtalk.pixels import to_frames, to_images

    report = RunReport(precision="fp32")
    ident = Identity.open(identity)
    model = load_wav2lip(wav2lip_path, "cpu").eval()
    audio = load_audio(audio_path)
    n = max(1, int(round(len(audio) / SAMPLE_RATE * ident.fps)))
    windows = mel_windows(melspectrogram(audio), ident.fps, n)
    schedule = pingpong_indices(n, ident.frame_count)
    t0 = time.perf_counter()
    frames = list(SourceFrames(ident.source_path, fps=ident.meta.get("settings", {}).get("fps"))
                  .iter_schedule(schedule))
    report.add("decode", time.perf_counter() - t0)
    tmp = out_path.with_name(out_path.stem + ".intermediate.mp4")
    t_first = None
    with VideoWriter(tmp, ident.fps, crf=18, preset="ultrafast") as w:
        for s in range(0, n, batch):
            idx = schedule[s:s + batch]
            rows = np.flatnonzero(ident.has_face[idx])
            out = np.stack(frames[s:s + len(idx)])
            if len(rows):
                t0 = time.perf_counter()
                mouths = lipsync(model, to_images(ident.crops[idx[rows]], torch.device("cpu")),
                                 torch.from_numpy(windows[s + rows]))
                faces = to_frames(torch.nn.functional.interpolate(mouths, size=(ident.crop_size,) * 2,
                                                                  mode="bicubic", align_corners=False))
                report.add("wav2lip", time.perf_counter() - t0)
                t0 = time.perf_counter()
                out[rows] = paste_faces(out[rows], faces, ident.crop_boxes[idx[rows]], mode="hard")
                report.add("paste", time.perf_counter() - t0)
            t0 = time.perf_counter()
            w.write(out)
            report.add("encode", time.perf_counter() - t0)
            if t_first is None:
                t_first, first = time.perf_counter(), len(idx)
    del frames
    t0 = time.perf_counter()
    mux = mux_format(probe_audio(audio_path))
    with VideoWriter(out_path, ident.fps, crf=23, preset="medium") as w:
        w.set_audio_stream(iter_audio(audio_path, mux.sample_rate, mux.channels), mux.sample_rate, mux.channels)
        for b in iter_frame_batches(tmp, 32):
            w.write(b)
    tmp.unlink()
    report.add("mux", time.perf_counter() - t0)
    report.frames, report.steady_frames = n, n - first
    report.seconds = time.perf_counter() - started_at
    report.steady_seconds = time.perf_counter() - t_first
    return report


def stage_fps(model_path: Path, precision: str, batch: int, reps: int) -> dict:
    """The SOVQAE alone (encode -> nearest codes -> decode) on random faces: frames per second."""
    import torch

    from ladtalk.pipeline.restore import load_sovqae
    from ladtalk.runtime import inference_settings

    rt = inference_settings("cpu", precision)
    model = rt.prepare(load_sovqae(model_path, "cpu"))
    size = model.config.resolution
    x = rt.images(torch.rand(batch, 3, size, size) * 2 - 1)
    with torch.inference_mode(), rt.autocast():
        model.decode(model.encode(x)[0], x)  # warm-up: oneDNN picks its kernels
        t0 = time.perf_counter()
        for _ in range(reps):
            model.decode(model.encode(x)[0], x)
        dt = time.perf_counter() - t0
    return {"frames": batch * reps, "fps": batch * reps / dt, "precision": rt.precision}


def audio_path_memory(audio: Path, streamed: bool) -> dict:
    """What of `generate` depends on the audio's length: its mel and the muxed track. Streamed (as generate does
    now) or whole (the 16 kHz waveform, its complex spectrogram and a 48 kHz copy for the muxer, as before)."""
    from ladtalk.io.audio import iter_audio, load_audio, mux_format, probe_audio
    from ladtalk.pipeline.generate import _speech_mel

    t0 = time.perf_counter()
    if streamed:
        mel, n, _ = _speech_mel(audio)
        mux = mux_format(probe_audio(audio))
        samples = sum(len(b) for b in iter_audio(audio, mux.sample_rate, mux.channels))
    else:
        from ladtalk.features.mel import melspectrogram

        wav = load_audio(audio)
        mel = melspectrogram(wav)
        samples = len(load_audio(audio, 48000))
    return {"frames": mel.shape[1], "mux_samples": samples, "seconds": time.perf_counter() - t0}


def run_child(a: argparse.Namespace) -> None:
    """Child process: one run; prints a RESULT line with timings and peak memory."""
    from ladtalk.runtime import command_started_at

    started_at = command_started_at()
    load0 = os.getloadavg()[0]
    if a.mode == "export":  # load once on the backend: the exports land in the models' caches, untimed
        from ladtalk.pipeline.loaders import load_lipsync, load_restorer
        from ladtalk.runtime import inference_settings

        rt = inference_settings("cpu", a.precision)
        load_lipsync(a.wav2lip, rt, a.backend)
        for rows in ("all", "pasted"):
            load_restorer(a.sovqae, rt, a.backend, rows=rows)
        out = {}
    elif a.mode == "stage":
        out = stage_fps(Path(a.sovqae), a.precision, a.batch, a.reps)
    elif a.mode.startswith("audio"):
        out = audio_path_memory(Path(a.audio), streamed=a.mode == "audio-streamed")
    else:
        if a.mode == "official":
            report = official_like(Path(a.identity), Path(a.audio), Path(a.out), Path(a.wav2lip), started_at)
        else:
            from ladtalk.pipeline.generate import generate

            report = generate(a.identity, a.audio, a.out, wav2lip_path=a.wav2lip, sovqae_path=a.sovqae or None,
                              no_sovqae=not a.sovqae, batch_size=a.batch, precision=a.precision, device="cpu",
                              backend=a.backend, sovqae_rows=a.sovqae_rows, started_at=started_at)
        out = {"frames": report.frames, "seconds": report.seconds, "fps": report.fps,
               "steady_fps": report.steady_fps, "precision": report.precision,
               "backends": getattr(report, "backends", {}),
               "stage_seconds": report.stage_seconds}
        from ladtalk.io.audio import probe_audio

        got = probe_audio(a.out)
        out["output_audio"] = {"sample_rate": got.sample_rate, "channels": got.channels}
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out["peak_rss_mib"] = peak_rss_mib()
    out["cpu_seconds"] = usage.ru_utime + usage.ru_stime  # the work done, whatever else shares the cores
    out["loadavg_1min"] = [load0, os.getloadavg()[0]]
    print("RESULT " + json.dumps(out))


def child(**kw) -> dict:
    cmd = [sys.executable, __file__, "--child"]
    for k, v in kw.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not line:
        sys.exit(f"benchmark child {kw} failed:\n{proc.stderr[-3000:]}")
    r = json.loads(line[0][len("RESULT "):])
    print(kw.get("mode"), {k: v for k, v in r.items() if k != "stage_seconds"}, flush=True)
    return r


def row(name: str, audio_s: float, r: dict, record: dict | None = None) -> dict:
    stages = {f"{k}_fps": round(r["frames"] / v, 1) for k, v in r.get("stage_seconds", {}).items() if v > 0}
    shares = {f"{k}_share": round(v / r["seconds"], 2) for k, v in r.get("stage_seconds", {}).items() if r["seconds"]}
    cpu = {} if record is None else {"cpu": f"{record['cpu_model']} ({record['torch_cpu_capability']})",
                                     "threads": record["torch_threads"]}
    return {"run": name, "audio_s": audio_s, "frames": r.get("frames"), **cpu, "precision": r.get("precision"),
            "backends": ", ".join(f"{k}: {v}" for k, v in r.get("backends", {}).items()),
            "end_to_end_fps": round(r["fps"], 2), "steady_fps": round(r.get("steady_fps", r["fps"]), 2),
            "seconds": round(r.get("seconds", 0), 1), "peak_rss_mib": round(r["peak_rss_mib"]),
            "cpu_ms_per_frame": round(1000 * r["cpu_seconds"] / r["frames"], 1),
            "loadavg_1min": [round(x, 2) for x in r["loadavg_1min"]], "output_audio": r.get("output_audio"),
            **stages, **shares}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=40.0, help="audio length of the speed runs")
    ap.add_argument("--long-seconds", type=float, default=600.0, help="long audio of the memory check")
    ap.add_argument("--video", type=Path, default=SHARED / "video" / "macron_50s_dfrf.mp4")
    ap.add_argument("--identity-dir", type=Path, default=None, help="a prepared identity of --video to reuse")
    ap.add_argument("--synthetic-identity-dir", type=Path, default=None,
                    help="the memory runs' prepared synthetic identity to reuse (one this script made)")
    ap.add_argument("--stage-reps", type=int, default=2)
    ap.add_argument("--skip", nargs="*", default=[],
                    choices=("speed", "cascade", "stage", "memory", "audio-memory"))
    ap.add_argument("--name", default="generate_cpu")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--precision", default="auto", help="of every ladtalk run (the official-like one is fp32)")
    ap.add_argument("--threads", type=int, default=None, help="torch/backend threads (default: torch's own)")
    ap.add_argument("--avx2", action="store_true", help="limit torch and oneDNN to AVX2 (re-runs itself)")
    for flag in ("--mode", "--identity", "--audio", "--wav2lip", "--sovqae", "--out"):
        ap.add_argument(flag, help=argparse.SUPPRESS)
    ap.add_argument("--backend", default="auto", help=argparse.SUPPRESS)
    ap.add_argument("--sovqae-rows", default="all", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=16, help=argparse.SUPPRESS)
    ap.add_argument("--reps", type=int, default=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.avx2 and os.environ.get("ATEN_CPU_CAPABILITY") != "avx2":
        env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # children inherit it
        import torch

        torch.set_num_threads(args.threads)
    if args.child:
        return run_child(args)
    if not args.video.exists():
        sys.exit(f"{args.video} is absent: the benchmark needs a 512x512 identity clip")

    record = cpu_record()
    print(record, flush=True)
    work = Path(tempfile.mkdtemp(prefix="ladtalk-bench-generate-"))
    identity = args.identity_dir
    if identity is None and not set(args.skip) >= {"speed", "cascade"}:
        from ladtalk.data.prepare import prepare

        identity = prepare(args.video, work / "identity", size=256, device="cpu")
    models = make_models(work) if not set(args.skip) >= {"speed", "cascade", "stage", "memory"} else {}
    audio = make_audio(args.video, work / "speech.wav", args.seconds)
    common = {"identity": identity, "audio": audio, "out": work / "out.mp4", "precision": args.precision}
    rows, stage_rows = [], []
    gen = {**common, "wav2lip": models["wav2lip"]} if models else {}
    if models and not set(args.skip) >= {"speed", "cascade"}:
        child(mode="export", wav2lip=models["wav2lip"], sovqae=models["sovqae_restore-cpu"], precision=args.precision,
              backend="auto")
    if "speed" not in args.skip:
        base = child(mode="official", wav2lip=models["wav2lip"], **common)
        rows.append(row("official-like (fp32, all frames first, batch 128, intermediate file + mux)", args.seconds,
                        base, record))
        for backend in ("torch", "auto"):
            r = child(mode="ladtalk", backend=backend, **gen)
            rows.append(row(f"ladtalk --no-sovqae --backend {backend}", args.seconds, r, record))
            rows[-1]["speedup_vs_official_like"] = round(r["fps"] / base["fps"], 2)
            rows[-1]["cpu_ratio_official_like_over_this"] = round(base["cpu_seconds"] / r["cpu_seconds"], 2)
    if "cascade" not in args.skip:
        first = None
        for backend, sovqae_rows in (("torch", "all"), ("auto", "all"), ("auto", "pasted")):
            r = child(mode="ladtalk", sovqae=models["sovqae_restore-cpu"], backend=backend, sovqae_rows=sovqae_rows,
                      **gen)
            rows.append(row(f"cascade restore-cpu (guide), mouth paste, --backend {backend} --sovqae-rows "
                            f"{sovqae_rows}", args.seconds, r, record))
            first = first or r
            rows[-1]["speedup_vs_eager_cascade"] = round(r["fps"] / first["fps"], 2)
        r = child(mode="ladtalk", sovqae=models["sovqae_demo"], backend="auto", **gen)
        rows.append(row("cascade, SOVQAE of the demo layout (128 px), --backend auto", args.seconds, r, record))
    if "stage" not in args.skip:
        for preset in ("demo", "restore-cpu", "paper-256"):
            for precision in ("fp32", "bf16"):
                # bf16 without hardware support is emulated (many times slower): one batch shows it
                reps = args.stage_reps if precision == "fp32" or record["fast_bf16"] else 1
                r = child(mode="stage", sovqae=models[f"sovqae_{preset}"], precision=precision, batch=4, reps=reps)
                stage_rows.append({"sovqae": preset, "precision": precision, "batch": 4, "frames": r["frames"],
                                   "fps": round(r["fps"], 2), "loadavg_1min": r["loadavg_1min"]})
    memory = []
    if "memory" not in args.skip:
        small_identity = synthetic_identity(work, args.synthetic_identity_dir)
        for seconds in (args.seconds, args.long_seconds):
            long_audio = make_audio(args.video, work / f"speech_{seconds:g}.wav", seconds)
            r = child(mode="ladtalk", wav2lip=models["wav2lip_small"], backend="auto",
                      **{**common, "audio": long_audio, "identity": small_identity})
            memory.append(row("memory: ladtalk --no-sovqae --backend auto, small Wav2Lip, 256 px synthetic identity",
                              seconds, r, record))
        memory[-1]["peak_rss_vs_short"] = round(memory[-1]["peak_rss_mib"] / memory[0]["peak_rss_mib"], 3)
    audio_memory = []
    if "audio-memory" not in args.skip:
        for seconds in (args.seconds, args.long_seconds):
            long_audio = make_audio(args.video, work / f"speech_{seconds:g}.wav", seconds)
            for mode in ("audio-whole", "audio-streamed"):
                r = child(mode=mode, audio=long_audio)
                audio_memory.append({"audio_s": seconds, "mode": mode, "peak_rss_mib": round(r["peak_rss_mib"]),
                                     "seconds": round(r["seconds"], 1)})
        for mode in ("audio-whole", "audio-streamed"):
            short, long = [r for r in audio_memory if r["mode"] == mode]
            long["peak_rss_vs_short"] = round(long["peak_rss_mib"] / short["peak_rss_mib"], 3)
        print(table(audio_memory, ["audio_s", "mode", "peak_rss_mib", "peak_rss_vs_short", "seconds"]))
    cols = ["run", "audio_s", "frames", "cpu", "threads", "precision", "backends", "end_to_end_fps", "steady_fps",
            "speedup_vs_official_like", "speedup_vs_eager_cascade", "cpu_ms_per_frame",
            "cpu_ratio_official_like_over_this", "load_share", "decode_share", "wav2lip_share", "sovqae_share",
            "upscale_share", "paste_share", "encode_share", "mux_share",
            "peak_rss_mib", "peak_rss_vs_short", "loadavg_1min"]
    print(table(rows + memory, cols))
    print(table(stage_rows, ["sovqae", "precision", "batch", "frames", "fps", "loadavg_1min"]))
    record["loadavg_at_end"] = os.getloadavg()
    write_results(args.name, {**record, "identity_video": str(args.video), "identity_crop": 256,
                              "audio": "the clip's own 48 kHz stereo track, repeated to length",
                              "networks": "official-size Wav2Lip (36.3 M) with random weights; SOVQAE layouts of "
                                          "the demo (128 px), restore-cpu (256 px) and paper-256 presets, random "
                                          "weights; memory runs use a small Wav2Lip (width 0.25, 48 px) on a 256x256 "
                                          "synthetic identity",
                              "rows": rows, "memory_rows": memory, "sovqae_stage_rows": stage_rows,
                              "audio_path_memory_rows": audio_memory,
                              "notes": "end_to_end_fps = frames / seconds from process start to closed file "
                                       "(imports, loading, mel, everything); steady_fps excludes the first batch; "
                                       "peak_rss_mib = the run's own peak resident memory (VmHWM; getrusage would "
                                       "give a child the parent's when larger); stage FPS = frames / seconds in "
                                       "that stage (encode runs in its own thread in ladtalk runs); "
                                       "cpu_ms_per_frame = the process's user+system CPU time per frame, which "
                                       "other processes on the machine do not inflate"})


if __name__ == "__main__":
    main()
