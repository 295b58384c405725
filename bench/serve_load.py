"""Serving under load: 8 concurrent clients on `painlens api`, 40 at once against its queue (shedding), then 8
concurrent browser sessions uploading to the dashboard.

    .venv/bin/python bench/serve_load.py [--artifacts artifacts/demo] [--requests 500] [--clients 8]
                                         [--queue 8] [--shed-clients 40] [--shed-rounds 3]
                                         [--sessions 8] [--uploads 3] [--skip-api] [--skip-dashboard]

API: starts the real server (`python -m painlens.cli api --queue N`, with a token) on a free port, and
``--clients`` threads send VGA JPEGs of rendered people (never real faces; a different photo per client) to
POST /v1/predict until ``--requests`` answers came back. Shedding: ``--shed-clients`` threads send one photo
each at the same moment, ``--shed-rounds`` times: how many were answered, how many refused (503 with
Retry-After) and how fast, and the server's memory (it holds at most ``--queue`` bodies however many call).
Dashboard: starts the Streamlit server as `painlens dashboard` does, opens ``--sessions`` headless Chromium sessions at once (tests/dashboard_browser.py), and each uploads
``--uploads`` photos, timing from choosing the file to the probabilities being shown.
Prints, per part: throughput, median and 95th-percentile latency, errors, and the server's memory (peak
RSS, and RSS after the first tenth of the requests against the end: flat means no growth per request).
Goals on the demo experiment, this 2-core CPU: no error, p95 <= 3 s for a VGA photo, memory flat.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from dashboard_fixtures import encode, face_image  # noqa: E402


def photos(count: int) -> list[bytes]:
    """``count`` different VGA JPEGs, one rendered person each."""
    return [encode(face_image(200 + i, size=(640, 480), scale=0.22), "JPEG", quality=90) for i in range(count)]


class Memory:
    """Samples a process's resident memory (Linux /proc) on a thread; ``peak_mb`` is the kernel's high-water mark."""

    def __init__(self, pid: int):
        self.pid, self.samples, self._stop = pid, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _field(self, name: str) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            self.samples.append(self._field("VmRSS"))

    def start(self) -> "Memory":
        self._thread.start()
        return self

    def now_mb(self) -> float:
        return self._field("VmRSS")

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self._field("VmHWM")


def summary(name: str, latencies: list[float], errors: int, seconds: float, memory: Memory,
            early_mb: float, late_mb: float, early: str = "after the first tenth") -> None:
    done = len(latencies)
    p95 = statistics.quantiles(latencies, n=20)[-1] if done >= 2 else float("nan")
    peak = memory.stop()
    print(f"{name}: {done} answers, {errors} errors in {seconds:.1f} s -> {done / seconds:.2f} per s; "
          f"latency median {statistics.median(latencies):.2f} s, p95 {p95:.2f} s, max {max(latencies):.2f} s")
    print(f"{name} server memory: peak {peak:.0f} MB; RSS {early_mb:.0f} MB {early}, {late_mb:.0f} MB "
          f"at the end ({late_mb - early_mb:+.0f} MB)")


# --- the API ----------------------------------------------------------------------------------------

TOKEN = __import__("secrets").token_urlsafe(32)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def start_api(artifacts: str, folder: Path, queue: int) -> tuple[subprocess.Popen, str]:
    import requests

    from dashboard.serve import free_port

    port = free_port()
    log = open(folder / "api.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "painlens.cli", "api", "--artifacts", artifacts, "--port", str(port),
                                "--queue", str(queue)],
                               cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                               env={**os.environ, "PAINLENS_API_TOKEN": TOKEN})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError((folder / "api.log").read_text()[-2000:])
        try:
            if requests.get(f"{url}/health", timeout=2).status_code == 200:  # "ok" needs no token
                return process, url
        except requests.ConnectionError:
            time.sleep(0.2)  # polling a starting server
    raise TimeoutError("the API did not start within 300 s")


def api_load(artifacts: str, total: int, clients: int, folder: Path, queue: int, shed_clients: int,
             shed_rounds: int) -> None:
    import requests

    clock = time.perf_counter()
    process, url = start_api(artifacts, folder, queue)
    print(f"API up in {time.perf_counter() - clock:.1f} s at {url}")
    memory, data = Memory(process.pid).start(), photos(clients)
    latencies, errors, lock, marks = [], [0], threading.Lock(), {}
    sent = iter(range(total))

    def client(index: int) -> None:
        with requests.Session() as session:
            for number in sent:  # shared: the clients together send ``total`` requests
                start = time.perf_counter()
                response = session.post(f"{url}/v1/predict", data=data[index], headers=AUTH, timeout=120)
                with lock:
                    latencies.append(time.perf_counter() - start)
                    errors[0] += response.status_code != 200
                    if len(latencies) == max(1, total // 10):
                        marks["early"] = memory.now_mb()

    try:
        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(client, range(clients)))
        summary("API", latencies, errors[0], time.perf_counter() - start, memory, marks.get("early", float("nan")),
                memory.now_mb())
        shedding(url, process.pid, data[0], queue, shed_clients, shed_rounds)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def shedding(url: str, pid: int, photo: bytes, queue: int, clients: int, rounds: int) -> None:
    """``clients`` requests at the same moment, ``rounds`` times: answered, refused (503 + Retry-After), timings."""
    import requests

    memory = Memory(pid).start()
    before = memory.now_mb()
    start_line = threading.Barrier(clients)
    results = []  # (status, seconds, Retry-After)

    def client(_) -> None:
        start_line.wait()
        clock = time.perf_counter()
        response = requests.post(f"{url}/v1/predict", data=photo, headers=AUTH, timeout=300)
        results.append((response.status_code, time.perf_counter() - clock, response.headers.get("retry-after")))

    clock = time.perf_counter()
    for _ in range(rounds):
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(client, range(clients)))
    seconds = time.perf_counter() - clock
    answered = [s for status, s, _ in results if status == 200]
    refused = [s for status, s, _ in results if status == 503]
    retry = sorted({int(r) for status, _, r in results if status == 503 and r})
    other = len(results) - len(answered) - len(refused)
    print(f"API shedding ({clients} clients at once, queue {queue}, {rounds} rounds, {seconds:.1f} s): "
          f"{len(answered)} answered ({len(answered) / rounds:.1f} per round), {len(refused)} refused 503, "
          f"{other} other; Retry-After {retry} s")
    if answered:
        print(f"  answered: median {statistics.median(answered):.2f} s, max {max(answered):.2f} s")
    if refused:
        print(f"  refused: median {statistics.median(refused) * 1000:.0f} ms, max {max(refused) * 1000:.0f} ms")
    peak = memory.stop()
    print(f"  server memory: RSS {before:.0f} MB before, {memory.now_mb():.0f} MB after, peak {peak:.0f} MB "
          "(the process's high-water mark since it started)")


# --- the dashboard ----------------------------------------------------------------------------------

def browser_session(url: str, folder: Path, index: int, uploads: int, data: bytes, results: list) -> None:
    from dashboard_browser import chrome, main_text, open_page, page_ready, remove_upload, upload_file, wait

    done = "The rule:"  # written under the answer once a photo is analysed (tests/test_browser_dashboard.py)
    path = folder / f"session{index}.jpg"
    path.write_bytes(data)
    driver = chrome(folder / f"downloads{index}")
    try:
        try:
            open_page(driver, url, "upload", "Upload and predict", charts=False, timeout=600)
        except Exception as exc:  # noqa: BLE001  the page never came: every upload of this session failed
            results.extend([(f"page {type(exc).__name__}", float("nan"))] * uploads)
            return
        for _ in range(uploads):
            start = time.perf_counter()
            try:
                upload_file(driver, path)
                wait(driver, lambda d: done in main_text(d) and page_ready("Upload", True)(d), 300)
                results.append(("ok", time.perf_counter() - start))
                remove_upload(driver)
                wait(driver, lambda d: done not in main_text(d), 120)
            except Exception as exc:  # noqa: BLE001  counted as an error, the run goes on
                results.append((type(exc).__name__, time.perf_counter() - start))
    finally:
        driver.quit()


def dashboard_load(artifacts: str, sessions: int, uploads: int, folder: Path) -> None:
    from dashboard import serve

    clock = time.perf_counter()
    process, url = serve.start(artifacts)
    print(f"dashboard up in {time.perf_counter() - clock:.1f} s at {url}")
    data, warm, results = photos(sessions + 1), [], []
    try:
        browser_session(url, folder, sessions, 1, data[sessions], warm)  # loads the networks, once per server
        print(f"first upload (loads the networks once per server): {warm[0][1]:.1f} s ({warm[0][0]})")
        memory = Memory(process.pid).start()
        early = memory.now_mb()
        start = time.perf_counter()
        with ThreadPoolExecutor(sessions) as pool:
            list(pool.map(lambda i: browser_session(url, folder, i, uploads, data[i], results), range(sessions)))
        seconds = time.perf_counter() - start
        latencies = [s for status, s in results if status == "ok"]
        errors = sum(status != "ok" for status, _ in results)
        summary(f"dashboard ({sessions} browser sessions)", latencies or [float("nan")], errors, seconds, memory,
                early, memory.now_mb(), "once the networks were loaded")
    finally:
        serve.stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", default=str(ROOT / "artifacts" / "demo"))
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--queue", type=int, default=8, help="the API's --queue")
    parser.add_argument("--shed-clients", type=int, default=40, help="clients at once in the shedding part")
    parser.add_argument("--shed-rounds", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--uploads", type=int, default=3, help="uploads per browser session")
    parser.add_argument("--skip-api", action="store_true")
    parser.add_argument("--skip-dashboard", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="painlens-serve-load-"))
    if not args.skip_api:
        api_load(args.artifacts, args.requests, args.clients, folder, args.queue, args.shed_clients, args.shed_rounds)
    if not args.skip_dashboard:
        dashboard_load(args.artifacts, args.sessions, args.uploads, folder)


if __name__ == "__main__":
    main()
