"""Where the assessment records and the dashboard's users live: the one place that reads their environment
variables (the entry points call ``from_environment`` and pass the result down).

    PAINLENS_DATABASE_URL   a SQLAlchemy URL, e.g. ``postgresql://user:password@host/painlens``; default a SQLite
                            file, ``$XDG_DATA_HOME/painlens/records.sqlite`` (``~/.local/share/painlens/...``)
    PAINLENS_USERS          the users file (``painlens users add``); default ``$XDG_CONFIG_HOME/painlens/users.json``
    PAINLENS_ADDRESS_KEY    the secret key of the sign-in counts' and the audit's keyed hashes of network addresses
                            and names (engine/records/sign_in.py); default a random key made once in the file
                            ``sign-in.key`` next to the users file
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

URL_VARIABLE = "PAINLENS_DATABASE_URL"
USERS_VARIABLE = "PAINLENS_USERS"
ADDRESS_KEY_VARIABLE = "PAINLENS_ADDRESS_KEY"


@dataclass(frozen=True)
class RecordsSettings:
    database_url: str
    users_file: Path
    address_key: str | None = None  # None: the key file next to the users file (engine.records.sign_in.load_key)

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> "RecordsSettings":
        env = os.environ if env is None else env
        home = Path(env.get("HOME") or Path.home())
        data = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
        config = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
        url = env.get(URL_VARIABLE) or f"sqlite:///{data / 'painlens' / 'records.sqlite'}"
        return cls(database_url=url, users_file=Path(env.get(USERS_VARIABLE) or config / "painlens" / "users.json"),
                   address_key=env.get(ADDRESS_KEY_VARIABLE) or None)
