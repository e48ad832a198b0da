"""The train part of bench/gpu_suite.py: images/s, step time, achieved TFLOP/s and peak memory of the SOVQAE
trainer's own `train_step` (autoencoder + perceptual + GAN, both optimisers) per preset, batch size and
torch.compile on/off, in bf16 with channels_last. Warm-up steps (and compilation) are excluded; the steady state
is timed with CUDA events. Cases run most informative first; one that would not fit the time left is listed
under `not_run` rather than started."""

from __future__ import annotations

import argparse
import functools
import gc
import resource
import time
import traceback

from gpu_parts import Recorder, cuda_timer, seconds_left

EPOCH_IMAGES = 50 * 8000  # the paper's 50 epochs over a ~5-minute identity (~8k frames)
WARMUP_STEPS, MAX_TIMED_STEPS, TIMED_SECONDS = 3, 30, 6.0
DRY_STEPS = 1, 2, 0.0  # warm-up, timed, seconds: the dry run proves the plumbing, not a speed
FIRST_GUESS_S = {False: 25.0, True: 90.0}  # a case's wall time before one was measured (compile included)


def case_order(presets: list[str], batches: dict[str, list[int]]) -> list[tuple[str, int, bool]]:
    """Eager at every batch size, then compiled at the largest, per preset; the other compiled cases last."""
    first, last = [], []
    for preset in presets:
        bs = batches[preset]
        first += [(preset, b, False) for b in bs] + [(preset, max(bs), True)]
        last += [(preset, b, True) for b in bs if b != max(bs)]
    return first + last


def perceptual_for(kind: str, device) -> tuple[object | None, str]:
    """The preset's perceptual network, or - when its weight files are not on this machine - the same
    architecture with random weights: speed does not depend on the weights, and the name says so."""
    from ladtalk.errors import InputError
    from ladtalk.losses.perceptual import build_perceptual
    from ladtalk.models.perceptual import lpips_vgg

    try:
        return build_perceptual(kind, device)
    except InputError:
        net = lpips_vgg().to(device).eval().requires_grad_(False)
        return net, "lpips_vgg layout, random weights (speed only: the weight files are not on this machine)"


