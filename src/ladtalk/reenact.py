"""`ladtalk reenact`: the paper's self-reenactment protocol (Tab. 1 set-up) on an identity's test split.

The test frames, in order, are driven by their own audio. For every paste (`hard`, the paper's rectangle;
`feather`, the whole face box feathered; `mouth`, the lower face only) three rows are scored against the true
frames (metrics.scoring): Wav2Lip alone, the cascade (Wav2Lip + SOVQAE) and the identity's own crops pasted the same
way (the ceiling of any restorer at the crop size). A cascade's gain is read against Wav2Lip alone under the same
paste (`gains`, paired intervals); what the paste itself changes is read between the Wav2Lip-alone rows
(`paste_effect`, against the hard paste), never credited to the restorer. LSE-C/D are added when SyncNet weights
are given. Writes report.json, report.md, strip.png and the videos into REPORT_DIR.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np

from ladtalk.errors import InputError
from ladtalk.evaluate.report import write_strip
from ladtalk.face.crop import PASTE_MODES, paste_faces
from ladtalk.io.atomic import atomic_path, check_writable_dir
from ladtalk.io.audio import SAMPLE_RATE, write_wav
from ladtalk.io.guard import refuse_output_over_inputs
from ladtalk.io.video import VideoWriter, iter_frames
from ladtalk.metrics.confidence import BLOCK_FRAMES, RESAMPLES, SEED
from ladtalk.metrics.headroom import lipsync_face_size
from ladtalk.metrics.lipsync_truth import mouth_boxes_from_faces, opening_series
from ladtalk.metrics.lpips import load_perceptual_metric
from ladtalk.metrics.provenance import provenance, provenance_line
from ladtalk.metrics.scoring import Regions, compare, json_ready, opening_figures, score_rows, summarize
from ladtalk.metrics.sync import load_syncnet_s
from ladtalk.metrics.sync_faces import lse_on_face_track
from ladtalk.pipeline.frames import SourceFrames
from ladtalk.pipeline.generate import generate, open_identity
from ladtalk.pipeline.temporal import DEFAULT_LIMIT, temporal_median
from ladtalk.runtime import resolve_device

# the mouth as a share of the square face crop (x1, y1, x2, y2): below the nose, between the cheeks
MOUTH_IN_CROP = (0.25, 0.6, 0.75, 0.92)
STAGES = {"wav2lip": "Wav2Lip only", "cascade": "Wav2Lip + SOVQAE", "wav2lip_temporal": "Wav2Lip + temporal filter",
          "cascade_temporal": "Wav2Lip + SOVQAE + temporal filter", "crop_ceiling": "true crops pasted (ceiling)"}
PASTE_ORDER = ("hard", "feather", "mouth")  # the paper's first
MIN_TEST_SECONDS = 4.0  # shorter test splits give intervals too wide to tell rows apart
CONFIDENCE = {"method": "moving-block bootstrap, percentile 95% interval", "block_frames": BLOCK_FRAMES,
              "resamples": RESAMPLES, "seed": SEED}


def row_key(stage: str, paste: str) -> str:
    """A report row's key: the stage and the paste, e.g. 'cascade_mouth'."""
    return f"{stage}_{paste}"


def row_label(key: str) -> str:
    stage, _, paste = key.rpartition("_")
    return f"{STAGES[stage]}, {paste} paste"


