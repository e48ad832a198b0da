"""The job queue: one worker per device runs one job at a time, each in its own process.

A job is a folder DATA_DIR/jobs/<id>/ whose record.json (rewritten atomically at every change of state) holds what
to clean up, so a server started after a crash shows the jobs it left as "interrupted" and finishes their clean-up.
A cancel interrupts the process group (a training saves its checkpoint), kills it after a grace period, and
removes everything the job made but its record."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ladtalk.serve.paths import DataDir, new_id, public_message, read_json, write_json

LIVE = ("queued", "running")
RECORD = "record.json"
RUNTIME = ("dir", "proc", "cancel_requested")  # fields of the live server only, never stored
PUBLIC = ("id", "kind", "title", "state", "error", "result", "created", "started", "finished", "device", "request")


@dataclass
class Job:
    id: str
    kind: str
    title: str
    call: dict
    owned: list[str] = field(default_factory=list)  # removed when the job does not succeed
    fresh_runs: list[str] = field(default_factory=list)  # run folders it created: removed unless they hold a checkpoint
    scrub: list[str] = field(default_factory=list)  # folders whose *.partial* temporaries are removed after a failure
    moves: list[list[str]] = field(default_factory=list)  # [from, to] renames that put a success's results in place
    targets: list[str] = field(default_factory=list)  # the identity or model names the job writes
    request: dict = field(default_factory=dict)  # what the client asked for: enough to submit it again
    state: str = "queued"
    error: str | None = None
    result: dict | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    device: str | None = None
    pid: int | None = None  # of the runner while it runs: a server started after a crash stops an orphan
    dir: Path = Path(".")
    proc: subprocess.Popen | None = None
    cancel_requested: bool = False

    def save(self) -> None:
        write_json(self.dir / RECORD, {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in RUNTIME})

    @classmethod
    def load(cls, job_dir: Path) -> Job:
        record = json.loads((job_dir / RECORD).read_text())  # fields an older version kept are left out
        return cls(**{k: v for k, v in record.items() if k in cls.__dataclass_fields__ and k not in RUNTIME},
                   dir=job_dir)

    def public(self) -> dict:
        return {**{k: getattr(self, k) for k in PUBLIC}, "target": self.targets[0] if self.targets else None,
                "progress": read_json(self.dir / "progress.json") if self.state == "running" else None,
                "files": self.files() if self.state == "done" else [], "has_log": (self.dir / "log.txt").is_file()}

    def files(self) -> list[str]:
        """The job's result files, relative to its out/ folder (what GET /api/jobs/{id}/files/... serves)."""
        out = self.dir / "out"
        rel = (p.relative_to(out) for p in out.rglob("*") if p.is_file() and not p.is_symlink())
        return sorted(str(r) for r in rel if not any(q.startswith(".") for q in r.parts))


