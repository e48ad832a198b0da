"""Benchmark the media I/O layer: decode speed and memory on the Macron clip, encode speed at 512x512.

Memory must stay flat in the video's length: RSS is sampled while iterating every frame and its growth after
the first 100 frames is reported (PyAV's arrays are views of FFmpeg's buffers, invisible to tracemalloc).

    .venv/bin/python bench/io_media.py [--out bench/results] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table, write_results  # noqa: E402

from ladtalk.io.audio import SAMPLE_RATE, load_audio  # noqa: E402
from ladtalk.io.video import VideoWriter, iter_frame_batches, iter_frames, probe_video  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "video"
MACRON = SHARED / "macron_50s_dfrf.mp4"


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed(fn, repeats: int) -> tuple[float, object]:
    """Median wall seconds of `fn()`; CPU seconds (all threads) go to LAST_CPU, robust to a busy machine."""
    times, cpu, out = [], [], None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    LAST_CPU[0] = statistics.median(cpu)
    return statistics.median(times), out


LAST_CPU = [0.0]


def bench_decode(repeats: int) -> list[dict]:
    info = probe_video(MACRON)
    rows = []
    probe_s, _ = timed(lambda: probe_video(MACRON), repeats)
    rows.append({"what": "probe_video (demux-only count)", "frames": info.frame_count, "seconds": probe_s,
                 "frames_per_s": info.frame_count / probe_s})
    for label, fn in [
        ("iter_frames (native 30 fps)", lambda: sum(1 for _ in iter_frames(MACRON))),
        ("iter_frames(fps=25)", lambda: sum(1 for _ in iter_frames(MACRON, fps=25))),
        ("iter_frame_batches(64)", lambda: sum(len(b) for b in iter_frame_batches(MACRON, 64))),
    ]:
        seconds, n = timed(fn, repeats)
        rows.append({"what": label, "frames": n, "seconds": seconds, "frames_per_s": n / seconds,
                     "frames_per_cpu_s": n / LAST_CPU[0]})
    return rows


def bench_memory() -> dict:
    samples = []
    for i, _ in enumerate(iter_frames(MACRON)):
        if i % 50 == 0:
            samples.append((i, rss_mib()))
    after100 = next(r for i, r in samples if i >= 100)
    return {"frames": i + 1, "rss_at_frame_100_mib": round(after100, 1), "rss_end_mib": round(samples[-1][1], 1),
            "rss_growth_after_frame_100_mib": round(max(r for _, r in samples) - after100, 1),
            "whole_video_mib": round(i * 512 * 512 * 3 / 2**20, 1),
            "rss_samples": samples}


def bench_encode(frames: np.ndarray, audio: np.ndarray, out_dir: Path) -> list[dict]:
    rows = []
    for preset, crf in [("medium", 18), ("veryfast", 18), ("ultrafast", 18)]:
        path = out_dir / f"enc_{preset}.mp4"
        t0, c0 = time.perf_counter(), time.process_time()
        with VideoWriter(path, 25, audio=audio, sample_rate=SAMPLE_RATE, crf=crf, preset=preset) as w:
            for start in range(0, len(frames), 25):
                w.write(frames[start:start + 25])
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows.append({"what": f"VideoWriter 512x512 {preset} crf {crf} + AAC", "frames": len(frames),
                     "seconds": seconds, "frames_per_s": len(frames) / seconds, "frames_per_cpu_s": len(frames) / cpu,
                     "kbit_per_s": path.stat().st_size * 8 / 1000 / (len(frames) / 25)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if not MACRON.exists():
        sys.exit(f"{MACRON} is absent: this benchmark needs ../shared/data")
    decode = bench_decode(args.repeats)
    memory = bench_memory()
    audio_s, audio = timed(lambda: load_audio(MACRON), args.repeats)
    decode.append({"what": "load_audio (AAC 48k stereo -> 16k mono)", "frames": "", "seconds": audio_s,
                   "frames_per_s": "", "x_realtime": len(audio) / SAMPLE_RATE / audio_s})
    frames = np.stack(list(iter_frames(MACRON, max_frames=250)))  # 10 s at 25 fps, real content
    with tempfile.TemporaryDirectory() as tmp:
        encode = bench_encode(frames, audio[: 10 * SAMPLE_RATE], Path(tmp))
    cols = ["what", "frames", "seconds", "frames_per_s", "frames_per_cpu_s", "x_realtime", "kbit_per_s"]
    print(table(decode + encode, cols))
    print(table([{k: v for k, v in memory.items() if k != "rss_samples"}],
                [k for k in memory if k != "rss_samples"]))
    # other work on the machine slows every figure: record how busy it was
    print(f"load average (1, 5, 15 min): {os.getloadavg()}")
    write_results("io_media", {"clip": MACRON.name, "av": av.__version__, "load_average": os.getloadavg(),
                               "decode": decode, "memory": memory, "encode": encode}, args.out)


if __name__ == "__main__":
    main()
