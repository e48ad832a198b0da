"""Does bf16 change anything a user would see? bf16 autocast (with channels_last, what `precision: auto` picks on
CPUs with bf16 units) against fp32, on the real Macron clip prepared at 256:

1. training: a SOVQAE (`--preset`, default the `demo` layout) trained for --steps steps from the same seed in
   fp32 and in bf16; the two loss curves side by side (they should match: bf16 must not change what is learnt);
2. codes: the share of latent positions where the SOVQAE (the fp32-trained one, or --sovqae) picks the same code
   in bf16 as in fp32, on the identity's test frames (>= 99% asked);
3. faces: the official-size Wav2Lip (random weights: no official file here) on real crops and the clip's own
   mel, and the SOVQAE restoring those faces: PSNR of the bf16 faces against the fp32 faces (>= 40 dB asked).

On a CPU without bf16 units bf16 is emulated: the figures are the same, only slower.

    python bench/bf16_vs_fp32.py --steps 30
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table, write_results  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def train_curves(identity: Path, work: Path, steps: int, preset: str) -> dict:
    from ladtalk.train.sovqae import train_sovqae

    curves, models, seconds = {}, {}, {}
    for precision in ("fp32", "bf16"):
        t0 = time.perf_counter()
        models[precision] = train_sovqae(
            identity, work / f"train_{precision}", preset=preset, device="cpu",
            overrides=[f"train.precision={precision}", f"train.max_steps={steps}", "train.log_every=2",
                       f"train.val_every={steps}", f"train.checkpoint_every={steps}"])
        seconds[precision] = time.perf_counter() - t0
        recs = [json.loads(x) for x in (work / f"train_{precision}" / "logs" / "metrics.jsonl").read_text()
                .splitlines()]
        curves[precision] = {r["step"]: r for r in recs if r.get("split", "train") == "train" and "l2" in r}
    steps_logged = sorted(set(curves["fp32"]) & set(curves["bf16"]))
    rows = [{"step": s, **{f"{k}_{p}": round(curves[p][s][k], 5) for k in ("loss", "l2", "d_C")
                           for p in ("fp32", "bf16")}} for s in steps_logged]
    rel = [abs(curves["bf16"][s]["loss"] - curves["fp32"][s]["loss"]) / abs(curves["fp32"][s]["loss"])
           for s in steps_logged]
    return {"rows": rows, "max_relative_loss_difference": round(max(rel), 4),
            "mean_relative_loss_difference": round(float(np.mean(rel)), 4),
            "train_seconds": {k: round(v, 1) for k, v in seconds.items()}, "models": models}


def codes_agreement(model_path: Path, crops: np.ndarray) -> dict:
    from ladtalk.pipeline.restore import load_sovqae
    from ladtalk.pipeline.stages import to_images
    from ladtalk.runtime import inference_settings

    codes = {}
    for precision in ("fp32", "bf16"):
        rt = inference_settings("cpu", precision)
        model = rt.prepare(load_sovqae(model_path, "cpu"))
        size = model.config.resolution
        x = torch.nn.functional.interpolate(to_images(crops, torch.device("cpu")), size=(size, size),
                                            mode="bicubic", align_corners=False).clamp(0, 1)
        with torch.inference_mode(), rt.autocast():
            codes[precision] = model.codes_of(rt.images(x * 2 - 1))
    same = (codes["fp32"] == codes["bf16"]).float().mean().item()
    return {"positions": int(codes["fp32"].numel()), "same_code_share": round(same, 5)}


def faces_psnr(identity: Path, sovqae_path: Path, count: int) -> dict:
    from ladtalk.data.identity import Identity
    from ladtalk.features.mel import mel_windows, melspectrogram
    from ladtalk.metrics.image import psnr
    from ladtalk.models.wav2lip import Wav2Lip, Wav2LipConfig
    from ladtalk.pipeline.restore import load_sovqae, restore
    from ladtalk.pipeline.stages import lipsync, to_frames, to_images
    from ladtalk.runtime import inference_settings

    ident = Identity.open(identity)
    idx = np.linspace(0, ident.frame_count - 1, count).round().astype(int)
    idx = idx[ident.has_face[idx]]
    windows = mel_windows(melspectrogram(ident.audio()), ident.fps)
    mels = torch.from_numpy(windows[np.minimum(idx, len(windows) - 1)])
    crops = to_images(ident.crops[idx], torch.device("cpu"))
    torch.manual_seed(0)
    wav2lip = Wav2Lip(Wav2LipConfig()).eval()
    mouths, restored = {}, {}
    for precision in ("fp32", "bf16"):
        rt = inference_settings("cpu", precision)
        mouths[precision] = to_frames(lipsync(rt.prepare(wav2lip), crops, mels, rt.amp_dtype))
        wav2lip = wav2lip.to(memory_format=torch.contiguous_format)
        sovqae = rt.prepare(load_sovqae(sovqae_path, "cpu"))
        restored[precision] = restore(sovqae, mouths["fp32"], batch_size=8, precision=precision)
    w = psnr(mouths["bf16"], mouths["fp32"])
    r = psnr(restored["bf16"], restored["fp32"])
    return {"frames": len(idx), "wav2lip_psnr_db": {"min": round(float(w.min()), 2), "mean": round(float(w.mean()), 2)},
            "wav2lip_output_std": round(float(mouths["fp32"].std()), 2),  # not a flat (saturated) picture
            "sovqae_psnr_db": {"min": round(float(r.min()), 2), "mean": round(float(r.mean()), 2)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30, help="training steps per precision")
    ap.add_argument("--preset", default="demo", help="SOVQAE preset to train (demo: 128 px; tiny: 64 px)")
    ap.add_argument("--frames", type=int, default=16, help="real frames for the faces check")
    ap.add_argument("--video", type=Path, default=SHARED / "video" / "macron_50s_dfrf.mp4")
    ap.add_argument("--identity-dir", type=Path, default=None, help="a prepared identity of --video to reuse")
    ap.add_argument("--sovqae", type=Path, default=None, help="a trained SOVQAE for the codes/faces checks")
    ap.add_argument("--name", default="bf16_vs_fp32_cpu")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from generate import cpu_record

    from ladtalk.data.identity import Identity

    record = cpu_record()
    work = Path(tempfile.mkdtemp(prefix="ladtalk-bench-bf16-"))
    identity = args.identity_dir
    if identity is None:
        from ladtalk.data.prepare import prepare

        identity = prepare(args.video, work / "identity", size=256, device="cpu")
    training = train_curves(identity, work, args.steps, args.preset)
    model = args.sovqae or training.pop("models")["fp32"]
    training.pop("models", None)
    ident = Identity.open(identity)
    test = ident.test_indices
    test = test[np.linspace(0, len(test) - 1, 64).round().astype(int)]
    codes = codes_agreement(model, ident.crops[test])
    faces = faces_psnr(identity, model, args.frames)
    print(table(training["rows"], list(training["rows"][0])))
    print({"codes": codes, "faces": faces})
    record["loadavg_at_end"] = os.getloadavg()
    write_results(args.name, {**record, "identity_video": str(args.video), "sovqae": str(model) if args.sovqae
                              else f"{args.preset} preset trained {args.steps} steps in fp32 here",
                              "training": training, "codes": codes, "faces": faces,
                              "targets": {"faces_psnr_db_min": 40, "same_code_share_min": 0.99}})


if __name__ == "__main__":
    main()
