"""Many synthetic speakers: distinct people as identity folders, deterministic by seed, resumable."""

import numpy as np
import pytest

from ladtalk.data.identity import Identity
from ladtalk.data.speakers import synthetic_speakers
from ladtalk.errors import InputError


def test_speakers_are_distinct_people_and_a_rerun_keeps_them(tmp_path):
    folders = synthetic_speakers(tmp_path, count=2, seconds=1.2, device="cpu")
    assert [f.parent.name for f in folders] == ["speaker_100", "speaker_101"]
    a, b = (Identity.open(f) for f in folders)
    assert a.has_face.all() and b.has_face.all()
    # different faces and different speech
    assert np.abs(a.crops[0].astype(int) - b.crops[0].astype(int)).mean() > 10
    assert not np.allclose(a.audio()[:16000], b.audio()[:16000])
    stamps = [(f / "identity.json").stat().st_mtime_ns for f in folders]
    assert synthetic_speakers(tmp_path, count=2, seconds=1.2, device="cpu") == folders
    assert [(f / "identity.json").stat().st_mtime_ns for f in folders] == stamps  # kept, not made again


def test_no_speakers_is_refused(tmp_path):
    with pytest.raises(InputError, match="at least 1"):
        synthetic_speakers(tmp_path, count=0)
