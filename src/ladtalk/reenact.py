"""`ladtalk reenact`: the paper's self-reenactment protocol (Tab. 1 set-up) on an identity's test split.

The test frames are the reference frames, in order, driven by their own audio; Wav2Lip alone and the cascade
(Wav2Lip + SOVQAE) are generated with the same paste and scored against the ground-truth frames, so a difference
between the two rows is the restorer's own. Scores: full-frame PSNR (what the paper reports), face- and
mouth-region PSNR, face SSIM and LPIPS (ST-LPIPS when the VGG trunk is absent, named so), warping error (and its
ratio to the ground truth's own), mouth sharpness (high-frequency energy against the ground truth's) and LSE-C/D
when SyncNet weights are given. A last row pastes the identity's own crops of the test frames (the ground truth at
the crop size) with the same paste: the ceiling of any restorer working at that crop size (on Macron at 256 px its
mouth has 0.85 of the frame's high-frequency energy: the round trip into the crop and back keeps 0.62, and the video
encoder's own artifacts add the rest, for every row alike); `mouth_sharpness_of_ceiling` gives each row's mouth
sharpness against it.
Writes report.json, report.md, strip.png and the videos into REPORT_DIR.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np

from ladtalk.data.identity import Identity
from ladtalk.errors import InputError
from ladtalk.face.crop import paste_faces
from ladtalk.io.atomic import atomic_path, check_writable_dir
from ladtalk.io.audio import SAMPLE_RATE, write_wav
from ladtalk.io.guard import refuse_output_over_inputs
from ladtalk.io.video import VideoWriter, iter_frames
from ladtalk.metrics.image import psnr, ssim
from ladtalk.pipeline.frames import SourceFrames
from ladtalk.pipeline.generate import generate, open_identity
from ladtalk.pipeline.temporal import temporal_filter as make_temporal_filter
from ladtalk.runtime import resolve_device

# the mouth as a share of the square face crop (x1, y1, x2, y2): below the nose, between the cheeks
MOUTH_IN_CROP = (0.25, 0.6, 0.75, 0.92)
ROWS = {"wav2lip": "Wav2Lip only", "cascade": "Wav2Lip + SOVQAE", "wav2lip_temporal": "Wav2Lip + temporal filter",
        "cascade_temporal": "Wav2Lip + SOVQAE + temporal filter", "crop_ceiling": "true crops pasted (ceiling)"}


def union_box(boxes: np.ndarray, frame_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The whole-pixel box x1,y1,x2,y2 covering every finite box of (T,4), clipped to the frame (width, height)."""
    ok = np.isfinite(boxes).all(1)
    if not ok.any():
        raise InputError("no frame of the test split has a face; nothing to score")
    x1, y1 = np.floor(boxes[ok, :2].min(0)).clip(0).astype(int)
    x2, y2 = np.ceil(boxes[ok, 2:].max(0)).astype(int)
    return int(x1), int(y1), int(min(x2, frame_size[0])), int(min(y2, frame_size[1]))


def sub_box(box: tuple[int, int, int, int], fractions: tuple[float, float, float, float]) -> tuple[int, ...]:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    f = fractions
    return (round(x1 + f[0] * w), round(y1 + f[1] * h), round(x1 + f[2] * w), round(y1 + f[3] * h))


def high_frequency_energy(frames: np.ndarray) -> float:
    """Mean squared Laplacian of the luma of uint8 (T,H,W,3) RGB frames: how much fine detail (sharpness) they hold."""
    total = 0.0
    for f in frames:
        luma = cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY).astype(np.float32)
        total += float(np.mean(cv2.Laplacian(luma, cv2.CV_32F) ** 2))
    return total / max(len(frames), 1)


def score_video(pred: np.ndarray, gt: np.ndarray, face: tuple[int, ...], mouth: tuple[int, ...],
                perceptual=None, lpips_frames: int = 48) -> dict[str, float]:
    """Scores of uint8 (T,H,W,3) frames against the ground truth in the face and mouth boxes x1,y1,x2,y2."""
    from ladtalk.metrics.temporal import temporal_scores

    def region(frames, box):
        x1, y1, x2, y2 = box
        return np.ascontiguousarray(frames[:, y1:y2, x1:x2])

    pf, gf, pm, gm = region(pred, face), region(gt, face), region(pred, mouth), region(gt, mouth)
    out = {"psnr_full_db": float(np.mean(psnr(pred, gt))),
           "psnr_face_db": float(np.mean(psnr(pf, gf))),
           "psnr_mouth_db": float(np.mean(psnr(pm, gm))),
           "ssim_face": float(np.mean(ssim(pf, gf))),
           "mouth_sharpness_ratio": high_frequency_energy(pm) / max(high_frequency_energy(gm), 1e-9)}
    if perceptual is not None:
        from ladtalk.metrics.lpips import perceptual_distance

        pick = np.unique(np.linspace(0, len(pf) - 1, min(lpips_frames, len(pf))).round().astype(int))
        out[f"{perceptual.name}_face"] = float(np.mean(perceptual_distance(perceptual.net, pf[pick], gf[pick],
                                                                          show_progress=False)))
    if len(pf) > 1:
        t = temporal_scores(pf, gf, show_progress=False)
        out["warp_error_face"] = float(np.mean(t.warp_error))
        out["warp_error_face_gt"] = float(np.mean(t.warp_error_gt))
        out["warp_error_ratio_to_gt"] = out["warp_error_face"] / max(out["warp_error_face_gt"], 1e-12)
    return out


