"""The dashboard's users: a JSON file of names, roles and argon2 password hashes (``painlens users add/remove``).

    {"users": {"alice": {"role": "clinician", "hash": "$argon2id$..."},
               "bob@clinic.example": {"role": "researcher", "hash": null}}}

Roles: ``clinician`` (upload, save, history) and ``researcher`` (the experiment pages only). An entry without a
hash is a person who signs in through the identity provider (Streamlit's ``st.login``, OIDC) under that e-mail;
the file then only gives their role. The file is written atomically, readable by its owner only.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from engine.errors import PainLensError

ROLES = ("clinician", "researcher")
MIN_PASSWORD_LENGTH = 10


class UsersFileError(PainLensError):
    pass


@dataclass(frozen=True)
class User:
    name: str
    role: str

    @property
    def clinician(self) -> bool:
        return self.role == "clinician"


def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()  # argon2id, the library's defaults (RFC 9106's low-memory profile)


def read(path: Path) -> dict[str, dict]:
    """name -> {"role", "hash"}; {} when the file does not exist."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise UsersFileError(f"The users file {path} cannot be read ({exc.strerror}).") from None
    try:
        users = json.loads(text).get("users", {})
        assert isinstance(users, dict) and all(entry.get("role") in ROLES for entry in users.values())
        return users
    except (ValueError, AttributeError, AssertionError):
        raise UsersFileError(f"The users file {path} is not one `painlens users add` wrote; fix or remove it.") from None


def _write(path: Path, users: dict[str, dict]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".users-")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump({"users": users}, out, indent=2, sort_keys=True)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def add(path: Path, name: str, role: str, password: str | None) -> None:
    """Add or replace a user; ``password`` None: one who signs in through the identity provider."""
    name = name.strip()
    if not name or any(ch.isspace() for ch in name):
        raise UsersFileError("A user name is one word (no spaces), for example a login or an e-mail address.")
    if role not in ROLES:
        raise UsersFileError(f"The role must be {' or '.join(ROLES)}.")
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise UsersFileError(f"The password is shorter than {MIN_PASSWORD_LENGTH} characters; choose a longer one.")
    users = read(path)
    users[name] = {"role": role, "hash": _hasher().hash(password) if password is not None else None}
    _write(path, users)


def remove(path: Path, name: str) -> None:
    users = read(path)
    if name not in users:
        raise UsersFileError(f"There is no user {name} in {path}.")
    del users[name]
    _write(path, users)


def verify(path: Path, name: str, password: str) -> User | None:
    """The user when the password is theirs, else None (the same work either way: a wrong name takes as
    long as a wrong password)."""
    from argon2.exceptions import InvalidHashError, VerificationError

    entry = read(path).get(name.strip())
    stored = entry.get("hash") if entry else None
    hasher = _hasher()
    try:
        hasher.verify(stored or _DUMMY.get(hasher), password)
    except (VerificationError, InvalidHashError):
        return None
    return User(name.strip(), entry["role"]) if stored else None


def role_of(path: Path, name: str) -> User | None:
    """The user signed in elsewhere (the identity provider), if the file names them."""
    entry = read(path).get(name)
    return User(name, entry["role"]) if entry else None


class _Dummy:
    value: str | None = None

    def get(self, hasher) -> str:
        if self.value is None:
            self.value = hasher.hash("no such user, same work")
        return self.value


_DUMMY = _Dummy()
