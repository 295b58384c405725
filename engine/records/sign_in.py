"""Signing in with a name and password from the users file, throttled twice: after ``MAX_FAILURES`` failed sign-ins
for one name within ``WINDOW``, that name is refused for ``LOCKOUT``; after ``ADDRESS_MAX_FAILURES`` failed sign-ins
from one network address within ``ADDRESS_WINDOW`` (whatever names were tried: one client trying many names, a
password spray), that address is refused for ``ADDRESS_LOCKOUT``. Fixed windows, not growing delays: a person who
mistyped knows exactly when to try again, from the sentence. A name that is no user is counted and refused the
same way, with the same sentences, so a refusal says nothing about who has an account. A successful sign-in clears
the name's count and takes back its own attempt from the address's (a colleague signing in never counts against
the clinic's address); ``painlens users unlock NAME`` and ``painlens users unlock-address ADDRESS`` clear a lockout.

Why 20 per address against 5 per name: an attempt refused because its name is paused is not counted against the
address (its password is not checked), so one person's typos add at most 5 to their address in a quarter hour; 20
needs at least four names to fail five times each, or a dozen colleagues behind one clinic's NAT to fail twice each,
within the same 15 minutes. One client can then lock out at most four names before its address is paused, instead of
every name in the users file, and tries at most 20 passwords per quarter hour over all names, not 5 per name.

The address is the one the browser connects from (the dashboard passes Streamlit's ``st.context.ip_address``):
behind a reverse proxy on this machine, the address the proxy sends in X-Forwarded-For (Streamlit's server,
uvicorn, trusts that header from 127.0.0.1 and ::1, or from ``FORWARDED_ALLOW_IPS``); behind a proxy elsewhere that
is not trusted, the proxy's own address, so everyone it serves shares one count (set ``FORWARDED_ALLOW_IPS`` to it).
IPv6 addresses are counted per /64 network (one machine usually holds a whole /64: counting each address would let
it try without limit). An address that is not known (None: a browser on this machine, a proxy on it that does not
send X-Forwarded-For, a test) is not counted per address, only per name, and the log says so once: counting every
unknown client under one key would let one of them pause sign-in for all of them, which is what the limit is for
to prevent.

Where the counts live: in the records database (``sign_in_failures`` per name, ``sign_in_address_failures`` per
address, next to the audit), so every dashboard process on that database sees the same counts and a restart forgets
none. Each attempt is counted as failed *before* its password is checked, for its address and its name in one
transaction (SQLite's BEGIN IMMEDIATE; PostgreSQL's row locks, the address's first, always in that order, so two
attempts never wait on each other), and cleared again when it succeeds: guesses sent in parallel cannot slip past
either limit while their passwords are being checked. When the database cannot be used (unreachable, locked, older
than this code), sign-in still works and the counts are kept in this process's memory instead (the same limits for
every session this server process serves; lost at a restart, not seen by other processes), and the log says so
once; the database is tried again every ``RETRY``.

The audit (``audit_events``): ``sign_in`` (actor and account: the user), ``sign_in_failed`` and
``sign_in_locked`` (account: the name tried when it is a user, else None, since a name that is no user may be a
password typed into the wrong field; count: failures of the name in the window), ``sign_in_address_locked`` (count:
the address's failures in the window), ``sign_in_unlocked`` and ``sign_in_address_unlocked`` (actor: who ran
``painlens users``; count: the failures cleared); each with ``address``, the keyed hash of the address it came from
(None: not known), never the address itself. Never a password. Attempts refused during a lockout are not written
one by one (a flood of them must not fill the audit). The counts tables keep the keyed hash of each name and
address, not the name or the address, and forget a row once its window and lockout are over. The refusal for an
address names its ``reference``, the first 8 characters of that hash, which `painlens users unlock-address` takes as
well as the address itself.

Keyed hashes, not plain SHA-256: a SHA-256 of an IPv4 address is reversed by hashing all 2^32 addresses (minutes),
so a dump of the audit would hold the clinicians' addresses in effect; a name tried may be a password typed into the
wrong field. Each is kept as HMAC-SHA-256 under a secret key that is not in the database: ``PAINLENS_ADDRESS_KEY``
when set (engine/records/settings.py), else a random key made once in ``sign-in.key`` next to the users file (mode
0600, made atomically: processes starting together all read the one that won). Every process on one machine reads
the same file, so they count alike. Several machines on one database must share the key (the same
``PAINLENS_ADDRESS_KEY``, or a copy of the file): with different keys each machine counts an address apart (its own
20) and their audit lines for one address do not match; `unlock-address REFERENCE` still works from any of them
(the reference is looked up in the database), `unlock-address ADDRESS` only from a machine with the key that
counted it. Losing the key (a new one is made) costs only this: earlier audit lines can no longer be matched to
later ones of the same address or name, and the current counts start again from zero (the old rows are forgotten
within half an hour). When the key file can be neither read nor made (a read-only folder), this process uses a
key of its own, says so in the log once, and ``key_source`` says "process": its counts are not shared with other
processes and its audit lines match no other process's. Databases that held plain SHA-256 values (revision 0003,
never deployed) lose them in migration 0004: the audit's ``address`` becomes empty on those rows, the counts
tables are emptied.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from engine.errors import PainLensError
from engine.records import users
from engine.records.assessments import now
from engine.records.database import Database, RecordsError
from engine.records.models import NAME_LENGTH, AuditEvent, SignInAddressFailures, SignInFailures
from engine.records.users import User

log = logging.getLogger("painlens.records")


@dataclass(frozen=True)
class Limit:
    """``max_failures`` failed sign-ins within ``window`` pause sign-in for ``lockout``."""

    max_failures: int
    window: timedelta
    lockout: timedelta


NAME_LIMIT = Limit(5, timedelta(minutes=15), timedelta(minutes=15))
ADDRESS_LIMIT = Limit(20, timedelta(minutes=15), timedelta(minutes=15))  # why 20: the module's docstring
MAX_FAILURES, WINDOW, LOCKOUT = NAME_LIMIT.max_failures, NAME_LIMIT.window, NAME_LIMIT.lockout
ADDRESS_MAX_FAILURES, ADDRESS_WINDOW, ADDRESS_LOCKOUT = (ADDRESS_LIMIT.max_failures, ADDRESS_LIMIT.window,
                                                         ADDRESS_LIMIT.lockout)
REFERENCE_LENGTH = 8  # the hex characters of an address's keyed hash its refusal names (for `unlock-address`)
KEY_FILE = "sign-in.key"  # next to the users file: the keyed hashes' secret when PAINLENS_ADDRESS_KEY is not set
RETRY = timedelta(seconds=30)  # a database that failed is tried again after this (meanwhile: this process's counts)
SIGN_IN_ACTOR = "sign-in form"  # who made a failed attempt is not known: the audit names the form and the account


class SignInRefused(PainLensError):
    """Too many failed sign-ins for this name or from this address: the sentence says when to try again (the same for
    every name)."""


@dataclass(frozen=True)
class Counts:
    """One name's or address's failed sign-ins: how many since ``window_start``, and until when it is refused."""

    failures: int = 0
    window_start: datetime | None = None
    locked_until: datetime | None = None

    def locked_at(self, moment: datetime) -> bool:
        return self.locked_until is not None and moment < self.locked_until

    def after_failure(self, moment: datetime, limit: Limit = NAME_LIMIT) -> "Counts":
        """The counts once one more attempt failed at ``moment`` (a lockout when it is the limit's max in its window)."""
        fresh = (self.window_start is None or moment >= self.window_start + limit.window
                 or (self.locked_until is not None and moment >= self.locked_until))
        failures, start = (1, moment) if fresh else (self.failures + 1, self.window_start)
        return Counts(failures, start, moment + limit.lockout if failures >= limit.max_failures else None)

    def taken_back(self, reserved: "Counts", limit: Limit) -> "Counts":
        """The counts without the attempt that ``reserved`` counted (it succeeded); as they are when their window
        started again since (the attempt is no longer in them)."""
        if self.window_start != reserved.window_start or self.failures < 1:
            return self
        failures = self.failures - 1
        return Counts(failures, self.window_start, self.locked_until if failures >= limit.max_failures else None)

    def forget_at(self, limit: Limit = NAME_LIMIT) -> datetime:
        """After this moment the counts mean nothing (window over, lockout over)."""
        ends = self.window_start + limit.window
        return max(ends, self.locked_until) if self.locked_until else ends


def keyed(key: bytes, kind: str, text: str) -> str:
    """HMAC-SHA-256 of ``text`` under ``key`` (hex); ``kind`` ("name", "address") keeps a name and an address that
    are the same text apart."""
    return hmac.new(key, f"{kind}\0{text}".encode("utf-8"), hashlib.sha256).hexdigest()


def digest(name: str, key: bytes) -> str:
    """What a name is counted under: its keyed hash (the counts table holds no names)."""
    return keyed(key, "name", clean(name))


def clean(name: str) -> str:
    """The name as the users file is searched for it."""
    return (name or "").strip()


def network(address: str) -> str:
    """What an address is counted as: an IPv4 address as it is (also written as IPv6, ::ffff:a.b.c.d), an IPv6
    address's /64 network, anything else (a host name) as given."""
    text = (address or "").strip()
    try:
        parsed = ipaddress.ip_address(text.split("%")[0])  # without an IPv6 zone (fe80::1%eth0)
    except ValueError:
        return text
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped:
        parsed = parsed.ipv4_mapped
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network(f"{parsed}/64", strict=False))
    return str(parsed)


