"""Benchmark SOVQAE training: images/s and peak memory of the real training step, and a timed restoration run.

Throughput (the exact `train_step` of ladtalk.train.sovqae on random batches, GAN on or off):
    .venv/bin/python bench/train_sovqae.py throughput --presets paper-256 --batch-sizes 8 16 32 \
        --precisions fp32 bf16 --channels-last 0 1 --compile 0 1 --gan 1
  Target (issue 3): paper-256 >= 250 images/s on one H100 in bf16 (50 epochs of ~8k frames in <= 30 min).
  On a CPU: `throughput --presets tiny --batch-sizes 8 --precisions fp32 --steps 10` (what bench/results holds).

Restoration protocol (train within a time budget on an identity's train split, then the paper's experiment on
its held-out test split via `ladtalk analyze`):
    .venv/bin/python bench/train_sovqae.py restoration IDENTITY_DIR --preset paper-256 --minutes 8
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table, write_results  # noqa: E402

from ladtalk.models.sovqae import SOVQAEConfig, count_parameters  # noqa: E402
from ladtalk.presets import load_preset  # noqa: E402
from ladtalk.train.common import setup_runtime  # noqa: E402
from ladtalk.train.config import read_config  # noqa: E402
from ladtalk.train.sovqae_config import SOVQAETrainConfig  # noqa: E402
from ladtalk.train.sovqae_step import build_nets, train_step, wrap_nets  # noqa: E402

EPOCH_IMAGES = 50 * 8000  # the paper's 50 epochs over ~8k frames


def _peak_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # process max RSS (never resets)


def one_case(preset: str, batch_size: int, precision: str, channels_last: bool, compile: bool, gan: bool,
             steps: int, warmup: int, device: str, perceptual: str | None) -> dict:
    cfg = load_preset(preset)
    train = dict(cfg["train"], batch_size=batch_size, precision=precision, channels_last=channels_last,
                 compile=compile, disc_start=0 if gan else 10**12)
    if perceptual is not None:
        train["perceptual"] = perceptual
    t = read_config(SOVQAETrainConfig, train)
    mcfg = SOVQAEConfig.from_dict(cfg["model"])
    rt = setup_runtime(device, precision=precision, channels_last=channels_last)
    torch.manual_seed(0)
    nets = build_nets(mcfg, t, rt)
    wrap_nets(nets, rt, compile)
    x = rt.images(torch.rand(batch_size, 3, mcfg.resolution, mcfg.resolution, device=rt.device) * 2 - 1)
    if rt.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(rt.device)
    row = {"preset": preset, "batch": batch_size, "precision": rt.precision, "channels_last": channels_last,
           "compile": compile, "gan": gan, "perceptual": nets.perceptual_name,
           "params": count_parameters(nets.model)}
    try:
        for s in range(warmup):
            train_step(rt, nets, x, x, s, t)
        if rt.device.type == "cuda":
            torch.cuda.synchronize(rt.device)
        t0 = time.perf_counter()
        for s in range(steps):
            out = train_step(rt, nets, x, x, warmup + s, t)
        float(out["loss"])  # waits for the device
        seconds = time.perf_counter() - t0
        ips = steps * batch_size / seconds
        row.update(images_per_s=round(ips, 2), step_ms=round(1000 * seconds / steps, 1),
                   peak_mem_gib=round(_peak_bytes(rt.device) / 2**30, 2),
                   paper_50_epochs_min=round(EPOCH_IMAGES / ips / 60, 1))
    except torch.OutOfMemoryError:
        row.update(images_per_s=None, error="out of memory")
    del nets, x
    gc.collect()
    if rt.device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def throughput(a: argparse.Namespace) -> None:
    rows = []
    for preset, bs, prec, cl, comp, gan in itertools.product(a.presets, a.batch_sizes, a.precisions,
                                                            a.channels_last, a.compile, a.gan):
        row = one_case(preset, bs, prec, bool(cl), bool(comp), bool(gan), a.steps, a.warmup, a.device,
                       a.perceptual)
        print(row, flush=True)
        rows.append(row)
    cols = ["preset", "batch", "precision", "channels_last", "compile", "gan", "perceptual", "images_per_s",
            "step_ms", "peak_mem_gib", "paper_50_epochs_min"]
    print(table(rows, cols))
    write_results(a.name, {"benchmark": "sovqae training throughput", "steps": a.steps, "warmup": a.warmup,
                           "load_average_1_5_15": list(os.getloadavg()), "torch_threads": torch.get_num_threads(),
                           "device_arg": a.device, "note": "random batches through the trainer's train_step; "
                           "peak memory: CUDA max allocated, or the process max RSS on CPU", "rows": rows})


def restoration(a: argparse.Namespace) -> None:
    from ladtalk.analyze import analyze
    from ladtalk.train.sovqae import train_sovqae

    run_dir = Path(a.run_dir)
    overrides = [f"train.max_minutes={a.minutes}", *a.set]
    t0 = time.perf_counter()
    model_dir = train_sovqae([a.identity_dir], run_dir, preset=a.preset, overrides=overrides, device=a.device)
    train_s = time.perf_counter() - t0
    rep = analyze(model_dir, a.identity_dir, run_dir / "analysis", max_frames=a.max_frames, device=a.device,
                  seed=0)
    rows = [{k: r.get(k) for k in ("kind", "strength", "psnr_degraded_region", "psnr_restored_region",
                                   "psnr_degraded", "psnr_restored", "codes_unchanged")} for r in rep["experiments"]]
    print(table(rows, list(rows[0])))
    write_results(a.name, {"benchmark": "sovqae restoration protocol", "preset": a.preset, "overrides": overrides,
                           "identity_dir": str(a.identity_dir), "train_seconds": round(train_s, 1),
                           "protocol": "train on the identity's train split (first 90% of frames) for at most "
                           f"{a.minutes} min, then `ladtalk analyze` on its held-out test split (last 10%): random "
                           "192x192 region (scaled) blurred / noised per frame, and a 96x96 down-up",
                           "theory": rep["theory"], "experiments": rep["experiments"]})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    q = sub.add_parser("throughput")
    q.add_argument("--presets", nargs="+", default=["tiny"])
    q.add_argument("--batch-sizes", nargs="+", type=int, default=[8])
    q.add_argument("--precisions", nargs="+", default=["fp32"])
    q.add_argument("--channels-last", nargs="+", type=int, default=[0])
    q.add_argument("--compile", nargs="+", type=int, default=[0])
    q.add_argument("--gan", nargs="+", type=int, default=[1])
    q.add_argument("--perceptual", default=None, help="override the preset's perceptual loss (auto, none, ...)")
    q.add_argument("--steps", type=int, default=20)
    q.add_argument("--warmup", type=int, default=5)
    q.add_argument("--device", default="auto")
    q.add_argument("--name", default="train_sovqae")
    r = sub.add_parser("restoration")
    r.add_argument("identity_dir")
    r.add_argument("--run-dir", default="bench_runs/sovqae")
    r.add_argument("--preset", default="paper-256")
    r.add_argument("--minutes", type=float, default=8.0)
    r.add_argument("--max-frames", type=int, default=None)
    r.add_argument("--set", action="append", default=[], help="extra KEY=VALUE preset overrides")
    r.add_argument("--device", default="auto")
    r.add_argument("--name", default="sovqae_restoration")
    a = p.parse_args()
    throughput(a) if a.mode == "throughput" else restoration(a)


if __name__ == "__main__":
    main()
