"""Both networks of the cascade alone on each CPU backend: images per second and distance from eager fp32.

Networks (random weights of the real sizes; the SOVQAE's output layer is re-drawn so that its output is not the
guide's thumbnail alone): the official-size Wav2Lip, batch 16 at 96 px, and the restore-cpu preset's SOVQAE (the
low-resolution guide included), batch 2, on the whole 256-px crop and on the rows the mouth paste keeps
(`pasted_rows`). Variants are timed interleaved, round after round, and the median is reported, so that the load
of a shared machine falls on all alike. `--avx2` limits torch (and oneDNN inside OpenVINO, where it reads the
variable) to AVX2, standing for CPUs without AVX-512 or AMX.

    python bench/backends_cpu.py --threads 2            # writes bench/results/backends_cpu_t2.json
    python bench/backends_cpu.py --threads 2 --avx2     # ... backends_cpu_t2_avx2.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--avx2", action="store_true", help="limit torch/oneDNN to AVX2 (re-runs itself)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds-per-round", type=float, default=1.5, help="per variant and round")
    ap.add_argument("--nets", nargs="*", default=["wav2lip", "sovqae", "sovqae_pasted"])
    ap.add_argument("--variants", nargs="*", default=None, help="only these variant names")
    ap.add_argument("--compile", action="store_true", help="also torch.compile (inductor; minutes to compile)")
    ap.add_argument("--name", default=None)
    a = ap.parse_args()
    if a.avx2 and os.environ.get("ATEN_CPU_CAPABILITY") != "avx2":
        env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    import torch

    torch.set_num_threads(a.threads)
    from common import table, write_results
    from generate import cpu_record

    record = cpu_record()
    record["limited_to_avx2"] = a.avx2
    print(record, flush=True)
    rows = []
    for net in a.nets:
        rows += bench_net(net, a, record["fast_bf16"] and not a.avx2)
    print(table(rows, ["net", "batch", "variant", "images_per_s", "ms_per_image", "vs_fp32", "psnr_vs_fp32_db",
                       "codes_same", "setup_s"]))
    name = a.name or f"backends_cpu_t{a.threads}" + ("_avx2" if a.avx2 else "")
    write_results(name, {**record, "threads": a.threads, "rows": rows,
                         "notes": "images_per_s: median over interleaved rounds; psnr_vs_fp32_db: the output against "
                                  "eager fp32 (peak 1); codes_same: share of code indices equal to fp32's; "
                                  "setup_s: export/compile time on a cold cache"})


def nets(name: str):
    """(module, example inputs, batch) of a network: eager fp32, CPU."""
    import torch

    from ladtalk.models.sovqae import SOVQAE, SOVQAEConfig
    from ladtalk.models.wav2lip import Wav2Lip, Wav2LipConfig
    from ladtalk.pipeline.restore import RestoreNet, pasted_rows
    from ladtalk.presets import load_preset

    torch.manual_seed(0)
    if name == "wav2lip":
        return Wav2Lip(Wav2LipConfig()).eval(), (torch.rand(16, 1, 80, 16) * 4 - 4, torch.rand(16, 6, 96, 96)), 16
    model = SOVQAE(SOVQAEConfig.from_dict(load_preset("restore-cpu")["model"])).eval()
    torch.nn.init.normal_(model.decoder.conv_out.weight, std=0.02)
    size = model.config.resolution
    rows = size if name == "sovqae" else size - pasted_rows(size, model.config.downsample_factor).start
    return RestoreNet(model).eval(), (torch.rand(2, 3, rows, size),), 2


def variants(fast_bf16: bool, compile_too: bool):
    import torch

    from ladtalk.runtime import Inference

    cpu = torch.device("cpu")
    out = {"torch fp32": ("torch", Inference(cpu, None, False)),
           "torch fp32 channels_last": ("torch", Inference(cpu, None, True))}
    if fast_bf16:
        out["torch bf16 channels_last"] = ("torch", Inference(cpu, torch.bfloat16, True))
    if compile_too:
        out["torch.compile fp32"] = ("compile", Inference(cpu, None, False))
    out["onnxruntime fp32"] = ("onnxruntime", Inference(cpu, None, False))
    out["openvino f32"] = ("openvino", Inference(cpu, None, False))
    if fast_bf16:
        out["openvino bf16"] = ("openvino", Inference(cpu, torch.bfloat16, True))
    return out


def bench_net(net: str, a, fast_bf16: bool) -> list[dict]:
    import copy

    import torch

    from ladtalk.pipeline.backends import available, make_runner
    from ladtalk.pipeline.restore import RestoreNet

    module, examples, batch = nets(net)
    runners, setup = {}, {}
    for name, (backend, inference) in variants(fast_bf16, a.compile).items():
        if a.variants and name not in a.variants:
            continue
        if backend != "compile" and not available(backend):
            print(f"skip {name}: not installed")
            continue
        m = copy.deepcopy(module)
        if isinstance(m, RestoreNet) and backend == "torch":  # the restorer's rule: only its decoder in bf16
            m.decoder_dtype = inference.amp_dtype
        t0 = time.perf_counter()
        if backend == "compile":
            from ladtalk.pipeline.backends import TorchRunner

            r = TorchRunner(m, inference, autocast=False)
            r.module = torch.compile(r.module)
        else:
            r = make_runner(m, examples, inference, backend, autocast=not isinstance(m, RestoreNet))
        r(*examples)  # warm-up: kernels chosen, graphs compiled
        setup[name], runners[name] = time.perf_counter() - t0, r
        print(f"{net} {name}: ready in {setup[name]:.1f} s", flush=True)
    times: dict[str, list[float]] = {n: [] for n in runners}
    for _ in range(a.rounds):
        for name, r in runners.items():
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < a.seconds_per_round or n < 1:
                r(*examples)
                n += 1
            times[name].append((time.perf_counter() - t0) / n)
    ref = runners["torch fp32"](*examples)
    rows = []
    for name, r in runners.items():
        out = r(*examples)
        ips = batch / statistics.median(times[name])
        row = {"net": net, "batch": batch, "variant": name, "images_per_s": round(ips, 2),
               "ms_per_image": round(1000 / ips, 1), "setup_s": round(setup[name], 1),
               "psnr_vs_fp32_db": psnr_db(out[0], ref[0])}
        if len(out) > 1:
            row["codes_same"] = round(float((out[1].long() == ref[1]).float().mean()), 4)
        rows.append(row)
    base = next(r["images_per_s"] for r in rows if r["variant"] == "torch fp32")
    for row in rows:
        row["vs_fp32"] = round(row["images_per_s"] / base, 2)
    return rows


def psnr_db(a, b) -> float:
    """PSNR of two float outputs in [0,1], unrounded (ladtalk.metrics.image on the [0,255] scale; equal: inf)."""
    from ladtalk.metrics.image import psnr_from_mse

    mse = float((a.float().clamp(0, 1) - b.float().clamp(0, 1)).pow(2).mean()) * 255.0 ** 2
    return round(float(psnr_from_mse(mse)), 1)


if __name__ == "__main__":
    main()