def score_report(preds: dict[str, np.ndarray], gt: np.ndarray, boxes: np.ndarray, frame_size: tuple[int, int],
                 opening, perceptual, wav2lip_path, pastes) -> dict:
    """The fields reenact's report and demo's summary share: the regions (the whole-pixel face box covering every
    finite box of (T,4), clipped to the frame (width, height), and the mouth at MOUTH_IN_CROP of it), the base's face
    size and every row's scores, gains and paste effect (module docstring), the scores with the opening figures of
    `opening(frames)` -> (measured, true) series and the mouth sharpness over the paste's ceiling."""
    ok = np.isfinite(boxes).all(1)
    if not ok.any():
        raise InputError("no frame of the test split has a face; nothing to score")
    x1, y1 = np.floor(boxes[ok, :2].min(0)).clip(0).astype(int)
    x2, y2 = np.ceil(boxes[ok, 2:].max(0)).astype(int)
    face = (int(x1), int(y1), int(min(x2, frame_size[0])), int(min(y2, frame_size[1])))
    regions = Regions(face, tuple(round(v) for v in mouth_boxes_from_faces([face], MOUTH_IN_CROP)[0]))
    series = score_rows(preds, gt, regions, perceptual)
    scores, gains, effect = {}, {}, {}
    for key, s in series.items():
        scores[key] = summarize(s)
        figures = opening_figures(*opening(preds[key][:len(gt)]))
        scores[key]["ci95"].update(figures.pop("ci95"))
        scores[key].update(figures)
        stage, _, paste = key.rpartition("_")
        if stage not in ("wav2lip", "crop_ceiling") and row_key("wav2lip", paste) in series:
            gains[key] = compare(s, series[row_key("wav2lip", paste)])
        if stage == "wav2lip" and paste != "hard" and row_key("wav2lip", "hard") in series:
            effect[key] = compare(s, series[row_key("wav2lip", "hard")])
    for key, row in scores.items():  # resampling into the crop and back already costs fine detail; this is what is left
        ceiling = scores.get(row_key("crop_ceiling", key.rpartition("_")[2]))
        if ceiling is not None:
            ceiling_sharpness = max(ceiling["mouth_sharpness_ratio"], 1e-9)
            row["mouth_sharpness_of_ceiling"] = row["mouth_sharpness_ratio"] / ceiling_sharpness
    return {"face_box": list(regions.face), "mouth_box": list(regions.mouth),
            "lipsync_face_size": lipsync_face_size(wav2lip_path),
            "crop_side_px": float(np.nanmedian(boxes[:, 2] - boxes[:, 0])), "pastes": list(pastes),
            "rows": {k: row_label(k) for k in scores}, "scores": scores, "gains": gains, "paste_effect": effect,
            "confidence": CONFIDENCE, "perceptual": None if perceptual is None else perceptual.note}


