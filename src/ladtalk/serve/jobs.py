"""The job queue: long work runs in background processes, one worker per device, one job at a time per worker.

A job is a folder DATA_DIR/jobs/<id>/ (job.json, log.txt, progress.json, out/) and a child process running
ladtalk.serve.runner. Its state lives in the server, so a page reload finds it again. Cancelling interrupts the
process group (training saves its checkpoint on the interrupt), kills it if it does not stop within a grace
period, and removes everything the job made: its folder and the paths it owned (the identity it was writing, a
run folder that had no checkpoint yet, temporary files).
"""

from __future__ import annotations

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

from ladtalk.serve.paths import DataDir, new_id

STATES = ("queued", "running", "done", "failed", "cancelled")


@dataclass
class Job:
    id: str
    kind: str
    title: str
    call: dict
    dir: Path
    owned: list[Path] = field(default_factory=list)  # removed when the job does not succeed
    finalize: Callable[[Job], None] | None = None  # moves results into place, in the server, after success
    cleanup: Callable[[Job], None] | None = None  # extra removal when the job does not succeed
    target: str | None = None  # the identity or model name the job writes
    request: dict = field(default_factory=dict)  # what the client asked for (names and upload ids only)
    state: str = "queued"
    error: str | None = None
    result: dict | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    device: str | None = None
    proc: subprocess.Popen | None = None
    cancel_requested: bool = False
    interrupt_first: bool = False  # send SIGINT and wait (training saves a checkpoint), rather than SIGTERM

    def progress(self) -> dict | None:
        try:
            return json.loads((self.dir / "progress.json").read_text())
        except (OSError, ValueError):
            return None

    def public(self) -> dict:
        return {"id": self.id, "kind": self.kind, "title": self.title, "state": self.state, "error": self.error,
                "result": self.result, "progress": self.progress() if self.state == "running" else None,
                "created": self.created, "started": self.started, "finished": self.finished,
                "device": self.device, "target": self.target, "request": self.request,
                "files": self.files() if self.state == "done" else []}

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
        self.lock = threading.Lock()
        self.queue: queue.Queue[Job | None] = queue.Queue()
        self._sweep()
        self.workers = [threading.Thread(target=self._work, args=(d,), daemon=True, name=f"ladtalk-worker-{d}")
                        for d in devices]
        for w in self.workers:
            w.start()

    def _sweep(self) -> None:
        """Remove what jobs of an earlier server left when it died mid-job (their processes went with it)."""
        for job_dir in self.data.folder("jobs").iterdir():
            if not (job_dir / "result.json").is_file() and not (job_dir / "error.json").is_file():
                remove_path(job_dir)
        for tmp in self.data.folder("uploads").glob(".*.partial"):
            remove_path(tmp)

    def submit(self, kind: str, title: str, call: dict, *, owned: list[Path] = (), target: str | None = None,
               finalize: Callable[[Job], None] | None = None, cleanup: Callable[[Job], None] | None = None,
               interrupt_first: bool = False) -> Job:
        job_id = new_id()
        job_dir = self.data.folder("jobs") / job_id
        (job_dir / "out").mkdir(parents=True)
        job = Job(job_id, kind, title, dict(call), job_dir, list(owned), finalize, cleanup, target,
                  interrupt_first=interrupt_first)
        job.call = {k: (str(job_dir / "out" / v.sub) if isinstance(v, OutPath) else v) for k, v in call.items()}
        with self.lock:
            self.jobs[job_id] = job
        self.queue.put(job)
        return job

    def busy_targets(self) -> set[str]:
        with self.lock:
            return {j.target for j in self.jobs.values() if j.target and j.state in ("queued", "running")}

    def get(self, job_id: str) -> Job | None:
        with self.lock:
            return self.jobs.get(job_id)

    def list(self) -> list[Job]:
        with self.lock:
            return sorted(self.jobs.values(), key=lambda j: j.created, reverse=True)

    def cancel(self, job_id: str) -> Job | None:
        job = self.get(job_id)
        if job is None:
            return None
        with self.lock:
            if job.state not in ("queued", "running"):
                return job
            job.cancel_requested = True
            if job.state == "queued":  # the worker skips it; clean up now
                job.state, job.finished = "cancelled", time.time()
                self._clean(job, cancelled=True)
                return job
            proc = job.proc
        if proc is not None:
            self._stop(proc, job.interrupt_first)
        while job.state == "running":  # the worker is cleaning up after the process
            time.sleep(0.05)
        return job

    def wait(self, job_id: str, timeout: float) -> Job:
        """Block until the job has finished (for tests and scripts)."""
        end = time.monotonic() + timeout
        while (job := self.get(job_id)).state in ("queued", "running") and time.monotonic() < end:
            time.sleep(0.1)
        return job

    def shutdown(self) -> None:
        for job in self.list():
            self.cancel(job.id)
        for _ in self.workers:
            self.queue.put(None)
        for w in self.workers:
            w.join(timeout=self.grace_seconds + 5)

    def _stop(self, proc: subprocess.Popen, interrupt_first: bool) -> None:
        def signal_group(sig: int) -> None:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
        signal_group(signal.SIGINT if interrupt_first else signal.SIGTERM)
        try:
            proc.wait(timeout=self.grace_seconds if interrupt_first else 3.0)
        except subprocess.TimeoutExpired:
            signal_group(signal.SIGKILL)
            proc.wait()

    def _work(self, device: str) -> None:
        while (job := self.queue.get()) is not None:
            with self.lock:
                if job.state != "queued":
                    continue
                job.state, job.started, job.device = "running", time.time(), device
                job.call["device"] = device
                (job.dir / "job.json").write_text(json.dumps({"kind": job.kind, "call": job.call}))
                log = open(job.dir / "log.txt", "wb")
                env = {**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_MININTERVAL": "0.25"}
                job.proc = subprocess.Popen([sys.executable, "-m", "ladtalk.serve.runner", str(job.dir)],
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env=env, start_new_session=True)  # own group: cancel reaches children
            code = job.proc.wait()
            log.close()
            self._finish(job, code)

    def _finish(self, job: Job, code: int) -> None:
        error = None
        if job.cancel_requested:
            state = "cancelled"
        elif code == 0:
            try:
                job.result = json.loads((job.dir / "result.json").read_text())
                if job.finalize is not None:
                    job.finalize(job)
                state = "done"
            except Exception as e:  # noqa: BLE001 - shown on the page as the job's error
                state, error = "failed", f"ladtalk {job.kind}: error: could not store the result ({e})"
        else:
            state = "failed"
            try:
                error = json.loads((job.dir / "error.json").read_text())["message"]
            except (OSError, ValueError, KeyError):
                error = (f"ladtalk {job.kind}: the job's process ended with status {code} "
                         f"({'killed' if code < 0 else 'no message'}); GET /api/jobs/{job.id}/log has the details")
        if state != "done":  # cleaned before the state changes: whoever sees "cancelled" finds nothing left
            self._clean(job, cancelled=state == "cancelled")
        with self.lock:
            job.state, job.error, job.finished, job.proc = state, error, time.time(), None

    def _clean(self, job: Job, cancelled: bool) -> None:
        """Remove what a job that did not succeed made; a failed job keeps job.json and log.txt to read."""
        for path in job.owned:
            remove_path(path)
            # temporaries written beside the path (atomic writes) by a process that was killed
            for tmp in glob.glob(str(path.parent / f".{glob.escape(path.name)}.*.partial*")):
                remove_path(Path(tmp))
        if job.cleanup is not None:
            job.cleanup(job)
        if cancelled:
            shutil.rmtree(job.dir, ignore_errors=True)
        else:
            shutil.rmtree(job.dir / "out", ignore_errors=True)


def remove_path(path: Path) -> None:
    """Remove a file, a symlink (not what it points to) or a folder tree; no error when it is gone."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@dataclass(frozen=True)
class OutPath:
    """A placeholder in a job's call: replaced by JOB_DIR/out/<sub>, the job's own output folder."""

    sub: str = ""


OUT = OutPath()