def address_digest(address: str | None, key: bytes) -> str | None:
    """What an address is counted under: the keyed hash of its network (``network``); None for an unknown one."""
    if not address or not str(address).strip():
        return None
    return keyed(key, "address", network(str(address)))


def load_key(users_file: Path, configured: str | None = None) -> tuple[bytes, str]:
    """(the keyed hashes' secret, where it came from: "environment", "file" or "process"). ``configured``:
    PAINLENS_ADDRESS_KEY (RecordsSettings.address_key). Else the file KEY_FILE next to ``users_file``, made once
    with a random key when missing; when it can be neither read nor made, a key for this process alone (the log
    says so)."""
    if configured:
        return configured.encode("utf-8"), "environment"
    path = Path(users_file).parent / KEY_FILE
    try:
        if not path.exists():
            _make_key_file(path)
        key = path.read_text(encoding="ascii").strip()
        if len(key) < 32:
            raise ValueError("too short")
        return key.encode("ascii"), "file"
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "it is not one PainLens made"
        log.warning("sign-in: the key file %s cannot be used (%s): names and addresses are hashed with a key of this "
                    "process only, so its failed sign-ins are not shared with other processes and its audit lines "
                    "match no other's (set PAINLENS_ADDRESS_KEY, or fix the file)", path, reason)
        return secrets.token_bytes(32), "process"


