"""The restorer measured by the paper's self-reenactment protocol on a real identity (issue 14), end to end:

prepare -> lip-sync base (syncnet-identity + wav2lip-identity presets, the stand-in for official weights)
-> SOVQAE (a preset, restore-cpu by default) -> `analyze` -> `reenact` with the mouth and the whole-face paste.
Each stage is skipped when its output exists in WORK, so an interrupted run resumes and stages can be run by
hand with the same CLI commands. Results: bench/results/restoration_NAME.{json,md} and the frame strips.

    python bench/restoration.py --video ../shared/data/video/macron_50s_dfrf.mp4 --name macron --work runs/macron
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from common import RESULTS, write_results

import ladtalk


def run(video: Path, work: Path, name: str, preset: str, overrides: list[str], device: str,
        lipsync_inputs: bool = True, analyze_frames: int | None = None) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    ident, runs = work / "identity", work / "runs"
    seconds: dict[str, float] = {}

    def stage(key: str, done: Path, fn) -> None:
        if done.exists():
            print(f"[{key}] {done} exists, skipped")
            return
        t0 = time.perf_counter()
        fn()
        seconds[key] = round(time.perf_counter() - t0, 1)

    stage("prepare", ident, lambda: ladtalk.prepare(video, ident, size=256, device=device))
    stage("syncnet", runs / "syncnet" / "model", lambda: ladtalk.train_syncnet(
        [ident], runs / "syncnet", preset="syncnet-identity", device=device))
    stage("wav2lip", runs / "wav2lip" / "model", lambda: ladtalk.train_wav2lip(
        [ident], runs / "wav2lip", syncnet_path=runs / "syncnet" / "model", preset="wav2lip-identity", device=device))
    sovqae = runs / (f"sovqae-{preset}" + ("-lipsync" if lipsync_inputs else ""))
    stage("sovqae", sovqae / "model", lambda: ladtalk.train_sovqae(
        [ident], sovqae, preset=preset, overrides=overrides, device=device,
        wav2lip_path=runs / "wav2lip" / "model" if lipsync_inputs else None))
    reports = work / "reports" / sovqae.name
    for paste in ("mouth", "feather"):
        stage(f"reenact_{paste}", reports / f"reenact_{paste}" / "report.json", lambda p=paste: ladtalk.reenact(
            ident, runs / "wav2lip" / "model", reports / f"reenact_{p}", sovqae_path=sovqae, paste=p,
            device=device))
    stage("analyze", reports / "analyze" / "report.json", lambda: ladtalk.analyze(
        sovqae, ident, reports / "analyze", device=device, max_frames=analyze_frames))
    return collect(work, name, preset, seconds, sovqae)


def collect(work: Path, name: str, preset: str, seconds: dict[str, float], sovqae: Path) -> dict:
    """bench/results/restoration_NAME.{json,md} and strips from the reports under WORK."""
    reports = work / "reports" / sovqae.name
    model_meta = json.loads((sovqae / "model" / "config.json").read_text())
    out = {"name": name, "preset": preset, "stage_seconds": seconds, "sovqae_run": sovqae.name,
           "lipsync_inputs": model_meta["extra"]["validation"].get("lipsync_psnr_input") is not None,
           "sovqae_steps": model_meta["extra"]["step"], "sovqae_validation": model_meta["extra"]["validation"],
           "analyze": json.loads((reports / "analyze" / "report.json").read_text()),
           "reenact": {p: json.loads((reports / f"reenact_{p}" / "report.json").read_text())
                       for p in ("mouth", "feather")}}
    write_results(f"restoration_{name}", out)
    lines = [f"# Restoration on {name} ({preset}, {out['sovqae_steps']} steps)", ""]
    for paste, rep in out["reenact"].items():
        shutil.copyfile(reports / f"reenact_{paste}" / "strip.png", RESULTS / f"restoration_{name}_{paste}.png")
        s = rep["scores"]
        lines += [f"## Self-reenactment, {paste} paste (strip: restoration_{name}_{paste}.png)", "",
                  "| metric | Wav2Lip only | Wav2Lip + SOVQAE |", "|---|---|---|"]
        w2l, cas = s[f"wav2lip_{paste}"], s[f"cascade_{paste}"]
        lines += [f"| {k} | {w2l[k]:.4g} | {cas[k]:.4g} |" for k in w2l if isinstance(w2l[k], float)]
        lines.append("")
    (RESULTS / f"restoration_{name}.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", type=Path, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--preset", default="restore-cpu")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--analyze-frames", type=int, default=None, help="test frames for analyze (default: all)")
    ap.add_argument("--no-lipsync-inputs", action="store_true",
                    help="train the SOVQAE on synthetic degradations only (not also on the Wav2Lip's own faces)")
    a = ap.parse_args()
    run(a.video, a.work, a.name, a.preset, a.overrides, a.device, lipsync_inputs=not a.no_lipsync_inputs,
        analyze_frames=a.analyze_frames)


if __name__ == "__main__":
    main()
