"""Signing in with a name and password from the users file, throttled: after ``MAX_FAILURES`` failed sign-ins
for one name within ``WINDOW``, that name is refused for ``LOCKOUT`` (a fixed window, not a growing delay: a
person who mistyped knows exactly when to try again), with a sentence saying so and when. A name that is no
user is counted and refused the same way, with the same sentence, so the refusal says nothing about who has an
account. A successful sign-in clears the name's count; ``painlens users unlock NAME`` clears a lockout.

Where the counts live: in the records database (``sign_in_failures``, next to the audit), so every dashboard
process on that database sees the same counts and a restart forgets none. Each attempt is counted as failed
*before* its password is checked, in one transaction (SQLite's BEGIN IMMEDIATE, PostgreSQL's row lock), and
cleared again when it succeeds: guesses sent in parallel cannot slip past the limit while their passwords are
being checked. When the database cannot be used (unreachable, locked, older than this code), sign-in still
works and the counts are kept in this process's memory instead (the same limits for every session this server
process serves; lost at a restart, not seen by other processes), and the log says so once; the database is
tried again every ``RETRY``.

The audit (``audit_events``): ``sign_in`` (actor and account: the user), ``sign_in_failed`` and
``sign_in_locked`` (account: the name tried when it is a user, else None, since a name that is no user may be a
password typed into the wrong field; count: failures in the window), ``sign_in_unlocked`` (actor: who ran
``painlens users unlock``; count: the failures cleared). Never a password. Attempts refused during a lockout are
not written one by one (a flood of them must not fill the audit). The counts table keeps a SHA-256 of each
name, not the name, and forgets a row once its window and lockout are over.
"""

from __future__ import annotations

import hashlib
import logging
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
from engine.records.models import NAME_LENGTH, AuditEvent, SignInFailures
from engine.records.users import User

log = logging.getLogger("painlens.records")

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)
RETRY = timedelta(seconds=30)  # a database that failed is tried again after this (meanwhile: this process's counts)
SIGN_IN_ACTOR = "sign-in form"  # who made a failed attempt is not known: the audit names the form and the account


class SignInRefused(PainLensError):
    """Too many failed sign-ins for this name: the sentence says when to try again (the same for every name)."""


@dataclass(frozen=True)
class Counts:
    """One name's failed sign-ins: how many since ``window_start``, and until when the name is refused."""

    failures: int = 0
    window_start: datetime | None = None
    locked_until: datetime | None = None

    def locked_at(self, moment: datetime) -> bool:
        return self.locked_until is not None and moment < self.locked_until

    def after_failure(self, moment: datetime) -> "Counts":
        """The counts once one more attempt failed at ``moment`` (a lockout when it is the MAX_FAILURES-th in WINDOW)."""
        fresh = (self.window_start is None or moment >= self.window_start + WINDOW
                 or (self.locked_until is not None and moment >= self.locked_until))
        failures, start = (1, moment) if fresh else (self.failures + 1, self.window_start)
        return Counts(failures, start, moment + LOCKOUT if failures >= MAX_FAILURES else None)

    def forget_at(self) -> datetime:
        """After this moment the counts mean nothing (window over, lockout over)."""
        ends = self.window_start + WINDOW
        return max(ends, self.locked_until) if self.locked_until else ends


def digest(name: str) -> str:
    """The key a name is counted under: its SHA-256 (the counts table holds no names)."""
    return hashlib.sha256(clean(name).encode("utf-8")).hexdigest()


def clean(name: str) -> str:
    """The name as the users file is searched for it."""
    return (name or "").strip()


