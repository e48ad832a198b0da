"""How many faces at once the SOVQAE should take on a CPU: ms per face of `restore_batch` (encoder, codes, decoder;
fp32) for batches of 1 to 16 faces at 256x256, with the restore-cpu network (the CPU preset's and the demo's;
untrained: the time does not depend on the weights). Why `pipeline.restore.CPU_BATCH` is 2.
Results: bench/results/restore_batch_cpu.json.

    OMP_NUM_THREADS=2 python bench/restore_batch_cpu.py
"""

from __future__ import annotations

import time

import torch
from common import write_results

from ladtalk.models.sovqae import SOVQAE, SOVQAEConfig
from ladtalk.pipeline.restore import restore_batch
from ladtalk.presets import load_preset

BATCHES = (1, 2, 4, 8, 16)


def ms_per_face(model: SOVQAE, batch: int, faces: int = 32) -> float:
    x = torch.rand(faces, 3, model.config.resolution, model.config.resolution)
    restore_batch(model, x[:batch], None)  # warm-up: oneDNN picks its kernels
    t = time.perf_counter()
    for s in range(0, faces, batch):
        restore_batch(model, x[s:s + batch], None)
    return (time.perf_counter() - t) / faces * 1000


def main() -> None:
    torch.manual_seed(0)
    rows = []
    model = SOVQAE(SOVQAEConfig.from_dict(load_preset("restore-cpu")["model"])).eval()
    for b in BATCHES:
        rows.append({"preset": "restore-cpu", "batch": b, "ms_per_face": round(ms_per_face(model, b), 1)})
        print(rows[-1], flush=True)
    write_results("restore_batch_cpu", {"threads": torch.get_num_threads(), "rows": rows})


if __name__ == "__main__":
    main()
