"""Check what a device-tool call would carry to the GPU machine: the working tree (tracked and untracked files
that git does not ignore) plus the carried folders (.whl, .gpu) must stay under 64 MiB, and .whl must hold exactly
one wheel per line of bench/gpu_wheels.txt (two versions of one package stop the install there).

    python bench/gpu_carry_check.py .whl .gpu        # `make gpu-carry` runs this; exit 2 with the reason if not
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT_BYTES = 64 * 2**20


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def wanted_wheels() -> dict[str, str]:
    """{normalised name: version} from bench/gpu_wheels.txt."""
    out = {}
    for line in (ROOT / "bench" / "gpu_wheels.txt").read_text().splitlines():
        spec = line.split("#", 1)[0].strip()
        if spec:
            name, _, version = spec.partition("==")
            out[_norm(name)] = version.strip()
    return out


def wheel_problems(whl_dir: Path) -> list[str]:
    wanted = wanted_wheels()
    found: dict[str, list[str]] = {}
    for w in sorted(whl_dir.glob("*.whl")):
        name, version = w.name.split("-")[:2]
        found.setdefault(_norm(name), []).append(version)
    problems = [f"{n}: {len(v)} versions in {whl_dir} ({', '.join(v)}); keep only {wanted.get(n)}"
                for n, v in found.items() if len(v) > 1]
    problems += [f"{n}=={v} is missing from {whl_dir}; run `make gpu-wheels`" for n, v in wanted.items()
                 if n not in found]
    problems += [f"{n} {v} in {whl_dir} is not in bench/gpu_wheels.txt; delete it" for n, v in found.items()
                 if n not in wanted]
    problems += [f"{n} {v[0]} in {whl_dir}, bench/gpu_wheels.txt wants {wanted[n]}" for n, v in found.items()
                 if n in wanted and len(v) == 1 and v[0] != wanted[n]]
    return problems


def tree_bytes() -> int:
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    return sum((ROOT / f).stat().st_size for f in files if f and (ROOT / f).is_file())


def main(argv: list[str]) -> int:
    carried = [ROOT / a for a in argv]
    sizes = {"working tree": tree_bytes()}
    for c in carried:
        sizes[c.name] = sum(p.stat().st_size for p in c.rglob("*") if p.is_file()) if c.exists() else 0
    total = sum(sizes.values())
    for what, n in sizes.items():
        print(f"{what:>14}: {n / 2**20:6.1f} MiB")
    print(f"{'total':>14}: {total / 2**20:6.1f} MiB of {LIMIT_BYTES / 2**20:.0f} MiB")
    problems = wheel_problems(ROOT / ".whl") if any(c.name == ".whl" for c in carried) else []
    if total > LIMIT_BYTES:
        problems.append(f"{total / 2**20:.1f} MiB would travel, over the device tool's 64 MiB")
    for p in problems:
        print(f"gpu_carry_check: {p}", file=sys.stderr)
    return 2 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
