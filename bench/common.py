"""Shared bits of the benchmark scripts: environment facts and writing the results JSON."""

from __future__ import annotations

import argparse
import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def environment(precision: str = "auto") -> dict:
    """ladtalk.metrics.provenance's record (commit, precision, threads, CPU and its kernel flags, GPU, versions) and
    the platform, core count and date."""
    import torch

    from ladtalk.metrics.provenance import provenance

    env = provenance("cuda" if torch.cuda.is_available() else "cpu", precision)
    env.update(platform=platform.platform(), cpu_count=os.cpu_count(),
               date_utc=datetime.now(UTC).isoformat(timespec="seconds"))
    return env


def write_results(name: str, payload: dict, out_dir: Path | None = None) -> Path:
    out_dir = Path(out_dir or os.environ.get("LADTALK_BENCH_OUT", RESULTS))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps({"environment": environment(), **payload}, indent=2))
    print(f"wrote {path}")
    return path


def training_log(run: Path) -> list[dict]:
    """The records of a training run's logs/metrics.jsonl, in order."""
    return [json.loads(line) for line in (run / "logs" / "metrics.jsonl").read_text().splitlines()]


def write_study(name: str, payload: dict, title: str, columns: list[str] | None = None) -> Path:
    """A variant study's NAME.json (`payload`, its "rows" included) and NAME.md (`title`, then the rows as a table of
    `columns`, all by default) side by side, and the Markdown printed; returns the Markdown's path."""
    rows = payload["rows"]
    path = write_results(name, payload)
    md = f"{title}\n\n{table(rows, columns or list(rows[0]))}"
    path.with_suffix(".md").write_text(md + "\n")
    print(md)
    return path.with_suffix(".md")


def table(rows: list[dict], columns: list[str]) -> str:
    """A Markdown table of `rows` restricted to `columns`."""
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def variant_study_parser(doc: str, steps: int, wav2lip_required: bool) -> argparse.ArgumentParser:
    """The arguments of a study that trains SOVQAE variants on a prepared identity (the regulariser ablation)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--identity", type=Path, required=True)
    ap.add_argument("--wav2lip", type=Path, required=wav2lip_required, default=None)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--preset", default="restore-cpu")
    ap.add_argument("--steps", type=int, default=steps)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--collect", action="store_true",
                    help="only tabulate the variants whose reports exist (a run stopped at a time limit)")
    return ap

