"""How the dashboard is served: the ``streamlit run`` command line with PainLens's safety defaults.

The defaults live in ``dashboard/.streamlit/config.toml``, beside the app, which Streamlit reads however
the app is started (a plain ``streamlit run dashboard/app.py`` from any folder): listen on 127.0.0.1 only, no usage statistics,
no browser opened, uploads capped, error details (tracebacks) not sent to the browser, no file watcher,
light theme. ``command`` passes every one of them on the command line, so ``painlens dashboard``, the
browser tests and the benchmarks get them from any working folder; only the address, the port and the
upload cap can be changed, on purpose.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

from engine.preprocess.decode import MAX_UPLOAD_MB

PROJECT = Path(__file__).resolve().parent.parent
APP = PROJECT / "dashboard" / "app.py"
SAFE_CONFIG = PROJECT / "dashboard" / ".streamlit" / "config.toml"
DEFAULT_PORT = 8501
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# `streamlit run` through its own CLI entry point, after importing what every page needs: the first
# visitor then does not wait for pandas, Altair and the dashboard modules to load (about 1.5 s here).
# (Not the modules with st.cache_data functions: those must be defined once the runtime exists.)
PRELOAD = ("import pyarrow.parquet, dashboard.tables, dashboard.charts, dashboard.images, engine.datasets.paindb, "
           "engine.ratings.report; from streamlit.web.cli import main; main(prog_name='streamlit')")


_LOGGED: set[str] = set()


def log_once(warning: str) -> None:
    """A notice for whoever runs the server, in its log, once per process (the app reruns per click)."""
    if warning not in _LOGGED:
        _LOGGED.add(warning)
        logging.getLogger("painlens.dashboard").warning(warning)


def safe_options() -> dict[str, object]:
    """The settings of ``dashboard/.streamlit/config.toml`` as Streamlit option names, e.g. ``{"server.address": "127.0.0.1"}``."""
    with open(SAFE_CONFIG, "rb") as handle:
        sections = tomllib.load(handle)
    return {f"{section}.{key}": value for section, values in sections.items() for key, value in values.items()}


def command(artifacts: str | os.PathLike, port: int = DEFAULT_PORT, address: str = "127.0.0.1",
            max_upload_mb: int = MAX_UPLOAD_MB, python: str = sys.executable) -> list[str]:
    """The argv that serves the dashboard on ``address:port`` for the artifact folder ``artifacts``."""
    options = {**safe_options(), "server.address": address, "server.port": port, "server.maxUploadSize": max_upload_mb}
    flags = []
    for name, value in options.items():
        flags += [f"--{name}", str(value).lower() if isinstance(value, bool) else str(value)]
    return [python, "-c", PRELOAD, "run", str(APP), *flags,
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
