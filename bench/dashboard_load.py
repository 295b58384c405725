"""Seconds until each dashboard page's main content is visible in headless Chromium, and upload latency.

    .venv/bin/python bench/dashboard_load.py [--artifacts artifacts/demo] [--repeats 3] [--screenshots DIR] [--upload-only]

Starts ``painlens dashboard``'s server (dashboard.serve) on a free port, drives Debian's Chromium with
Selenium, and for every page measures from navigation to "title shown, script finished, no skeleton,
charts drawn" (tests/dashboard_browser.py). First visit: a fresh browser session, so Streamlit's
caches of the server are warm only from earlier pages; then the median of ``--repeats`` revisits.
Last, the time from choosing a photo in the upload page to the probabilities being shown (after the
networks finished loading). Goal: every page under 3 s, the upload's probabilities under 2 s.
``--screenshots DIR`` saves every page, and the upload result, as PNG files there (to look at).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from dashboard import serve  # noqa: E402
from dashboard_browser import (PAGES, chrome, main_text, open_page, page_ready, remove_upload, screenshot,  # noqa: E402
                              upload_file, wait)


def upload_seconds(driver, url: str, folder: Path, shots: Path | None = None) -> list[tuple[float, float, float]]:
    """Per upload after the first: (seconds until the page is complete, until the answer's caption shows,
    the engine's own seconds as the caption says them: "Answered in X s")."""
    from dashboard_fixtures import encode, face_image

    open_page(driver, url, "upload", "Upload and predict", charts=False, timeout=300)
    out = []
    for i in range(4):
        path = folder / f"face{i}.jpg"
        path.write_bytes(encode(face_image(30 + i, size=(640, 480)), "JPEG", quality=90))
        clock = time.perf_counter()
        upload_file(driver, path)
        wait(driver, lambda d: "Answered in" in main_text(d), 300)
        caption = time.perf_counter() - clock
        wait(driver, lambda d: "Answered in" in main_text(d) and page_ready("Upload", False)(d), 300)
        complete = time.perf_counter() - clock
        engine = re.search(r"Answered in ([0-9.]+) s", main_text(driver))
        out.append((complete, caption, float(engine.group(1)) if engine else float("nan")))
        if shots and i == 0:
            screenshot(driver, shots / "upload-result.png")
        remove_upload(driver)
        wait(driver, lambda d: "Answered in" not in main_text(d), 60)
    return out[1:]  # the first may wait for the networks to load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", default=str(ROOT / "artifacts" / "demo"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--screenshots", type=Path, default=None, help="save a PNG of every page here")
    parser.add_argument("--upload-only", action="store_true", help="time only the upload answer (no page visits)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="painlens-bench-"))
    clock = time.perf_counter()
    process, url = serve.start(args.artifacts)
    print(f"server up in {time.perf_counter() - clock:.1f} s at {url} for {args.artifacts}")
    driver = None
    try:
        driver = chrome(folder)  # inside: a browser that cannot start must not leave the server running
        print(f"{'page':<12}{'first visit':>12}{'revisit (median)':>18}")
        for path, title, _ in [] if args.upload_only else PAGES:
            # charts=False: a page whose artifacts are missing shows a sentence instead (still every chart
            # that is on the page must have drawn before the page counts as shown).
            first = open_page(driver, url, path, title, False, timeout=300)
            again = [open_page(driver, url, path, title, False, timeout=300) for _ in range(args.repeats)]
            print(f"{path or 'overview':<12}{first:>12.2f}{statistics.median(again):>18.2f}")
            if args.screenshots:
                screenshot(driver, args.screenshots / f"{path or 'overview'}.png")
        timed = upload_seconds(driver, url, folder, args.screenshots)
        complete, caption, engine = (statistics.median(column) for column in zip(*timed))
        print(f"upload -> probabilities shown (page complete): median {complete:.2f} s "
              f"({', '.join(f'{t[0]:.2f}' for t in timed)})")
        print(f"  of which: answer caption shown after {caption:.2f} s; the engine (decode to probabilities) "
              f"{engine:.2f} s; Streamlit, the network and the browser {complete - engine:.2f} s")
    finally:
        if driver is not None:
            driver.quit()
        serve.stop(process)


if __name__ == "__main__":
    main()
