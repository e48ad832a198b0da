"""`ladtalk serve`: results and uploads are first-class. A finished job's video is enhanced or evaluated in
place, uploads and jobs are listed and deleted (not while a job reads them), the disk use is reported, and the
lip-sync base (expert, then generator) trains through the API like the CLI's `train syncnet` / `train wav2lip`."""

from __future__ import annotations

import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed: pip install 'ladtalk[serve]'")
pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install 'ladtalk[serve]'")

from _serve_helpers import shared_server  # noqa: E402


@pytest.fixture(scope="session")
def served(tmp_path_factory, request):
    return shared_server(tmp_path_factory, request)


def test_a_result_is_enhanced_and_evaluated_in_place(served):
    s = served["server"]
    status, up = s.upload(served["speech"], "audio", "speech.wav")
    # the random-weight lip-sync model's faces are no faces to a detector: pasted on the mouth only
    gen = s.wait(s.submit(kind="generate", identity="synth", audio=up["id"], wav2lip="w2l", paste="mouth",
                          temporal_filter=True)["id"])
    assert gen["state"] == "done", gen
    assert "temporal" in gen["result"]["timings"]["wav2lip_only"]["stage_seconds"]
    status, err = s.call("POST", "/api/jobs", body={"kind": "generate", "identity": "synth", "audio": up["id"],
                                                    "wav2lip": "w2l", "temporal_filter": "yes"})
    assert status == 400 and "temporal_filter" in err["error"], err
    ref = f"{gen['id']}/wav2lip_only.mp4"
    enh = s.wait(s.submit(kind="enhance", video=ref, sovqae="vq")["id"])
    assert enh["state"] == "done", enh
    assert "wav2lip_only.mp4 of job" in enh["title"] and "/" not in enh["title"].split(" of job")[0][8:]
    ev = s.wait(s.submit(kind="evaluate", pred=f"{enh['id']}/enhanced.mp4", gt=ref, align="frames",
                             max_frames=4)["id"])  # LPIPS on a CPU: seconds a frame
    assert ev["state"] == "done", ev
    assert ev["result"]["metrics"]

    for bad, status_code in ((f"{gen['id']}/missing.mp4", 404), (f"{gen['id']}/../../uploads/x", 400),
                             ("0123456789abcdef/ladtalk.mp4", 404)):
        status, err = s.call("POST", "/api/jobs", body={"kind": "enhance", "video": bad, "sovqae": "vq"})
        assert status == status_code and err["error"], (bad, err)


def test_uploads_and_jobs_are_listed_deleted_and_counted(served):
    s, data = served["server"], served["data"]
    status, up = s.upload(served["speech"], "audio", "to-delete.wav")
    listed = {u["id"]: u for u in s.call("GET", "/api/uploads")[1]}
    assert listed[up["id"]]["name"] == "to-delete.wav" and listed[up["id"]]["seconds"] == pytest.approx(1.0, abs=0.05)

    job = s.submit(kind="generate", identity="synth", audio=up["id"], wav2lip="w2l")
    status, err = s.call("DELETE", f"/api/uploads/{up['id']}")  # the job is queued or running: it reads it
    assert status == 400 and "input of a queued or running job" in err["error"]
    status, err = s.call("DELETE", f"/api/jobs/{job['id']}")
    assert status == 400 and "cancel it first" in err["error"]
    assert s.wait(job["id"])["state"] == "done"

    status, disk = s.call("GET", "/api/disk")
    assert disk["items"]["jobs"][job["id"]] > 1000 and disk["items"]["uploads"][up["id"]] > 1000
    assert disk["folders"]["identities"] > 0 and disk["free"] > 0

    assert s.call("DELETE", f"/api/uploads/{up['id']}") == (200, {"deleted": up["id"]})
    assert up["id"] not in [u["id"] for u in s.call("GET", "/api/uploads")[1]]
    assert not list((data / "uploads").glob(f"*{up['id']}*"))  # the file and its record
    assert s.call("DELETE", f"/api/jobs/{job['id']}") == (200, {"deleted": job["id"]})
    assert s.call("GET", f"/api/jobs/{job['id']}")[0] == 404 and not (data / "jobs" / job["id"]).exists()

    source = next(i["source"] for i in s.call("GET", "/api/identities")[1] if i["name"] == "synth")
    status, err = s.call("DELETE", f"/api/uploads/{source.split('.')[0]}")
    assert status == 400 and "identity 'synth' was prepared from" in err["error"]

    status, overview = s.call("GET", "/api/overview")
    assert set(overview) == {"jobs", "identities", "models", "uploads", "builtin"}
    assert [b["name"] for b in overview["builtin"]] == ["builtin:synthetic-48"]  # the shipped lip-sync base
    assert "synth" in [i["name"] for i in overview["identities"]] and "w2l" in [m["name"] for m in overview["models"]]


def test_the_lipsync_base_trains_and_lip_syncs(served):
    s = served["server"]
    status, info = s.call("GET", "/api/info")
    assert "restore-cpu" in info["presets"]["sovqae"] and "identity" in info["presets"]["lipsync"]
    fast = ["train.max_steps=2", "train.eval_every=2", "train.log_every=1", "train.batch_size=4"]
    job = s.wait(s.submit(kind="train", component="lipsync", name="lip", identity="synth", preset="tiny",
                          overrides=fast)["id"])
    assert job["state"] == "done", job
    models = {m["name"]: m for m in s.call("GET", "/api/models")[1]}
    assert models["lip"]["kind"] == "wav2lip" and models["lip"]["state"] == "trained"
    assert models["lip-expert"]["kind"] == "syncnet_expert" and models["lip-expert"]["state"] == "trained"
    status, up = s.upload(served["speech"], "audio", "speech.wav")
    gen = s.wait(s.submit(kind="generate", identity="synth", audio=up["id"], wav2lip="lip")["id"])
    assert gen["state"] == "done", gen

    status, err = s.call("POST", "/api/jobs", body={"kind": "train", "component": "sovqae", "name": "lip",
                                                   "identity": "synth"})
    assert status == 400 and "not a SOVQAE training run" in err["error"]
    status, err = s.call("POST", "/api/jobs", body={"kind": "train", "component": "syncnet", "name": "x",
                                                   "identity": "synth", "preset": "tiny"})
    assert status == 400 and "syncnet-tiny" in err["error"]
