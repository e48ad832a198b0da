"""Does bf16 change anything a user would see? bf16 autocast (with channels_last, what `precision: auto` picks on
CPUs with bf16 units) against fp32, on a real clip's prepared identity (Macron at 256), frames of its test split
driven by the clip's own audio:

1. Wav2Lip alone: PSNR of the bf16 faces against the fp32 faces, for each --wav2lip (the official-size generator
   with random weights when no official file is given, and/or a trained square-crop generator);
2. for each --sovqae (a trained model folder, or a preset name for random weights of its layout):
   - the SOVQAE alone: the same lip-synced faces (fp32 Wav2Lip) restored in bf16 and in fp32: the share of latent
     positions where it picks the same code (>= 99% asked) and the PSNR of its faces;
   - the cascade as `generate` runs it on square-crop generators (Wav2Lip -> float faces -> SOVQAE -> uint8), all
     bf16 against all fp32: same codes and PSNR of the restored faces, the whole picture a user sees around the
     mouth (>= 40 dB asked; the pasted frame would only add identical pixels);
   - a variant of the SOVQAE alone with its encoder kept in fp32 and only the decoder at the second precision;
3. optionally (--steps > 0) training: a SOVQAE (--preset) trained --steps steps from the same seed in fp32 and in
   bf16, the two loss curves side by side.

On a CPU without bf16 units bf16 is emulated (oneDNN converts to fp32 around each kernel): the figures are
those of bf16 rounding all the same, only many times slower, so the frame counts are kept small there.

    python bench/bf16_vs_fp32.py --identity-dir IDENT --wav2lip official:4 --wav2lip W2L_DIR \\
        --sovqae restore-cpu=SOVQAE_DIR:16 --sovqae paper-256=random:4
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table, training_log, write_results  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PRECISIONS = ("fp32", "bf16")


def train_curves(identity: Path, work: Path, steps: int, preset: str) -> dict:
    from ladtalk.train.sovqae import train_sovqae

    curves, seconds = {}, {}
    for precision in PRECISIONS:
        t0 = time.perf_counter()
        train_sovqae(identity, work / f"train_{precision}", preset=preset, device="cpu", allow_gpu_preset_on_cpu=True,
                     overrides=[f"train.precision={precision}", f"train.max_steps={steps}", "train.log_every=2",
                                f"train.val_every={steps}", f"train.checkpoint_every={steps}"])
        seconds[precision] = time.perf_counter() - t0
        curves[precision] = {r["step"]: r for r in training_log(work / f"train_{precision}")
                             if r.get("split", "train") == "train" and "l2" in r}
    steps_logged = sorted(set(curves["fp32"]) & set(curves["bf16"]))
    rows = [{"step": s, **{f"{k}_{p}": round(curves[p][s][k], 5) for k in ("loss", "l2", "d_C")
                           for p in PRECISIONS}} for s in steps_logged]
    rel = [abs(curves["bf16"][s]["loss"] - curves["fp32"][s]["loss"]) / abs(curves["fp32"][s]["loss"])
           for s in steps_logged]
    return {"preset": preset, "steps": steps, "rows": rows, "max_relative_loss_difference": round(max(rel), 4),
            "mean_relative_loss_difference": round(float(np.mean(rel)), 4),
            "train_seconds": {k: round(v, 1) for k, v in seconds.items()}}


def psnr_summary(a: np.ndarray, b: np.ndarray) -> dict:
    """min/mean PSNR (dB) of uint8 frames a against b; identical frames count as 99 dB (JSON has no infinity)."""
    from ladtalk.metrics.image import psnr

    p = np.minimum(psnr(a, b), 99.0)
    return {"min": round(float(p.min()), 2), "mean": round(float(p.mean()), 2)}


def wav2lip_faces(wav2lip: torch.nn.Module, crops: np.ndarray, mels: torch.Tensor, precision: str) -> torch.Tensor:
    """Wav2Lip on uint8 crops (B,S,S,3) and mels (B,1,80,16) at `precision`: float faces (B,3,s,s) in [0,1]."""
    from ladtalk.pipeline.stages import lipsync
    from ladtalk.pixels import to_images
    from ladtalk.runtime import inference_settings

    rt = inference_settings("cpu", precision)
    out = lipsync(rt.prepare(wav2lip), to_images(crops, torch.device("cpu")), mels, rt.amp_dtype)
    wav2lip.to(memory_format=torch.contiguous_format)  # prepare() changed it in place; the next run starts equal
    return out


def compare_wav2lip(wav2lip: torch.nn.Module, crops: np.ndarray, mels: torch.Tensor,
                    precisions: tuple[str, str] = PRECISIONS) -> dict:
    from ladtalk.pixels import to_frames

    faces = [to_frames(wav2lip_faces(wav2lip, crops, mels, p)) for p in precisions]
    return {"frames": len(crops), "psnr_db": psnr_summary(faces[1], faces[0]),
            "output_std": round(float(faces[0].std()), 2)}  # not a flat (saturated) picture


def restored(sovqae: torch.nn.Module, faces: torch.Tensor, precision: str,
             encoder_fp32: bool = False) -> tuple[np.ndarray, torch.Tensor]:
    """`generate`'s SOVQAE step at `precision`: float faces (B,3,s,s) in [0,1] -> (restored uint8 frames
    (B,S,S,3), the code indices (B,h,w) its quantizer chose on the way). `encoder_fp32`: a variant where only the
    decoder runs at `precision` (the encoder outside autocast), so the code indices cannot depend on it."""
    from ladtalk.pipeline.restore import restore
    from ladtalk.pixels import to_frames
    from ladtalk.runtime import inference_settings

    indices = []
    hook = sovqae.quantize.register_forward_hook(lambda _m, _i, out: indices.append(out[2]))
    if encoder_fp32:
        encode_latent = sovqae.encode_latent

        def encode_latent_fp32(images: torch.Tensor) -> torch.Tensor:
            with torch.autocast("cpu", enabled=False):
                return encode_latent(images.float())

        sovqae.encode_latent = encode_latent_fp32
    try:
        rt = inference_settings("cpu", precision)
        out = to_frames(restore(rt.prepare(sovqae), faces, batch_size=4, precision=precision))
    finally:
        hook.remove()
        sovqae.__dict__.pop("encode_latent", None)
        sovqae.to(memory_format=torch.contiguous_format)
    return out, torch.cat(indices)


def code_flip_distances(sovqae: torch.nn.Module, indices: torch.Tensor, other: torch.Tensor) -> dict:
    """How far apart the two codes are where the precisions chose different code indices, beside the codebook's
    typical spacing (median distance from a code the first run used to its nearest other code): a flip between near
    duplicates changes the picture far less than the spacing suggests."""
    e = sovqae.quantize.embedding.weight.detach().float()
    used = indices.unique()
    d = torch.cdist(e[used], e)
    d[torch.arange(len(used)), used] = float("inf")
    flipped = indices != other
    gaps = (e[indices[flipped]] - e[other[flipped]]).norm(dim=1)
    return {"flipped_code_distance_median": round(gaps.median().item(), 4) if len(gaps) else 0.0,
            "codebook_nearest_distance_median": round(d.min(1).values.median().item(), 4)}


def compare_sovqae(sovqae: torch.nn.Module, wav2lip: torch.nn.Module, crops: np.ndarray, mels: torch.Tensor,
                   precisions: tuple[str, str] = PRECISIONS) -> dict:
    """The SOVQAE alone (the same lip-synced faces, from Wav2Lip at the first precision, restored at each) and the
    whole cascade (Wav2Lip and SOVQAE both at each precision): codes and faces, the second against the first."""
    first, second = precisions
    faces = {p: wav2lip_faces(wav2lip, crops, mels, p) for p in set(precisions)}
    reference, reference_indices = restored(sovqae, faces[first], first)
    alone, alone_indices = restored(sovqae, faces[first], second)
    cascade, cascade_indices = restored(sovqae, faces[second], second)
    mixed, mixed_indices = restored(sovqae, faces[first], second, encoder_fp32=True)
    return {"frames": len(crops), "code_positions": int(reference_indices.numel()),
            "same_code_share": round((alone_indices == reference_indices).double().mean().item(), 5),
            **code_flip_distances(sovqae, reference_indices, alone_indices),
            "cascade_same_code_share": round((cascade_indices == reference_indices).double().mean().item(), 5),
            "sovqae_alone_psnr_db": psnr_summary(alone, reference),
            "cascade_psnr_db": psnr_summary(cascade, reference),
            "encoder_fp32_same_code_share": round((mixed_indices == reference_indices).double().mean().item(), 5),
            "encoder_fp32_psnr_db": psnr_summary(mixed, reference),
            "output_std": round(float(reference.std()), 2)}


def test_frames(identity, count: int) -> np.ndarray:
    """`count` frame indices spread evenly over the identity's test split (frames with a face)."""
    test = identity.test_indices
    return test[np.linspace(0, len(test) - 1, min(count, len(test))).round().astype(int)]


