"""The Markdown summary and the PNG strips of bench/gpu_suite.py (the JSON holds every figure; this is the
readable view, with the issue's targets checked where the figures exist)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from common import table

TILE = 128  # pixels per strip tile: small files, still enough to see the mouth and the texture


# ------------------------------------------------------------------------------------------------ PNG strips

def _labelled_rows(rows: list[tuple[str, list[np.ndarray]]], tile: int = TILE) -> np.ndarray:
    """Rows of uint8 RGB images, each scaled to `tile` high, with a label column on the left."""
    import cv2

    label_w = 150
    lines = []
    width = 0
    for label, images in rows:
        tiles = [cv2.resize(im, (max(1, round(im.shape[1] * tile / im.shape[0])), tile),
                            interpolation=cv2.INTER_AREA) for im in images]
        row = np.concatenate(tiles, axis=1) if tiles else np.zeros((tile, tile, 3), np.uint8)
        pad = np.full((tile, label_w, 3), 255, np.uint8)
        for k, word in enumerate(label.split("\n")[:4]):
            cv2.putText(pad, word[:20], (4, 20 + 22 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        lines.append(np.concatenate([pad, row], axis=1))
        width = max(width, lines[-1].shape[1])
    lines = [np.pad(x, ((0, 0), (0, width - x.shape[1]), (0, 0)), constant_values=255) for x in lines]
    return np.concatenate(lines, axis=0)


def _write_png(path: Path, rgb: np.ndarray) -> dict:
    import cv2

    tmp = path.with_name(f".{path.stem}.tmp.png")
    if not cv2.imwrite(str(tmp), np.ascontiguousarray(rgb[..., ::-1])):
        raise OSError(f"could not write {tmp}")
    tmp.replace(path)
    return {"file": path.name, "bytes": path.stat().st_size, "size": [int(rgb.shape[1]), int(rgb.shape[0])]}


def video_strip(video: Path, png: Path, count: int = 4, title: str = "") -> dict:
    """`count` evenly spaced frames of a video in one row."""
    from ladtalk.io.video import probe_video, read_frames

    n = probe_video(video).frame_count
    frames = read_frames(video, np.linspace(0, max(n - 1, 0), count).round().astype(int))
    return {**_write_png(png, _labelled_rows([(title, list(frames))], tile=2 * TILE)),
            "title": title}


def restoration_strip(sovqae_dir: Path, identity_dir: Path, png: Path, device: str, count: int = 5) -> dict:
    """Held-out test crops: clean, blurred and Wav2Lip-like (96 px down-up), each beside the SOVQAE's output."""
    import torch

    from ladtalk.data import degrade
    from ladtalk.data.identity import Identity
    from ladtalk.pipeline.restore import load_sovqae, restore
    from ladtalk.pixels import to_frames, to_images

    ident = Identity.open(identity_dir)
    model = load_sovqae(sovqae_dir, device)
    size = model.config.resolution
    test = ident.test_indices[ident.has_face[ident.test_indices]]
    idx = test[np.linspace(0, len(test) - 1, min(count, len(test))).round().astype(int)]
    clean = torch.nn.functional.interpolate(to_images(ident.crops[idx], torch.device(device)), size=(size, size),
                                            mode="area")
    rows = []
    for label, images in (("clean", clean), ("blur\nsigma 3", degrade.gaussian_blur(clean, 3 * size / 256)),
                          ("down-up\n96 px", degrade.down_up(clean, round(96 * size / 256)))):
        rows.append((label, list(to_frames(images))))
        rows.append(("SOVQAE of\n" + label.split("\n")[0], list(to_frames(restore(model, images, len(images))))))
    return {**_write_png(png, _labelled_rows(rows)), "test_frames": [int(i) for i in idx]}


# --------------------------------------------------------------------------------------------------- Markdown

def _fig(results: dict, part: str) -> dict:
    return results["parts"].get(part, {}).get("figures", {})


def _target(ok: bool | None, text: str) -> str:
    mark = {True: "met", False: "NOT met", None: "not measured"}[ok]
    return f"- {text}: **{mark}**"


