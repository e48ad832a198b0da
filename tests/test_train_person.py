"""`ladtalk train person`: one command from a real person's video to their models, CI-sized (the tiny recipe)."""

import json
from pathlib import Path

import pytest

from ladtalk import cli, generate, train_person
from ladtalk.errors import InputError
from ladtalk.io.video import probe_video
from ladtalk.train.person import summarize

MAY = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "video" / "may_5s_real3dportrait.mp4"


@pytest.fixture(scope="module")
def may():
    if not MAY.is_file():
        pytest.skip(f"the May clip is not here ({MAY}): it lives in the project's shared data, not the repository")
    return MAY.resolve()


def test_video_to_models_end_to_end_then_a_rerun_skips_every_stage(may, tmp_path, capsys):
    run = tmp_path / "run"
    summary = train_person(may, run, recipe="tiny", device="cpu", threads=1)
    err = capsys.readouterr().err
    assert "ladtalk train person" in err and "sovqae   tiny, 4 steps" in err  # the plan, up front
    for stage in ("syncnet", "wav2lip", "sovqae"):
        assert (run / stage / "model" / "model.safetensors").is_file()
    assert summary["sovqae"] == str(run / "sovqae" / "model") and summary["wav2lip"] == str(run / "wav2lip" / "model")
    assert summary["stages"]["prepare"]["frames with a face"] == summary["stages"]["prepare"]["frames"] == 125
    assert summary["stages"]["syncnet"]["steps"] == 3 and "best validation loss" in summary["stages"]["syncnet"]
    assert "lip-sync faces restored (PSNR dB)" in summary["stages"]["sovqae"]
    # whether 3 steps switch the sync loss on depends on the initial weights; the summary says which, and warns if not
    sync_on = summary["stages"]["wav2lip"]["sync loss on"]
    assert sync_on in (True, False) and sync_on != any("sync loss never switched on" in w for w in summary["warnings"])
    assert json.loads((run / "summary.json").read_text())["stages"] == summary["stages"]
    assert "== ladtalk train person" in err and "ladtalk generate --identity" in err
    assert all(f"warning: {w}" in err for w in summary["warnings"])
    # the summary's paths are what `generate` takes (the person's own speech drives them here)
    generate(summary["identity"], run / "identity" / "audio.wav", tmp_path / "out.mp4", summary["wav2lip"],
             summary["sovqae"], device="cpu")
    assert probe_video(tmp_path / "out.mp4").frame_count == 125

    # a lost export (an interrupted end of the last stage): the rerun does only that, from its checkpoint
    model = run / "sovqae" / "model" / "model.safetensors"
    model.unlink()
    again = train_person(may, run, recipe="tiny", device="cpu", threads=1)
    err = capsys.readouterr().err
    assert "[syncnet] done before" in err and "[wav2lip] done before" in err and model.is_file()
    assert again["stages"]["sovqae"].keys() == summary["stages"]["sovqae"].keys()

    with pytest.raises(InputError, match="other options.*recipe: tiny -> cpu"):
        train_person(may, run, recipe="cpu", device="cpu")
    # a generator whose sync loss never switched on is said plainly
    meta = run / "wav2lip" / "model" / "config.json"
    config = json.loads(meta.read_text())
    meta.write_text(json.dumps({**config, "extra": {**config["extra"], "sync_loss_on": False}}))
    assert any("sync loss never switched on" in w for w in summarize(run, run / "wav2lip" / "model", 1.0)["warnings"])


def test_bad_input_is_refused_before_anything_is_written(may, tmp_path, capsys):
    with pytest.raises(InputError, match="destroy"):
        train_person(may, may.parent, recipe="tiny", device="cpu")  # the output would hold the video
    with pytest.raises(InputError, match="not a file"):
        train_person(tmp_path / "missing.mp4", tmp_path / "run", recipe="tiny", device="cpu")
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(InputError, match="not a media file"):
        train_person(tmp_path / "notes.mp4", tmp_path / "run", recipe="tiny", device="cpu")
    with pytest.raises(InputError, match="--wav2lip .* does not exist"):
        train_person(may, tmp_path / "run", wav2lip_path=tmp_path / "w.pth", recipe="tiny", device="cpu")
    with pytest.raises(InputError, match="sized for a GPU.*--recipe cpu"):
        train_person(may, tmp_path / "run", recipe="gpu", device="cpu")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(InputError, match="not a `ladtalk train person` run"):
        train_person(may, tmp_path / "mine", recipe="tiny", device="cpu")
    assert not (tmp_path / "run").exists() and [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    assert cli.main(["train", "person", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "run"),
                     "--recipe", "tiny"]) == 2
    assert "not a file" in capsys.readouterr().err


def test_behind_the_shipped_base_the_restorer_learns_its_faces_only(may, tmp_path):
    summary = train_person(may, tmp_path / "run", wav2lip_path="builtin", recipe="tiny", device="cpu", threads=1)
    assert "syncnet" not in summary["stages"] and "wav2lip" not in summary["stages"]  # no lip-sync training
    train = json.loads((Path(summary["sovqae"]) / "config.json").read_text())["extra"]["train"]
    assert train["lipsync_share"] == 1.0 and train["lipsync_patch_lower"] is False