def _make_key_file(path: Path) -> None:
    """A random key in ``path``, mode 0600, made atomically: written aside, then linked into place, which fails when
    another process was first (its key is the one read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as out:
            out.write(secrets.token_hex(32) + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(aside, path)
        except FileExistsError:
            pass  # another process made it first: its key is the one everyone uses
    finally:
        aside.unlink(missing_ok=True)


def refusal(locked_until: datetime, moment: datetime) -> str:
    return (f"Too many failed sign-ins with this name: sign-in with it is paused for {LOCKOUT.seconds // 60} minutes. "
            f"Try again after {locked_until:%H:%M} UTC ({_in_minutes(locked_until, moment)}), or ask your "
            "administrator to unlock it.")


def address_refusal(locked_until: datetime, moment: datetime, key: str) -> str:
    """The same for every name tried: whether a name exists is not said."""
    return (f"Too many failed sign-ins from this network address: sign-in from it is paused for "
            f"{ADDRESS_LOCKOUT.seconds // 60} minutes, whatever the name. Try again after {locked_until:%H:%M} UTC "
            f"({_in_minutes(locked_until, moment)}), or ask your administrator to unlock the address (reference "
            f"{key[:REFERENCE_LENGTH]}).")


def _in_minutes(locked_until: datetime, moment: datetime) -> str:
    minutes = max(1, -(-int((locked_until - moment).total_seconds()) // 60))  # rounded up: never "0 minutes"
    return f"in {minutes} minute{'s' if minutes > 1 else ''}"


@dataclass(frozen=True)
class Reservation:
    """One attempt's counts: the name's, the address's (None: not known); ``refused`` "name", "address" or "" (the
    attempt goes on, counted as failed already under both); ``in_database``: whose counts they are."""

    name: Counts
    address: Counts | None
    refused: str
    in_database: bool


class ProcessCounts:
    """The counts in this process's memory: the fallback while the records database cannot be used. Names are kept
    under their digest, addresses under "address:" and theirs."""

    def __init__(self):
        self._counts: dict[str, Counts] = {}
        self._lock = threading.Lock()

    def reserve(self, key: str, moment: datetime, address_key: str | None = None) -> Reservation:
        """The attempt's counts; one that may go on is counted as failed already, for its name and its address."""
        where = f"address:{address_key}" if address_key else None
        with self._lock:
            counts, near = self._counts.get(key, Counts()), self._counts.get(where, Counts()) if where else None
            if near is not None and near.locked_at(moment):
                return Reservation(counts, near, "address", False)
            if counts.locked_at(moment):
                return Reservation(counts, near, "name", False)
            self._counts[key] = counts = counts.after_failure(moment, NAME_LIMIT)
            if where:
                self._counts[where] = near = near.after_failure(moment, ADDRESS_LIMIT)
            for stale in [k for k, c in self._counts.items()
                          if c.forget_at(ADDRESS_LIMIT if k.startswith("address:") else NAME_LIMIT) < moment]:
                del self._counts[stale]
            return Reservation(counts, near, "", False)

    def clear(self, key: str) -> int:
        with self._lock:
            return self._counts.pop(key, Counts()).failures

    def take_back(self, address_key: str, reserved: Counts) -> None:
        """A sign-in succeeded: its attempt no longer counts against its address."""
        with self._lock:
            where = f"address:{address_key}"
            if where in self._counts:
                self._counts[where] = self._counts[where].taken_back(reserved, ADDRESS_LIMIT)

    def clear_address(self, address_key: str) -> int:
        return self.clear(f"address:{address_key}")