def own_mels(windows: np.ndarray, idx: np.ndarray) -> torch.Tensor:
    """The mel windows (B,1,80,16) of frames idx from a clip's `mel_windows` (clamped to the audio's end)."""
    return torch.from_numpy(windows[np.minimum(idx, len(windows) - 1)])


def load_network(kind: str, where: str) -> tuple[torch.nn.Module, str]:
    """A Wav2Lip or SOVQAE from a model folder, or random weights (seed 0) of an official/preset layout."""
    torch.manual_seed(0)
    if kind == "wav2lip":
        from ladtalk.lipsync_weights import load_wav2lip
        from ladtalk.models.wav2lip import Wav2Lip, Wav2LipConfig

        if where == "official":
            return Wav2Lip(Wav2LipConfig()).eval(), "official-size Wav2Lip, random weights (no official file here)"
        model = load_wav2lip(where, "cpu").eval()
        return model, f"trained {where} (width {model.config.width}, {model.config.img_size} px, square crops)"
    from ladtalk.models.sovqae import SOVQAE, SOVQAEConfig
    from ladtalk.pipeline.restore import load_sovqae
    from ladtalk.presets import load_preset

    if Path(where).exists():
        return load_sovqae(where, "cpu").eval(), f"trained {where}"
    return SOVQAE(SOVQAEConfig.from_dict(load_preset(where)["model"])).eval(), f"{where} layout, random weights"


