"""The parts of `ladtalk serve` that decide what a request may touch, tested without a server."""

from __future__ import annotations

import pytest

from ladtalk.errors import InputError
from ladtalk.serve.paths import DataDir, NotFound, check_name
from ladtalk.serve.uploads import sniff


@pytest.mark.parametrize("name", ["..", "../x", "a/b", "/etc", ".hidden", "", "a" * 65, "a\0b", "a b", "x..y", 3])
def test_names_that_are_not_plain_names_are_refused(name):
    with pytest.raises(InputError, match="not a valid name"):
        check_name(name, "identity")


@pytest.mark.parametrize("name", ["alice", "alice-1.v2", "A_b", "0"])
def test_plain_names_pass(name):
    assert check_name(name, "identity") == name


def test_a_symlink_inside_the_data_folder_cannot_lead_out(tmp_path):
    data = DataDir(tmp_path / "data")
    (tmp_path / "outside").mkdir()
    (data.folder("identities") / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(InputError, match="outside"):
        data.inside("identities", "link")
    with pytest.raises(NotFound):
        data.inside("identities", "missing")
    with pytest.raises(NotFound):
        data.upload("0123456789abcdef")


@pytest.mark.parametrize("head,ext", [
    (b"\0\0\0\x20ftypisom\0\0\2\0", ".mp4"),
    (b"\0\0\0\x14ftypqt  \0\0\0\0", ".mov"),
    (b"\0\0\0\x20ftypM4A \0\0\0\0", ".m4a"),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", ".webm"),
    (b"RIFF\x24\0\0\0WAVEfmt ", ".wav"),
    (b"RIFF\x24\0\0\0AVI LIST", ".avi"),
    (b"OggS\0\2\0\0\0\0\0\0", ".ogg"),
    (b"fLaC\0\0\0\x22", ".flac"),
    (b"ID3\4\0\0\0\0\0\0", ".mp3"),
    (b"PK\x03\x04\0\0\0\0", ".pth"),
])
def test_containers_are_recognised_by_their_first_bytes(head, ext):
    assert sniff(head) == ext


@pytest.mark.parametrize("head", [b"#EXTM3U\n#EXT-X-", b"<html><body>", b"\x7fELF\2\1\1\0", b"ffconcat version",
                                  b"file '/etc/passwd'", b""])
def test_playlists_and_other_files_are_not_media(head):
    assert sniff(head) is None  # never handed to FFmpeg, which could follow a playlist to other files


def _faststart_mp4(path, seconds: float = 4.0, fps: int = 25):
    """An MP4 with its index (moov) before the data, as web videos are: a copy cut short still opens with the
    full length in its header."""
    import av
    import numpy as np

    with av.open(str(path), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        rng = np.random.default_rng(0)
        for _ in range(int(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def test_a_whole_upload_reports_its_length(tmp_path):
    from ladtalk.serve.uploads import media_facts

    facts = media_facts(_faststart_mp4(tmp_path / "whole.mp4"), "video")
    assert facts["seconds"] == pytest.approx(4.0, abs=0.1) and facts["has_video"]


def test_a_video_cut_short_is_refused_by_reading_it(tmp_path):
    from ladtalk.serve.uploads import media_facts

    whole = _faststart_mp4(tmp_path / "whole.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match=r"cut short: its header announces 4\.0 s but its data end after"):
        media_facts(cut, "video")


def test_unreadable_media_is_described_without_paths_or_error_numbers(tmp_path):
    from ladtalk.serve.uploads import media_facts

    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\0\0\0\x20ftypisom\0\0\2\0" + bytes(range(256)) * 40)
    with pytest.raises(InputError) as info:
        media_facts(junk, "video")
    message = str(info.value)
    assert "not readable video" in message and str(tmp_path) not in message and "rrno" not in message


def test_messages_for_the_page_hide_the_data_folder_and_errno(tmp_path):
    from ladtalk.serve.paths import public_message

    text = f"[Errno 2] No such file or directory: '{tmp_path}/uploads/ab.wav'"
    assert public_message(text, tmp_path) == "No such file or directory: 'DATA/uploads/ab.wav'"


def _record(data, job_id: str, **fields) -> None:
    import json

    from ladtalk.serve.jobs import Job

    job_dir = data.folder("jobs") / job_id
    (job_dir / "out").mkdir(parents=True)
    job = Job(job_id, fields.pop("kind", "prepare"), "a job", {}, dir=job_dir, **fields)
    job.save()
    assert json.loads((job_dir / "record.json").read_text())["state"] == job.state


def test_a_new_server_finds_the_jobs_of_the_last_one(tmp_path):
    import json

    from ladtalk.serve.jobs import JobManager

    data = DataDir(tmp_path / "data")
    half_written = data.folder("uploads") / "0123456789abcdef.mp4"
    half_written.write_bytes(b"x")
    _record(data, "aaaa", state="running", owned=[str(half_written)])  # the server died while it ran
    _record(data, "bbbb", state="queued", kind="train")
    _record(data, "cccc", state="done", result={"videos": {}})
    old = data.folder("jobs") / "cccc" / "record.json"  # written by a version with a field since removed
    old.write_text(json.dumps({**json.loads(old.read_text()), "interrupt_first": False}))
    # it had finished, the server died before it stored the result: stored now, its folder moved in place
    _record(data, "dddd", state="running", moves=[[str(data.folder("jobs") / "dddd" / "out" / "identity"),
                                                    str(data.folder("identities") / "made")]])
    (data.folder("jobs") / "dddd" / "out" / "identity").mkdir()
    (data.folder("jobs") / "dddd" / "result.json").write_text(json.dumps({"identity": "made"}))
    (data.folder("jobs") / "ffff").mkdir()  # a job that never got a record: nothing to show

    jobs = {j.id: j for j in JobManager(data, devices=[]).list()}
    assert set(jobs) == {"aaaa", "bbbb", "cccc", "dddd"}
    assert jobs["aaaa"].state == "interrupted" and "while this job was running" in jobs["aaaa"].error
    assert not half_written.exists()
    assert jobs["bbbb"].state == "interrupted" and "resume it" in jobs["bbbb"].error
    assert jobs["cccc"].state == "done"
    assert jobs["dddd"].state == "done" and (data.folder("identities") / "made").is_dir()
    assert not (data.folder("jobs") / "ffff").exists()
    again = {j.id: j.state for j in JobManager(data, devices=[]).list()}  # and so on for the next server
    assert again == {"aaaa": "interrupted", "bbbb": "interrupted", "cccc": "done", "dddd": "done"}