def _errors(results: dict) -> list[str]:
    """Measurements that failed inside parts that otherwise ran (recorded as `<key>_error`)."""
    errs = [f"- {part}.{key}: {value}" for part, p in results["parts"].items()
            for key, value in p.get("figures", {}).items() if key.endswith("_error")]
    errs += [f"- train {r['preset']} b{r['batch']} compile={r['compile']}: {r['error']}"
             for r in _fig(results, "train").get("rows", []) if r.get("error")]
    return ["Failed measurements:", "", *errs, ""] if errs else []


def _targets(results: dict) -> list[str]:
    train = [r for r in _fig(results, "train").get("rows", []) if r.get("preset") == "paper-256"]
    best_train = max((r.get("images_per_s") or 0 for r in train), default=None)
    micro = [r for r in _fig(results, "infer").get("sovqae_microbench", []) if r.get("precision") == "bf16"]
    best_micro = max((r["fps"] for r in micro), default=None)
    inf = _fig(results, "infer")
    rows = [r for r in inf.get("rows", []) if "error" not in r]
    long_s = max((r["audio_s"] for r in rows), default=None)
    fast_long = [r for r in rows if r["audio_s"] == long_s and r["mode"] == "ladtalk"]
    e2e = fast_long[0]["end_to_end_fps"] if fast_long else None
    summary = inf.get("summary", {})
    speedup = summary.get(f"speedup_vs_naive_{long_s:g}s") if long_s else None
    mem = summary.get("memory", {}).get("long_over_short")
    return ["## Targets (issue 10, one H100/H200)", "",
            _target(None if best_train is None else best_train >= 250,
                    f"paper-256 training >= 250 images/s (best: {best_train})"),
            _target(None if best_micro is None else best_micro >= 600,
                    f"SOVQAE stage >= 600 FPS at 256x256 bf16 (best: {best_micro})"),
            _target(None if e2e is None else e2e >= 200, f"cascade >= 200 FPS end to end at {long_s} s ({e2e})"),
            _target(None if speedup is None else speedup >= 5, f">= 5x the naive baseline ({speedup}x)"),
            _target(None if mem is None else mem <= 1.1, f"memory flat in audio length (long/short {mem})"), ""]


def _parts_table(results: dict) -> list[str]:
    rows = [{"part": n, "status": p.get("status"), "seconds": p.get("seconds"), "budget_s": p.get("budget_s"),
             "note": ((p.get("error") or p.get("reason") or "").strip().splitlines() or [""])[-1][:120]}
            for n, p in results["parts"].items()]
    return [table(rows, ["part", "status", "seconds", "budget_s", "note"]), ""]


def _environment(results: dict) -> list[str]:
    f = _fig(results, "environment")
    smi = (f.get("nvidia_smi", {}).get("gpus") or [{}])[0]
    dev, torch, mm = f.get("device", {}), f.get("torch", {}), f.get("matmul", {})
    return ["## Environment", "",
            f"- device: {dev.get('name', 'none')} (capability {dev.get('capability')}, "
            f"{dev.get('multiprocessors')} SMs, {dev.get('memory_gib')} GiB); driver {smi.get('driver_version')}",
            f"- torch {torch.get('version')}, CUDA {torch.get('cuda')}, cuDNN {torch.get('cudnn')}; "
            f"Python {f.get('python')}; commit {f.get('git_commit')}",
            f"- matrix product: {mm.get('tflops')} TFLOP/s measured ({mm.get('dtype')}, n={mm.get('n')}); "
            f"datasheet dense bf16 {f.get('datasheet_bf16_dense_tflops')} TFLOP/s",
            f"- packages: {f.get('packages')}", ""]


def _train(results: dict) -> list[str]:
    f = _fig(results, "train")
    cols = ["preset", "batch", "precision", "compile", "perceptual", "warmup_s", "timed_steps", "images_per_s",
            "step_ms", "achieved_tflops", "peak_allocated_gib", "paper_50_epochs_min", "error"]
    out = ["## Training throughput (SOVQAE train_step, GAN on, channels_last)", "",
           table(f.get("rows", []), cols) if f.get("rows") else "(no case measured)", ""]
    if f.get("not_run"):
        out += ["Not run: " + "; ".join(f"{r['preset']} b{r['batch']} compile={r['compile']}: {r['reason']}"
                                        for r in f["not_run"]), ""]
    return out