def with_frames(spec: str, default_frames: int) -> tuple[str, int]:
    """'WHERE[:FRAMES]' -> (WHERE, FRAMES or the default)."""
    where, _, frames = spec.rpartition(":")
    return (where, int(frames)) if where and frames.isdigit() else (spec, default_frames)


def parse_sovqae(spec: str, default_frames: int) -> tuple[str, str, int]:
    """'NAME=WHERE[:FRAMES]' (WHERE: a model folder, or 'random' for random weights of preset NAME)."""
    name, _, rest = spec.partition("=")
    where, frames = with_frames(rest, default_frames)
    if not name or not where:
        raise SystemExit(f"--sovqae takes NAME=FOLDER[:FRAMES] or PRESET=random[:FRAMES], got {spec!r}")
    return name, name if where == "random" else where, frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--identity-dir", type=Path, default=None, help="a prepared identity of --video to reuse")
    ap.add_argument("--video", type=Path, default=SHARED / "video" / "macron_50s_dfrf.mp4")
    ap.add_argument("--wav2lip", action="append", default=None,
                    help="'official' (official size, random weights) or a model folder, [:FRAMES]; repeatable; "
                         "the last one drives the SOVQAE checks (default: official)")
    ap.add_argument("--sovqae", action="append", default=None, help="NAME=FOLDER[:FRAMES] or PRESET=random[:FRAMES]; "
                    "repeatable (default: demo=random)")
    ap.add_argument("--frames", type=int, default=16, help="test frames for Wav2Lip and for SOVQAEs without :FRAMES")
    ap.add_argument("--steps", type=int, default=0, help="training steps per precision (0: no training check)")
    ap.add_argument("--preset", default="demo", help="SOVQAE preset to train with --steps")
    ap.add_argument("--name", default="bf16_vs_fp32_cpu")
    args = ap.parse_args()
    from generate import cpu_record

    from ladtalk.data.identity import Identity
    from ladtalk.features.mel import mel_windows, melspectrogram

    record = cpu_record()
    print(record, flush=True)
    work = Path(tempfile.mkdtemp(prefix="ladtalk-bench-bf16-"))
    identity_dir = args.identity_dir
    if identity_dir is None:
        from ladtalk.data.prepare import prepare

        identity_dir = prepare(args.video, work / "identity", size=256, device="cpu")
    ident = Identity.open(identity_dir)
    windows = mel_windows(melspectrogram(ident.audio()), ident.fps)
    t_start = time.perf_counter()

    wav2lip_rows, sovqae_rows, training = [], [], None

    def save() -> None:
        """Write what is measured so far (emulated bf16 is slow: a run stopped early keeps its rows)."""
        record["loadavg_at_end"] = os.getloadavg()
        write_results(args.name, {
            **record, "identity": str(identity_dir), "identity_video": ident.meta.get("source", {}).get("path"),
            "frames": "evenly spread over the identity's test split, driven by the clip's own audio",
            "sovqae_wav2lip": wav2lip_rows[-1]["wav2lip"] if wav2lip_rows else None,
            "wav2lip_rows": wav2lip_rows, "sovqae_rows": sovqae_rows, "training": training,
            "seconds": round(time.perf_counter() - t_start, 1),
            "targets": {"cascade_psnr_db_min": 40, "same_code_share_min": 0.99},
            "notes": "psnr_db: bf16 output against fp32 output (uint8 faces), identical frames count as 99 dB; "
                     "sovqae_alone: the same fp32 Wav2Lip faces restored at each precision; cascade: Wav2Lip and "
                     "SOVQAE both at each precision, as generate runs them; same_code_share: over every latent "
                     "position of those frames; seconds: wall time on the shared machine"})

    wav2lip = None
    for spec in args.wav2lip or ["official"]:
        where, frames = with_frames(spec, args.frames)
        wav2lip, what = load_network("wav2lip", where)
        idx = test_frames(ident, frames)
        t0 = time.perf_counter()
        r = {"wav2lip": what, **compare_wav2lip(wav2lip, ident.crops[idx], own_mels(windows, idx)),
             "seconds": round(time.perf_counter() - t0, 1)}
        print(r, flush=True)
        wav2lip_rows.append(r)
        save()

    for spec in args.sovqae or ["demo=random"]:
        name, where, frames = parse_sovqae(spec, args.frames)
        sovqae, what = load_network("sovqae", where)
        idx = test_frames(ident, frames)
        t0 = time.perf_counter()
        r = {"sovqae": name, "model": what,
             **compare_sovqae(sovqae, wav2lip, ident.crops[idx], own_mels(windows, idx)),
             "seconds": round(time.perf_counter() - t0, 1)}
        print(r, flush=True)
        sovqae_rows.append(r)
        save()

    if args.steps > 0:
        training = train_curves(identity_dir, work, args.steps, args.preset)
        save()
    print(table(wav2lip_rows, ["wav2lip", "frames", "psnr_db", "output_std", "seconds"]))
    print(table(sovqae_rows, ["sovqae", "frames", "code_positions", "same_code_share", "cascade_same_code_share",
                              "sovqae_alone_psnr_db", "cascade_psnr_db", "seconds"]))

if __name__ == "__main__":
    main()
