"""Benchmark `ladtalk generate`: per-stage and end-to-end FPS and peak memory with official-size networks.

The identity is a real 512x512 clip (Macron, from ../shared/data) prepared at 256; the networks are the official
Wav2Lip generator (36.3 M) and the paper-256 SOVQAE (72.1 M) with random weights (speed does not depend on them).
Each configuration runs in its own process so its peak memory is its own. Two audio lengths show that memory does
not grow with length. A naive baseline (fp32, batch 1, decode not overlapped: how the original Wav2Lip inference
runs) is measured in the same run, so the gain is a ratio.

    .venv/bin/python bench/generate.py --seconds 4 8                       # CPU, small scale
    python bench/generate.py --device cuda --seconds 15 60 --batch 64     # GPU, the issue's 60 s input
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table, write_results  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def make_models(root: Path) -> tuple[Path, Path]:
    import torch

    from ladtalk.checkpoint import save_component
    from ladtalk.models.sovqae import SOVQAE, SOVQAEConfig
    from ladtalk.models.wav2lip import Wav2Lip, Wav2LipConfig
    from ladtalk.presets import load_preset

    torch.manual_seed(0)
    w2l = Wav2Lip(Wav2LipConfig())
    save_component(root / "wav2lip", "wav2lip", w2l.config, w2l.state_dict())
    cfg = SOVQAEConfig.from_dict(load_preset("paper-256")["model"])
    save_component(root / "sovqae", "sovqae", cfg, SOVQAE(cfg).state_dict())
    return root / "wav2lip", root / "sovqae"


def make_audio(path: Path, seconds: float) -> Path:
    from ladtalk.data.synthetic_speech import synth_speech
    from ladtalk.io.audio import write_wav

    audio, _ = synth_speech(seconds, 16000, seed=1)
    write_wav(path, audio, 16000)
    return path


def run_one(args: argparse.Namespace) -> None:
    """Child process: one generate() run; prints a JSON line with timings and peak memory."""
    import torch

    from ladtalk.pipeline.generate import generate

    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    report = generate(args.identity, args.audio, args.out, wav2lip_path=args.wav2lip, sovqae_path=args.sovqae,
                      batch_size=args.batch, precision=args.precision, device=args.device,
                      overlap_io=not args.naive)
    out = {"frames": report.frames, "seconds": report.seconds, "fps": report.fps,
           "stage_seconds": report.stage_seconds,
           "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None}
    print("RESULT " + json.dumps(out))


def child(identity: Path, audio: Path, models: tuple[Path, Path], device: str, batch: int, precision: str,
          naive: bool, threads: int | None, work: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", "--identity", str(identity), "--audio", str(audio),
           "--wav2lip", str(models[0]), "--sovqae", str(models[1]), "--device", device, "--batch", str(batch),
           "--precision", precision, "--out", str(work / "out.mp4")] + (["--naive"] if naive else []) + \
          (["--threads", str(threads)] if threads else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not line:
        sys.exit(f"benchmark child failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[0][len("RESULT "):])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, nargs="+", default=[4.0, 8.0], help="audio lengths to run")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--video", type=Path, default=SHARED / "video" / "macron_50s_dfrf.mp4")
    ap.add_argument("--name", default="generate_cpu")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for flag in ("--identity", "--audio", "--wav2lip", "--sovqae", "--out"):
        ap.add_argument(flag, help=argparse.SUPPRESS)
    ap.add_argument("--naive", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return run_one(args)
    if not args.video.exists():
        sys.exit(f"{args.video} is absent: the benchmark needs a 512x512 identity clip")

    from ladtalk.data.prepare import prepare

    work = Path(tempfile.mkdtemp(prefix="ladtalk-bench-generate-"))
    t0 = time.perf_counter()
    identity = prepare(args.video, work / "identity", size=256, device=args.device)
    prepare_seconds = time.perf_counter() - t0
    models = make_models(work)
    rows = []
    for seconds in args.seconds:
        audio = make_audio(work / f"speech_{seconds:g}s.wav", seconds)
        for naive in (True, False):
            r = child(identity, audio, models, args.device, 1 if naive else args.batch,
                      "fp32" if naive else args.precision, naive, args.threads, work)
            stages = {k: r["frames"] / v for k, v in r["stage_seconds"].items() if v > 0}
            rows.append({"audio_s": seconds, "mode": "naive (fp32, batch 1, sequential)" if naive else
                         f"ladtalk (batch {args.batch}, {args.precision}, overlapped I/O)",
                         "frames": r["frames"], "end_to_end_fps": round(r["fps"], 2),
                         **{f"{k}_fps": round(v, 1) for k, v in stages.items()},
                         "peak_rss_mib": round(r["peak_rss_mib"]),
                         "peak_gpu_mib": None if r["peak_gpu_mib"] is None else round(r["peak_gpu_mib"])})
    for seconds in args.seconds:
        naive, fast = [r for r in rows if r["audio_s"] == seconds]
        fast["speedup_vs_naive"] = round(fast["end_to_end_fps"] / naive["end_to_end_fps"], 2)
    cols = ["audio_s", "mode", "frames", "end_to_end_fps", "speedup_vs_naive", "decode_fps", "mel_fps",
            "wav2lip_fps", "sovqae_fps", "paste_fps", "encode_fps", "peak_rss_mib", "peak_gpu_mib"]
    print(table(rows, cols))
    write_results(args.name, {"identity_video": str(args.video), "identity_crop": 256,
                              "networks": "official Wav2Lip (36.3 M) + paper-256 SOVQAE (72.1 M), random weights",
                              "prepare_seconds": round(prepare_seconds, 1), "rows": rows,
                              "stage_fps_note": "stage FPS = frames / seconds spent in that stage "
                                                "(decode overlapped with compute in the ladtalk mode)"})


if __name__ == "__main__":
    main()
