"""Take the README's screenshots of `ladtalk serve`: the whole workflow clicked through in headless chromium.

    python docs/serve/make_screenshots.py --work /tmp/ladtalk-shots \
        --wav2lip src/ladtalk/pretrained/synthetic-48/wav2lip --sovqae demo_out/runs/sovqae/model

writes docs/serve/*.png (CPU, 15-30 min).

A synthetic identity is uploaded and prepared on the page, a SOVQAE is trained and analysed on the page, a small
lip-sync expert and Wav2Lip are trained in this script meanwhile (the page runs lip-sync weights, it does not
train them), then the page generates from new speech, enhances a blurred copy of the person's video and
evaluates the repair against the clean video.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from playwright.sync_api import sync_playwright

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"
sys.path.insert(0, str(SRC))

from ladtalk.data.synthetic import synthesize  # noqa: E402
from ladtalk.data.synthetic_speech import synth_speech  # noqa: E402
from ladtalk.io.audio import load_audio, write_wav  # noqa: E402
from ladtalk.io.video import VideoWriter, iter_frames, probe_video  # noqa: E402
from ladtalk.train.syncnet import train_syncnet  # noqa: E402
from ladtalk.train.wav2lip import train_wav2lip  # noqa: E402


def start_server(data_dir: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, "-m", "ladtalk", "serve", "--data-dir", str(data_dir), "--port",
                             str(port), "--device", "cpu"], env=env)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server did not start")


def blurred_copy(src: Path, dst: Path, factor: int = 4) -> Path:
    """The video with its detail removed (down- then up-scaled), the kind of face another tool leaves."""
    info = probe_video(src)
    with VideoWriter(dst, info.fps, audio=load_audio(src, 16000), sample_rate=16000) as w:
        for f in iter_frames(src):
            h, wd = f.shape[:2]
            small = cv2.resize(f, (wd // factor, h // factor), interpolation=cv2.INTER_AREA)
            w.write(cv2.resize(small, (wd, h), interpolation=cv2.INTER_CUBIC)[None])
    return dst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--sovqae-steps", type=int, default=300)
    ap.add_argument("--stop-at", type=int, default=None, help="stop the training from the page at this step")
    ap.add_argument("--wav2lip", type=Path, default=None,
                    help="use this Wav2Lip model folder (e.g. demo_out/runs/wav2lip/model from `make demo`, trained "
                    "on the same synthetic person) instead of training a small one here")
    ap.add_argument("--sovqae", type=Path, default=None,
                    help="generate and enhance with this SOVQAE model folder (e.g. demo_out/runs/sovqae/model from "
                    "`make demo`, trained on the same person) instead of the short one the page trains")
    a = ap.parse_args()
    work, data = a.work, a.work / "data"
    work.mkdir(parents=True, exist_ok=True)
    clip = synthesize(work / "clip", seconds=8, seed=0)
    speech, _ = synth_speech(3.0, 16000, seed=1000)
    write_wav(work / "new_speech.wav", np.asarray(speech, np.float32), 16000)
    other = synthesize(work / "other", seconds=3, seed=0)  # the same person, a take the model has not seen
    blurred = blurred_copy(other.video_path, work / "blurred.mp4")
    proc, url = start_server(data)

    def shot(page, name: str, full: bool = True) -> None:
        page.wait_for_timeout(1200)
        page.screenshot(path=str(a.out / name), full_page=full)
        print("wrote", a.out / name, flush=True)

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(url + "/")
            page.set_input_files("#prep-video", str(clip.video_path))
            page.fill("#prep-name", "synthetic")
            page.click("#prep-run")
            page.locator("#identities .job-slot .progress").wait_for(timeout=600_000)
            page.screenshot(path=str(a.out / "1-prepare-running.png"))  # at once: a short clip is soon done
            page.locator('[data-identity="synthetic"]').wait_for(timeout=600_000)
            shot(page, "2-identities.png", full=False)

            page.click('#tabs button[data-tab="models"]')
            page.fill("#train-name", "synthetic-sovqae")
            page.select_option("#train-preset", "tiny")  # the page offers restore-cpu first: a 30-minute run
            page.fill("#train-steps", str(a.sovqae_steps))
            page.fill("#train-val-every", str(max(1, (a.stop_at or a.sovqae_steps) // 4)))
            page.click("#train-run")
            # lip-sync weights: given, or trained here while the page trains the SOVQAE
            if a.wav2lip is not None:
                shutil.copytree(a.wav2lip, data / "models" / "wav2lip-tiny")
            else:
                ident = data / "identities" / "synthetic"
                syncnet = train_syncnet([ident], work / "syncnet", preset="syncnet-tiny",
                                        overrides=["train.max_minutes=2"], device="cpu")
                train_wav2lip([ident], data / "models" / "wav2lip-tiny", syncnet_path=syncnet,
                              preset="wav2lip-tiny", overrides=["train.max_minutes=4"], device="cpu")
            page.locator('#model-detail:not(.hidden)').wait_for(timeout=600_000)
            page.locator('[data-model="synthetic-sovqae"] .badge.training').wait_for(timeout=600_000)
            shown_step = a.stop_at or a.sovqae_steps * 2 // 3  # logged and validated steps for the curves
            page.wait_for_function("(n) => +(document.querySelector('#model-title').textContent"
                                   ".match(/step (\\d+)/) || [0, 0])[1] >= n", arg=shown_step, timeout=3_600_000,
                                   polling=2000)
            shot(page, "3-training.png", full=False)
            if a.stop_at is not None:  # a shared CPU: stop it from the page and use its last checkpoint
                page.click('[data-model="synthetic-sovqae"] button:has-text("Stop")')
                page.locator('[data-model="synthetic-sovqae"] .badge.stopped').wait_for(timeout=600_000)
            else:
                page.locator('[data-model="synthetic-sovqae"] .badge.trained').wait_for(timeout=3_600_000)
            page.select_option("#analyze-identity", "synthetic")
            page.click("#analyze-run")
            page.locator('#models .job-slot[data-kind="analyze"] .report img').first.wait_for(timeout=900_000)
            shot(page, "4-analyze.png")

            restorer = "synthetic-sovqae"
            if a.sovqae is not None:  # a model folder copied into DATA/models appears on the page by itself
                restorer = "synthetic-restorer"
                shutil.copytree(a.sovqae, data / "models" / restorer)
            page.click('#tabs button[data-tab="generate"]')
            page.wait_for_timeout(3000)
            page.select_option("#gen-wav2lip", "wav2lip-tiny")
            page.select_option("#gen-sovqae", restorer)
            page.set_input_files("#gen-audio", str(work / "new_speech.wav"))
            page.click("#gen-run")
            video = page.locator('#generate video[data-name="ladtalk"]')
            video.wait_for(timeout=900_000)
            for v in page.locator("#generate video").all():  # show a mid-speech frame, not the first
                v.evaluate("v => new Promise(ok => { v.addEventListener('seeked', ok, {once: true}); "
                           "v.currentTime = 1.7; })")
            shot(page, "5-generate.png")

            page.click('#tabs button[data-tab="enhance"]')
            page.set_input_files("#enh-video", str(blurred))
            page.select_option("#enh-sovqae", restorer)
            page.click("#enh-run")
            page.locator('#enhance video[data-name="enhanced"]').wait_for(timeout=900_000)
            for v in page.locator("#enhance video").all():
                v.evaluate("v => new Promise(ok => { v.addEventListener('seeked', ok, {once: true}); "
                           "v.currentTime = 1.5; })")
            shot(page, "6-enhance.png")

            enhanced = work / "enhanced.mp4"
            job = page.locator('#enhance video[data-name="enhanced"]').get_attribute("src")
            enhanced.write_bytes(page.request.get(url + job).body())
            page.click('#tabs button[data-tab="evaluate"]')
            page.set_input_files("#eval-pred", str(enhanced))
            page.set_input_files("#eval-gt", str(clip.video_path))
            page.select_option("#eval-align", "frames")
            page.click("#eval-run")
            page.locator('#evaluate .job-slot .report').wait_for(timeout=900_000)
            shot(page, "7-evaluate.png")
            browser.close()
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