def reenact(identity: str | os.PathLike, wav2lip_path: str | os.PathLike, out_dir: str | os.PathLike,
            sovqae_path: str | os.PathLike | None = None, paste: str | None = None,
            syncnet_path: str | os.PathLike | None = None, device: str = "auto", max_frames: int | None = None,
            precision: str = "auto", lpips: bool = True, temporal_filter: bool = False,
            temporal_limit: int = DEFAULT_LIMIT, backend: str = "auto") -> dict:
    """Self-reenactment on the identity's test split into `out_dir`; returns the report (also report.json).

    Every paste (hard, feather, mouth) gets its own rows unless `paste` names the only one to score.
    temporal_filter: also score the last stage (the cascade, or Wav2Lip only without a SOVQAE) with generate's
    temporal filter (at most `temporal_limit` levels of 8 bits a pixel), as one more row per paste.
    backend: what runs the networks on a CPU, as generate's ('auto', 'torch', 'onnxruntime', 'openvino').
    """
    refuse_output_over_inputs(out_dir, [("identity", identity), ("Wav2Lip weights", wav2lip_path),
                                        ("SOVQAE model", sovqae_path), ("SyncNet weights", syncnet_path)],
                              folder=True)
    temporal_median(temporal_filter, "hard", temporal_limit)  # a bad setting fails before any work
    if paste is not None and paste not in PASTE_MODES:
        raise InputError(f"paste mode {paste!r} is unknown; choose one of {', '.join(PASTE_MODES)}")
    pastes = PASTE_ORDER if paste is None else (paste,)
    out = check_writable_dir(out_dir)
    ident_dir = Path(identity)
    if not ident_dir.is_dir():
        raise InputError(f"identity {ident_dir} is not an identity folder; run `ladtalk prepare` on the video first")
    ident = open_identity(ident_dir)
    test = ident.test_indices
    if len(test) < 2:
        raise InputError(f"identity {ident_dir} has {len(test)} test frames with a face; self-reenactment needs a "
                         "test split (prepare a longer video)")
    start, stop = int(test.min()), int(test.max()) + 1
    if max_frames is not None:
        stop = min(stop, start + int(max_frames))
    frames_idx = np.arange(start, stop)
    fps = ident.fps
    notes = []
    if (stop - start) / fps < MIN_TEST_SECONDS:
        notes.append(f"the test split is {(stop - start) / fps:.1f} s long, under {MIN_TEST_SECONDS:.0f} s: its "
                     "intervals are wide and a small difference between rows is not a finding")
        warnings.warn(notes[-1], stacklevel=2)
    audio = ident.audio()
    a0, a1 = round(start / fps * SAMPLE_RATE), round(stop / fps * SAMPLE_RATE)
    if a1 > len(audio):
        raise InputError(f"the identity's audio ends at {len(audio) / SAMPLE_RATE:.2f} s, before its test split "
                         f"({stop / fps:.2f} s); re-run `ladtalk prepare`")
    driving = out / "test_audio.wav"
    write_wav(driving, audio[a0:a1], SAMPLE_RATE)

    source = SourceFrames(ident.source_path, fps=ident.meta.get("settings", {}).get("fps"))
    gt = np.stack(list(source.iter_schedule(frames_idx)))  # the identity video's frames, as generate reads them
    with VideoWriter(out / "ground_truth.mp4", fps, audio=audio[a0:a1], sample_rate=SAMPLE_RATE) as writer:
        writer.write(gt)
    boxes = ident.crop_boxes[frames_idx]
    videos = {}
    rows = [("wav2lip", "wav2lip_only", None, False)]  # (stage, file name, SOVQAE, temporal filter)
    if sovqae_path is not None:
        rows.append(("cascade", "cascade", sovqae_path, False))
    if temporal_filter:  # the last stage again, filtered
        rows.append((f"{rows[-1][0]}_temporal", f"{rows[-1][0]}_temporal", sovqae_path, True))
    for p in pastes:
        for stage, name, model, steady in rows:
            videos[row_key(stage, p)] = out / f"{name}_{p}.mp4"
            generate(ident_dir, driving, videos[row_key(stage, p)], wav2lip_path, sovqae_path=model,
                     no_sovqae=model is None, paste=p, precision=precision, device=device, temporal_filter=steady,
                     temporal_limit=temporal_limit, backend=backend, frame_indices=frames_idx)
        videos[row_key("crop_ceiling", p)] = out / f"true_crops_pasted_{p}.mp4"
        with VideoWriter(videos[row_key("crop_ceiling", p)], fps, audio=audio[a0:a1],
                         sample_rate=SAMPLE_RATE) as writer:
            writer.write(paste_faces(gt, ident.crops[frames_idx], boxes, mode=p))

    dev = resolve_device(device)
    perceptual = load_perceptual_metric(dev) if lpips else None
    preds = {k: np.stack(list(iter_frames(v))) for k, v in videos.items()}
    n = min(len(gt), *(len(p) for p in preds.values()))
    shared = score_report({k: p[:n] for k, p in preds.items()}, gt[:n], boxes, ident.frame_size,
                          lambda frames: opening_series(frames, gt[:n], boxes[:n], MOUTH_IN_CROP), perceptual,
                          wav2lip_path, pastes)
    truth = {}
    if syncnet_path is not None:
        net = load_syncnet_s(syncnet_path, dev)
        for k, p in preds.items():
            lse = lse_on_face_track(net, p[:n], fps, audio[a0:a1], boxes[:n], dev)
            shared["scores"][k]["ci95"].update(lse.pop("ci95"))
            shared["scores"][k].update(lse)
        truth.update(lse_on_face_track(net, gt[:n], fps, audio[a0:a1], boxes[:n], dev))
        notes.append("LSE-D / LSE-C on syncnet_python's face crops of the identity's face track (its square crop "
                     "boxes stand in for the detector's boxes), at 25 fps")
    report = {"identity": str(ident_dir), "wav2lip": str(wav2lip_path),
              "sovqae": None if sovqae_path is None else str(sovqae_path), "test_frames": [start, stop],
              "frames_scored": n, "seconds": n / fps, "fps": fps, **shared, "truth": truth, "notes": notes,
              "provenance": provenance(device, precision),
              "files": {k: str(v) for k, v in {**videos, "ground_truth": out / "ground_truth.mp4"}.items()}}
    report = json_ready(report)
    rows = {row_label(k): p[:n] for k, p in preds.items() if not k.startswith("crop_ceiling")}
    write_strip(out / "strip.png", {"truth": gt[:n], **rows}, report["face_box"], height=192, square=True)
    md = markdown(report)
    for name, text in (("report.json", json.dumps(report, indent=2)), ("report.md", md)):
        with atomic_path(out / name) as tmp:
            tmp.write_text(text)
    print(md)
    return report


