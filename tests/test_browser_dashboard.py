"""The dashboard in a real browser: headless Chromium from Debian driven by Selenium, against a server
started on a free port (and stopped by its process id). Every page must show its main content (not a
skeleton); an uploaded synthetic face must get its probabilities, a bad file a sentence; a chart must
download as PNG and SVG. Screenshots go to test-output/browser/ for people to look at."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from dashboard_browser import (PAGES, browser_available, chrome, click_when_ready, main_text, open_page, page_ready,
                              remove_upload, screenshot, upload_file, wait)
from dashboard_fixtures import encode, face_image

from dashboard.widgets import ANSWER_LABEL as ANSWER

OUTPUT = Path(__file__).resolve().parent.parent / "test-output" / "browser"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tiny_experiment_dir):
    missing = browser_available()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"The browser tests must run in CI: {missing}")
        pytest.skip(missing)
    from dashboard import serve

    process, url = serve.start(tiny_experiment_dir.parent, env={"TF_CPP_MIN_LOG_LEVEL": "2"})
    yield url
    serve.stop(process)


@pytest.fixture(scope="module")
def driver(server, tmp_path_factory):
    downloads = tmp_path_factory.mktemp("downloads")
    browser = chrome(downloads)
    browser.downloads = downloads
    yield browser
    browser.quit()


def test_a_link_straight_to_a_page_works_on_a_fresh_server(server, driver):
    # The first request this server sees is for a page other than the entry's default.
    open_page(driver, server, "heatmaps", "Heatmaps", charts=True, timeout=120)
    assert "No experiment found" not in main_text(driver)


def test_every_page_shows_its_main_content(server, driver):
    seconds = {}
    for path, title, charts in PAGES:
        seconds[path or "overview"] = open_page(driver, server, path, title, charts, timeout=120)
        text = main_text(driver)
        assert "Synthetic demo data" in text, path
        assert "Traceback" not in text and "Error" not in text.split("\n")[0], path
        screenshot(driver, OUTPUT / f"{path or 'overview'}.png")
        driver.set_window_size(1600, 2600)
    print("page seconds", {k: round(v, 2) for k, v in seconds.items()})


def test_an_uploaded_face_gets_probabilities_and_a_bad_file_a_sentence(server, driver, tmp_path):
    open_page(driver, server, "upload", "Upload and predict", charts=False, timeout=120)
    first, second, bad = tmp_path / "face1.jpg", tmp_path / "face2.png", tmp_path / "notes.jpg"
    first.write_bytes(encode(face_image(21, size=(640, 480)), "JPEG", quality=90))
    second.write_bytes(encode(face_image(22, size=(480, 480)), "PNG"))
    bad.write_bytes(b"this is a shopping list, not a photo")

    upload_file(driver, first)  # the first one may wait for the networks to finish loading
    wait(driver, lambda d: ANSWER in main_text(d) and page_ready("Upload", False)(d), 240)
    remove_upload(driver)
    wait(driver, lambda d: ANSWER not in main_text(d), 60)
    start = time.perf_counter()
    upload_file(driver, second)
    wait(driver, lambda d: ANSWER in main_text(d) and page_ready("Upload", False)(d), 60)
    shown = time.perf_counter() - start  # the answer leads the page
    text = main_text(driver)
    assert "research tool, not a medical device" in text and "SongNet" not in text  # the details are one click away
    click_when_ready(driver, "//summary[contains(., 'Per network, and how the answer is made')]")
    wait(driver, lambda d: "The rule:" in main_text(d) and page_ready("Upload", True)(d), 60)
    text = main_text(driver)
    assert "WeiNet" in text and "SongNet" in text
    screenshot(driver, OUTPUT / "upload-face.png")
    driver.set_window_size(1600, 2600)
    # A figure, not a check: the 2 s goal is bench/dashboard_load.py's (a timed assert fails on a loaded machine).
    print(f"upload to the answer: {shown:.2f} s")

    remove_upload(driver)
    wait(driver, lambda d: ANSWER not in main_text(d), 60)
    upload_file(driver, bad)
    wait(driver, lambda d: "not an image PainLens can read" in main_text(d), 60)
    assert "Traceback" not in main_text(driver)
    screenshot(driver, OUTPUT / "upload-bad-file.png")
    driver.set_window_size(1600, 2600)


def test_a_chart_downloads_as_png_and_svg(server, driver):
    from selenium.webdriver.common.by import By

    open_page(driver, server, "comparison", "Model comparison", charts=True, timeout=120)
    # A button's text is its icon's ligature name, a line break, and its label.
    buttons = {b.text.strip().split("\n")[-1]: b
               for b in driver.find_elements(By.CSS_SELECTOR, "[data-testid='stMain'] [data-testid='stDownloadButton'] button")}
    for label, suffix, magic in (("PNG", ".png", b"\x89PNG"), ("SVG", ".svg", b"<svg")):
        buttons[label].click()
        found = wait(driver, lambda d: [p for p in d.downloads.glob(f"*{suffix}") if p.stat().st_size > 0], 60,
                     f"no {suffix} download")
        assert found[0].read_bytes()[:4] == magic


def test_an_uploaded_clip_shows_its_timeline_and_its_frames(server, driver, tmp_path):
    """Issue 12: a video uploaded in the browser gives its pain timeline (a Vega chart), the frame slider with
    the crop and landmarks, and the peak frame (or, where no network learned, each network's own line and
    the reason there is no single answer). Screenshot: test-output/browser/upload-video.png."""
    import video_fixtures

    from selenium.webdriver.common.by import By

    open_page(driver, server, "upload", "Upload and predict", charts=False, timeout=120)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(video_fixtures.clip(seconds=3.0, pain=1.0, pain_at=(1.0, 2.2), away_start_s=0.3, away_end_s=0.6))
    upload_file(driver, clip)
    wait(driver, lambda d: "Video score: mean p(pain)" in main_text(d) and "One frame" in main_text(d)
         and page_ready("Upload", True)(d), 300, "the video's timeline did not show")
    text = main_text(driver)
    assert "Traceback" not in text and "cropped, background removed" in text
    assert "gaps there, with no values made up" in text  # the face walked out for a moment
    if "No single answer" in text:  # the tiny experiment: no network learned, so no peak to mark
        assert "There is no peak to explain" in text
    else:
        assert "LIME explanation of the peak frame" in text and "Explain" in text
    assert driver.find_elements(By.CSS_SELECTOR, "[data-testid='stMain'] [data-testid='stVegaLiteChart']")
    screenshot(driver, OUTPUT / "upload-video.png")
    driver.set_window_size(1600, 2600)
