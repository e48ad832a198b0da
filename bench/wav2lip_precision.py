"""The official-size Wav2Lip generator alone (random weights, batch 16) in fp32, fp32 + channels_last and bf16
autocast + channels_last: frames per second on this CPU. Shows why `precision: auto` picks bf16 only on CPUs
with bf16 units (AMX / AVX512-BF16): elsewhere bf16 is emulated and many times slower than fp32.

    python bench/wav2lip_precision.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table, write_results  # noqa: E402


def main() -> None:
    from generate import cpu_record

    from ladtalk.models.wav2lip import Wav2Lip, Wav2LipConfig

    record = cpu_record()
    torch.manual_seed(0)
    model = Wav2Lip(Wav2LipConfig()).eval()
    batch = 16
    faces, mels = torch.rand(batch, 6, 96, 96), torch.rand(batch, 1, 80, 16)
    rows = []
    for name, channels_last, dtype, reps in (("fp32", False, None, 3), ("fp32 channels_last", True, None, 3),
                                            ("bf16 channels_last", True, torch.bfloat16, 1)):
        m = model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        x = faces.contiguous(memory_format=torch.channels_last) if channels_last else faces
        with torch.inference_mode(), torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            m(mels, x)  # warm-up
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(reps):
                m(mels, x)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows.append({"mode": name, "frames": batch * reps, "fps": round(batch * reps / wall, 2),
                     "cpu_ms_per_frame": round(1000 * cpu / (batch * reps), 1), "loadavg_1min": os.getloadavg()[0]})
    print(table(rows, list(rows[0])))
    write_results("wav2lip_precision_cpu", {**record, "batch": batch, "rows": rows})


if __name__ == "__main__":
    main()
