"""One prepared GPU run (issue 10): environment, SOVQAE training throughput, cascade inference speed and memory,
and the restoration recipe on a real identity, each part inside its own time budget, into one output folder.

    bash bench/gpu_suite.sh                        # on the GPU machine: installs the carried wheels, then this
    python bench/gpu_suite.py --out OUT            # the same without the install (wheels already importable)
    python bench/gpu_suite.py --dry-run --out OUT --video CLIP.mp4   # CPU, tiny sizes (tests/test_gpu_suite.py)

Parts, in order: environment, prepare (the identity clip at 256), train, infer, restore. Each runs in its own
process group and records every figure as soon as it has it (WORK/parts/NAME.json); this process rewrites
OUT/gpu_suite.json and OUT/gpu_suite.md every few seconds and kills a part at its budget, so a part stopped at its
budget, or the whole run killed, still leaves what was measured. The restore part gets whatever the suite's total
leaves. OUT receives at most 8 files (JSON, Markdown, log, PNG strips), each far below 16 MiB: what the device
tool brings back. bench/README.md says how to run it on a lent GPU and commit the results.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

PARTS = ("environment", "prepare", "train", "infer", "restore")
# Default budgets on one H100/H200 (seconds): 25 + 40 + 150 + 100, and restore gets the rest of the 455 s total
# (at least 140 s, more when earlier parts finish early). With the ~15 s wheel install of gpu_suite.sh before this
# script and ~2 s of final writes, the whole command takes about 472 s: inside 8 minutes.
GPU_BUDGETS = {"environment": 25, "prepare": 40, "train": 150, "infer": 100}
GPU_TOTAL_SECONDS = 455
# The dry run does tiny, step-limited work and never skips a case to save time; its budgets are only caps against
# a hang (a shared 2-core CPU under load can take minutes for what takes seconds when idle).
DRY_BUDGETS = {"environment": 600, "prepare": 600, "train": 600, "infer": 600}
DRY_TOTAL_SECONDS = 3600
MIN_PART_SECONDS = 5  # a part offered less than this is skipped, not started
JSON_NAME, MD_NAME, LOG_NAME = "gpu_suite.json", "gpu_suite.md", "suite.log"
MAX_OUT_FILES, MAX_FILE_BYTES = 8, 16 * 2**20
LOG_KEEP_HEAD, LOG_KEEP_TAIL = 2 * 2**20, 10 * 2**20
SHARED_CLIP = ROOT.parent / "shared" / "data" / "video" / "macron_50s_dfrf.mp4"
CARRIED_CLIP = ROOT / ".gpu" / "macron_50s_dfrf.mp4"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, type=Path, help="output folder (JSON, Markdown, log, PNG strips)")
    p.add_argument("--work", type=Path, default=Path("/tmp/ladtalk-gpu-suite"),
                   help="scratch folder for identities, models and runs (never under --out)")
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny presets and sizes: proves the suite works")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    p.add_argument("--budget", action="append", default=[], metavar="PART=SECONDS",
                   help="override one part's budget (restore defaults to what the total leaves)")
    p.add_argument("--total-seconds", type=float, default=None,
                   help=f"the whole suite's limit (default {GPU_TOTAL_SECONDS}; dry run {DRY_TOTAL_SECONDS})")
    p.add_argument("--video", type=Path, default=None,
                   help="identity clip (default .gpu/macron_50s_dfrf.mp4, else ../shared/data/video/...)")
    p.add_argument("--crop-size", type=int, default=256, choices=(256, 512))
    p.add_argument("--sovqae-preset", default=None, help="restorer preset (default paper-256; dry run tiny)")
    p.add_argument("--wav2lip-preset", default=None, help="lip-sync generator preset (default wav2lip; dry run "
                   "wav2lip-tiny)")
    p.add_argument("--syncnet-preset", default=None, help="lip-sync expert preset (default syncnet; dry run "
                   "syncnet-tiny)")
    p.add_argument("--set-sovqae", action="append", default=[], metavar="KEY=VALUE", help="restore-part override")
    p.add_argument("--sovqae-clean-only", action="store_true",
                   help="train the restorer on clean faces only (the paper); by default it also learns the run's own "
                   "Wav2Lip faces (train_sovqae wav2lip_path), the best CPU recipe")
    p.add_argument("--set-wav2lip", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--set-syncnet", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--train-presets", nargs="+", default=None, help="default paper-256 paper-512; dry run tiny")
    p.add_argument("--train-batches", nargs="+", type=int, default=None,
                   help="batch sizes for every train preset (default: the preset's and 4x it; dry run 2 4)")
    p.add_argument("--compile-backend", default=None, help="torch.compile backend (default inductor; dry run "
                   "eager, which traces without compiling kernels)")
    p.add_argument("--infer-seconds", nargs=2, type=float, default=None, help="audio lengths (default 15 60)")
    p.add_argument("--infer-batch", type=int, default=None, help="generate batch size (default 64; dry run 4)")
    p.add_argument("--install-seconds", type=float, default=None, help="wheel install time, from gpu_suite.sh")
    p.add_argument("--part", default=None, help=argparse.SUPPRESS)            # a part child's own name
    p.add_argument("--part-deadline", type=float, default=None, help=argparse.SUPPRESS)  # time.time() to stop by
    p.add_argument("--stall-part", default=None, help=argparse.SUPPRESS)      # tests: hang after the 1st figure
    a = p.parse_args(argv)
    a.argv = list(sys.argv[1:] if argv is None else argv)  # what each part child is started with
    fill_defaults(a)
    return a


def fill_defaults(a: argparse.Namespace) -> None:
    dry = a.dry_run
    a.device = "cpu" if dry else "cuda"
    a.sovqae_preset = a.sovqae_preset or ("tiny" if dry else "paper-256")
    a.wav2lip_preset = a.wav2lip_preset or ("wav2lip-tiny" if dry else "wav2lip")
    a.syncnet_preset = a.syncnet_preset or ("syncnet-tiny" if dry else "syncnet")
    a.train_presets = a.train_presets or (["tiny"] if dry else ["paper-256", "paper-512"])
    a.train_batches = a.train_batches or ([2, 4] if dry else None)
    a.compile_backend = a.compile_backend or ("eager" if dry else "inductor")
    a.train_precision = "fp32" if dry else "bf16"
    a.infer_seconds = a.infer_seconds or ([1.0, 2.0] if dry else [15.0, 60.0])
    a.infer_batch = a.infer_batch or (4 if dry else 64)
    a.total_seconds = a.total_seconds or (DRY_TOTAL_SECONDS if dry else GPU_TOTAL_SECONDS)
    if a.video is None:
        a.video = CARRIED_CLIP if CARRIED_CLIP.exists() else SHARED_CLIP
    a.video = a.video.resolve()
    a.out, a.work = a.out.resolve(), a.work.resolve()
    a.part_list = [s.strip() for s in a.parts.split(",") if s.strip()]
    a.budgets = dict(DRY_BUDGETS if dry else GPU_BUDGETS)
    for item in a.budget:
        name, _, value = item.partition("=")
        try:
            a.budgets[name.strip()] = float(value)
        except ValueError:
            a.budgets[name.strip()] = -1.0  # reported by check_args


def check_args(a: argparse.Namespace) -> str | None:
    """The first problem with the arguments, as a message saying what to do, or None."""
    unknown = [p for p in a.part_list + list(a.budgets) if p not in PARTS]
    if unknown:
        return f"unknown part(s) {unknown}; the parts are {', '.join(PARTS)}"
    if not a.part_list:
        return "--parts names no part"
    if any(v <= 0 for v in a.budgets.values()):
        return "every --budget must be a positive number of seconds"
    if a.work == a.out or a.out in a.work.parents:
        return f"--work {a.work} must not lie inside --out {a.out}: only the results may land there"
    if ({"prepare"} & set(a.part_list)) and not a.video.is_file():
        return (f"the identity clip {a.video} is absent; run `make gpu-carry` (copies it into .gpu/) or pass "
                "--video CLIP.mp4")
    return None


# ---------------------------------------------------------------- the parent: budgets, children, merged output

def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_part_file(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


class SuiteStopped(Exception):
    """SIGTERM / SIGINT reached the suite (e.g. the device tool's time limit): finish the files, then exit."""

    part: dict | None = None


def _raise_stopped(signum, frame) -> None:
    raise SuiteStopped(signal.Signals(signum).name)


def kill_group(proc: subprocess.Popen, grace_seconds: float = 5.0) -> None:
    """SIGTERM the part's whole process group (its generate children and loader workers too), then SIGKILL."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return  # nothing of the group is left
    try:
        proc.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # members that outlived the leader or ignored SIGTERM
    except ProcessLookupError:
        pass
    proc.wait()


def run_part(name: str, cmd: list[str], budget: float, part_file: Path, log, on_tick, poll: float,
             env: dict[str, str]) -> dict:
    """Run one part child within `budget` seconds; returns its recorded figures with status and timings."""
    part_file.unlink(missing_ok=True)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env,
                            cwd=str(ROOT))
    status, stopped = None, None
    try:
        while True:
            try:
                rc = proc.wait(timeout=poll)
                break
            except subprocess.TimeoutExpired:
                pass
            on_tick({**read_part_file(part_file), "status": "running",
                     "seconds": round(time.monotonic() - t0, 1), "budget_s": round(budget, 1)})
            if time.monotonic() - t0 > budget:
                kill_group(proc)
                rc, status = proc.returncode, "killed at budget"
                break
    except SuiteStopped as e:  # the suite itself is being stopped: take the part down with it
        kill_group(proc, grace_seconds=1.0)
        rc, status, stopped = proc.returncode, f"stopped with the suite ({e})", e
    kill_group(proc, grace_seconds=0.5)  # leftovers of a finished part (loader workers, a generate child)
    part = read_part_file(part_file)
    part["status"] = status or part.get("status") or f"failed (exit {rc} before recording its end)"
    part.update(seconds=round(time.monotonic() - t0, 1), budget_s=round(budget, 1), exit_code=rc)
    if stopped is not None:
        stopped.part = part
        raise stopped
    return part


def write_outputs(a: argparse.Namespace, results: dict) -> None:
    from gpu_report import markdown

    results["suite"]["updated_utc"] = datetime.now(UTC).isoformat(timespec="seconds")
    atomic_write(a.out / JSON_NAME, json.dumps(results, indent=2, default=str))
    atomic_write(a.out / MD_NAME, markdown(results))


def trim_log(path: Path) -> None:
    """Keep the log under the transfer limit: its head and tail, with a note where the middle was cut."""
    size = path.stat().st_size if path.exists() else 0
    if size <= LOG_KEEP_HEAD + LOG_KEEP_TAIL:
        return
    with open(path, "rb") as f:
        head = f.read(LOG_KEEP_HEAD)
        f.seek(size - LOG_KEEP_TAIL)
        tail = f.read()
    note = f"\n[... {size - len(head) - len(tail)} bytes of the log cut here to fit the transfer limit ...]\n"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(head + note.encode() + tail)
    os.replace(tmp, path)


def check_out_files(out: Path) -> list[str]:
    """Problems with what the device tool would bring back: more than 8 files, a file over 16 MiB, deep paths."""
    files = [p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")]
    problems = [f"{p.name}: {p.stat().st_size} bytes > 16 MiB" for p in files if p.stat().st_size > MAX_FILE_BYTES]
    if len(files) > MAX_OUT_FILES:
        problems.append(f"{len(files)} files in {out}, more than the {MAX_OUT_FILES} the device tool returns")
    return problems


def budget_for(a: argparse.Namespace, name: str, remaining: float) -> float:
    own = a.budgets.get(name, remaining)  # restore: the rest of the total unless given
    return max(0.0, min(own, remaining))


def new_results(a: argparse.Namespace) -> dict:
    return {"suite": {"dry_run": a.dry_run, "argv": a.argv, "device": a.device,
                      "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
                      "total_seconds_limit": a.total_seconds, "install_seconds": a.install_seconds,
                      "budgets_s": {**a.budgets, "restore": a.budgets.get("restore", "rest of the total")},
                      "presets": {"sovqae": a.sovqae_preset, "wav2lip": a.wav2lip_preset,
                                  "syncnet": a.syncnet_preset, "train": a.train_presets,
                                  "sovqae_learns_wav2lip_faces": not a.sovqae_clean_only},
                      "video": str(a.video), "out_dir": str(a.out)},
            "parts": {}}


def run_parts(a: argparse.Namespace, results: dict, started: float, log) -> None:
    """Each chosen part in order, within its budget and what the total leaves; results rewritten as they come."""
    poll = 2.0 if a.dry_run else 5.0
    # faulthandler: a part (or a generate child) that dies of a signal still leaves a traceback in the log
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1", TQDM_MININTERVAL="10")
    if a.dry_run:  # on a shared CPU, OpenMP threads waiting for each other make a tiny step 10-50x slower
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")

    def elapsed() -> float:
        return time.monotonic() - started

    for name in (n for n in PARTS if n in a.part_list):
        remaining = a.total_seconds - elapsed()
        budget = budget_for(a, name, remaining)
        if budget < MIN_PART_SECONDS:
            results["parts"][name] = {"status": "skipped", "reason": f"{remaining:.0f} s of the suite's total left, "
                                      f"under the {MIN_PART_SECONDS} s a part needs"}
            continue
        print(f"[{elapsed():5.0f} s] {name}: budget {budget:.0f} s", flush=True)
        log.write(f"\n===== part {name} (budget {budget:.0f} s) =====\n")
        cmd = [sys.executable, str(Path(__file__).resolve()), *a.argv, "--part", name,
               "--part-deadline", str(time.time() + budget)]

        def record(part: dict, name: str = name) -> None:
            results["parts"][name] = part
            results["suite"]["elapsed_s"] = round(elapsed(), 1)
            write_outputs(a, results)

        try:
            part = run_part(name, cmd, budget, a.work / "parts" / f"{name}.json", log, record, poll, env)
        except SuiteStopped as e:
            if e.part is not None:
                record(e.part)
            raise
        record(part)
        error = f" - {part['error'].splitlines()[-1]}" if part.get("error") else ""
        print(f"[{elapsed():5.0f} s] {name}: {part['status']} after {part['seconds']:.0f} s{error}", flush=True)
        if name == "environment" and not a.dry_run and part.get("figures", {}).get("cuda_available") is False:
            results["suite"]["aborted"] = "torch sees no CUDA device: the other parts would only measure a CPU"
            print(results["suite"]["aborted"], flush=True)
            return


def orchestrate(a: argparse.Namespace) -> int:
    a.out.mkdir(parents=True, exist_ok=True)
    (a.work / "parts").mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results = new_results(a)
    signal.signal(signal.SIGTERM, _raise_stopped)
    signal.signal(signal.SIGINT, _raise_stopped)
    with open(a.out / LOG_NAME, "a", buffering=1) as log:
        try:
            run_parts(a, results, started, log)
        except SuiteStopped as e:
            results["suite"]["stopped"] = f"{e} after {time.monotonic() - started:.0f} s"
            print(f"suite stopped by {e}; writing what was measured", flush=True)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second signal now ends the run at once
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    trim_log(a.out / LOG_NAME)
    results["suite"]["finished_utc"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["suite"]["out_files"] = sorted(p.name for p in a.out.iterdir() if p.is_file())
    problems = check_out_files(a.out)
    results["suite"]["out_problems"] = problems
    write_outputs(a, results)
    for p in problems:
        print(f"warning: {p}", flush=True)
    bad = [n for n, p in results["parts"].items() if p.get("status") != "ok"]
    print(f"wrote {a.out / JSON_NAME} and {a.out / MD_NAME} in {time.monotonic() - started:.0f} s"
          + (f"; not ok: {', '.join(bad)}" if bad else "; every part ok"), flush=True)
    if results["suite"].get("stopped"):
        return 124  # as `timeout` reports a command it stopped
    return 1 if bad or problems or results["suite"].get("aborted") else 0


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.part:
        return run_child(a)
    problem = check_args(a)
    if problem:
        print(f"gpu_suite: error: {problem}", file=sys.stderr)
        return 2
    return orchestrate(a)


def run_child(a: argparse.Namespace) -> int:
    """Entry point of one part's process: run it, record its end (ok or the error) in its file. The parts import
    gpu_parts' helpers, and only this file imports the parts: no import circle."""
    from gpu_infer import part_infer
    from gpu_parts import Recorder, part_environment, part_prepare, watch_parent
    from gpu_restore import part_restore
    from gpu_train import part_train

    parts = {"environment": part_environment, "prepare": part_prepare, "train": part_train, "infer": part_infer,
             "restore": part_restore}
    rec = Recorder(a.work / "parts" / f"{a.part}.json", stall=a.stall_part == a.part)
    deadline = a.part_deadline or time.time() + 3600
    watch_parent(deadline)
    try:
        parts[a.part](a, rec, deadline)
    except Exception as e:  # noqa: BLE001 - whatever broke, the figures so far and the reason are kept
        traceback.print_exc()
        rec.finish("failed", error=f"{traceback.format_exc()[-2500:]}\n{type(e).__name__}: {e}")
        return 1
    rec.finish("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
