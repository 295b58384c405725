"""A real PostgreSQL server for the records tests (a helper module, not a test file).

Debian's ``postgresql`` package (``.ci/run`` installs it): ``initdb`` a cluster in a temporary folder, start it
with ``pg_ctl`` on a free local port (TCP on 127.0.0.1 only, its socket in that folder), stop it at the end.
Run as the ``postgres`` user when the tests run as root (PostgreSQL refuses root), else as the current user.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

DEBIAN_BINARIES = "/usr/lib/postgresql/*/bin"


def binaries() -> Path | None:
    """The newest installed server's bin folder (Debian keeps it off the PATH), or one on the PATH."""
    found = sorted(glob.glob(DEBIAN_BINARIES), key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0)
    if found and (Path(found[-1]) / "initdb").exists():
        return Path(found[-1])
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def missing() -> str:
    """"" when a PostgreSQL server can be started here, else the sentence saying what is missing."""
    if binaries() is None:
        return "PostgreSQL's server (initdb, pg_ctl) is not installed: `apt-get install postgresql` (.ci/run does it)."
    return ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """One throw-away cluster: ``url`` for SQLAlchemy, ``stop()``/``start()`` (same data, same port), ``remove()``."""

    def __init__(self, base: Path | None = None):
        self.bin = binaries()
        self.folder = Path(tempfile.mkdtemp(prefix="painlens-pg-", dir=base))
        self.data = self.folder / "data"
        self.port = _free_port()
        self.as_postgres = os.geteuid() == 0
        user = "postgres" if self.as_postgres else None
        if user:
            shutil.chown(self.folder, user=user)
        self.user = "postgres" if self.as_postgres else os.environ.get("USER", "postgres")
        self._run(self.bin / "initdb", "-D", self.data, "-U", self.user, "--auth=trust", "--no-sync", "-E", "UTF8",
                  "--locale=C")
        self.start()
        self._run(self.bin / "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "painlens")

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/painlens"

    def _run(self, *argv) -> None:
        argv = [str(a) for a in argv]
        if self.as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=self.folder)
        if done.returncode:
            raise RuntimeError(f"{argv[0 if not self.as_postgres else 3]} failed: {done.stderr[-1500:]}")

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off"
        self._run(self.bin / "pg_ctl", "-D", self.data, "-o", options, "-l", self.folder / "server.log", "-w", "start")

    def stop(self) -> None:
        self._run(self.bin / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        try:
            self.stop()
        except RuntimeError:
            pass  # already stopped
        shutil.rmtree(self.folder, ignore_errors=True)

    def create_database(self, name: str) -> str:
        """A new empty database on this server; its URL."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{name}"