PROCESS_COUNTS = ProcessCounts()  # one per process: every session of a dashboard server shares it


class SignInGuard:
    """Sign-in against ``users_file`` with the counts in ``database`` (or, when it fails, in ``fallback``).
    ``clock``: the current UTC time (tests pass their own). ``counted_in``: where the last attempt was counted,
    "database" or "process" (with ``fallback_reason``, the database's sentence). ``address_key``:
    PAINLENS_ADDRESS_KEY (None: the key file, ``load_key``); ``key_source``: where the key came from."""

    def __init__(self, database: Database | None, users_file: Path, clock: Callable[[], datetime] = now,
                 fallback: ProcessCounts = PROCESS_COUNTS, address_key: str | None = None):
        self.db, self.users_file, self.clock, self.fallback = database, Path(users_file), clock, fallback
        self.key, self.key_source = load_key(self.users_file, address_key)
        self.counted_in, self.fallback_reason = "database", ""
        self._retry_at: datetime | None = None  # while the database fails: when to try it again
        self._said_unknown_address = False

    def sign_in(self, name: str, password: str, address: str | None = None) -> User | None:
        """The user when the password is theirs, None when it is not; SignInRefused while the name or the address
        (the client's network address, None when not known: counted per name only) is paused."""
        name, moment = clean(name), self.clock()
        key, where, known = self.digest(name), self.address_digest(address), name in users.read(self.users_file)
        if where is None:
            self._say_unknown_address()
        reserved = self._reserve(key, where, moment)
        if reserved.refused == "address":
            raise SignInRefused(address_refusal(reserved.address.locked_until, moment, where))
        if reserved.refused == "name":
            raise SignInRefused(refusal(reserved.name.locked_until, moment))
        user = users.verify(self.users_file, name, password)
        if user is not None:
            self._settle_success(key, where, reserved, user, moment)
        else:
            self._settle_failure(name[:NAME_LENGTH] if known else None, where, reserved, moment)
        return user

    def unlock(self, name: str, actor: str) -> int:
        """Clear the name's failed sign-ins and lockout; how many failures were cleared (0: none counted). The
        database's counts (RecordsError when it fails) and this process's."""
        name, key = clean(name), self.digest(name)
        cleared = self.fallback.clear(key)
        with self.db.transaction("nothing was unlocked") as session:
            row = session.get(SignInFailures, key)
            if row is not None:
                cleared = max(cleared, row.failures)
                session.delete(row)
            session.add(AuditEvent(at=self.clock(), actor=actor[:NAME_LENGTH], action="sign_in_unlocked",
                                   account=name[:NAME_LENGTH], count=cleared))
        return cleared

    def unlock_address(self, address: str, actor: str) -> tuple[str, int]:
        """Clear an address's failed sign-ins and lockout: ``address`` is the address (IPv4, IPv6) or the reference
        its refusal named (the start of its keyed hash). (the reference, how many failures were cleared: 0 none counted).
        RecordsError when the database fails; UnknownAddressError for a reference that names no row, or several."""
        key = _reference_or_digest(address, self.key)
        with self.db.transaction("nothing was unlocked") as session:
            if len(key) < 64:  # a reference: the row it starts
                found = session.scalars(select(SignInAddressFailures.address_digest)
                                        .where(SignInAddressFailures.address_digest.startswith(key))).all()
                if len(found) != 1:
                    raise UnknownAddressError(
                        f"No failed sign-ins are counted under the reference {key} (its lockout may be over, or it was "
                        "mistyped); nothing was unlocked." if not found else
                        f"The reference {key} matches {len(found)} addresses: give the address itself; nothing was "
                        "unlocked.")
                key = found[0]
            cleared = self.fallback.clear_address(key)
            row = session.get(SignInAddressFailures, key)
            if row is not None:
                cleared = max(cleared, row.failures)
                session.delete(row)
            session.add(AuditEvent(at=self.clock(), actor=actor[:NAME_LENGTH], action="sign_in_address_unlocked",
                                   address=key, count=cleared))
        return key[:REFERENCE_LENGTH], cleared

    def counts(self, name: str) -> Counts:
        """The name's counts in the database (RecordsError when it fails)."""
        with self.db.transaction("nothing was read") as session:
            row = session.get(SignInFailures, self.digest(name))
            return _counts(row) if row else Counts()

    def address_counts(self, address: str) -> Counts:
        """The address's counts in the database (RecordsError when it fails)."""
        with self.db.transaction("nothing was read") as session:
            row = session.get(SignInAddressFailures, self.address_digest(address))
            return _counts(row) if row else Counts()

    def digest(self, name: str) -> str:
        """What ``name`` is counted under, with this guard's key."""
        return digest(name, self.key)

    def address_digest(self, address: str | None) -> str | None:
        """What ``address`` is counted and audited under, with this guard's key (None: not known)."""
        return address_digest(address, self.key)

    def _say_unknown_address(self) -> None:
        if not self._said_unknown_address:  # once: every attempt on this machine has no address
            self._said_unknown_address = True
            log.warning("sign-in: the client's network address is not known (a browser on this machine, or a reverse "
                        "proxy on it that does not send X-Forwarded-For): failed sign-ins are limited per name only")

    # --- the database, and the fallback -----------------------------------------------------------------

    def _reserve(self, key: str, where: str | None, moment: datetime) -> Reservation:
        """The attempt's counts, the database's when it can be used."""
        if self.db is not None and (self._retry_at is None or moment >= self._retry_at):
            try:
                reserved = self._reserve_in_database(key, where, moment)
                if self.counted_in != "database":
                    log.warning("sign-in: failed attempts are counted in the records database again")
                self.counted_in, self.fallback_reason, self._retry_at = "database", "", None
                return reserved
            except RecordsError as exc:
                if self.counted_in == "database":  # once, not at every attempt (a flood must not fill the log)
                    log.warning("sign-in: %s Failed attempts are counted in this process only until it works.", exc)
                # not at every attempt either: an unreachable server costs its connect timeout each time
                self.counted_in, self.fallback_reason, self._retry_at = "process", str(exc), moment + RETRY
        self.counted_in = "process"
        return self.fallback.reserve(key, moment, where)

    def _reserve_in_database(self, key: str, where: str | None, moment: datetime) -> Reservation:
        with self.db.transaction("the attempt was not counted") as session:
            # the address's row first, then the name's: every attempt locks in that order, so none waits in a circle
            near = _locked_row(session, SignInAddressFailures, where, moment) if where else None
            row = _locked_row(session, SignInFailures, key, moment)
            counts, near_counts = _counts(row), _counts(near) if near is not None else None
            if near_counts is not None and near_counts.locked_at(moment):
                return Reservation(counts, near_counts, "address", True)
            if counts.locked_at(moment):
                return Reservation(counts, near_counts, "name", True)
            counts = _store(row, counts.after_failure(moment, NAME_LIMIT), NAME_LIMIT)
            if near is not None:
                near_counts = _store(near, near_counts.after_failure(moment, ADDRESS_LIMIT), ADDRESS_LIMIT)
            return Reservation(counts, near_counts, "", True)

    def _settle_success(self, key: str, where: str | None, reserved: Reservation, user: User, moment: datetime) -> None:
        self.fallback.clear(key)
        if where:
            self.fallback.take_back(where, reserved.address)
        if not reserved.in_database:
            log.info("sign-in of a user not audited: the records database cannot be used")
            return
        try:
            with self.db.transaction("the sign-in was not recorded") as session:
                if where:  # the address's row first, as when counting
                    near = session.scalars(select(SignInAddressFailures).where(
                        SignInAddressFailures.address_digest == where).with_for_update()).one_or_none()
                    if near is not None:
                        _store(near, _counts(near).taken_back(reserved.address, ADDRESS_LIMIT), ADDRESS_LIMIT)
                session.execute(delete(SignInFailures).where(SignInFailures.name_digest == key))
                session.add(AuditEvent(at=moment, actor=user.name[:NAME_LENGTH], action="sign_in",
                                       account=user.name[:NAME_LENGTH], count=1, address=where))
        except RecordsError as exc:  # the user is in; their counted attempt stays (it ends with its window)
            log.warning("sign-in: %s", exc)

    def _settle_failure(self, account: str | None, where: str | None, reserved: Reservation, moment: datetime) -> None:
        counts, near = reserved.name, reserved.address
        locked = counts.locked_until is not None
        address_locked = near is not None and near.locked_until is not None
        if not reserved.in_database:
            if locked or address_locked:  # no name, no address in the log: the audit is where they go
                log.warning("sign-in: %s was paused for %d minutes after %d failed attempts (counted in this "
                            "process; the records database cannot be used)", "an address" if address_locked else "a name",
                            (ADDRESS_LOCKOUT if address_locked else LOCKOUT).seconds // 60,
                            near.failures if address_locked else counts.failures)
            return
        try:
            with self.db.transaction("the failed sign-in was not recorded") as session:
                session.add(AuditEvent(at=moment, actor=SIGN_IN_ACTOR, action="sign_in_failed", account=account,
                                       count=counts.failures, address=where))
                if locked:
                    session.add(AuditEvent(at=moment, actor=SIGN_IN_ACTOR, action="sign_in_locked", account=account,
                                           count=counts.failures, address=where))
                if address_locked:
                    session.add(AuditEvent(at=moment, actor=SIGN_IN_ACTOR, action="sign_in_address_locked",
                                           count=near.failures, address=where))
            self._forget_stale(moment)
        except RecordsError as exc:  # the attempt is counted already; only its audit line is missing
            log.warning("sign-in: %s", exc)

    def _forget_stale(self, moment: datetime) -> None:
        """Housekeeping after a failure, in its own transaction (never holding up the count): rows whose window
        and lockout are over, so that names tried once long ago (or a spray of made-up names) do not pile up."""
        try:
            with self.db.transaction("nothing was forgotten") as session:
                session.execute(delete(SignInAddressFailures).where(SignInAddressFailures.forget_at < moment))
                session.execute(delete(SignInFailures).where(SignInFailures.forget_at < moment))
        except RecordsError:
            pass  # another attempt's transaction may hold those rows: the next failure forgets them