HEADLINE = ("frame_psnr_db", "face_psnr_db", "mouth_psnr_db", "face_ssim", "face_st_lpips", "face_lpips",
            "mouth_st_lpips", "mouth_lpips", "mouth_sharpness_ratio", "mouth_energy_ratio_octave_1",
            "mouth_energy_ratio_octave_2", "mouth_energy_ratio_octave_3", "face_warp_error_ratio",
            "face_own_flow_warp_error_ratio", "face_tof", "face_tlp", "lipsync_r", "lipsync_r_best",
            "lipsync_best_lag_frames", "lse_c", "lse_d")


def with_interval(row: dict, key: str) -> str:
    """'31.2 [30.9, 31.5]': a figure and its 95% interval (or '-' where the row lacks it)."""
    if key not in row:
        return "-"
    v = row[key]
    text = v if isinstance(v, str) else f"{v:.4g}"
    ci = row.get("ci95", {}).get(key)
    return f"{text} [{ci[0]:.4g}, {ci[1]:.4g}]" if ci and not isinstance(ci[0], str) else text


def figure_table(rows: dict[str, dict], labels: dict[str, str], keys=HEADLINE) -> list[str]:
    """A Markdown table: one line per figure present in a row, one column per row, values with their intervals."""
    keys = [k for k in keys if any(k in r for r in rows.values())]
    lines = ["| figure | " + " | ".join(labels[k] for k in rows) + " |", "|---|" + "---|" * len(rows)]
    return lines + [f"| {key} | " + " | ".join(with_interval(r, key) for r in rows.values()) + " |" for key in keys]


def markdown(report: dict) -> str:
    scores = report["scores"]
    lines = [f"# Self-reenactment: {report['identity']}", "",
             f"Test frames {report['test_frames'][0]}-{report['test_frames'][1] - 1} ({report['seconds']:.1f} s) "
             f"driven by their own audio; lip-sync faces of {report['lipsync_face_size']} px. Every figure: "
             "value [block-bootstrap 95% interval].", ""]
    for paste in report["pastes"]:
        rows = {k: v for k, v in scores.items() if k.endswith(f"_{paste}")}
        lines += [f"## {paste} paste", "", *figure_table(rows, {k: STAGES[k.rpartition("_")[0]] for k in rows}), ""]
    for part, title in (("gains", "Gains over Wav2Lip alone, same paste (paired intervals)"),
                        ("paste_effect", "What the paste alone changes: Wav2Lip alone against its hard paste")):
        if report[part]:
            keys = [k for k in next(iter(report[part].values())) if k != "ci95"]
            lines += [f"## {title}", "", *figure_table(report[part], {k: row_label(k) for k in report[part]}, keys), ""]
    if truth := report["truth"]:
        lines += ["Ground truth: " + ", ".join(f"{k} {with_interval(truth, k)}" for k in truth if k != "ci95"), ""]
    if report.get("perceptual"):
        lines.append(f"Perceptual distance: {report['perceptual']}.")
    lines += [f"Note: {n}." for n in report["notes"]]
    lines += ["", provenance_line(report["provenance"])]
    return "\n".join(lines) + "\n"
