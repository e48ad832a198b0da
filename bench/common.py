"""Shared bits of the benchmark scripts: environment facts and writing the results JSON."""

from __future__ import annotations

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


def table(rows: list[dict], columns: list[str]) -> str:
    """A Markdown table of `rows` restricted to `columns`."""
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)
