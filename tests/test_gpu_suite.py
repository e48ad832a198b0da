"""bench/gpu_suite.py proven on the CPU before any GPU minute is spent on it: its dry run measures every part and
writes the JSON, the Markdown and the PNG strips within what the device tool brings back; a part stopped at its
budget keeps what it had measured; bad arguments stop before anything is written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "bench" / "gpu_suite.py"
sys.path.insert(0, str(ROOT / "bench"))

import gpu_carry_check  # noqa: E402
import gpu_suite  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_suite(out: Path, work: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return subprocess.run([sys.executable, str(SUITE), "--dry-run", "--out", str(out), "--work", str(work), *args],
                          capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="module")
def dry_run(synthetic_clip, tmp_path_factory):
    """One dry run of every part on the synthetic clip (tiny presets, a couple of steps per trainer)."""
    base = tmp_path_factory.mktemp("gpu_suite")
    proc = run_suite(base / "out", base / "work", "--video", str(synthetic_clip.video_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return base / "out", json.loads((base / "out" / "gpu_suite.json").read_text())


@pytest.mark.slow
def test_dry_run_measures_every_part(dry_run):
    _, results = dry_run
    parts = results["parts"]
    assert {n: p["status"] for n, p in parts.items()} == {n: "ok" for n in gpu_suite.PARTS}
    env = parts["environment"]["figures"]
    assert env["torch"]["version"] and env["cuda_available"] is False and env["matmul"]["tflops"] > 0
    assert env["packages"]["ladtalk_mel"] == "ok"  # librosa (and its numba) work for the mel front end
    assert parts["prepare"]["figures"]["identity"]["faces_found"] == 100

    train = parts["train"]["figures"]
    assert not train.get("not_run")
    assert sorted((r["batch"], r["compile"]) for r in train["rows"]) == [(2, "eager"), (2, "off"), (4, "eager"),
                                                                         (4, "off")]
    for row in train["rows"]:
        assert row["images_per_s"] > 0 and row["timed_steps"] >= 2 and row["achieved_tflops"] >= 0

    infer = parts["infer"]["figures"]
    assert [r["fps"] > 0 for r in infer["sovqae_microbench"]] == [True] * 4
    assert sorted((r["audio_s"], r["mode"]) for r in infer["rows"]) == [(1.0, "ladtalk"), (1.0, "naive"),
                                                                        (2.0, "ladtalk"), (2.0, "naive")]
    for row in infer["rows"]:
        assert row["end_to_end_fps"] > 0
        assert {"decode_fps", "mel_fps", "wav2lip_fps", "sovqae_fps", "paste_fps", "encode_fps"} <= set(row)
    assert {"speedup_vs_naive_1s", "speedup_vs_naive_2s", "memory"} <= set(infer["summary"])

    restore = parts["restore"]["figures"]
    assert restore["syncnet"]["extra"]["steps"] == 2 and restore["wav2lip"]["extra"]["steps"] == 2
    assert restore["sovqae"]["extra"]["step"] == 2
    assert restore["analyze"]["theory"]["codes"]["d_C"] > 0 and len(restore["analyze"]["experiments"]) > 5
    assert restore["reenact"]["status"] == "ok" and set(restore["reenact"]["report"]["scores"]) == {
        "wav2lip_mouth", "cascade_mouth", "crop_ceiling_mouth"}
    assert restore["sovqae"]["last_images_per_s"] > 0  # the real training loop's own rate, beside train's


@pytest.mark.slow
def test_dry_run_output_fits_what_the_device_tool_returns(dry_run):
    out, results = dry_run
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted(results["suite"]["out_files"]) and not results["suite"]["out_problems"]
    assert set(files) == {"gpu_suite.json", "gpu_suite.md", "suite.log", "inference_strip.png",
                          "restoration_strip.png", "reenact_strip.png"}
    assert len(files) <= 8 and all((out / f).stat().st_size < 16 * 2**20 for f in files)
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == PNG_MAGIC
    md = (out / "gpu_suite.md").read_text()
    for heading in ("## Targets", "## Environment", "## Training throughput", "## Inference", "## Restoration",
                    "Self-reenactment"):
        assert heading in md
    assert "| tiny | 4 |" in md  # the training table holds the measured rows


def test_a_part_stopped_at_its_budget_keeps_what_it_measured(tmp_path):
    budget = 6
    t0 = time.monotonic()
    proc = run_suite(tmp_path / "out", tmp_path / "work", "--parts", "environment", "--stall-part", "environment",
                     "--budget", f"environment={budget}", timeout=120)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 1, proc.stderr[-2000:]
    part = json.loads((tmp_path / "out" / "gpu_suite.json").read_text())["parts"]["environment"]
    assert part["status"] == "killed at budget"
    assert part["figures"]["python"] == sys.version.split()[0]  # recorded before the part hung
    assert "cuda_available" not in part["figures"]
    assert elapsed < budget + 30
    assert not alive(part["pid"])  # the hung part's process is gone, not left running
    assert "killed at budget" in (tmp_path / "out" / "gpu_suite.md").read_text()


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def wait_for(condition, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_stopped_suite_leaves_its_figures_and_no_part_running(tmp_path, sig):
    out, work = tmp_path / "out", tmp_path / "work"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    suite = subprocess.Popen([sys.executable, str(SUITE), "--dry-run", "--out", str(out), "--work", str(work),
                              "--parts", "environment", "--stall-part", "environment", "--budget",
                              "environment=300"], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        part_file = work / "parts" / "environment.json"
        assert wait_for(lambda: "python" in gpu_suite.read_part_file(part_file).get("figures", {}), 120)
        pid = gpu_suite.read_part_file(part_file)["pid"]
        assert wait_for(lambda: (out / "gpu_suite.json").exists(), 30)  # rewritten while the part runs
        suite.send_signal(sig)
        suite.wait(timeout=60)
        assert wait_for(lambda: not alive(pid), 30), "the part outlived the suite"
    finally:
        if suite.poll() is None:
            suite.kill()
    results = json.loads((out / "gpu_suite.json").read_text())
    assert results["parts"]["environment"]["figures"]["python"] == sys.version.split()[0]
    if sig == signal.SIGTERM:  # a stop the suite can handle: it says so and exits as `timeout` does
        assert suite.returncode == 124 and "SIGTERM" in results["suite"]["stopped"]
        assert results["parts"]["environment"]["status"] == "stopped with the suite (SIGTERM)"


def test_without_a_gpu_the_real_run_stops_after_the_environment(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the real run would not stop")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.run([sys.executable, str(SUITE), "--out", str(tmp_path / "out"), "--work", str(tmp_path / "w"),
                           "--parts", "environment,prepare", "--video", str(SUITE)],
                          capture_output=True, text=True, env=env, timeout=300)
    results = json.loads((tmp_path / "out" / "gpu_suite.json").read_text())
    assert proc.returncode == 1 and "no CUDA device" in results["suite"]["aborted"]
    assert results["parts"]["environment"]["figures"]["cuda_available"] is False
    assert "prepare" not in results["parts"]  # no CPU minutes spent pretending to measure a GPU


def test_train_cases_that_cannot_fit_are_listed_not_started(tmp_path):
    import gpu_parts
    import gpu_train

    a = gpu_suite.parse_args(["--out", str(tmp_path / "out"), "--work", str(tmp_path / "w"), "--train-presets",
                              "paper-256", "paper-512"])
    rec = gpu_parts.Recorder(tmp_path / "train.json")
    gpu_train.part_train(a, rec, deadline=time.time() + 20)  # less than any case needs
    figures = json.loads((tmp_path / "train.json").read_text())["figures"]
    assert "rows" not in figures
    assert [(r["preset"], r["batch"], r["compile"]) for r in figures["not_run"]] == [
        ("paper-256", 16, False), ("paper-256", 64, False), ("paper-256", 64, True), ("paper-512", 4, False),
        ("paper-512", 16, False), ("paper-512", 16, True), ("paper-256", 16, True), ("paper-512", 4, True)]


def test_missing_perceptual_weights_time_the_same_layout_and_say_so(monkeypatch):
    import gpu_train

    import ladtalk.losses.perceptual as perceptual
    from ladtalk.errors import InputError
    from ladtalk.models.perceptual import PerceptualDistance

    def no_weights(kind, device):
        raise InputError("no weight files here")

    monkeypatch.setattr(perceptual, "build_perceptual", no_weights)
    net, name = gpu_train.perceptual_for("auto", "cpu")
    assert isinstance(net, PerceptualDistance) and "random weights" in name and "speed only" in name
    assert not net.training and not any(p.requires_grad for p in net.parameters())


def test_bad_arguments_stop_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "out"
    code = gpu_suite.main(["--dry-run", "--out", str(out), "--work", str(tmp_path / "w"), "--video",
                           str(tmp_path / "missing.mp4")])
    assert code == 2 and "missing.mp4" in capsys.readouterr().err and not out.exists()
    code = gpu_suite.main(["--dry-run", "--out", str(out), "--parts", "environment,speed"])
    assert code == 2 and "speed" in capsys.readouterr().err and not out.exists()
    code = gpu_suite.main(["--dry-run", "--out", str(out), "--work", str(out / "work"), "--parts", "environment"])
    assert code == 2 and "must not lie inside" in capsys.readouterr().err and not out.exists()


def test_trimmed_log_keeps_its_head_and_tail(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_suite, "LOG_KEEP_HEAD", 10)
    monkeypatch.setattr(gpu_suite, "LOG_KEEP_TAIL", 20)
    log = tmp_path / "suite.log"
    log.write_bytes(b"H" * 10 + b"~" * 1000 + b"T" * 20)
    gpu_suite.trim_log(log)
    text = log.read_text()
    assert text.startswith("H" * 10) and text.endswith("T" * 20) and "~" not in text and "1000 bytes" in text


def test_out_folder_check_names_what_would_not_come_back(tmp_path):
    for k in range(9):
        (tmp_path / f"f{k}.png").write_bytes(b"x")
    (tmp_path / "big.json").write_bytes(b"x" * (16 * 2**20 + 1))
    problems = gpu_suite.check_out_files(tmp_path)
    assert any("big.json" in p for p in problems) and any("10 files" in p for p in problems)


def test_carry_check_wants_exactly_the_listed_wheels(tmp_path, monkeypatch):
    wanted = gpu_carry_check.wanted_wheels()
    assert wanted["av"] and wanted["librosa"] and "numba" not in wanted  # the GPU machine has its own numba
    for name, version in wanted.items():
        (tmp_path / f"{name}-{version}-py3-none-any.whl").write_bytes(b"")
    assert gpu_carry_check.wheel_problems(tmp_path) == []
    (tmp_path / "av-17.0.0-cp311-abi3-manylinux_2_28_x86_64.whl").write_bytes(b"")
    (tmp_path / f"soxr-{wanted['soxr']}-py3-none-any.whl").unlink()
    problems = gpu_carry_check.wheel_problems(tmp_path)
    assert any("av: 2 versions" in p for p in problems) and any("soxr" in p and "missing" in p for p in problems)