class UnknownAddressError(PainLensError):
    """`painlens users unlock-address` was given something that is neither an address nor a reference it knows."""


def _reference_or_digest(given: str, key: bytes) -> str:
    """The keyed hash of an address, or a reference (hex, at least REFERENCE_LENGTH characters) as given, lower
    case."""
    text = (given or "").strip()
    candidate = text.split("%")[0]
    try:
        ipaddress.ip_address(candidate)
        return address_digest(text, key)
    except ValueError:
        pass
    if len(text) >= REFERENCE_LENGTH and len(text) <= 64 and all(ch in "0123456789abcdefABCDEF" for ch in text):
        return text.lower()
    raise UnknownAddressError(f"{text[:80]!r} is neither a network address (IPv4 or IPv6) nor the reference a refusal "
                              f"named ({REFERENCE_LENGTH} or more hexadecimal characters); nothing was unlocked.")


def _locked_row(session, model, key: str, moment: datetime):
    """The row counting ``key``, made when new, locked until the transaction ends: a parallel attempt on the same
    name or address waits, then sees this one counted."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    column = model.__table__.primary_key.columns.values()[0]
    session.execute(insert(model).values({column.name: key, "failures": 0, "window_start": moment, "locked_until": None,
                                          "forget_at": moment}).on_conflict_do_nothing(index_elements=[column.name]))
    return session.scalars(select(model).where(column == key).with_for_update()).one()


def _store(row, counts: Counts, limit: Limit) -> Counts:
    row.failures, row.window_start, row.locked_until = counts.failures, counts.window_start, counts.locked_until
    row.forget_at = counts.forget_at(limit)
    return counts


def _counts(row: SignInFailures) -> Counts:
    return Counts(row.failures, _utc(row.window_start), _utc(row.locked_until) if row.locked_until else None)


def _utc(moment: datetime) -> datetime:
    """SQLite gives back naive times: they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


_GUARDS: dict[tuple[str, str], SignInGuard] = {}
_GUARDS_LOCK = threading.Lock()


def guard(users_file: Path, database_url: str, address_key: str | None = None) -> SignInGuard:
    """The process's guard for these users and this database (its one Database, the process's fallback counts;
    one guard, so that falling back is logged once, not at every attempt). ``address_key``: PAINLENS_ADDRESS_KEY."""
    from engine.records.database import open_database

    with _GUARDS_LOCK:
        key = (str(users_file), database_url, address_key)
        if key not in _GUARDS:
            _GUARDS[key] = SignInGuard(open_database(database_url), users_file, address_key=address_key)
        return _GUARDS[key]
