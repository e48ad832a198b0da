"""`ladtalk serve` over HTTP: the real server in its own process on a free localhost port, driven like a script
would drive it (upload, submit, poll, fetch), and the ways in that it must refuse."""

from __future__ import annotations

import http.client
import json
import os
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed: pip install 'ladtalk[serve]'")
pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install 'ladtalk[serve]'")

from _serve_helpers import Served, runner_pids, shared_server  # noqa: E402

from ladtalk.io.audio import load_audio  # noqa: E402
from ladtalk.io.video import probe_video  # noqa: E402


@pytest.fixture(scope="session")
def served(tmp_path_factory, request):
    return shared_server(tmp_path_factory, request)


def _leftovers(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob("*") if ".partial" in p.name or p.name.endswith(".prepare-cache")]


def test_prepare_and_train_through_the_api(served):
    s = served["server"]
    assert served["prepare"]["result"] == {"identity": "synth"}  # the name given, as the page says it is ready
    status, idents = s.call("GET", "/api/identities")
    synth = next(i for i in idents if i["name"] == "synth")
    assert synth["frames"] == 50 and synth["face_share"] == 1.0 and synth["crop_size"] == 256
    status, png = s.call("GET", "/api/identities/synth/crops.png")
    assert status == 200 and png.startswith(b"\x89PNG")

    status, model = s.call("GET", "/api/models/vq")
    assert status == 200 and model["kind"] == "sovqae" and model["state"] == "trained" and model["step"] == 2
    splits = {r["split"] for r in model["metrics"]}
    assert {"setup", "train", "val"} <= splits  # what the page draws its loss and validation curves from
    assert (served["data"] / "models" / "vq" / "model" / "model.safetensors").is_file()


def test_generate_through_the_api(served, tmp_path):
    s = served["server"]
    status, up = s.upload(served["speech"], "audio", "speech.wav")
    assert status == 201 and up["kind"] == "audio" and up["has_audio"]
    job = s.wait(s.submit(kind="generate", identity="synth", audio=up["id"], wav2lip="w2l", sovqae="vq")["id"])
    assert job["state"] == "done", job
    assert set(job["result"]["videos"]) == {"ladtalk", "wav2lip_only"}
    assert {"wav2lip", "sovqae", "encode"} <= set(job["result"]["timings"]["ladtalk"]["stage_seconds"])
    for name in ("ladtalk.mp4", "wav2lip_only.mp4"):
        status, video = s.call("GET", f"/api/jobs/{job['id']}/files/{name}")
        assert status == 200
        (tmp_path / name).write_bytes(video)
        info = probe_video(tmp_path / name)
        assert info.has_audio and info.frame_count == 25 and info.fps == pytest.approx(25.0)
        assert abs(len(load_audio(tmp_path / name)) / 16000 - 1.0) < 0.1


def test_a_failing_job_shows_the_clis_message(served):
    s = served["server"]
    status, up = s.upload(served["speech"], "audio", "speech.wav")
    # an identity crop size the SOVQAE cannot take is fine; a lip-sync 'model' that is a SOVQAE is not
    job = s.wait(s.submit(kind="generate", identity="synth", audio=up["id"], wav2lip="vq", sovqae="vq")["id"])
    assert job["state"] == "failed"
    assert job["error"].startswith("ladtalk generate: error: ") and "Traceback" not in job["error"]
    status, log = s.call("GET", f"/api/jobs/{job['id']}/log")
    assert status == 200 and isinstance(log, bytes)


def test_cancel_stops_the_work_and_leaves_nothing(served):
    s, data = served["server"], served["data"]
    uploads_before = sorted(os.listdir(data / "uploads"))
    job = s.submit(kind="prepare", name="cancel-me", synthetic=True, seconds=40)
    job_dir = data / "jobs" / job["id"]
    deadline = time.monotonic() + 600
    while (j := s.call("GET", f"/api/jobs/{job['id']}")[1])["progress"] is None:  # really working
        assert j["state"] in ("queued", "running") and time.monotonic() < deadline, j
        time.sleep(0.2)
    assert runner_pids(job_dir)
    status, j = s.call("POST", f"/api/jobs/{job['id']}/cancel")
    assert status == 200 and j["state"] == "cancelled"
    assert not runner_pids(job_dir)  # the process is gone, not just forgotten
    # only the record is left, so the job is still listed as cancelled after a restart
    assert os.listdir(job_dir) == ["record.json"] and not (data / "identities" / "cancel-me").exists()
    assert sorted(os.listdir(data / "uploads")) == uploads_before  # the synthetic video it was writing
    assert not _leftovers(data)


