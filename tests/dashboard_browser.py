"""Driving the dashboard in headless Chromium (Debian's chromium + chromium-driver) with Selenium.

A helper module for tests/test_browser*.py and bench/dashboard_load.py, not a test file. Selenium is
pointed at /usr/bin/chromedriver and runs with SE_OFFLINE=true, so it never tries to download a
browser or a driver. Waits are explicit conditions (WebDriverWait), never sleeps: a page counts as
shown when its title is there, Streamlit is no longer running the script, no skeleton placeholder
is left, and (where the page has charts) a Vega chart has drawn its canvas or SVG.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("SE_OFFLINE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROME_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1600,2600", "--hide-scrollbars")
# (url path, the page title shown as its h1 or the start of it, whether the page draws charts)
PAGES = (
    ("", "Experiment:", True),
    ("model_card", "Model card", False),
    ("comparison", "Model comparison", True),
    ("per_class", "Per class", True),
    ("calibration", "Calibration", True),
    ("subjects", "Per subject", True),
    ("heatmaps", "Heatmaps", True),
    ("browse", "Images", True),
    ("raters", "Raters", True),
    ("upload", "Upload and predict", False),
)


def browser_available() -> str:
    """"" when Chromium, its driver and Selenium are here, else the sentence saying what is missing."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if missing:
        return f"{' and '.join(missing)} missing: `apt-get install chromium chromium-driver` (.ci/run does it)."
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed in the venv."
    return ""


def chrome(download_dir: Path):
    """A headless Chromium that saves downloads into ``download_dir`` without asking."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='painlens-chrome-')}")
    options.add_experimental_option("prefs", {"download.default_directory": str(download_dir),
                                              "download.prompt_for_download": False,
                                              "safebrowsing.enabled": False})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(download_dir)})
    return driver


def wait(driver, condition, timeout: float = 60.0, message: str = ""):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition, message)


def page_ready(title: str, charts: bool):
    """A condition: the h1 starting with ``title`` is shown, the script has finished, nothing is a
    skeleton any more, every chart on the page has drawn, and (``charts``) there is at least one."""
    def ready(driver):
        return driver.execute_script(
            """
            const [title, charts] = arguments;
            const h1 = [...document.querySelectorAll('h1')].some(h => h.innerText.trim().startsWith(title));
            const app = document.querySelector('[data-testid="stApp"]');
            const busy = !app || app.getAttribute('data-test-script-state') !== 'notRunning'
                || app.getAttribute('data-test-connection-state') !== 'CONNECTED'
                || document.querySelector('[data-stale="true"]') !== null;
            const skeleton = document.querySelector('[data-testid="stSkeleton"]');
            // Every chart element on the page has drawn; with ``charts`` at least one must exist.
            const holders = [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stVegaLiteChart"]')];
            const drawn = holders.every(h => h.querySelector('canvas, svg.marks') !== null)
                && (!charts || holders.length > 0);
            return h1 && !busy && !skeleton && drawn;
            """, title, charts)
    return ready


def open_page(driver, base_url: str, path: str, title: str, charts: bool, timeout: float = 90.0) -> float:
    """Load a page and wait until its main content is shown; returns the seconds it took."""
    start = time.perf_counter()
    driver.get(f"{base_url}/{path}")
    wait(driver, page_ready(title, charts), timeout, f"page /{path} did not show '{title}' in {timeout:.0f} s")
    return time.perf_counter() - start


def click_when_ready(driver, xpath: str, timeout: float = 30.0, message: str = "") -> None:
    """Click the first shown element matching ``xpath`` once the browser lets it be clicked. Streamlit redraws
    an element after a rerun (an expander's content is laid out again, a button is replaced): a click in that
    moment fails with "element not interactable" or a stale element although a user's click a moment later
    works, so the click is retried, as a condition, until it goes through or ``timeout`` passes."""
    from selenium.common.exceptions import (ElementClickInterceptedException, ElementNotInteractableException,
                                            StaleElementReferenceException)
    from selenium.webdriver.common.by import By

    def clicked(driver) -> bool:
        try:
            shown = [element for element in driver.find_elements(By.XPATH, xpath) if element.is_displayed()]
            if not shown:
                return False
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", shown[0])
            shown[0].click()
            return True
        except (ElementClickInterceptedException, ElementNotInteractableException, StaleElementReferenceException):
            return False

    wait(driver, clicked, timeout, message or f"nothing matching {xpath} could be clicked in {timeout:.0f} s")


def upload_file(driver, path: Path) -> None:
    """Choose ``path`` alone in the page's file uploader. The uploader takes several files, and
    chromedriver adds to a multiple input's earlier files (they stay in the element after the page
    removed them): the input is emptied first, so that the page gets this one file."""
    from selenium.webdriver.common.by import By

    field = driver.find_element(By.CSS_SELECTOR, "input[type='file']")
    driver.execute_script("arguments[0].value = '';", field)
    field.send_keys(str(path))


def remove_upload(driver) -> None:
    """Press the uploader's remove button of its (first) file."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, "[data-testid='stFileUploader'] button[aria-label^='Remove']").click()


def main_text(driver) -> str:
    return driver.execute_script("return (document.querySelector('[data-testid=\"stMain\"]') || document.body).innerText;")


def screenshot(driver, path: Path) -> Path:
    """The whole main area: the window is grown to the content's height first."""
    height = driver.execute_script(
        "const m = document.querySelector('[data-testid=\"stMain\"]'); return m ? m.scrollHeight : document.body.scrollHeight;")
    driver.set_window_size(1600, min(max(int(height) + 120, 900), 12000))
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    return path
