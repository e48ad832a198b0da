"""The page in a real headless browser (Debian's chromium through Playwright; nothing is downloaded): prepare
the built-in synthetic identity and generate from it by clicking, check that the page's video element plays a file
with an audio track and the right duration, use that result in place, and restart the server in the middle of a
training: the new server's page shows everything again and resumes the training to its own step count.

Where CI is set (CI=true), a missing browser or Playwright fails these tests instead of skipping them: .ci/run
installs chromium, and a skipped browser suite would pass CI without having tested the page."""

from __future__ import annotations

import os
import shutil

import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed: pip install 'ladtalk[serve]'")

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
try:
    from playwright import sync_api
except ImportError:
    if IN_CI:
        raise
    pytest.skip("playwright is not installed (pip install playwright); CI=true makes this a failure",
                allow_module_level=True)

from _serve_helpers import Served, data_copy, shared_server  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and not IN_CI:
    pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run installs it); CI=true makes "
                "this a failure", allow_module_level=True)
# headless and offline: no first-run pages, no component or field-trial downloads, a fresh profile per launch
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required",
        "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]  # a beeping microphone
LONG = 900_000  # ms: a hang, not a slow CPU


@pytest.fixture(scope="session")
def served(tmp_path_factory, request):
    return shared_server(tmp_path_factory, request)


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.fail("CI=true but no chromium on PATH: .ci/run installs Debian's chromium (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Watched:
    """A page of a server, with the errors it raised and the addresses it fetched, checked when it closes."""

    def __init__(self, browser, url: str):
        self.url = url
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, permissions=["microphone"])
        self.context.on("dialog", lambda d: d.accept())
        self.page = self.context.new_page()
        self.errors, self.requests = [], []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(url + "/")

    def close(self) -> None:
        self.context.close()
        assert not self.errors, f"the page raised: {self.errors}"
        foreign = [u for u in self.requests if not u.startswith(self.url)]
        assert not foreign, f"the page fetched from elsewhere: {foreign}"  # works offline


@pytest.fixture(scope="module")
def page(served, browser):
    watched = Watched(browser, served["server"].url)
    yield watched.page
    watched.close()


def _play(video) -> dict:
    return video.evaluate("""async (v) => {
        v.muted = true;
        if (v.readyState < 1) await new Promise((ok) => v.addEventListener("loadedmetadata", ok, {once: true}));
        await v.play();
        await new Promise((ok) => setTimeout(ok, 600));
        v.pause();
        return {ready: v.readyState, duration: v.duration, width: v.videoWidth, error: v.error && v.error.code,
                audioBytes: v.webkitAudioDecodedByteCount, videoFrames: v.getVideoPlaybackQuality().totalVideoFrames};
    }""")


def _options(page, select: str) -> list[str]:
    return page.locator(f"{select} option").evaluate_all("os => os.map((o) => o.value)")


def test_prepare_the_synthetic_identity_on_the_page(page):
    page.fill("#prep-name", "page-synth")
    page.fill("#prep-seconds", "2")
    page.click("#prep-synth")
    card = page.locator('[data-identity="page-synth"]')
    card.wait_for(timeout=LONG)
    assert "face on 100.0% of frames" in card.inner_text()
    crops = card.locator("img")
    crops.wait_for()
    assert crops.evaluate("img => img.complete && img.naturalWidth > 0 && img.naturalHeight > 0")


def test_generate_on_the_page_and_play_the_video(page, served):
    page.click('#tabs button[data-tab="generate"]')
    page.select_option("#gen-identity", "page-synth")
    page.select_option("#gen-wav2lip", "w2l")
    page.select_option("#gen-sovqae", "vq")
    page.set_input_files("#gen-audio", str(served["speech"]))
    page.click("#gen-run")
    page.locator('#job-list .job[data-state="queued"], #job-list .job[data-state="running"]').first.wait_for()
    page.reload()  # the job lives in the server: the page finds it again
    video = page.locator('#generate video[data-name="ladtalk"]')
    video.wait_for(timeout=LONG)
    assert page.locator('#generate video[data-name="wav2lip_only"]').count() == 1
    facts = _play(video)
    assert facts["error"] is None and facts["ready"] >= 2 and facts["width"] == 256
    assert facts["duration"] == pytest.approx(1.0, abs=0.1)  # the 1 s of driving speech
    assert facts["audioBytes"] > 0 and facts["videoFrames"] > 0  # decoded both the picture and the sound
    assert "wav2lip" in page.locator("#generate table").inner_text()  # the per-stage timings


def test_record_driving_audio_in_the_browser(page):
    page.click('#tabs button[data-tab="generate"]')
    page.click("#gen-record")
    page.wait_for_function("() => document.querySelector('#gen-record').textContent === 'Stop recording'")
    page.wait_for_timeout(1500)
    page.click("#gen-record")
    # the browser's WebM/Opus recording passed the server's content check and FFmpeg found its audio
    page.wait_for_function("() => document.querySelector('#gen-record-state').textContent.startsWith('recorded')")


