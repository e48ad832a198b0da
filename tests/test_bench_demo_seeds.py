"""bench/demo_seeds.py: every figure of several demo runs as mean, min and max, and a table of them."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import demo_seeds  # noqa: E402


def _summary(psnr: float, gain: float) -> dict:
    rows = {"wav2lip_mouth": {"face_psnr_db": psnr, "lipsync_r": 0.7},
            "cascade_mouth": {"face_psnr_db": psnr + gain, "lipsync_r": 0.72}}
    return {"scores": rows, "gains": {"cascade_mouth": {"face_psnr_gain_db": gain}}, "pastes": ["mouth"],
            "rows": {"wav2lip_mouth": "Wav2Lip only, mouth paste", "cascade_mouth": "cascade, mouth paste"},
            "frames": 200, "seconds": 360.0, "lipsync_base": "built-in synthetic-48",
            "provenance": {"commit": "abcdef1234567", "precision": "bf16", "threads": 2, "cpu": "Xeon",
                           "cpu_flags": ["avx2"], "torch": "2.13"}}


def test_two_seeds_give_mean_and_spread_of_every_figure():
    summaries = [_summary(29.0, 1.0), _summary(31.0, 0.5)]
    agg = demo_seeds.aggregate(summaries)
    assert agg["rows"]["wav2lip_mouth"]["face_psnr_db"] == {"mean": 30.0, "min": 29.0, "max": 31.0}
    assert agg["gains"]["cascade_mouth"]["face_psnr_gain_db"]["mean"] == 0.75
    table = demo_seeds.markdown(agg, summaries, [0, 1])
    assert "| face_psnr_db | 30 (29-31) | 30.8 (30-31.5) |" in table and "face_psnr_gain_db 0.75 (0.5-1)" in table
