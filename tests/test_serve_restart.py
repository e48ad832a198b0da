"""`ladtalk serve` keeps its jobs in the data folder: a new server (after a crash or a plain restart) lists the
finished jobs with their results, shows the one that was running as interrupted, and resumes a training from its
checkpoint with the settings it was started with."""

from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed: pip install 'ladtalk[serve]'")
pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install 'ladtalk[serve]'")

from _serve_helpers import Served, data_copy, runner_pids, shared_server  # noqa: E402

# many steps: the training is surely still running when the server goes away
LONG_TRAIN = ["train.max_steps=1000", "train.val_every=1000", "train.log_every=1", "train.val_frames=4",
              "train.checkpoint_every=1000"]


@pytest.fixture(scope="session")
def served(tmp_path_factory, request):
    return shared_server(tmp_path_factory, request)


def _checkpoint_step(run_dir) -> int:
    return int(json.loads((run_dir / "checkpoints" / "last" / "config.json").read_text())["extra"]["step"])


def test_a_crash_leaves_jobs_listed_and_the_training_interrupted_and_resumable(served, tmp_path):
    data = data_copy(served, tmp_path / "data")
    first = Served(data)
    try:
        status, up = first.upload(served["speech"], "audio", "speech.wav")
        gen = first.wait(first.submit(kind="generate", identity="synth", audio=up["id"], wav2lip="w2l")["id"])
        assert gen["state"] == "done", gen
        train = first.submit(kind="train", name="run", identity="synth", preset="tiny", overrides=LONG_TRAIN)
        first.wait_progress(train["id"])
    finally:
        first.kill()  # no shutdown: the training's process outlives the server
    job_dir = data / "jobs" / train["id"]
    assert runner_pids(job_dir), "the runner should have outlived the killed server"

    second = Served(data)
    try:
        assert not runner_pids(job_dir)  # the new server stopped the orphan (which saved a checkpoint)
        step = _checkpoint_step(data / "models" / "run")
        assert step >= 1

        status, jobs = second.call("GET", "/api/jobs")
        by_id = {j["id"]: j for j in jobs}
        assert by_id[gen["id"]]["state"] == "done" and "wav2lip_only.mp4" in by_id[gen["id"]]["files"]
        status, video = second.call("GET", f"/api/jobs/{gen['id']}/files/wav2lip_only.mp4")
        assert status == 200 and len(video) > 1000
        interrupted = by_id[train["id"]]
        assert interrupted["state"] == "interrupted" and "resume" in interrupted["error"]
        assert interrupted["has_log"]
        assert up["id"] in [u["id"] for u in second.call("GET", "/api/uploads")[1]]

        status, model = second.call("GET", "/api/models/run")
        assert model["state"] == "stopped" and model["resumable"] and model["step"] >= 1
        steps = model["steps"]  # the run's length as its first start logged it (tiny: 50 epochs of 5 steps)
        assert steps == 250

        # resumed from the page's button: the run's own settings, whatever a form would hold now
        status, resumed = second.call("POST", f"/api/jobs/{train['id']}/again")
        assert status == 202 and resumed["title"].startswith("resume") and resumed["request"] == train["request"]
        running = second.wait_progress(resumed["id"], steps=step + 1)
        assert running["progress"]["total"] == steps  # toward the step count it was started with
        second.call("POST", f"/api/jobs/{resumed['id']}/cancel")
        assert _checkpoint_step(data / "models" / "run") > step
    finally:
        second.stop()


def test_a_plain_restart_interrupts_the_running_job_and_finishes_nothing_twice(served, tmp_path):
    data = data_copy(served, tmp_path / "data")
    first = Served(data)
    try:
        train = first.submit(kind="train", name="run", identity="synth", preset="tiny", overrides=LONG_TRAIN)
        queued = first.submit(kind="prepare", name="later", synthetic=True, seconds=2)  # one worker: waits
        first.wait_progress(train["id"])
    finally:
        first.stop()  # graceful: the training saves its checkpoint on the interrupt
    second = Served(data)
    try:
        jobs = {j["id"]: j for j in second.call("GET", "/api/jobs")[1]}
        assert jobs[train["id"]]["state"] == "interrupted"
        assert jobs[queued["id"]]["state"] == "interrupted" and "before this job started" in jobs[queued["id"]]["error"]
        assert not (data / "identities" / "later").exists()
        assert _checkpoint_step(data / "models" / "run") >= 1
        status, again = second.call("POST", f"/api/jobs/{queued['id']}/again")
        assert status == 202 and second.wait(again["id"])["state"] == "done"
        assert (data / "identities" / "later" / "identity.json").is_file()
        time.sleep(0.2)
        status, err = second.call("POST", f"/api/jobs/{again['id']}/again")
        assert status == 400 and "already exists" in err["error"]
    finally:
        second.stop()
