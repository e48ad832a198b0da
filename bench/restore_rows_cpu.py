"""How close the restorer computing only the mouth paste's rows (`--sovqae-rows pasted`) comes to the whole crop,
where the mouth paste blends: PSNR between the two outputs there, and the share of the region's codes that agree,
for several margins above the blended rows.

The two cannot be equal in general: the SOVQAE's GroupNorm statistics and its mid-block attention span the whole
picture it is given, so the upper face changes the lower face's output. How far apart they are depends on the
weights: give a trained model (`--model`) to decide whether `pasted` is good enough for it; without one, the
restore-cpu preset's layout with random weights (its output layer re-drawn) is the stand-in.

    python bench/restore_rows_cpu.py                       # random restore-cpu layout, Macron frames
    python bench/restore_rows_cpu.py --model RUN_DIR       # a trained SOVQAE
    python bench/restore_rows_cpu.py --model RUN_DIR --identity IDENTITY_DIR   # ... on its identity's test crops
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table, write_results  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def faces(video: Path, size: int, count: int) -> np.ndarray:
    """`count` frames of the clip, the centre square cut and resized to `size`: uint8 (count,size,size,3)."""
    import cv2

    from ladtalk.io.video import iter_frames

    out = []
    for frame in iter_frames(video, max_frames=count * 10):
        out.append(frame)
    frames = out[::10][:count]
    h, w = frames[0].shape[:2]
    s = min(h, w) * 5 // 8
    y, x = (h - s) // 2, (w - s) // 2
    return np.stack([cv2.resize(f[y:y + s, x:x + s], (size, size), interpolation=cv2.INTER_AREA) for f in frames])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="a trained SOVQAE (model or run folder)")
    ap.add_argument("--video", type=Path, default=SHARED / "video" / "macron_50s_dfrf.mp4")
    ap.add_argument("--identity", type=Path, default=None,
                    help="take the frames from this identity's test split (its crops) instead of --video")
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--margins", type=int, nargs="*", default=[0, 16, 32, 48, 64])
    ap.add_argument("--name", default="restore_rows_cpu")
    a = ap.parse_args()
    import torch

    from ladtalk.face.crop import lower_face_mask
    from ladtalk.metrics.image import psnr_from_mse
    from ladtalk.models.sovqae import SOVQAE, SOVQAEConfig
    from ladtalk.pipeline.restore import RestoreNet, load_sovqae, pasted_rows
    from ladtalk.pixels import to_images
    from ladtalk.presets import load_preset

    torch.manual_seed(0)
    if a.model is None:
        model = SOVQAE(SOVQAEConfig.from_dict(load_preset("restore-cpu")["model"])).eval()
        torch.nn.init.normal_(model.decoder.conv_out.weight, std=0.02)
    else:
        model = load_sovqae(a.model)
    cfg = model.config
    size, f = cfg.resolution, cfg.downsample_factor
    net = RestoreNet(model)
    if a.identity is None:
        x = to_images(faces(a.video, size, a.frames))
    else:
        from ladtalk.data.identity import Identity

        ident = Identity.open(a.identity)
        test = ident.test_indices
        x = to_images(np.ascontiguousarray(ident.crops[test[np.linspace(0, len(test) - 1, a.frames).astype(int)]]))
    with torch.no_grad():
        whole, whole_codes = net(x)
    blended = torch.from_numpy(lower_face_mask(size)) > 0
    rows_out = []
    for margin in a.margins:
        rows = pasted_rows(size, f, margin)
        with torch.no_grad():
            part, codes = net(x[:, :, rows])
        y = x.clone()
        y[:, :, rows] = part
        mse = float((y - whole)[:, :, blended].pow(2).mean())
        rows_out.append({"margin_px": margin, "first_row": rows.start, "share_of_crop": round(1 - rows.start / size, 3),
                         "psnr_in_blended_db": round(float(psnr_from_mse(mse * 255.0 ** 2)), 1),
                         "codes_same": round(float((codes == whole_codes[:, rows.start // f:]).float().mean()), 3)})
    print(table(rows_out, list(rows_out[0])))
    write_results(a.name, {"model": str(a.model) if a.model else "restore-cpu layout, random weights",
                           "frames_from": str(a.identity) + " (test split crops)" if a.identity else str(a.video),
                           "frames": a.frames, "rows": rows_out})


if __name__ == "__main__":
    main()
