"""Benchmark the face detector on every frame of the real clips: speed, faces per frame, box steadiness.

Decoding is excluded from the detector's time. `cpu_ms_per_frame` is the process CPU time (all threads) per
frame, a figure that other processes on a shared machine disturb less than the wall clock; the JSON records
the machine's load average during the run.

    .venv/bin/python bench/face_detect.py [--clips macron may obama] [--detector mtcnn] [--batch 16]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table, write_results  # noqa: E402

from ladtalk.face.detect import make_detector  # noqa: E402
from ladtalk.face.track import track_faces  # noqa: E402
from ladtalk.io.video import iter_frame_batches, probe_video  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "video"
CLIPS = {"macron": "macron_50s_dfrf.mp4", "may": "may_5s_real3dportrait.mp4",
         "obama": "obama_weekly_address_sentence1_musooff.mp4"}


def bench_clip(name: str, spec: str, batch: int, device: str, kw: dict) -> dict:
    video = SHARED / CLIPS[name]
    info = probe_video(video)
    det = make_detector(spec, device=device, **kw)
    det.detect(np.zeros((1, info.height, info.width, 3), np.uint8))  # first-call set-up outside the timing
    wall = cpu = 0.0
    found = []
    for frames in iter_frame_batches(video, batch):
        w0, c0 = time.perf_counter(), time.process_time()
        found += det.detect(frames)
        wall += time.perf_counter() - w0
        cpu += time.process_time() - c0
    n = len(found)
    counts = np.array([len(f) for f in found])
    tr = track_faces(found, (info.width, info.height), pads=(0, 0, 0, 0), smooth_window=1)
    raw = tr.raw_boxes[np.isfinite(tr.raw_boxes).all(1)]
    side = np.median(raw[:, 2] - raw[:, 0])
    # Steadiness: the box's frame-to-frame change beyond steady motion (second difference), % of its width.
    jitter = np.median(np.abs(np.diff(raw, n=2, axis=0))) / side * 100
    return {"clip": name, "size": f"{info.width}x{info.height}", "frames": n, "detector": spec,
            "ms_per_frame": wall / n * 1e3, "cpu_ms_per_frame": cpu / n * 1e3,
            "one_face_pct": float((counts == 1).mean() * 100), "max_faces": int(counts.max()),
            "median_box_px": float(side), "jitter_pct": float(jitter)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", nargs="+", default=list(CLIPS), choices=list(CLIPS))
    p.add_argument("--detector", default="mtcnn")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument("--min-face-fraction", type=float, default=None)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--out", default=None)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    kw = {} if a.min_face_fraction is None else {"min_face_fraction": a.min_face_fraction}
    rows = [bench_clip(c, a.detector, a.batch, a.device, kw) for c in a.clips if (SHARED / CLIPS[c]).exists()]
    print(table(rows, ["clip", "size", "frames", "ms_per_frame", "cpu_ms_per_frame", "one_face_pct", "max_faces",
                       "median_box_px", "jitter_pct"]))
    write_results(f"face_detect_{a.detector.split(':')[0]}_{a.device}",
                  {"batch": a.batch, "threads": torch.get_num_threads(), "kw": kw,
                   "load_average_1_5_15min": os.getloadavg(), "rows": rows}, a.out)


if __name__ == "__main__":
    main()
