"""How the dashboard is served: the ``streamlit run`` command line with PainLens's safety defaults.

Defaults: listen on 127.0.0.1 only, no usage statistics, no browser opened, uploads capped, error
details (tracebacks) not sent to the browser, no file watcher, light theme. ``painlens dashboard``,
the browser tests and ``bench/dashboard_load.py`` all start the server through ``command``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"
DEFAULT_PORT = 8501
MAX_UPLOAD_MB = 25  # the server refuses larger uploads before any byte reaches PainLens
# `streamlit run` through its own CLI entry point, after importing what every page needs: the first
# visitor then does not wait for pandas, Altair and the dashboard modules to load (about 1.5 s here).
# (Not the modules with st.cache_data functions: those must be defined once the runtime exists.)
PRELOAD = ("import pyarrow.parquet, dashboard.tables, dashboard.charts, dashboard.images, engine.datasets.paindb, "
           "engine.ratings.report; from streamlit.web.cli import main; main(prog_name='streamlit')")


def command(artifacts: str | os.PathLike, port: int = DEFAULT_PORT, address: str = "127.0.0.1",
            max_upload_mb: int = MAX_UPLOAD_MB, python: str = sys.executable) -> list[str]:
    """The argv that serves the dashboard on ``address:port`` for the artifact folder ``artifacts``."""
    return [python, "-c", PRELOAD, "run", str(APP),
            "--server.address", address, "--server.port", str(port), "--server.headless", "true",
            "--browser.gatherUsageStats", "false", "--server.maxUploadSize", str(max_upload_mb),
            "--server.fileWatcherType", "none", "--server.runOnSave", "false",
            "--client.showErrorDetails", "none", "--client.toolbarMode", "minimal",
            "--theme.base", "light",
            "--", "--artifacts", str(Path(artifacts).expanduser().resolve())]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(artifacts: str | os.PathLike, port: int | None = None, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    """Start a server in the background (its own process group) and wait until it answers; returns it and its URL."""
    port = port or free_port()
    process = subprocess.Popen(command(artifacts, port), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env={**os.environ, **(env or {})}, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url, process)
    return process, url


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the dashboard server exited with {process.returncode}: "
                               f"{process.stderr.read().decode(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)  # polling a starting server, not waiting for a result
    raise TimeoutError(f"the dashboard did not answer at {url} within {timeout:.0f} s")


def stop(process: subprocess.Popen) -> None:
    """Stop a server started by ``start`` (its process group, by id)."""
    if process.poll() is not None:
        return
    import signal

    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
