"""Benchmark `ladtalk prepare` on the real clips, and the crop storage format it uses.

Target (issue 2): the 50 s Macron clip at 256 on a 2-core CPU in under 2 minutes with exactly one face on 100% of
its frames; the same on the 720p Obama clip. Also measures why crops.npy (raw uint8, memory-mapped) was chosen:
disk size and the time to load random training batches against JPEG-in-NPZ and PNG-in-NPZ.

    .venv/bin/python bench/prepare.py [--clips macron obama] [--out bench/results]
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table, write_results  # noqa: E402

from ladtalk.data.identity import Identity  # noqa: E402
from ladtalk.data.prepare import prepare  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "video"
CLIPS = {"macron": "macron_50s_dfrf.mp4", "obama": "obama_weekly_address_sentence1_musooff.mp4",
         "may": "may_5s_real3dportrait.mp4"}


def bench_clip(name: str, work: Path, size: int) -> dict:
    video = SHARED / CLIPS[name]
    t0 = time.perf_counter()
    out = prepare(video, work / name, size=size, device="cpu")
    seconds = time.perf_counter() - t0
    ident = Identity.open(out)
    per_frame = np.asarray(ident.meta["detections_per_frame"])
    t1 = time.perf_counter()
    prepare(video, work / name, size=size, device="cpu")  # must be a no-op
    rerun = time.perf_counter() - t1
    return {"clip": name, "size": size, "frames": ident.frame_count, "fps": round(ident.fps, 3),
            "seconds": round(seconds, 1), "frames_per_s": round(ident.frame_count / seconds, 1),
            "exactly_one_face_pct": round(100.0 * float((per_frame == 1).mean()), 2),
            "face_track_pct": round(100.0 * float(ident.has_face.mean()), 2),
            "rerun_seconds": round(rerun, 2), "_ident": out}


def bench_storage(ident_dir: Path, batches: int = 20, batch_size: int = 64) -> list[dict]:
    """Disk size and random-batch load time of the crops in three formats."""
    import cv2

    crops = np.load(ident_dir / "crops.npy", mmap_mode="r")
    rng = np.random.default_rng(0)
    picks = [np.sort(rng.choice(len(crops), batch_size, replace=False)) for _ in range(batches)]
    rows = []
    t0 = time.perf_counter()
    for idx in picks:
        np.ascontiguousarray(crops[idx])
    rows.append({"format": "npy (raw, mmap)", "MB": round((ident_dir / "crops.npy").stat().st_size / 2**20, 1),
                 "ms_per_batch64": round(1000 * (time.perf_counter() - t0) / batches, 2)})
    for fmt, params in (("jpg", [cv2.IMWRITE_JPEG_QUALITY, 95]), ("png", [cv2.IMWRITE_PNG_COMPRESSION, 1])):
        encoded = [cv2.imencode(f".{fmt}", c[..., ::-1], params)[1] for c in crops]
        buf = io.BytesIO()
        np.savez(buf, *encoded)
        t0 = time.perf_counter()
        for idx in picks:
            np.stack([cv2.imdecode(encoded[i], cv2.IMREAD_COLOR)[..., ::-1] for i in idx])
        rows.append({"format": f"{fmt} in npz", "MB": round(buf.tell() / 2**20, 1),
                     "ms_per_batch64": round(1000 * (time.perf_counter() - t0) / batches, 2)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", nargs="+", default=["macron", "obama"], choices=sorted(CLIPS))
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if not SHARED.exists():
        sys.exit(f"{SHARED} is absent: the benchmark needs the shared clips")
    work = Path(tempfile.mkdtemp(prefix="ladtalk-bench-prepare-"))
    try:
        rows = [bench_clip(c, work, args.size) for c in args.clips]
        storage = bench_storage(rows[0]["_ident"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for r in rows:
        r.pop("_ident")
    cols = ["clip", "size", "frames", "fps", "seconds", "frames_per_s", "exactly_one_face_pct", "face_track_pct",
            "rerun_seconds"]
    print(table(rows, cols))
    print()
    print(table(storage, ["format", "MB", "ms_per_batch64"]))
    write_results("prepare", {"target": "macron 256 under 120 s on 2 CPU cores, one face on 100% of frames",
                              "clips": rows, "crop_storage": storage}, args.out)


if __name__ == "__main__":
    main()
