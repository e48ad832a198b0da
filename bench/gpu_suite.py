"""One prepared GPU run (issue 10): environment, SOVQAE training throughput, cascade inference speed and memory,
and the restoration recipe on a real identity, each part in its own process group and time budget.

    bash bench/gpu_suite.sh                        # on the GPU machine: installs the carried wheels, then this
    python bench/gpu_suite.py --out OUT            # the same without the install (wheels already importable)
    python bench/gpu_suite.py --dry-run --out OUT --video CLIP.mp4   # CPU, tiny sizes (tests/test_gpu_suite.py)

Each part records every figure as soon as it has it (WORK/parts/NAME.json); this process merges them into
OUT/gpu_suite.{json,md} every few seconds and kills a part at its budget, so whatever stops the run, what was
measured stays. bench/README.md says how to run it on a lent GPU and commit the results.
"""

from __future__ import annotations

import argparse
import contextlib
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
from gpu_infer import part_infer  # noqa: E402
from gpu_parts import Recorder, atomic_write, part_environment, part_prepare, watch_parent  # noqa: E402
from gpu_report import markdown  # noqa: E402
from gpu_restore import part_restore  # noqa: E402
from gpu_train import part_train  # noqa: E402

# Budgets on one H100/H200 (s); restore gets the rest of the total (>= 140 s). With gpu_suite.sh's ~15 s wheel
# install and ~2 s of final writes the command takes about 472 s. The dry run's budgets only guard against a hang.
GPU_BUDGETS = {"environment": 25, "prepare": 40, "train": 150, "infer": 100}
DRY_BUDGETS = dict.fromkeys(GPU_BUDGETS, 600)
# (on a GPU, in the dry run) for each option left unset
MODE_DEFAULTS = {"total_seconds": (455, 3600), "sovqae_preset": ("paper-256", "tiny"),
                 "wav2lip_preset": ("wav2lip", "wav2lip-tiny"), "syncnet_preset": ("syncnet", "syncnet-tiny"),
                 "train_presets": (["paper-256", "paper-512"], ["tiny"]), "train_batches": (None, [2, 4]),
                 "compile_backend": ("inductor", "eager"), "infer_seconds": ([15.0, 60.0], [1.0, 2.0]),
                 "infer_batch": (64, 4)}
MIN_PART_SECONDS = 5  # a part offered less than this is skipped, not started
JSON_NAME, MD_NAME, LOG_NAME = "gpu_suite.json", "gpu_suite.md", "suite.log"
MAX_OUT_FILES, MAX_FILE_BYTES = 8, 16 * 2**20
LOG_KEEP_HEAD, LOG_KEEP_TAIL = 2 * 2**20, 10 * 2**20
SHARED_CLIP = ROOT.parent / "shared" / "data" / "video" / "macron_50s_dfrf.mp4"
CARRIED_CLIP = ROOT / ".gpu" / "macron_50s_dfrf.mp4"
PART_FUNCTIONS = {"environment": part_environment, "prepare": part_prepare, "train": part_train,
                  "infer": part_infer, "restore": part_restore}  # in the order they run