def count_step_flops(step_fn) -> float:
    """FLOPs of one call (convolutions and matrix products, forward and backward) by torch's flop counter."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step_fn()
    return float(counter.get_total_flops())


def train_case(a: argparse.Namespace, preset: str, batch: int, compiled: bool, flops_cache: dict) -> dict:
    import torch

    from ladtalk.models.sovqae import SOVQAEConfig, count_parameters
    from ladtalk.presets import load_preset
    from ladtalk.train.common import setup_runtime
    from ladtalk.train.config import read_config
    from ladtalk.train.sovqae_config import SOVQAETrainConfig
    from ladtalk.train.sovqae_step import build_nets, train_step

    cfg = load_preset(preset)
    perceptual_kind = "none" if float(cfg["train"]["perceptual_weight"]) == 0 else cfg["train"]["perceptual"]
    # GAN on from step 0: the steady state after disc_start, the slower half of a paper run
    t = read_config(SOVQAETrainConfig, dict(cfg["train"], batch_size=batch, precision=a.train_precision,
                                            channels_last=True, compile=compiled, disc_start=0, perceptual="none"))
    mcfg = SOVQAEConfig.from_dict(cfg["model"])
    rt = setup_runtime(a.device, precision=a.train_precision, channels_last=True)
    cuda = rt.device.type == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(rt.device)
    torch.manual_seed(0)
    nets = build_nets(mcfg, t, rt)
    perceptual_name = "none"
    if perceptual_kind != "none":
        nets.perceptual, perceptual_name = perceptual_for(perceptual_kind, rt.device)
        nets.perceptual = nets.perceptual.to(memory_format=torch.channels_last)
    if compiled:
        nets.run_model = torch.compile(nets.model, backend=a.compile_backend)
    x = rt.images(torch.rand(batch, 3, mcfg.resolution, mcfg.resolution, device=rt.device) * 2 - 1)
    row = {"preset": preset, "batch": batch, "precision": rt.precision, "channels_last": True,
           "compile": a.compile_backend if compiled else "off", "gan": True, "perceptual": perceptual_name,
           "params": count_parameters(nets.model), "resolution": mcfg.resolution}
    warmup, max_steps, timed_seconds = DRY_STEPS if a.dry_run else (WARMUP_STEPS, MAX_TIMED_STEPS, TIMED_SECONDS)
    start, stop = cuda_timer(rt.device)
    t_wall = time.perf_counter()
    try:
        t0 = time.perf_counter()
        for s in range(warmup):
            out = train_step(rt, nets, x, x, s, t)
        float(out["loss"].detach())  # waits for the device
        row["warmup_s"] = round(time.perf_counter() - t0, 2)  # includes compilation when compiled
        key = (preset, batch)
        if key not in flops_cache and not compiled:
            flops_cache[key] = count_step_flops(functools.partial(train_step, rt, nets, x, x, warmup, t))
        steps, t_host, ev = 0, time.perf_counter(), start()
        while steps < max_steps and (steps < 2 or time.perf_counter() - t_host < timed_seconds):
            out = train_step(rt, nets, x, x, warmup + 1 + steps, t)
            steps += 1
        seconds = stop(ev)
        ips = steps * batch / seconds
        row.update(timed_steps=steps, images_per_s=round(ips, 2), step_ms=round(1000 * seconds / steps, 1),
                   paper_50_epochs_min=round(EPOCH_IMAGES / ips / 60, 1), loss=round(float(out["loss"].detach()), 4))
        if key in flops_cache:
            row["gflop_per_step"] = round(flops_cache[key] / 1e9, 1)
            row["achieved_tflops"] = round(flops_cache[key] * steps / seconds / 1e12, 2)
        if cuda:
            row["peak_allocated_gib"] = round(torch.cuda.max_memory_allocated(rt.device) / 2**30, 2)
            row["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved(rt.device) / 2**30, 2)
        else:
            row["process_max_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    except torch.OutOfMemoryError:
        row["error"] = "out of memory"
    except Exception as e:  # noqa: BLE001 - e.g. a compile failure: recorded, the next case still runs
        traceback.print_exc()
        row["error"] = f"{type(e).__name__}: {e}"[-800:]
    finally:
        del nets, x
        gc.collect()
        if compiled:
            torch._dynamo.reset()
        if cuda:
            torch.cuda.empty_cache()
    row["case_wall_s"] = round(time.perf_counter() - t_wall, 1)
    return row


def estimate_seconds(seen: dict | None, batch: int, compiled: bool) -> float:
    """Wall time a case will take: a measured one of the same preset and mode, with its untimed steps (warm-up
    and flop count; the timed loop is capped in seconds) scaled to this batch; else a first guess."""
    if seen is None:
        return FIRST_GUESS_S[compiled]
    step_s = seen["step_ms"] / 1000.0
    return seen["case_wall_s"] + (WARMUP_STEPS + 1) * step_s * max(0.0, batch / seen["batch"] - 1.0)


def part_train(a: argparse.Namespace, rec: Recorder, deadline: float) -> None:
    from ladtalk.presets import load_preset

    batches = {}
    for preset in a.train_presets:
        default = int(load_preset(preset)["train"]["batch_size"])
        batches[preset] = a.train_batches or [default, 4 * default]
    rec.set("plan", {"cases": [list(c) for c in case_order(a.train_presets, batches)], "warmup_steps": WARMUP_STEPS,
                     "timed": f"up to {MAX_TIMED_STEPS} steps or {TIMED_SECONDS} s after warm-up, CUDA events",
                     "data": "one random batch in [-1,1] on the device (training keeps the crops on the GPU)"})
    seen: dict[tuple[str, bool], dict] = {}  # (preset, compiled) -> the last measured row
    flops_cache: dict = {}
    for preset, batch, compiled in case_order(a.train_presets, batches):
        need = estimate_seconds(seen.get((preset, compiled)), batch, compiled)
        left = seconds_left(deadline)
        if need > left and not a.dry_run:
            rec.append("not_run", {"preset": preset, "batch": batch, "compile": compiled,
                                   "reason": f"about {need:.0f} s needed, {left:.0f} s left of the part's budget"})
            continue
        row = train_case(a, preset, batch, compiled, flops_cache)
        if "error" not in row:
            seen[(preset, compiled)] = row
        rec.append("rows", row)
