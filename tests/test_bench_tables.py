"""bench/tables.py: the result tables come from the JSON, figures with their intervals, and --check sees drift."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import tables  # noqa: E402


def _results(folder: Path) -> Path:
    folder.mkdir()
    report = {"scores": {"wav2lip_mouth": {"face_psnr_db": 30.123456, "ci95": {"face_psnr_db": [29.5, 30.7]}},
                         "cascade_mouth": {"face_psnr_db": 30.6, "ci95": {"face_psnr_db": [30.0, 31.2]}}},
              "gains": {"cascade_mouth": {"face_psnr_gain_db": 0.48, "ci95": {"face_psnr_gain_db": [0.2, 0.7]}}},
              "provenance": {"commit": "abc123", "precision": "fp32", "threads": 2, "cpu": "Xeon",
                             "cpu_flags": ["avx2"], "torch": "2.x"}}
    (folder / "reenact_x.json").write_text(json.dumps(report))
    (folder / "study_x.json").write_text(json.dumps({"environment": {"git_commit": "def456"},
                                                     "rows": [{"variant": "a", "face_psnr_gain_db": 0.25}]}))
    (folder / "speed_only.json").write_text(json.dumps({"environment": {}, "threads": 2}))
    return folder


def test_tables_hold_the_json_figures_with_intervals_and_provenance(tmp_path):
    text = tables.render(_results(tmp_path / "results"))
    assert "| face_psnr_db | 30.12 [29.5, 30.7] | 30.6 [30, 31.2] |" in text
    assert "| face_psnr_gain_db | 0.48 [0.2, 0.7] |" in text and "| a | 0.25 |" in text
    assert "commit abc123; precision fp32; threads 2; cpu Xeon; torch 2.x; flags avx2" in text
    assert "commit def456" in text and "speed_only.json" not in text  # no quality figures: no section


def test_check_sees_a_table_that_drifted_from_its_json(tmp_path):
    results, out = _results(tmp_path / "results"), tmp_path / "tables.md"
    assert tables.main(["--results", str(results), "--out", str(out)]) == 0
    assert tables.main(["--results", str(results), "--out", str(out), "--check"]) == 0
    out.write_text(out.read_text().replace("30.12", "31.12"))  # a figure edited by hand
    assert tables.main(["--results", str(results), "--out", str(out), "--check"]) == 1


def test_the_committed_tables_match_the_committed_json():
    assert tables.main(["--check"]) == 0, "run python bench/tables.py after changing bench/results/*.json"
