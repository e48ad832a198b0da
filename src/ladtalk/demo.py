"""`ladtalk demo`: the whole method end to end on the built-in synthetic identity, on a CPU in minutes.

synth (a talking face with known mouth openness) -> prepare -> train -> generate from speech it never heard ->
score against the ground-truth render of that speech, every row and paste as `reenact` reports them. Every training
stops at a fixed step count, so two runs of the same commit give the same numbers on any machine.
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
from ladtalk.errors import InputError, LadtalkError
from ladtalk.evaluate.report import write_strip
from ladtalk.face.crop import crop_faces, paste_faces
from ladtalk.io.atomic import atomic_path, check_writable_dir
from ladtalk.io.audio import SAMPLE_RATE, write_wav
from ladtalk.io.video import VideoWriter, iter_frames
from ladtalk.metrics.lipsync_truth import mouth_openness as measured_openness
from ladtalk.metrics.lpips import load_perceptual_metric
from ladtalk.metrics.provenance import provenance, provenance_line
from ladtalk.metrics.scoring import json_ready
from ladtalk.pipeline.frames import pingpong_indices
from ladtalk.pipeline.generate import generate
from ladtalk.pretrained import RESTORER_CPU_OVERRIDES, RESTORER_OVERRIDES, builtin_base
from ladtalk.reenact import PASTE_ORDER, figure_table, row_key, row_label, score_report
from ladtalk.runtime import resolve_device
from ladtalk.train.sovqae import train_sovqae
from ladtalk.train.syncnet import train_syncnet
from ladtalk.train.wav2lip import train_wav2lip

FPS = 25.0
DEMO_SOVQAE_STEPS = 800  # 300 -> 600 -> 800 steps: +2.26 -> +2.74 -> +2.95 dB (docs/results.md)
BASES = ("builtin", "train")


def default_overrides() -> dict[str, list[str]]:
    """The demo's settings on top of the presets, by model: fixed step counts sized to keep the demo within ~10
    minutes on 2 CPU cores (the patch-GAN in the last fifth of the steps), and the restorer's settings behind a
    shipped base (RESTORER_OVERRIDES, RESTORER_CPU_OVERRIDES), here for a base trained on the person too."""
    return {"sovqae": [f"train.max_steps={DEMO_SOVQAE_STEPS}", f"train.disc_start={DEMO_SOVQAE_STEPS * 4 // 5}",
                       "train.channels_last=true",  # 11% faster steps on the AMX Xeon (fp32, 2 threads)
                       # below the preset's 0.8 the patch-GAN draws fewer crackles that are not the person's
                       # (warping error 1.26x -> 1.01x Wav2Lip alone's, docs/results.md)
                       "train.disc_weight=0.7", *RESTORER_OVERRIDES, *RESTORER_CPU_OVERRIDES]}


def demo(out_dir: str | os.PathLike = "demo_out", device: str = "auto", seed: int = 0, train_seconds: float = 32.0,
         test_seconds: float = 8.0, overrides: dict[str, list[str]] | None = None, lpips: bool = True,
         base: str = "builtin") -> dict:
    """Run the demo into `out_dir`; returns (and writes to summary.json) the scores of every row (`lpips=False`
    skips the perceptual distance, the slowest score on a CPU). `base`: 'builtin' (the shipped lip-sync base that
    never saw this person, as in the paper) or 'train' (a small base trained on this person's own video)."""
    if base not in BASES:
        raise InputError(f"base must be one of {', '.join(BASES)}, got {base!r}")
    builtin = builtin_base() if base == "builtin" else None  # refused before any work when it is not shipped
    out = check_writable_dir(out_dir)
    overrides = overrides or default_overrides()
    t_start = time.perf_counter()

    def step(n: int, what: str) -> None:
        print(f"\n[{n}/7] {what}  ({time.perf_counter() - t_start:.0f} s so far)", flush=True)

    step(1, f"render the synthetic identity ({train_seconds:.0f} s of a talking face)")
    clip = synthesize(out / "synthetic", seconds=train_seconds, fps=FPS, size=256, seed=seed)
    step(2, "prepare the identity folder (face detection, tracking, crops, split)")
    ident_dir = prepare(clip.video_path, out / "identity", size=256, device=device)
    if builtin is not None:
        step(3, "the lip-sync base: the built-in one, trained on other (synthetic) speakers, never on this person")
        wav2lip = builtin["wav2lip"]
        step(4, "(no lip-sync training on this person)")
    else:
        step(3, "train the lip-sync expert (small SyncNet) on this person")
        syncnet = train_syncnet([ident_dir], out / "runs" / "syncnet", preset="syncnet-tiny",
                                overrides=overrides.get("syncnet", ()), device=device)
        step(4, "train the Wav2Lip generator (small) on this person")
        wav2lip = train_wav2lip([ident_dir], out / "runs" / "wav2lip", syncnet_path=syncnet, preset="wav2lip-tiny",
                                overrides=overrides.get("wav2lip", ()), device=device)
    step(5, "train the identity's SOVQAE (small), also on the Wav2Lip generator's own faces")
    sovqae = train_sovqae([ident_dir], out / "runs" / "sovqae", preset="restore-cpu",
                          overrides=overrides.get("sovqae", ()), device=device, wav2lip_path=wav2lip)

    step(6, f"generate from {test_seconds:.0f} s of new speech, with and without the SOVQAE, under every paste")
    audio, envelope = synth_speech(test_seconds, SAMPLE_RATE, seed=seed + 1000)
    speech = out / "new_speech.wav"
    write_wav(speech, audio, SAMPLE_RATE)
    videos = {}
    # under every paste: Wav2Lip alone, the cascade, and the cascade with generate's temporal filter
    rows = (("wav2lip", "wav2lip_only", None, False), ("cascade", "ladtalk", sovqae, False),
            ("cascade_temporal", "ladtalk_temporal", sovqae, True))
    for paste in PASTE_ORDER:
        for stage, name, model, steady in rows:
            videos[row_key(stage, paste)] = out / f"{name}_{paste}.mp4"
            generate(ident_dir, speech, videos[row_key(stage, paste)], wav2lip_path=wav2lip, sovqae_path=model,
                     no_sovqae=model is None, paste=paste, device=device, temporal_filter=steady)

    step(7, "score against the ground-truth render of the new speech")
    generated = {k: np.stack(list(iter_frames(v))) for k, v in videos.items()}
    n = min(len(v) for v in generated.values())
    ident = Identity.open(ident_dir)
    truth_frames, boxes, openness = render_truth(clip.truth_path, ident, envelope, n, seed, out / "ground_truth.mp4",
                                                 audio)
    crop_boxes = ident.crop_boxes[pingpong_indices(n, ident.frame_count)]
    truth_crops = crop_faces(truth_frames, crop_boxes, ident.crop_size)
    for paste in PASTE_ORDER:  # the ceiling of any restorer at this crop size: the truth's own crops pasted back
        videos[row_key("crop_ceiling", paste)] = out / f"true_crops_pasted_{paste}.mp4"
        with VideoWriter(videos[row_key("crop_ceiling", paste)], FPS, audio=audio, sample_rate=SAMPLE_RATE) as writer:
            writer.write(paste_faces(truth_frames, truth_crops, crop_boxes, mode=paste))
        generated[row_key("crop_ceiling", paste)] = np.stack(list(iter_frames(videos[row_key("crop_ceiling", paste)])))
    perceptual = _perceptual(device) if lpips else None
    shared = score_report({k: v[:n] for k, v in generated.items()}, truth_frames, crop_boxes, ident.frame_size,
                          lambda frames: (measured_openness(frames, boxes), openness), perceptual, wav2lip, PASTE_ORDER)
    for paste in PASTE_ORDER:
        rows = {row_label(row_key(k, paste)): generated[row_key(k, paste)][:n] for k in ("wav2lip", "cascade")}
        write_strip(out / f"strip_{paste}.png", {"truth": truth_frames, **rows}, shared["face_box"], height=192,
                    square=True)
    summary = {"seconds": round(time.perf_counter() - t_start, 1), "device": device, "seed": seed,
               "lipsync_base": "built-in synthetic-48 (never saw this person)" if builtin is not None
               else "trained on this person",
               "frames": n, **shared, "provenance": provenance(device),
               "files": {k: str(v) for k, v in {**videos, "ground_truth": out / "ground_truth.mp4",
                                                 **{f"strip_{p}": out / f"strip_{p}.png" for p in PASTE_ORDER}
                                                 }.items()}}
    summary = json_ready(summary)
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
    rendered = iter_render_frames(openness, truth["size"], seed, FPS, blink=truth["blink"][schedule], motion=motion)
    frames, boxes = (np.stack(parts) for parts in zip(*rendered))
    with VideoWriter(video_path, FPS, audio=audio, sample_rate=SAMPLE_RATE) as writer:
        writer.write(frames)
    return frames, boxes, openness


def _perceptual(device: str):
    """ST-LPIPS/LPIPS-VGG for the face scores, or None (with a note) when no perceptual network is installed."""
    try:
        return load_perceptual_metric(resolve_device(device))
    except LadtalkError as e:
        print(f"note: no perceptual distance in the demo scores ({e})")
        return None


def print_summary(summary: dict) -> None:
    print(f"\nladtalk demo: {summary['frames']} frames of new speech, {summary['seconds']:.0f} s in all\n")
    keys = ("lipsync_r", "face_psnr_db", "mouth_psnr_db", "face_ssim", "face_st_lpips", "face_lpips",
            "mouth_sharpness_ratio", "mouth_energy_ratio_octave_2", "face_own_flow_warp_error_ratio")
    for paste in summary["pastes"]:
        rows = {k: v for k, v in summary["scores"].items() if k.endswith(f"_{paste}")}
        print(f"{paste} paste\n" + "\n".join(figure_table(rows, summary["rows"], keys)) + "\n")
    print("lipsync_r: correlation of the generated mouth opening with the true one (1 = perfect); PSNR/SSIM/"
          "perceptual distance: the region against the ground-truth render; sharpness and octave 2: the mouth's fine "
          "detail over the truth's (1 = as sharp); own-flow warping error: flicker of the face by itself over the "
          "truth's. The true crops pasted back are the best a restorer at this crop size can do. [95% intervals]")
    print(provenance_line(summary["provenance"]))
