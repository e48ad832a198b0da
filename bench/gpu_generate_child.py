"""One `generate` run in its own process on any device (the GPU suite's inference part): prints a RESULT line with
per-stage timings, peak RSS and peak GPU memory, so every run starts from a clean allocator and measures its own peak.
`naive` runs decode and encode in the main thread (fp32, batch 1 is the caller's choice), as the official inference.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path


def make_audio(path: Path, seconds: float) -> Path:
    """Seeded synthetic speech of `seconds` as a 16 kHz WAV."""
    from ladtalk.data.synthetic_speech import synth_speech
    from ladtalk.io.audio import SAMPLE_RATE, write_wav

    audio, _ = synth_speech(seconds, SAMPLE_RATE, seed=1)
    write_wav(path, audio, SAMPLE_RATE)
    return path


def child(identity: Path, audio: Path, models: tuple[Path, Path], device: str, batch: int, precision: str,
          naive: bool, threads: int | None, work: Path) -> dict:
    cmd = [sys.executable, __file__, "--identity", str(identity), "--audio", str(audio), "--wav2lip", str(models[0]),
           "--sovqae", str(models[1]), "--device", device, "--batch", str(batch), "--precision", precision,
           "--out", str(work / "out.mp4")] + (["--naive"] if naive else []) + \
        (["--threads", str(threads)] if threads else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not line:
        sys.exit(f"benchmark child failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[0][len("RESULT "):])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    for flag in ("--identity", "--audio", "--wav2lip", "--sovqae", "--out", "--device", "--precision"):
        ap.add_argument(flag, required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--naive", action="store_true")
    a = ap.parse_args()
    import torch

    from ladtalk.pipeline.generate import generate

    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    report = generate(a.identity, a.audio, a.out, wav2lip_path=a.wav2lip, sovqae_path=a.sovqae, batch_size=a.batch,
                      precision=a.precision, device=a.device, overlap_io=not a.naive)
    print("RESULT " + json.dumps({
        "frames": report.frames, "seconds": report.seconds, "fps": report.fps, "stage_seconds": report.stage_seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None}))


if __name__ == "__main__":
    main()