def test_a_result_is_enhanced_in_place_from_the_page(page):
    page.click('#tabs button[data-tab="generate"]')
    page.locator('#generate figure:has(video[data-name="wav2lip_only"]) button.use-enhance').click()
    assert page.locator("#enhance").is_visible() and page.input_value("#enh-video-ref").endswith("/wav2lip_only.mp4")
    page.select_option("#enh-sovqae", "vq")
    page.click("#enh-run")
    video = page.locator('#enhance video[data-name="enhanced"]')
    video.wait_for(timeout=LONG)
    facts = _play(video)
    assert facts["error"] is None and facts["duration"] == pytest.approx(1.0, abs=0.1)
    _play(page.locator('#enhance video[data-name="input"]'))  # the input is the generate's result, served in place


def test_a_model_copied_into_the_data_folder_appears_without_a_job(page, served):
    page.click('#tabs button[data-tab="generate"]')
    shutil.copytree(served["data"] / "models" / "w2l", served["data"] / "models" / "w2l-copied")
    try:
        page.wait_for_function("() => [...document.querySelectorAll('#gen-wav2lip option')]"
                               ".some((o) => o.value === 'w2l-copied')", timeout=10_000)
    finally:
        shutil.rmtree(served["data"] / "models" / "w2l-copied")


def test_every_trainer_and_preset_of_the_cli_is_on_the_page(page):
    from ladtalk.serve.submit import presets

    page.click('#tabs button[data-tab="models"]')
    assert page.input_value("#train-preset") == "restore-cpu"  # the CPU restorer the README recommends
    assert _options(page, "#train-preset") == presets()["sovqae"]
    assert page.locator("#train-wav2lip").is_visible()  # restore-cpu --wav2lip: learn the lip-sync model's faces
    page.select_option("#train-component", "lipsync")
    assert page.input_value("#train-preset") == "identity" and "identity" in _options(page, "#train-preset")
    assert "expert" in page.inner_text("#train-hint") and not page.locator("#train-wav2lip").is_visible()
    page.select_option("#train-component", "wav2lip")
    assert _options(page, "#train-preset") == presets()["wav2lip"] and page.locator("#train-syncnet").is_visible()
    # the shipped base (ladtalk.pretrained) is offered as an expert and as a generator before anything is trained
    assert "builtin:synthetic-48" in _options(page, "#train-syncnet")
    assert "builtin:synthetic-48" in _options(page, "#gen-wav2lip")
    page.select_option("#train-component", "sovqae")


def test_uploads_and_results_are_listed_and_deleted_on_the_files_tab(page, served):
    status, up = served["server"].upload(served["speech"], "audio", "files-tab.wav")
    page.click('#tabs button[data-tab="files"]')
    row = page.locator(f'#upload-list [data-upload="{up["id"]}"]')
    row.wait_for()
    assert "files-tab.wav" in row.inner_text() and "1.0 s" in row.inner_text()
    page.wait_for_function("() => /job results [0-9.]+ MB .* free on the disk/.test("
                           "document.querySelector('#disk').textContent)")
    row.locator("button").click()  # Delete (the dialog is accepted)
    row.wait_for(state="detached")
    assert up["id"] not in [u["id"] for u in served["server"].call("GET", "/api/uploads")[1]]
    assert page.locator("#result-list [data-result]").count() >= 2  # the prepare and generate jobs


TRAIN = ["train.max_steps=30", "train.val_every=1000", "train.log_every=1", "train.val_frames=4",
         "train.checkpoint_every=1000"]


def test_after_a_restart_the_page_shows_everything_and_resumes_the_training(served, browser, tmp_path):
    data = data_copy(served, tmp_path / "data")
    first = Served(data)
    try:
        status, up = first.upload(served["speech"], "audio", "speech.wav")
        gen = first.wait(first.submit(kind="generate", identity="synth", audio=up["id"], wav2lip="w2l", sovqae="vq")
                         ["id"])
        assert gen["state"] == "done", gen
        train = first.submit(kind="train", name="run", identity="synth", preset="tiny", overrides=TRAIN)
        first.wait_progress(train["id"])
    finally:
        first.stop()  # in the middle of the training

    second = Served(data)
    watched = Watched(browser, second.url)
    page = watched.page
    try:
        page.locator('[data-identity="synth"]').wait_for()  # the lists, on load
        assert "vq" in _options(page, "#gen-sovqae") and "w2l" in _options(page, "#gen-wav2lip")
        assert up["id"] in _options(page, "#gen-audio-ref")  # the upload is offered again
        job = page.locator(f'#job-list .job[data-job="{train["id"]}"]')
        job.wait_for()
        assert job.get_attribute("data-state") == "interrupted"

        page.click('#tabs button[data-tab="generate"]')  # the finished generate's videos, playable
        facts = _play(page.locator('#generate video[data-name="ladtalk"]'))
        assert facts["error"] is None and facts["duration"] == pytest.approx(1.0, abs=0.1)

        page.click('#tabs button[data-tab="models"]')
        assert "stopped" in page.locator('[data-model="run"]').inner_text()
        job.locator("button.again").click()  # Resume: the run's own settings, not the form's
        page.locator('[data-model="run"] .badge.trained').wait_for(timeout=LONG)
        assert "step 30 / 30" in page.locator('[data-model="run"]').inner_text()
        job.locator("button.again").wait_for(state="detached")  # nothing left to resume
    finally:
        watched.close()
        second.stop()