def _infer(results: dict) -> list[str]:
    f = _fig(results, "infer")
    stage_cols = ["audio_s", "mode", "setup", "frames", "end_to_end_fps", "decode_fps", "mel_fps", "wav2lip_fps",
                  "sovqae_fps", "paste_fps", "encode_fps", "peak_gpu_mib", "peak_rss_mib", "error"]
    micro_cols = ["batch", "precision", "channels_last", "fps", "gflop_per_image", "achieved_tflops",
                  "pct_of_measured_matmul", "pct_of_datasheet"]
    env = _fig(results, "environment")
    ceilings = {"pct_of_measured_matmul": env.get("matmul", {}).get("tflops"),
                "pct_of_datasheet": env.get("datasheet_bf16_dense_tflops")}
    micro = [dict(r) for r in f.get("sovqae_microbench", [])]
    for r in micro:
        for key, peak in ceilings.items():
            if peak and r.get("achieved_tflops") is not None:
                r[key] = round(100 * r["achieved_tflops"] / peak, 1)
    return ["## Inference (cascade on the identity clip, random-weight networks of the presets' sizes)", "",
            f"Networks: {f.get('networks')}", "",
            table(f.get("rows", []), stage_cols) if f.get("rows") else "(no generate run measured)", "",
            f"Summary: {f.get('summary')}; not run: {f.get('not_run', [])}", "",
            "SOVQAE alone (`restore()` on device-resident images, CUDA events):", "",
            table(micro, micro_cols) if micro else "(not measured)",
            ""]


def _restore(results: dict) -> list[str]:
    f = _fig(results, "restore")
    out = ["## Restoration recipe on the identity", ""]
    if f.get("perceptual_note"):
        out += [f"- {f['perceptual_note']}"]
    for stage in ("syncnet", "wav2lip", "sovqae"):
        if stage in f:
            s = f[stage]
            extra = {k: v for k, v in s.get("extra", {}).items() if k not in ("train", "identities")}
            out += [f"- {stage}: preset {s['preset']}, {s['seconds']} s, overrides {s['overrides']}; {extra}"]
    if "analyze" in f:
        th = f["analyze"]["theory"]
        out += ["", f"analyze ({f['analyze']['test_frames']} test frames): d_C {th['codes'].get('d_C')}, "
                f"gamma {th['gamma'].get('gamma')}, L_E bound {th['lipschitz'].get('L_E_bound')}, "
                f"L_E empirical {th.get('L_E_empirical')}, NRoUB bound {th.get('nroub_bound')}, "
                f"empirical {th.get('nroub_empirical')}", ""]
        keys = ["kind", "strength", "psnr_degraded_region", "psnr_restored_region", "psnr_degraded",
                "psnr_restored", "codes_unchanged"]
        out += [table(f["analyze"]["experiments"], keys), ""]
    if "reenact" in f:
        rep = f["reenact"]["report"]
        rows = [{"row": k, **{m: round(v, 4) for m, v in scores.items() if isinstance(v, float)}}
                for k, scores in rep["scores"].items()]
        gains = {k: round(v, 3) for g in rep.get("gains", {}).values() for k, v in g.items() if k.endswith("_gain_db")}
        out += [f"Self-reenactment on test frames {rep['test_frames']} (pastes {rep.get('pastes')}, "
                f"{f['reenact']['seconds']} s; perceptual: {rep.get('perceptual')}):", "",
                table(rows, list(rows[0])), "", f"cascade minus Wav2Lip (dB): {gains}", ""]
    return out


def markdown(results: dict) -> str:
    s = results["suite"]
    head = [f"# GPU suite{' (dry run on the CPU)' if s.get('dry_run') else ''}", "",
            f"Started {s.get('started_utc')}, updated {s.get('updated_utc')}, {s.get('elapsed_s')} s of "
            f"{s.get('total_seconds_limit')} s; wheel install {s.get('install_seconds')} s. Presets: {s['presets']}.",
            ""]
    if s.get("aborted"):
        head += [f"**Aborted: {s['aborted']}**", ""]
    sections = (_parts_table, _errors, _targets, _environment, _train, _infer, _restore)
    return "\n".join(head + [line for section in sections for line in section(results)]) + "\n"
