"""`ladtalk demo`: the whole method end to end on the built-in synthetic identity, on a CPU in minutes.

synth (a talking face with known mouth openness) -> prepare -> train a small SyncNet expert, Wav2Lip generator and
SOVQAE -> generate from speech it never heard -> compare with the ground-truth render of that speech: lip-sync
agreement with the known mouth openness, PSNR/SSIM/LPIPS of the face and the mouth, mouth sharpness and warping
error, for the plain Wav2Lip stage and the cascade with the same (mouth) paste, and what the paste alone changes.
Every training stops at a fixed step count, so two runs of the same commit give the same numbers on any machine.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from ladtalk.data.identity import Identity
from ladtalk.data.prepare import prepare
from ladtalk.data.synthetic import iter_render_frames, load_truth, synthesize
from ladtalk.data.synthetic_speech import mouth_openness, synth_speech
from ladtalk.face.crop import crop_faces, paste_faces
from ladtalk.io.atomic import atomic_path, check_writable_dir
from ladtalk.io.audio import SAMPLE_RATE, write_wav
from ladtalk.io.video import VideoWriter, iter_frames
from ladtalk.metrics.lipsync_truth import lipsync_truth_score
from ladtalk.pipeline.frames import pingpong_indices
from ladtalk.pipeline.generate import generate
from ladtalk.reenact import MOUTH_IN_CROP, score_video, sub_box, union_box, write_strip
from ladtalk.train.sovqae import train_sovqae
from ladtalk.train.syncnet import train_syncnet
from ladtalk.train.wav2lip import train_wav2lip

FPS = 25.0
DEMO_SOVQAE_STEPS = 300


def demo(out_dir: str | os.PathLike = "demo_out", device: str = "auto", seed: int = 0, train_seconds: float = 32.0,
         test_seconds: float = 8.0, overrides: dict[str, list[str]] | None = None, lpips: bool = True) -> dict:
    """Run the demo into `out_dir`; returns (and writes to summary.json) the scores of every row (`lpips=False`
    skips the perceptual distance, the slowest score on a CPU)."""
    out = check_writable_dir(out_dir)
    # fixed step counts (the presets' own) sized to keep the demo within ~10 minutes on 2 CPU cores
    # (restore-cpu's patch-GAN phase scaled down with them: the last fifth of the SOVQAE's steps)
    overrides = overrides or {"sovqae": [f"train.max_steps={DEMO_SOVQAE_STEPS}",
                                         f"train.disc_start={DEMO_SOVQAE_STEPS * 4 // 5}"]}
    t_start = time.perf_counter()

    def step(n: int, what: str) -> None:
        print(f"\n[{n}/7] {what}  ({time.perf_counter() - t_start:.0f} s so far)", flush=True)

    step(1, f"render the synthetic identity ({train_seconds:.0f} s of a talking face)")
    clip = synthesize(out / "synthetic", seconds=train_seconds, fps=FPS, size=256, seed=seed)
    step(2, "prepare the identity folder (face detection, tracking, crops, split)")
    ident_dir = prepare(clip.video_path, out / "identity", size=256, device=device)
    step(3, "train the lip-sync expert (small SyncNet)")
    syncnet = train_syncnet([ident_dir], out / "runs" / "syncnet", preset="syncnet-tiny",
                            overrides=overrides.get("syncnet", ()), device=device)
    step(4, "train the Wav2Lip generator (small)")
    wav2lip = train_wav2lip([ident_dir], out / "runs" / "wav2lip", syncnet_path=syncnet, preset="wav2lip-tiny",
                            overrides=overrides.get("wav2lip", ()), device=device)
    step(5, "train the identity's SOVQAE (small), also on the Wav2Lip generator's own faces")
    sovqae = train_sovqae([ident_dir], out / "runs" / "sovqae", preset="restore-cpu",
                          overrides=overrides.get("sovqae", ()), device=device, wav2lip_path=wav2lip)

    step(6, f"generate from {test_seconds:.0f} s of new speech, with and without the SOVQAE")
    audio, envelope = synth_speech(test_seconds, SAMPLE_RATE, seed=seed + 1000)
    speech = out / "new_speech.wav"
    write_wav(speech, audio, SAMPLE_RATE)
    videos = {"wav2lip": out / "wav2lip_only.mp4", "ladtalk": out / "ladtalk.mp4",
              "wav2lip_feather": out / "wav2lip_only_whole_face.mp4", "ladtalk_feather": out / "ladtalk_whole_face.mp4"}
    # the default mouth paste, then the whole face box (the paper's set-up, where the restorer also has the eyes and
    # skin to repair): what the paste alone changes, and what the SOVQAE changes under each paste
    for key, path in videos.items():
        generate(ident_dir, speech, path, wav2lip_path=wav2lip, sovqae_path=sovqae if "ladtalk" in key else None,
                 no_sovqae="ladtalk" not in key, paste="feather" if key.endswith("feather") else "mouth",
                 device=device)

    step(7, "score against the ground-truth render of the new speech")
    generated = {k: np.stack(list(iter_frames(v))) for k, v in videos.items()}
    n = min(len(v) for v in generated.values())
    ident = Identity.open(ident_dir)
    truth_frames, boxes, openness = render_truth(clip.truth_path, ident, envelope, n, seed, out / "ground_truth.mp4",
                                                 audio)
    crop_boxes = ident.crop_boxes[pingpong_indices(n, ident.frame_count)]
    face = union_box(crop_boxes, ident.frame_size)
    # the ceiling of any restorer at this crop size: the truth's own crops pasted with the mouth paste
    videos["crop_ceiling"] = out / "true_crops_pasted.mp4"
    with VideoWriter(videos["crop_ceiling"], FPS, audio=audio, sample_rate=SAMPLE_RATE) as writer:
        writer.write(paste_faces(truth_frames, crop_faces(truth_frames, crop_boxes, ident.crop_size), crop_boxes,
                                 mode="mouth"))
    generated["crop_ceiling"] = np.stack(list(iter_frames(videos["crop_ceiling"])))[:n]
    perceptual = _perceptual(device) if lpips else None
    # (the ceiling row skips the perceptual distance, a fifth of the scoring time: the demo keeps to 10 minutes)
    scores = {k: score(v[:n], truth_frames, boxes, openness, face, None if k == "crop_ceiling" else perceptual)
              for k, v in generated.items()}
    write_strip(out / "strip.png", truth_frames, {k: generated[k][:n] for k in ("wav2lip", "ladtalk")}, face)
    write_strip(out / "strip_whole_face.png", truth_frames,
                {k: generated[k][:n] for k in ("wav2lip_feather", "ladtalk_feather")}, face)
    summary = {"seconds": round(time.perf_counter() - t_start, 1), "device": device, "seed": seed,
               "frames": n, "face_box": [int(v) for v in face],
               "mouth_box": [int(v) for v in sub_box(face, MOUTH_IN_CROP)], "scores": scores,
               "paste": {"wav2lip": "mouth", "ladtalk": "mouth", "wav2lip_feather": "feather",
                         "ladtalk_feather": "feather", "crop_ceiling": "mouth"},
               "perceptual": None if perceptual is None else perceptual.note,
               "files": {k: str(v) for k, v in {**videos, "ground_truth": out / "ground_truth.mp4",
                                                 "strip": out / "strip.png",
                                                 "strip_whole_face": out / "strip_whole_face.png"}.items()}}
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    print_summary(summary)
    return summary


def render_truth(truth_path: Path, ident: Identity, envelope: np.ndarray, n: int, seed: int, video_path: Path,
                 audio: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ground truth of the generated video: the identity frames generate() used (same head pose and blinks,
    played forward and back) with the mouth of the new speech. Returns frames, face boxes and openness."""
    truth = load_truth(truth_path)
    schedule = pingpong_indices(n, ident.frame_count)
    pose = truth["head_pose"]
    motion = np.stack([pose["shift_x"], pose["shift_y"], pose["scale"], pose["roll_deg"]], 1)[schedule]
    openness = mouth_openness(envelope, SAMPLE_RATE, FPS, n)
    frames = np.empty((n, truth["size"], truth["size"], 3), np.uint8)
    boxes = np.empty((n, 4), np.float32)
    rendered = iter_render_frames(openness, truth["size"], seed, FPS, blink=truth["blink"][schedule], motion=motion)
    for k, (frame, box) in enumerate(rendered):
        frames[k], boxes[k] = frame, box
    with VideoWriter(video_path, FPS, audio=audio, sample_rate=SAMPLE_RATE) as writer:
        writer.write(frames)
    return frames, boxes, openness