class JobManager:
    def __init__(self, data: DataDir, devices: list[str], grace_seconds: float = 20.0):
        self.data = data
        self.grace_seconds = grace_seconds
        self.jobs: dict[str, Job] = {}
        self.lock = threading.RLock()
        self.queue: queue.Queue[Job | None] = queue.Queue()
        self.closing = False
        self._recover()
        self.workers = [threading.Thread(target=self._work, args=(d,), daemon=True, name=f"ladtalk-worker-{d}")
                        for d in devices]
        for w in self.workers:
            w.start()

    def _recover(self) -> None:
        """Load every job record; what an earlier server left queued or running is stopped, cleaned, 'interrupted'."""
        for tmp in self.data.folder("uploads").glob(".*.partial"):
            remove_path(tmp)
        for job_dir in sorted(self.data.folder("jobs").iterdir()):
            if not job_dir.is_dir() or job_dir.is_symlink():
                continue
            if not (job_dir / RECORD).is_file():
                remove_path(job_dir)  # a job that never got a record: nothing of it to show
                continue
            try:
                job = Job.load(job_dir)
            except (OSError, ValueError, TypeError) as e:
                print(f"ladtalk serve: skipping job folder {job_dir.name} (unreadable record: {e})", flush=True)
                continue
            if job.state in LIVE:
                self._stop_orphan(job)
                done = job.state == "running" and (job_dir / "result.json").is_file()  # but its result not stored
                self._finish(job, 0 if done else None, interrupted=not done)
            self.jobs[job.id] = job

    def _stop_orphan(self, job: Job) -> None:
        """Stop, like a cancel, the runner a killed server left running (only a process naming this job folder)."""
        with contextlib.suppress(OSError):  # no such process (any more)
            if job.pid and str(job.dir).encode() in Path(f"/proc/{job.pid}/cmdline").read_bytes():
                self._stop_group(job, job.pid, Path(f"/proc/{job.pid}").exists)

    def submit(self, kind: str, title: str, call: dict, *, request: dict, out: str | None = "",
               owned: list[Path] = (), targets: list[str] = (), fresh_runs: list[Path] = (), scrub: list[Path] = (),
               moves: list[tuple[str, Path]] = ()) -> Job:
        """Queue a job; its call gets out_dir=JOB_DIR/out/<out> unless `out` is None; `moves`: (a path in JOB_DIR/out,
        its place when the job succeeds)."""
        job_id = new_id()
        out_dir = self.data.folder("jobs") / job_id / "out"
        out_dir.mkdir(parents=True)
        if out is not None:
            call = {**call, "out_dir": str(out_dir / out)}
        job = Job(job_id, kind, title, call, owned=[str(p) for p in owned], fresh_runs=[str(p) for p in fresh_runs],
                  scrub=[str(p) for p in scrub], targets=list(targets), request=request,
                  moves=[[str(out_dir / a), str(b)] for a, b in moves], dir=out_dir.parent)
        with self.lock:
            job.save()
            self.jobs[job_id] = job
        self.queue.put(job)
        return job

    def busy_targets(self) -> set[str]:
        with self.lock:
            return {t for j in self.jobs.values() if j.state in LIVE for t in j.targets}

    def get(self, job_id: str) -> Job | None:
        with self.lock:
            return self.jobs.get(job_id)

    def list(self) -> list[Job]:
        with self.lock:
            return sorted(self.jobs.values(), key=lambda j: j.created, reverse=True)

    def delete(self, job_id: str) -> None:
        """Forget a finished job and remove its folder (its results and log)."""
        with self.lock:
            job = self.jobs.pop(job_id)
        remove_path(job.dir)

    def cancel(self, job: Job, interrupted: bool = False) -> None:
        """Stop a job; `interrupted`: the server is shutting down (the job can be run again after a restart)."""
        with self.lock:
            if job.state not in LIVE:
                return
            job.cancel_requested = not interrupted
            if job.state == "queued":  # the worker skips it; it ends now
                self._finish(job, None)
                return
            proc = job.proc
        if proc is not None:  # the worker reaps it and sets returncode
            self._stop_group(job, proc.pid, lambda: proc.returncode is None)
        while job.state == "running":  # the worker is cleaning up after the process
            time.sleep(0.05)

    def shutdown(self) -> None:
        """Stop every job as 'interrupted': its record stays, and it can be run again by the next server."""
        with self.lock:
            self.closing = True  # a worker freed by a stopped job starts no other
        for job in self.list():
            self.cancel(job, interrupted=True)
        for _ in self.workers:
            self.queue.put(None)
        for w in self.workers:
            w.join(timeout=self.grace_seconds + 5)

    def _stop_group(self, job: Job, pid: int, alive: Callable[[], bool]) -> None:
        """SIGINT to a training's process group (it saves its checkpoint), SIGTERM to another's; then SIGKILL."""
        train = job.kind == "train"
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGINT if train else signal.SIGTERM)
            deadline = time.monotonic() + (self.grace_seconds if train else 3.0)
            while alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            if alive():
                os.killpg(pid, signal.SIGKILL)

    def _work(self, device: str) -> None:
        while (job := self.queue.get()) is not None:
            with self.lock:
                if job.state != "queued" or self.closing:
                    continue
                job.state, job.started, job.device = "running", time.time(), device
                write_json(job.dir / "job.json", {"kind": job.kind, "call": {**job.call, "device": device}})
                env = {**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_MININTERVAL": "0.25"}
                with open(job.dir / "log.txt", "wb") as log:  # the child keeps its own copy
                    job.proc = subprocess.Popen([sys.executable, "-m", "ladtalk.serve.runner", str(job.dir)],
                                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                env=env, start_new_session=True)  # own group: cancel reaches children
                job.pid = job.proc.pid
                job.save()
            self._finish(job, job.proc.wait())

    def _finish(self, job: Job, code: int | None, interrupted: bool = False) -> None:
        """Store how a job ended; `code`: its exit status (None: never started); `interrupted`: by an earlier server."""
        error = None
        if job.cancel_requested:
            state = "cancelled"
        elif interrupted or (self.closing and code != 0):
            when = "while this job was running" if job.state == "running" else "before this job started"
            again = "resume it to continue from its last checkpoint" if job.kind == "train" else "run it again"
            state, error = "interrupted", f"the server stopped {when}; {again}"
        elif code == 0:
            try:
                job.result = json.loads((job.dir / "result.json").read_text())
                for src, dst in job.moves:  # the finished folder appears under its name in one rename
                    os.replace(src, dst)
                state = "done"
            except Exception as e:  # noqa: BLE001 - shown on the page as the job's error
                state, error = "failed", f"ladtalk {job.kind}: error: could not store the result ({e})"
        else:
            state, error = "failed", (read_json(job.dir / "error.json") or {}).get("message") or (
                f"ladtalk {job.kind}: the job's process ended with status {code} "
                f"({'killed' if code < 0 else 'no message'}); GET /api/jobs/{job.id}/log has the details")
        if state != "done":  # cleaned before the state changes: whoever sees "cancelled" finds nothing left
            self._clean(job, cancelled=state == "cancelled")
        with self.lock:
            job.state, job.finished, job.proc, job.pid = state, time.time(), None, None
            job.error = public_message(error, self.data.root) if error else None
            job.save()

    def _clean(self, job: Job, cancelled: bool) -> None:
        """Remove what an unsuccessful job made; a cancelled one loses its log too (only its record stays)."""
        for path in map(Path, job.owned):
            remove_path(path)
            # temporaries written beside the path (atomic writes) by a process that was killed
            for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.partial*"):
                remove_path(tmp)
        for name in job.scrub:
            for tmp in Path(name).rglob("*.partial*"):
                remove_path(tmp)
        for name in job.fresh_runs:
            if not (Path(name) / "checkpoints" / "last").is_dir():
                remove_path(Path(name))
        remove_path(job.dir / "out")
        if cancelled:
            for p in job.dir.iterdir():
                if p.name != RECORD:
                    remove_path(p)


def remove_path(path: Path) -> None:
    """Remove a file, a symlink (not what it points to) or a folder tree; no error when it is gone."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def tree_bytes(path: Path) -> int:
    """Bytes of the files under `path` (symlinks not followed)."""
    if path.is_file() or path.is_symlink():
        return path.lstat().st_size
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):  # removed while we counted
                total += os.lstat(os.path.join(root, f)).st_size
    return total

