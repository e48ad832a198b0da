"""The restorer measured by the paper's self-reenactment protocol on a real identity (issue 14), end to end:

`ladtalk.train_person` (prepare -> syncnet-identity + wav2lip-identity, the stand-in for the official weights ->
restore-cpu with that generator's faces) -> `analyze` -> `reenact` with the mouth and the whole-face paste.
Each stage is skipped when its output exists in WORK, so an interrupted run resumes. Results:
bench/results/restoration_NAME.{json,md} and the frame strips.

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


def run(video: Path, work: Path, name: str, device: str, recipe: str = "cpu",
        analyze_frames: int | None = None) -> dict:
    ident, sovqae, wav2lip = work / "identity", work / "sovqae", work / "wav2lip" / "model"
    seconds: dict[str, float] = {}

    def stage(key: str, done: Path, fn) -> None:
        if done.exists():
            print(f"[{key}] {done} exists, skipped")
            return
        t0 = time.perf_counter()
        fn()
        seconds[key] = round(time.perf_counter() - t0, 1)

    stage("train_person", sovqae / "model", lambda: ladtalk.train_person(video, work, recipe=recipe, device=device))
    reports = work / "reports"
    for paste in ("mouth", "feather"):
        stage(f"reenact_{paste}", reports / f"reenact_{paste}" / "report.json", lambda p=paste: ladtalk.reenact(
            ident, wav2lip, reports / f"reenact_{p}", sovqae_path=sovqae, paste=p, device=device))
    stage("analyze", reports / "analyze" / "report.json", lambda: ladtalk.analyze(
        sovqae, ident, reports / "analyze", device=device, max_frames=analyze_frames))
    return collect(work, name, recipe, seconds, sovqae)


def collect(work: Path, name: str, recipe: str, seconds: dict[str, float], sovqae: Path) -> dict:
    """bench/results/restoration_NAME.{json,md} and strips from the reports under WORK."""
    reports = work / "reports"
    model_meta = json.loads((sovqae / "model" / "config.json").read_text())
    preset = model_meta["extra"]["preset"]
    out = {"name": name, "recipe": recipe, "preset": preset, "stage_seconds": seconds,
           "person_summary": json.loads((work / "summary.json").read_text()),
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
    ap.add_argument("--work", type=Path, required=True, help="the train person run folder, and the reports")
    ap.add_argument("--recipe", default="cpu", help="train person's recipe (cpu, gpu, tiny)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--analyze-frames", type=int, default=None, help="test frames for analyze (default: all)")
    a = ap.parse_args()
    run(a.video, a.work, a.name, a.device, a.recipe, analyze_frames=a.analyze_frames)


if __name__ == "__main__":
    main()