def refusal(locked_until: datetime, moment: datetime) -> str:
    minutes = max(1, -(-int((locked_until - moment).total_seconds()) // 60))  # rounded up: never "0 minutes"
    return (f"Too many failed sign-ins with this name: sign-in with it is paused for {LOCKOUT.seconds // 60} minutes. "
            f"Try again after {locked_until:%H:%M} UTC (in {minutes} minute{'s' if minutes > 1 else ''}), or ask your "
            "administrator to unlock it.")


class ProcessCounts:
    """The counts in this process's memory: the fallback while the records database cannot be used."""

    def __init__(self):
        self._counts: dict[str, Counts] = {}
        self._lock = threading.Lock()

    def reserve(self, key: str, moment: datetime) -> tuple[Counts, bool]:
        """(the counts, whether the attempt may go on); an attempt that may go on is counted as failed already."""
        with self._lock:
            counts = self._counts.get(key, Counts())
            if counts.locked_at(moment):
                return counts, False
            self._counts[key] = counts.after_failure(moment)
            for stale in [k for k, c in self._counts.items() if c.forget_at() < moment]:
                del self._counts[stale]
            return self._counts[key], True

    def clear(self, key: str) -> int:
        with self._lock:
            return self._counts.pop(key, Counts()).failures


PROCESS_COUNTS = ProcessCounts()  # one per process: every session of a dashboard server shares it


class SignInGuard:
    """Sign-in against ``users_file`` with the counts in ``database`` (or, when it fails, in ``fallback``).
    ``clock``: the current UTC time (tests pass their own). ``counted_in``: where the last attempt was counted,
    "database" or "process" (with ``fallback_reason``, the database's sentence)."""

    def __init__(self, database: Database | None, users_file: Path, clock: Callable[[], datetime] = now,
                 fallback: ProcessCounts = PROCESS_COUNTS):
        self.db, self.users_file, self.clock, self.fallback = database, Path(users_file), clock, fallback
        self.counted_in, self.fallback_reason = "database", ""
        self._retry_at: datetime | None = None  # while the database fails: when to try it again

    def sign_in(self, name: str, password: str) -> User | None:
        """The user when the password is theirs, None when it is not; SignInRefused while the name is locked."""
        name, moment = clean(name), self.clock()
        key, known = digest(name), name in users.read(self.users_file)
        counts, go_on, in_database = self._reserve(key, moment)
        if not go_on:
            raise SignInRefused(refusal(counts.locked_until, moment))
        user = users.verify(self.users_file, name, password)
        if user is not None:
            self._settle_success(key, user, moment, in_database)
        else:
            self._settle_failure(name[:NAME_LENGTH] if known else None, counts, moment, in_database)
        return user

    def unlock(self, name: str, actor: str) -> int:
        """Clear the name's failed sign-ins and lockout; how many failures were cleared (0: none counted). The
        database's counts (RecordsError when it fails) and this process's."""
        name, key = clean(name), digest(clean(name))
        cleared = self.fallback.clear(key)
        with self.db.transaction("nothing was unlocked") as session:
            row = session.get(SignInFailures, key)
            if row is not None:
                cleared = max(cleared, row.failures)
                session.delete(row)
            session.add(AuditEvent(at=self.clock(), actor=actor[:NAME_LENGTH], action="sign_in_unlocked",
                                   account=name[:NAME_LENGTH], count=cleared))
        return cleared

    def counts(self, name: str) -> Counts:
        """The name's counts in the database (RecordsError when it fails)."""
        with self.db.transaction("nothing was read") as session:
            row = session.get(SignInFailures, digest(name))
            return _counts(row) if row else Counts()

    # --- the database, and the fallback -----------------------------------------------------------------

    def _reserve(self, key: str, moment: datetime) -> tuple[Counts, bool, bool]:
        """(the counts, whether the attempt may go on, whether they are the database's)."""
        if self.db is not None and (self._retry_at is None or moment >= self._retry_at):
            try:
                counts, go_on = self._reserve_in_database(key, moment)
                if self.counted_in != "database":
                    log.warning("sign-in: failed attempts are counted in the records database again")
                self.counted_in, self.fallback_reason, self._retry_at = "database", "", None
                return counts, go_on, True
            except RecordsError as exc:
                if self.counted_in == "database":  # once, not at every attempt (a flood must not fill the log)
                    log.warning("sign-in: %s Failed attempts are counted in this process only until it works.", exc)
                # not at every attempt either: an unreachable server costs its connect timeout each time
                self.counted_in, self.fallback_reason, self._retry_at = "process", str(exc), moment + RETRY
        self.counted_in = "process"
        counts, go_on = self.fallback.reserve(key, moment)
        return counts, go_on, False

    def _reserve_in_database(self, key: str, moment: datetime) -> tuple[Counts, bool]:
        with self.db.transaction("the attempt was not counted") as session:
            insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
            session.execute(insert(SignInFailures).values(name_digest=key, failures=0, window_start=moment,
                                                         locked_until=None, forget_at=moment)
                            .on_conflict_do_nothing(index_elements=["name_digest"]))
            # the row locked until commit: a parallel attempt on the same name waits, then sees this one counted
            row = session.scalars(select(SignInFailures).where(SignInFailures.name_digest == key).with_for_update()).one()
            counts = _counts(row)
            if counts.locked_at(moment):
                return counts, False
            counts = counts.after_failure(moment)
            row.failures, row.window_start, row.locked_until = counts.failures, counts.window_start, counts.locked_until
            row.forget_at = counts.forget_at()
            return counts, True

    def _settle_success(self, key: str, user: User, moment: datetime, in_database: bool) -> None:
        self.fallback.clear(key)
        if not in_database:
            log.info("sign-in of a user not audited: the records database cannot be used")
            return
        try:
            with self.db.transaction("the sign-in was not recorded") as session:
                session.execute(delete(SignInFailures).where(SignInFailures.name_digest == key))
                session.add(AuditEvent(at=moment, actor=user.name[:NAME_LENGTH], action="sign_in",
                                       account=user.name[:NAME_LENGTH], count=1))
        except RecordsError as exc:  # the user is in; their counted attempt stays (it ends with its window)
            log.warning("sign-in: %s", exc)

    def _settle_failure(self, account: str | None, counts: Counts, moment: datetime, in_database: bool) -> None:
        locked = counts.locked_until is not None
        if not in_database:
            if locked:  # no name in the log: the audit is where names go
                log.warning("sign-in: a name was locked for %d minutes after %d failed attempts (counted in this "
                            "process; the records database cannot be used)", LOCKOUT.seconds // 60, counts.failures)
            return
        try:
            with self.db.transaction("the failed sign-in was not recorded") as session:
                session.add(AuditEvent(at=moment, actor=SIGN_IN_ACTOR, action="sign_in_failed", account=account,
                                       count=counts.failures))
                if locked:
                    session.add(AuditEvent(at=moment, actor=SIGN_IN_ACTOR, action="sign_in_locked", account=account,
                                           count=counts.failures))
            self._forget_stale(moment)
        except RecordsError as exc:  # the attempt is counted already; only its audit line is missing
            log.warning("sign-in: %s", exc)

    def _forget_stale(self, moment: datetime) -> None:
        """Housekeeping after a failure, in its own transaction (never holding up the count): rows whose window
        and lockout are over, so that names tried once long ago (or a spray of made-up names) do not pile up."""
        try:
            with self.db.transaction("nothing was forgotten") as session:
                session.execute(delete(SignInFailures).where(SignInFailures.forget_at < moment))
        except RecordsError:
            pass  # another attempt's transaction may hold those rows: the next failure forgets them


def _counts(row: SignInFailures) -> Counts:
    return Counts(row.failures, _utc(row.window_start), _utc(row.locked_until) if row.locked_until else None)


def _utc(moment: datetime) -> datetime:
    """SQLite gives back naive times: they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


_GUARDS: dict[tuple[str, str], SignInGuard] = {}
_GUARDS_LOCK = threading.Lock()


def guard(users_file: Path, database_url: str) -> SignInGuard:
    """The process's guard for these users and this database (its one Database, the process's fallback counts;
    one guard, so that falling back is logged once, not at every attempt)."""
    from engine.records.database import open_database

    with _GUARDS_LOCK:
        key = (str(users_file), database_url)
        if key not in _GUARDS:
            _GUARDS[key] = SignInGuard(open_database(database_url), users_file)
        return _GUARDS[key]