def reenact(identity: str | os.PathLike, wav2lip_path: str | os.PathLike, out_dir: str | os.PathLike,
            sovqae_path: str | os.PathLike | None = None, paste: str = "mouth",
            syncnet_path: str | os.PathLike | None = None, device: str = "auto", max_frames: int | None = None,
            precision: str = "auto", lpips: bool = True, temporal_filter: bool = False, temporal_strength: float = 1.0,
            temporal_sigma: float = 0.06) -> dict:
    """Self-reenactment on the identity's test split into `out_dir`; returns the report (also report.json).

    temporal_filter: also score the last row (the cascade, or Wav2Lip only without a SOVQAE) with generate's
    temporal filter, as one more row.
    `temporal_strength`, `temporal_sigma`: the filter's settings (pipeline/temporal.py `temporal_filter`).
    """
    refuse_output_over_inputs(out_dir, [("identity", identity), ("Wav2Lip weights", wav2lip_path),
                                        ("SOVQAE model", sovqae_path), ("SyncNet weights", syncnet_path)],
                              folder=True)
    make_temporal_filter(temporal_filter, temporal_strength, temporal_sigma)  # bad settings fail before any work
    out = check_writable_dir(out_dir)
    ident_dir = Path(identity)
    if not ident_dir.is_dir():
        raise InputError(f"identity {ident_dir} is not an identity folder; run `ladtalk prepare` on the video first")
    ident: Identity = open_identity(ident_dir)
    test = ident.test_indices
    if len(test) < 2:
        raise InputError(f"identity {ident_dir} has {len(test)} test frames with a face; self-reenactment needs a "
                         "test split (prepare a longer video)")
    start, stop = int(test.min()), int(test.max()) + 1
    if max_frames is not None:
        stop = min(stop, start + int(max_frames))
    frames_idx = np.arange(start, stop)
    fps = ident.fps
    audio = ident.audio()
    a0, a1 = round(start / fps * SAMPLE_RATE), round(stop / fps * SAMPLE_RATE)
    if a1 > len(audio):
        raise InputError(f"the identity's audio ends at {len(audio) / SAMPLE_RATE:.2f} s, before its test split "
                         f"({stop / fps:.2f} s); re-run `ladtalk prepare`")
    driving = out / "test_audio.wav"
    write_wav(driving, audio[a0:a1], SAMPLE_RATE)

    gt = _source_frames(ident, frames_idx)
    with VideoWriter(out / "ground_truth.mp4", fps, audio=audio[a0:a1], sample_rate=SAMPLE_RATE) as writer:
        writer.write(gt)
    videos = {"wav2lip": out / "wav2lip_only.mp4"}
    generate(ident_dir, driving, videos["wav2lip"], wav2lip_path=wav2lip_path, no_sovqae=True, paste=paste,
             precision=precision, device=device, frame_indices=frames_idx)
    if sovqae_path is not None:
        videos["cascade"] = out / "cascade.mp4"
        generate(ident_dir, driving, videos["cascade"], wav2lip_path=wav2lip_path, sovqae_path=sovqae_path,
                 paste=paste, precision=precision, device=device, frame_indices=frames_idx)
    if temporal_filter:
        key = "cascade_temporal" if sovqae_path is not None else "wav2lip_temporal"
        videos[key] = out / f"{key}.mp4"
        generate(ident_dir, driving, videos[key], wav2lip_path=wav2lip_path, sovqae_path=sovqae_path,
                 no_sovqae=sovqae_path is None, paste=paste, precision=precision, device=device,
                 frame_indices=frames_idx, temporal_filter=True, temporal_strength=temporal_strength,
                 temporal_sigma=temporal_sigma)
    videos["crop_ceiling"] = out / "true_crops_pasted.mp4"
    with VideoWriter(videos["crop_ceiling"], fps, audio=audio[a0:a1], sample_rate=SAMPLE_RATE) as writer:
        writer.write(paste_faces(gt, ident.crops[frames_idx], ident.crop_boxes[frames_idx], mode=paste))

    face = union_box(ident.crop_boxes[frames_idx], ident.frame_size)
    mouth = sub_box(face, MOUTH_IN_CROP)
    perceptual = None
    if lpips:
        from ladtalk.metrics.lpips import load_perceptual_metric

        perceptual = load_perceptual_metric(resolve_device(device))
    preds = {k: np.stack(list(iter_frames(v)))[:len(gt)] for k, v in videos.items()}
    scores = {k: score_video(p, gt[:len(p)], face, mouth, perceptual) for k, p in preds.items()}
    ceiling_sharpness = scores["crop_ceiling"]["mouth_sharpness_ratio"]
    for row in scores.values():  # resampling into the crop and back already costs fine detail; this is what is left
        row["mouth_sharpness_of_ceiling"] = row["mouth_sharpness_ratio"] / max(ceiling_sharpness, 1e-9)
    if syncnet_path is not None:
        from ladtalk.metrics.sync import load_syncnet_s, lse_scores

        net = load_syncnet_s(syncnet_path, resolve_device(device))
        for k, p in preds.items():
            s = lse_scores(net, p, audio[a0:a1], device=resolve_device(device))
            scores[k].update(LSE_C_whole_frame=float(s.lse_c), LSE_D_whole_frame=float(s.lse_d))
    report = {"identity": str(ident_dir), "wav2lip": str(wav2lip_path),
              "sovqae": None if sovqae_path is None else str(sovqae_path), "paste": paste,
              "test_frames": [start, stop], "fps": fps, "face_box": face, "mouth_box": mouth,
              "perceptual": None if perceptual is None else perceptual.note, "scores": scores,
              "files": {k: str(v) for k, v in {**videos, "ground_truth": out / "ground_truth.mp4"}.items()}}
    if "cascade" in scores:
        w, c = scores["wav2lip"], scores["cascade"]
        report["cascade_minus_wav2lip_db"] = {k: c[k] - w[k] for k in w if k.startswith("psnr")}
    write_strip(out / "strip.png", gt, {k: p for k, p in preds.items() if k != "crop_ceiling"}, face)
    with atomic_path(out / "report.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(markdown(report))
    print(markdown(report))
    return report


def _source_frames(ident: Identity, indices: np.ndarray) -> np.ndarray:
    """The identity video's frames at `indices` (as generate reads them), uint8 (T,H,W,3) RGB."""
    source = SourceFrames(ident.source_path, fps=ident.meta.get("settings", {}).get("fps"))
    return np.stack(list(source.iter_schedule(indices)))


def write_strip(path: Path, gt: np.ndarray, preds: dict[str, np.ndarray], face: tuple[int, ...],
                 n: int = 6, height: int = 192) -> None:
    """Rows: ground truth | Wav2Lip only | cascade (| with the temporal filter), n evenly spaced frames of the face
    region."""
    x1, y1, x2, y2 = face
    pick = np.linspace(0, len(gt) - 1, n).round().astype(int)
    rows = []
    for frames in [gt, *preds.values()]:
        tiles = [cv2.resize(np.ascontiguousarray(frames[i, y1:y2, x1:x2]), (height, height),
                            interpolation=cv2.INTER_AREA) for i in pick]
        rows.append(np.concatenate(tiles, 1))
    img = np.concatenate(rows, 0)
    with atomic_path(path) as tmp:
        cv2.imwrite(str(tmp), img[..., ::-1])


def markdown(report: dict) -> str:
    scores = report["scores"]
    keys = list(next(iter(scores.values())).keys())
    lines = [f"# Self-reenactment: {report['identity']}", "",
             f"Test frames {report['test_frames'][0]}-{report['test_frames'][1] - 1} driven by their own audio; "
             f"paste `{report['paste']}` for every row. Strip rows: ground truth | "
             + " | ".join(ROWS[k] for k in scores if k != "crop_ceiling") + ".", "",
             "| metric | " + " | ".join(ROWS[k] for k in scores) + " |", "|---|" + "---|" * len(scores)]
    for key in keys:
        lines.append(f"| {key} | " + " | ".join(f"{scores[k].get(key, float('nan')):.4g}" for k in scores) + " |")
    if report.get("perceptual"):
        lines += ["", f"Perceptual distance: {report['perceptual']}."]
    return "\n".join(lines) + "\n"