def _perceptual(device: str):
    """ST-LPIPS/LPIPS-VGG for the face scores, or None (with a note) when no perceptual network is installed."""
    from ladtalk.errors import LadtalkError
    from ladtalk.metrics.lpips import load_perceptual_metric
    from ladtalk.runtime import resolve_device

    try:
        return load_perceptual_metric(resolve_device(device))
    except LadtalkError as e:
        print(f"note: no perceptual distance in the demo scores ({e})")
        return None


def score(frames: np.ndarray, truth: np.ndarray, face_boxes: np.ndarray, openness: np.ndarray,
          face: tuple[int, int, int, int], perceptual=None) -> dict:
    """Lip-sync agreement with the true openness, and the reenact scores of the face region against the truth."""
    sync = lipsync_truth_score(frames, face_boxes, openness)
    s = score_video(frames, truth, face, sub_box(face, MOUTH_IN_CROP), perceptual)
    return {"lipsync_r": round(float(sync["pearson"]), 3), "lipsync_best_lag": int(sync["best_lag"]),
            **{k: round(float(v), 4) for k, v in s.items()}}


NAMES = {"wav2lip": "Wav2Lip only", "ladtalk": "Wav2Lip + SOVQAE", "wav2lip_feather": "Wav2Lip only, whole face",
         "ladtalk_feather": "Wav2Lip + SOVQAE, whole face", "crop_ceiling": "true crops pasted (ceiling)"}


def print_summary(summary: dict) -> None:
    rows = summary["scores"]
    lp = next((k for k in rows["wav2lip"] if k.endswith("_face") and "LPIPS" in k), None)
    print(f"\nladtalk demo: {summary['frames']} frames of new speech, {summary['seconds']:.0f} s in all")
    print(f"{'stage':<32}{'lip-sync r':>11}{'face PSNR':>12}{'mouth PSNR':>12}{'face SSIM':>10}"
          f"{'LPIPS':>8}{'sharpness':>10}")
    for key, s in rows.items():
        lpips = f"{s[lp]:>8.3f}" if lp in s else f"{'-':>8}"
        print(f"{NAMES[key]:<32}{s['lipsync_r']:>11.3f}{s['psnr_face_db']:>9.2f} dB{s['psnr_mouth_db']:>9.2f} dB"
              f"{s['ssim_face']:>10.4f}{lpips}{s['mouth_sharpness_ratio']:>10.2f}")
    print("lip-sync r: correlation of the generated mouth opening with the true one (1 = perfect); PSNR/SSIM/"
          f"{lp or 'LPIPS'}: the face region against the ground-truth render; sharpness: the mouth's high-frequency "
          "energy over the truth's (1 = as sharp); rows 1-2 paste the lower face only, rows 3-4 the whole face box; "
          "the last row pastes the truth's own crops (mouth paste): the best a restorer at this crop size can do")