def test_bad_uploads_are_refused_and_leave_nothing(served, tmp_path):
    s, data = served["server"], served["data"]
    before = sorted(os.listdir(data / "uploads"))
    status, err = s.upload(b"<html>not a video</html>" * 10, "video", "clip.mp4")
    assert status == 400 and "content" in err["error"]
    status, err = s.upload(served["speech"], "video", "speech.mp4")  # real media, but no picture
    assert status == 400
    status, err = s.upload(b"\0" * (1024 * 1024 + 10), "video", "big.mp4")  # over --max-upload-mb 1
    assert status == 413 and "limit" in err["error"]
    chunks = (b"\0" * 65536 for _ in range(20))  # no Content-Length: the limit holds while streaming
    status, err = s.call("POST", "/api/uploads?kind=video", data=chunks,
                         headers={"Content-Type": "application/octet-stream"})
    assert status == 413
    assert sorted(os.listdir(data / "uploads")) == before
    # the client's file name is never used as a path
    status, up = s.upload(served["speech"], "audio", "../../escaped.wav")
    assert status == 201 and not list(tmp_path.parents[1].rglob("escaped.wav"))
    assert (data / "uploads" / f"{up['id']}.wav").is_file()


@pytest.mark.parametrize("body", [
    {"kind": "prepare", "name": "../evil", "synthetic": True},
    {"kind": "prepare", "name": "/tmp/evil", "synthetic": True},
    {"kind": "prepare", "name": ".hidden", "synthetic": True},
    {"kind": "generate", "identity": "../synth", "audio": "x", "wav2lip": "w2l"},
    {"kind": "generate", "identity": "synth", "audio": "../../etc/passwd", "wav2lip": "w2l"},
    {"kind": "analyze", "model": "/etc", "identity": "synth"},
    {"kind": "train", "identity": "synth", "name": "x", "preset": "/tmp/evil.yaml"},
    {"kind": "train", "identity": "synth", "name": "x", "overrides": ["model.ch=1"]},
])
def test_names_that_lead_out_of_the_data_folder_are_refused(served, body):
    status, err = served["server"].call("POST", "/api/jobs", body=body)
    assert status in (400, 404) and err["error"]
    assert not (served["root"] / "evil").exists()


def _raw_get(server: Served, path: str, headers=None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", path, headers=headers or {})  # sent as is: no client-side '..' clean-up
    status = conn.getresponse().status
    conn.close()
    return status


def test_paths_and_symlinks_in_urls_are_refused(served, tmp_path):
    s, data = served["server"], served["data"]
    job_id = served["prepare"]["id"]
    assert _raw_get(s, f"/api/jobs/{job_id}/files/../../../../etc/passwd") in (400, 404)
    assert _raw_get(s, "/api/identities/..%2F..%2Fetc") in (400, 404)
    assert _raw_get(s, "/static/../../../../etc/passwd") in (400, 404)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "identity.json").write_text("{}")
    (data / "identities" / "linked").symlink_to(outside)
    try:
        assert _raw_get(s, "/api/identities/linked") == 400
        assert "linked" not in [i["name"] for i in s.call("GET", "/api/identities")[1]]
    finally:
        (data / "identities" / "linked").unlink()


def test_foreign_hosts_and_cross_site_writes_are_refused(served):
    s = served["server"]
    assert _raw_get(s, "/api/info", {"Host": "attacker.example"}) == 403  # DNS rebinding
    status, err = s.call("POST", "/api/jobs", body={"kind": "prepare", "name": "x", "synthetic": True},
                         headers={"Origin": "http://attacker.example"})
    assert status == 403


def test_token(tmp_path):
    server = Served(tmp_path / "data", "--token", "s3cret")
    try:
        assert server.call("GET", "/api/info")[0] == 401
        assert server.call("GET", "/api/info", headers={"Authorization": "Bearer s3cret"})[0] == 200
        assert server.call("GET", "/?token=s3cret")[0] == 200
    finally:
        server.stop()


def test_network_listening_needs_a_token(tmp_path, capsys):
    from ladtalk.cli import main

    assert main(["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path / "d")]) == 2
    assert "--token" in capsys.readouterr().err


def test_stop_training_keeps_a_checkpoint_and_resumes(served):
    s, data = served["server"], served["data"]
    overrides = ["train.val_every=1000", "train.log_every=1", "train.val_frames=4"]
    job = s.submit(kind="train", name="stopped", identity="synth", preset="tiny",
                   overrides=overrides + ["train.max_steps=1000"])
    deadline = time.monotonic() + 600
    while not ((j := s.call("GET", f"/api/jobs/{job['id']}")[1])["progress"] or {}).get("n"):
        assert j["state"] in ("queued", "running") and time.monotonic() < deadline, j
        time.sleep(0.2)
    status, j = s.call("POST", f"/api/jobs/{job['id']}/cancel")
    assert j["state"] == "cancelled"
    status, model = s.call("GET", "/api/models/stopped")
    assert model["state"] == "stopped" and (data / "models" / "stopped" / "checkpoints" / "last").is_dir()
    assert not _leftovers(data / "models")
    step = int(json.loads((data / "models" / "stopped" / "checkpoints" / "last" / "config.json").read_text())
               ["extra"]["step"])
    assert step >= 1
    job = s.wait(s.submit(kind="train", name="stopped", identity="synth", preset="tiny",
                          overrides=overrides + [f"train.max_steps={step + 1}"])["id"])
    assert job["state"] == "done" and job["title"].startswith("resume")
    status, model = s.call("GET", "/api/models/stopped")
    assert model["state"] == "trained" and model["step"] == step + 1
