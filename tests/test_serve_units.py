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