PARTS = tuple(PART_FUNCTIONS)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)

    def option(flag: str, text: str, **kw) -> None:
        show = lambda v: " ".join(map(str, v)) if isinstance(v, list) else v or "the preset's and 4x it"  # noqa: E731
        gpu, dry = (show(v) for v in MODE_DEFAULTS[flag[2:].replace("-", "_")])
        p.add_argument(flag, default=None, help=f"{text} (default {gpu}; dry run {dry})", **kw)

    p.add_argument("--out", required=True, type=Path, help="output folder (JSON, Markdown, log, PNG strips)")
    p.add_argument("--work", type=Path, default=Path("/tmp/ladtalk-gpu-suite"),
                   help="scratch folder for identities, models and runs (never under --out)")
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny presets and sizes: proves the suite works")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    p.add_argument("--budget", action="append", default=[], metavar="PART=SECONDS",
                   help="override one part's budget (restore defaults to what the total leaves)")
    option("--total-seconds", "the whole suite's limit", type=float)
    p.add_argument("--video", type=Path, default=None,
                   help="identity clip (default .gpu/macron_50s_dfrf.mp4, else ../shared/data/video/...)")
    p.add_argument("--crop-size", type=int, default=256, choices=(256, 512))
    option("--sovqae-preset", "restorer preset")
    option("--wav2lip-preset", "lip-sync generator preset")
    option("--syncnet-preset", "lip-sync expert preset")
    p.add_argument("--set-sovqae", action="append", default=[], metavar="KEY=VALUE", help="restore-part override")
    p.add_argument("--sovqae-clean-only", action="store_true",
                   help="train the restorer on clean faces only (the paper); by default it also learns the run's own "
                   "Wav2Lip faces (train_sovqae wav2lip_path), the best CPU recipe")
    p.add_argument("--set-wav2lip", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--set-syncnet", action="append", default=[], metavar="KEY=VALUE")
    option("--train-presets", "SOVQAE presets to time", nargs="+")
    option("--train-batches", "batch sizes for every train preset", nargs="+", type=int)
    option("--compile-backend", "torch.compile backend (eager: traces, compiles no kernel)")
    option("--infer-seconds", "audio lengths", nargs=2, type=float)
    option("--infer-batch", "generate batch size", type=int)
    p.add_argument("--install-seconds", type=float, default=None, help="wheel install time, from gpu_suite.sh")
    p.add_argument("--part", default=None, help=argparse.SUPPRESS)            # a part child's own name
    p.add_argument("--part-deadline", type=float, default=None, help=argparse.SUPPRESS)  # time.time() to stop by
    p.add_argument("--stall-part", default=None, help=argparse.SUPPRESS)      # tests: hang after the 1st figure
    a = p.parse_args(argv)
    a.argv = list(sys.argv[1:] if argv is None else argv)  # what each part child is started with
    for key, (gpu, dry) in MODE_DEFAULTS.items():
        if getattr(a, key) is None:
            setattr(a, key, dry if a.dry_run else gpu)
    a.device, a.train_precision = ("cpu", "fp32") if a.dry_run else ("cuda", "bf16")
    a.video = (a.video or (CARRIED_CLIP if CARRIED_CLIP.exists() else SHARED_CLIP)).resolve()
    a.out, a.work = a.out.resolve(), a.work.resolve()
    a.part_list = [s.strip() for s in a.parts.split(",") if s.strip()]
    a.budgets = dict(DRY_BUDGETS if a.dry_run else GPU_BUDGETS)
    for item in a.budget:
        name, _, value = item.partition("=")
        try:
            a.budgets[name.strip()] = float(value)
        except ValueError:
            a.budgets[name.strip()] = -1.0  # reported by check_args
    return a


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
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace_seconds)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # members that outlived the leader or ignored SIGTERM
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
    atomic_write(path, head + note.encode() + tail)


def check_out_files(out: Path) -> list[str]:
    """Problems with what the device tool would bring back: more than 8 files, a file over 16 MiB, deep paths."""
    files = [p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")]
    problems = [f"{p.name}: {p.stat().st_size} bytes > 16 MiB" for p in files if p.stat().st_size > MAX_FILE_BYTES]
    if len(files) > MAX_OUT_FILES:
        problems.append(f"{len(files)} files in {out}, more than the {MAX_OUT_FILES} the device tool returns")
    return problems


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
        budget = max(0.0, min(a.budgets.get(name, remaining), remaining))  # restore: the rest unless given
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
    """One part's process: run it, record its end (ok or the error) in its file."""
    rec = Recorder(a.work / "parts" / f"{a.part}.json", stall=a.stall_part == a.part)
    deadline = a.part_deadline or time.time() + 3600
    watch_parent(deadline)
    try:
        PART_FUNCTIONS[a.part](a, rec, deadline)
    except Exception as e:  # noqa: BLE001 - whatever broke, the figures so far and the reason are kept
        traceback.print_exc()
        rec.finish("failed", error=f"{traceback.format_exc()[-2500:]}\n{type(e).__name__}: {e}")
        return 1
    rec.finish("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
