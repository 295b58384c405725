"""Where the assessment records and the dashboard's users live: the one place that reads their environment
variables (the entry points call ``from_environment`` and pass the result down).

    PAINLENS_DATABASE_URL   a SQLAlchemy URL, e.g. ``postgresql://user:password@host/painlens``; default a SQLite
                            file, ``$XDG_DATA_HOME/painlens/records.sqlite`` (``~/.local/share/painlens/...``)
    PAINLENS_USERS          the users file (``painlens users add``); default ``$XDG_CONFIG_HOME/painlens/users.json``
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

URL_VARIABLE = "PAINLENS_DATABASE_URL"
USERS_VARIABLE = "PAINLENS_USERS"


@dataclass(frozen=True)
class RecordsSettings:
    database_url: str
    users_file: Path

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> "RecordsSettings":
        env = os.environ if env is None else env
        home = Path(env.get("HOME") or Path.home())
        data = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
        config = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
        url = env.get(URL_VARIABLE) or f"sqlite:///{data / 'painlens' / 'records.sqlite'}"
        return cls(database_url=url, users_file=Path(env.get(USERS_VARIABLE) or config / "painlens" / "users.json"))
