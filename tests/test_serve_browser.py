"""The page in a real headless browser (Debian's chromium through Playwright; nothing is downloaded): prepare
the built-in synthetic identity and generate from it by clicking, then check that the page's video element
plays a file with an audio track and the right duration."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed: pip install 'ladtalk[serve]'")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")

from _serve_helpers import shared_server  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                "(apt-get install chromium; .ci/run installs it)")
# headless and offline: no first-run pages, no component or field-trial downloads, a fresh profile per launch
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required",
        "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]  # a beeping microphone


@pytest.fixture(scope="session")
def served(tmp_path_factory, request):
    return shared_server(tmp_path_factory, request)


@pytest.fixture(scope="module")
def page(served):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, permissions=["microphone"])
        context.on("dialog", lambda d: d.accept())
        pg = context.new_page()
        errors = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        requests = []
        pg.on("request", lambda r: requests.append(r.url))
        pg.goto(served["server"].url + "/")
        yield pg
        assert not errors, f"the page raised: {errors}"
        foreign = [u for u in requests if not u.startswith(served["server"].url)]
        assert not foreign, f"the page fetched from elsewhere: {foreign}"  # works offline
        browser.close()


def test_prepare_the_synthetic_identity_on_the_page(page):
    page.fill("#prep-name", "page-synth")
    page.fill("#prep-seconds", "2")
    page.click("#prep-synth")
    card = page.locator('[data-identity="page-synth"]')
    card.wait_for(timeout=900_000)
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
    video.wait_for(timeout=900_000)
    assert page.locator('#generate video[data-name="wav2lip_only"]').count() == 1
    facts = video.evaluate("""async (v) => {
        v.muted = true;
        if (v.readyState < 1) await new Promise((ok) => v.addEventListener("loadedmetadata", ok, {once: true}));
        await v.play();
        await new Promise((ok) => setTimeout(ok, 600));
        v.pause();
        return {ready: v.readyState, duration: v.duration, width: v.videoWidth, error: v.error && v.error.code,
                audioBytes: v.webkitAudioDecodedByteCount, videoFrames: v.getVideoPlaybackQuality().totalVideoFrames};
    }""")
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
