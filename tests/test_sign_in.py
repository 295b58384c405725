"""Throttled sign-in (engine/records/sign_in.py) with the clock injected, never slept on: five failed attempts for a
name within 15 minutes pause it for 15 minutes, a name that is no user exactly alike (the same sentence), a
success clears the count; the counts live in the records database, so a second process and a restarted one see
them (SQLite here, a real PostgreSQL server in the slow cases), and guesses sent in parallel cannot slip past the
limit; failures, lockouts, sign-ins and unlocks are audited without the password; `painlens users unlock NAME`
clears a lockout; a database that cannot be used leaves the counts in the process, and the log says so once; the
migration adds the table and keeps what the first schema held; the dashboard's form shows the sentence.
Per network address (the same machinery): twenty failures from one address over any names pause that address, not
the others, with a sentence that says nothing of the name; one colleague's typos behind a clinic's NAT do not (an
attempt refused for its name is not counted, a success takes its attempt back); parallel guesses over many names
stop at twenty; audited by the address's SHA-256, never the address; `painlens users unlock-address` takes the
address or the reference the sentence names; an unknown address is limited per name only and the log says so once.
Migration 0003 adds the address counts and the assessments' answer_kind, filled in from the saved answer records.
Names and addresses are kept as HMAC-SHA-256 under a key outside the database (PAINLENS_ADDRESS_KEY, else a file made
once beside the users file, mode 0600, the same for processes starting at once); migration 0004 drops 0003's plain
SHA-256 values.

The users file holds a real argon2id hash made with small parameters (verifying it takes milliseconds, not the
library default's quarter second); the default parameters are tested in tests/test_records.py."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import threading
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text

from engine.records import sign_in
from engine.records.assessments import audit_events, person_history
from engine.records.database import Database
from engine.records.models import AuditEvent, SignInAddressFailures, SignInFailures
from engine.records.sign_in import (ADDRESS_LOCKOUT, ADDRESS_MAX_FAILURES, LOCKOUT, MAX_FAILURES, WINDOW, ProcessCounts,
                                    SignInGuard, SignInRefused)
from engine.records.users import User

PASSWORD = "correct horse battery"
WRONG = "wrong horse battery"
START = datetime(2026, 12, 6, 9, 0, tzinfo=timezone.utc)


class Clock:
    """The guard's clock: moved by the test, never slept on."""

    def __init__(self, moment: datetime = START):
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, delta: timedelta) -> None:
        self.moment += delta


@pytest.fixture(scope="module")
def users_file(tmp_path_factory) -> Path:
    from argon2 import PasswordHasher

    path = tmp_path_factory.mktemp("users") / "users.json"
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    path.write_text(json.dumps({"users": {"alice": {"role": "clinician", "hash": cheap.hash(PASSWORD)},
                                          "bob": {"role": "researcher", "hash": cheap.hash(PASSWORD)}}}))
    return path


@pytest.fixture(scope="module")
def colleagues(tmp_path_factory) -> Path:
    """Six users with the same password (cheap hashes): the names one client tries in turn."""
    from argon2 import PasswordHasher

    path = tmp_path_factory.mktemp("colleagues") / "users.json"
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    path.write_text(json.dumps({"users": {name: {"role": "clinician", "hash": cheap.hash(PASSWORD)} for name in NAMES}}))
    return path


NAMES = ["ana", "ben", "cai", "dora", "eli", "fay"]
SPRAYER, CLINIC, ELSEWHERE = "203.0.113.7", "198.51.100.20", "2001:db8:5:6::1"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'records.sqlite'}"
    return request.getfixturevalue("postgres_server").create_database(f"s{uuid.uuid4().hex[:12]}")


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'records.sqlite'}"


def process(url: str, users_file: Path, clock: Clock) -> SignInGuard:
    """What one dashboard process has: its own Database on the URL, its own memory."""
    return SignInGuard(Database(url), users_file, clock=clock, fallback=ProcessCounts())


def fail(guard: SignInGuard, name: str, times: int) -> None:
    for _ in range(times):
        assert guard.sign_in(name, WRONG) is None


def test_five_failures_pause_a_name_for_fifteen_minutes_and_a_success_clears_the_count(sqlite_url, users_file):
    clock = Clock()
    guard = process(sqlite_url, users_file, clock)
    fail(guard, "alice", MAX_FAILURES - 1)
    assert guard.sign_in("alice", PASSWORD) == User("alice", "clinician")  # clears the four
    fail(guard, "alice", MAX_FAILURES - 1)
    assert guard.counts("alice").failures == MAX_FAILURES - 1 and not guard.counts("alice").locked_at(clock())
    fail(guard, "alice", 1)
    clock.advance(timedelta(minutes=1))
    with pytest.raises(SignInRefused) as refused:
        guard.sign_in("alice", PASSWORD)  # the right password too: the name is paused
    assert str(refused.value) == ("Too many failed sign-ins with this name: sign-in with it is paused for 15 minutes. "
                                  "Try again after 09:15 UTC (in 14 minutes), or ask your administrator to unlock it.")
    assert guard.counts("bob").failures == 0 and guard.sign_in("bob", PASSWORD) == User("bob", "researcher")
    clock.advance(LOCKOUT - timedelta(minutes=1))  # 09:15: the lockout is over
    assert guard.sign_in("alice", PASSWORD) == User("alice", "clinician")
    # failures further apart than the window never add up to a lockout
    for _ in range(MAX_FAILURES + 1):
        fail(guard, "alice", 1)
        clock.advance(WINDOW / (MAX_FAILURES - 1) + timedelta(seconds=1))
    assert guard.sign_in("alice", PASSWORD) == User("alice", "clinician")


def test_a_name_that_is_no_user_is_paused_alike_and_the_audit_keeps_neither_it_nor_a_password(sqlite_url, users_file):
    clock = Clock()
    guard = process(sqlite_url, users_file, clock)
    typed_as_a_name = "hunter2-the-password-in-the-name-field"
    fail(guard, "alice", MAX_FAILURES)
    fail(guard, typed_as_a_name, MAX_FAILURES)  # the dummy hash's full work: a quarter second each
    sentences = []
    for name in ("alice", typed_as_a_name):
        with pytest.raises(SignInRefused) as refused:
            guard.sign_in(name, PASSWORD)
        sentences.append(str(refused.value))
    assert sentences[0] == sentences[1]  # the refusal says nothing about who has an account
    assert guard.sign_in("bob", PASSWORD) is not None

    events = [(e["actor"], e["action"], e["account"], e["count"]) for e in audit_events(guard.db)]
    failed = [(sign_in.SIGN_IN_ACTOR, "sign_in_failed", "alice", n) for n in range(1, MAX_FAILURES + 1)]
    assert events[:MAX_FAILURES + 1] == failed + [(sign_in.SIGN_IN_ACTOR, "sign_in_locked", "alice", MAX_FAILURES)]
    assert [e[1:] for e in events[MAX_FAILURES + 1:]] == [("sign_in_failed", None, n) for n in range(1, MAX_FAILURES + 1)] + [
        ("sign_in_locked", None, MAX_FAILURES), ("sign_in", "bob", 1)]  # refused attempts are not written one by one
    with guard.db.engine.connect() as connection:
        dumped = str(connection.execute(select(AuditEvent.__table__)).all()) + str(
            connection.execute(select(SignInFailures.__table__)).all())
    for secret in (PASSWORD, WRONG, typed_as_a_name):
        assert secret not in dumped


def test_the_counts_are_shared_by_processes_survive_a_restart_and_parallel_guesses_stop_at_the_limit(url, users_file):
    clock = Clock()
    first, second = process(url, users_file, clock), process(url, users_file, clock)
    fail(first, "alice", MAX_FAILURES - 2)
    fail(second, "alice", 2)  # another dashboard process on the same database: the fifth failure
    restarted = process(url, users_file, clock)
    with pytest.raises(SignInRefused):
        restarted.sign_in("alice", PASSWORD)
    assert {first.counted_in, second.counted_in, restarted.counted_in} == {"database"}

    # twelve guesses at once for bob, from three processes: exactly five get their password checked
    outcomes: list[str] = []
    guards = [process(url, users_file, clock) for _ in range(3)]

    def guess(guard: SignInGuard) -> None:
        try:
            outcomes.append("wrong" if guard.sign_in("bob", WRONG) is None else "in")
        except SignInRefused:
            outcomes.append("refused")

    threads = [threading.Thread(target=guess, args=(guards[i % 3],)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["refused"] * (12 - MAX_FAILURES) + ["wrong"] * MAX_FAILURES
    actions = [e["action"] for e in audit_events(first.db) if e["account"] == "bob"]
    assert actions.count("sign_in_failed") == MAX_FAILURES and actions.count("sign_in_locked") == 1
    for guard in (first, second, restarted, *guards):
        guard.db.dispose()


def cli(args: list[str], env: dict):
    from typer.testing import CliRunner

    from painlens.cli import app

    return CliRunner().invoke(app, args, env=env)


def test_painlens_users_unlock_clears_a_lockout_and_the_audit_says_who(sqlite_url, users_file):
    clock = Clock(datetime.now(timezone.utc))
    guard = process(sqlite_url, users_file, clock)
    fail(guard, "alice", MAX_FAILURES)
    env = {"PAINLENS_DATABASE_URL": sqlite_url, "PAINLENS_USERS": str(users_file)}
    done = cli(["users", "unlock", "alice"], env)
    assert done.exit_code == 0 and "alice may sign in again: 5 failed attempts cleared." in done.output
    assert guard.sign_in("alice", PASSWORD) == User("alice", "clinician")  # at once, the same minute
    again = cli(["users", "unlock", "mallory"], env)
    assert again.exit_code == 0 and "mallory had no failed sign-ins counted" in again.output
    assert "mallory is no user" in again.output
    unlocked = [e for e in audit_events(guard.db) if e["action"] == "sign_in_unlocked"]
    assert [(e["account"], e["count"]) for e in unlocked] == [("alice", 5), ("mallory", 0)]
    assert all(e["actor"].startswith("painlens users unlock") for e in unlocked)
    down = cli(["users", "unlock", "alice"], {**env, "PAINLENS_DATABASE_URL": "sqlite:////proc/no/records.sqlite"})
    assert down.exit_code == 1 and "cannot be reached" in str(down.exception) and "nothing was unlocked" in str(down.exception)


def test_a_database_that_cannot_be_used_leaves_the_counts_in_the_process_and_the_log_says_so_once(tmp_path, users_file,
                                                                                                    caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    clock = Clock()
    guard = SignInGuard(Database(f"sqlite:///{blocker / 'records.sqlite'}"), users_file, clock=clock,
                        fallback=ProcessCounts())
    with caplog.at_level(logging.WARNING, logger="painlens.records"):
        fail(guard, "alice", MAX_FAILURES)
        with pytest.raises(SignInRefused):
            guard.sign_in("alice", PASSWORD)
    assert guard.counted_in == "process" and "cannot be reached" in guard.fallback_reason
    said = [r.getMessage() for r in caplog.records if "counted in this process only" in r.getMessage()]
    tried = [r for r in caplog.records if r.getMessage().startswith("records database error")]
    assert len(said) == 1 and len(tried) == 1  # the database is not tried again at every attempt (RETRY)
    assert "alice" not in caplog.text and PASSWORD not in caplog.text
    clock.advance(LOCKOUT)
    assert guard.sign_in("alice", PASSWORD) == User("alice", "clinician") and guard.counted_in == "process"
    blocker.unlink()
    blocker.mkdir()  # the database can be used again: the next attempt is counted there
    clock.advance(sign_in.RETRY)
    assert guard.sign_in("alice", WRONG) is None and guard.counted_in == "database"
    assert guard.counts("alice").failures == 1


def test_the_migrations_add_the_counts_and_answer_kind_filled_in_and_keep_what_the_first_schema_held(url):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from engine.records.models import Base

    db = Database(url)
    assert db.upgrade("0001") == (None, "0001")
    insert = text("INSERT INTO assessments (person_code, assessed_at, saved_by, experiment, experiment_version, answer, "
                  "image_kept) VALUES ('P-1', :at, 'alice', 'tiny', 'git abc', :answer, false)")
    with db.engine.begin() as connection:  # a record and its audit line as the first schema holds them
        connection.execute(text("INSERT INTO persons (code, created_at) VALUES ('P-1', :at)"), {"at": START})
        connection.execute(insert, {"at": START, "answer": '{"p_pain": 0.4}'})  # saved before answer_kind existed
        connection.execute(text("INSERT INTO audit_events (at, actor, action, person_code, count) "
                                "VALUES (:at, 'alice', 'save', 'P-1', 1)"), {"at": START})
    assert db.upgrade("0002") == ("0001", "0002")
    with db.engine.begin() as connection:  # the answer with the calm reference, and the face alone's, as 0002 saved them
        for kind, p in (("with_reference", 0.7), ("absolute", 0.5)):
            connection.execute(insert, {"at": START + timedelta(days=len(kind)), "answer": json.dumps(
                {"p_pain": p, "answer_kind": kind})})
    assert db.upgrade("0003") == ("0002", "0003")
    plain = hashlib.sha256(SPRAYER.encode()).hexdigest()  # what 0003's code kept: reversible for an IPv4 address
    with db.engine.begin() as connection:
        connection.execute(text("INSERT INTO audit_events (at, actor, action, count, address) VALUES (:at, 'sign-in "
                                "form', 'sign_in_failed', 1, :plain)"), {"at": START + timedelta(days=30), "plain": plain})
        connection.execute(text("INSERT INTO sign_in_address_failures (address_digest, failures, window_start, "
                                "forget_at) VALUES (:plain, 1, :at, :at)"), {"at": START, "plain": plain})
    assert db.upgrade() == ("0003", "0004")  # 0004: the plain values go, the audit line stays
    with db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        assert connection.execute(select(SignInAddressFailures.__table__)).all() == []
    saved = person_history(db, "P-1", "bob", audit=False).assessments
    assert [(item.answer["p_pain"], item.answer_kind) for item in saved] == [
        (0.4, "absolute"), (0.5, "absolute"), (0.7, "with_reference")]
    assert [(e["action"], e["account"], e["address"]) for e in audit_events(db)] == [
        ("save", None, None), ("sign_in_failed", None, None)]
    db.dispose()


def test_the_sign_in_form_says_when_to_try_again(tmp_path, users_file, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("PAINLENS_USERS", str(users_file))
    monkeypatch.setenv("PAINLENS_DATABASE_URL", f"sqlite:///{tmp_path / 'records.sqlite'}")

    def page():
        from dashboard import access

        access.signed_in()
        import streamlit as st

        st.write("signed in")

    at = AppTest.from_function(page, default_timeout=30).run()
    for attempt in range(MAX_FAILURES + 1):
        at.text_input(key="sign-in-name").input("alice")
        at.text_input(key="sign-in-password").input(WRONG)
        at.button[0].click().run()
        assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("Too many failed sign-ins with this name") and "UTC" in errors[0]
    guard = sign_in.guard(users_file, f"sqlite:///{tmp_path / 'records.sqlite'}")
    # AppTest's st.context.ip_address is a stand-in object, no address: counted per name only, audited without one
    assert {e["address"] for e in audit_events(guard.db)} == {None}
    guard.unlock("alice", "test")
    at.text_input(key="sign-in-password").input(PASSWORD)
    at.button[0].click().run()
    assert "signed in" in [m.value for m in at.markdown]


# --- per network address --------------------------------------------------------------------------------

def attempt(guard: SignInGuard, name: str, password: str, address: str | None) -> str:
    try:
        return "in" if guard.sign_in(name, password, address) else "wrong"
    except SignInRefused as refused:
        return str(refused)


@pytest.mark.parametrize("where", ["database", "process"])
def test_twenty_failures_from_one_address_pause_it_whatever_the_name_but_a_colleagues_typos_do_not(
        where, sqlite_url, colleagues, caplog):
    clock = Clock()
    guard = process(sqlite_url, colleagues, clock) if where == "database" else SignInGuard(
        None, colleagues, clock=clock, fallback=ProcessCounts())
    # behind the clinic's NAT: one colleague mistypes until their name is paused, and goes on trying
    outcomes = [attempt(guard, "ana", WRONG, CLINIC) for _ in range(MAX_FAILURES + 10)]
    assert outcomes[:MAX_FAILURES] == ["wrong"] * MAX_FAILURES and "with this name" in outcomes[-1]
    assert [attempt(guard, name, PASSWORD, CLINIC) for name in NAMES[1:]] == ["in"] * 5  # the others sign in
    # a password spray: four names, five tries each, from one address (each name is paused at its fifth)
    sprayed = [attempt(guard, name, WRONG, SPRAYER) for name in NAMES[1:5] for _ in range(MAX_FAILURES)]
    assert sprayed == ["wrong"] * ADDRESS_MAX_FAILURES
    clock.advance(timedelta(minutes=2))
    refused = {attempt(guard, name, PASSWORD, SPRAYER) for name in ("fay", "no-such-user-here")}
    reference = guard.address_digest(SPRAYER)[:8]
    assert refused == {"Too many failed sign-ins from this network address: sign-in from it is paused for 15 minutes, "
                       "whatever the name. Try again after 09:15 UTC (in 13 minutes), or ask your administrator to "
                       f"unlock the address (reference {reference})."}  # one sentence: no word on who is a user
    assert attempt(guard, "fay", PASSWORD, CLINIC) == "in" and attempt(guard, "fay", PASSWORD, ELSEWHERE) == "in"
    clock.advance(ADDRESS_LOCKOUT - timedelta(minutes=2))
    assert attempt(guard, "fay", PASSWORD, SPRAYER) == "in"  # 09:15: the address's pause is over
    if where == "process":
        return
    # counted: the clinic's one colleague, not her refused tries nor the five sign-ins; an IPv6 client's /64
    assert guard.address_counts(CLINIC).failures == MAX_FAILURES
    hashed = guard.address_digest
    assert hashed(ELSEWHERE) == hashed("2001:db8:5:6:ffff::9") != hashed("2001:db8:5:7::1")
    assert hashed("::ffff:" + CLINIC) == hashed(CLINIC)
    events = audit_events(guard.db)
    assert [(e["action"], e["count"]) for e in events if e["action"] == "sign_in_address_locked"] == [
        ("sign_in_address_locked", ADDRESS_MAX_FAILURES)]
    assert {e["address"] for e in events if e["action"] == "sign_in_address_locked"} == {hashed(SPRAYER)}
    with guard.db.engine.connect() as connection:
        dumped = str(connection.execute(select(AuditEvent.__table__)).all()) + str(
            connection.execute(select(SignInAddressFailures.__table__)).all())
    assert not any(raw in dumped for raw in (SPRAYER, CLINIC, "2001:db8")) and hashed(SPRAYER) in dumped
    assert hashlib.sha256(SPRAYER.encode()).hexdigest() not in dumped  # keyed: a dump alone cannot be reversed


def test_painlens_users_unlock_address_takes_the_reference_the_sentence_names_or_the_address(sqlite_url, colleagues,
                                                                                              caplog):
    clock = Clock(datetime.now(timezone.utc))
    guard = process(sqlite_url, colleagues, clock)
    for name in NAMES[:4]:
        for _ in range(MAX_FAILURES):
            guard.sign_in(name, WRONG, SPRAYER)
    refused = attempt(guard, "eli", PASSWORD, SPRAYER)
    reference = refused.rsplit("reference ", 1)[1].rstrip(").")
    env = {"PAINLENS_DATABASE_URL": sqlite_url, "PAINLENS_USERS": str(colleagues)}
    done = cli(["users", "unlock-address", reference], env)
    said = " ".join(done.output.split())
    assert done.exit_code == 0 and f"from the address with reference {reference} works again: 20 failed attempts " \
                                   "cleared." in said
    assert attempt(guard, "eli", PASSWORD, SPRAYER) == "in"
    again = cli(["users", "unlock-address", SPRAYER], env)
    assert again.exit_code == 0 and f"{SPRAYER} (reference {reference}) had no failed sign-ins counted" in " ".join(
        again.output.split())
    bad = cli(["users", "unlock-address", "not-an-address"], env)
    assert bad.exit_code != 0 and "neither a network address" in str(bad.exception) + bad.output
    unlocked = [(e["action"], e["address"], e["count"]) for e in audit_events(guard.db) if "unlocked" in e["action"]]
    assert unlocked == [("sign_in_address_unlocked", guard.address_digest(SPRAYER), 20),
                        ("sign_in_address_unlocked", guard.address_digest(SPRAYER), 0)]
    # a client whose address is not known (this machine; a proxy here that sends no X-Forwarded-For): per name only
    clock.advance(LOCKOUT)  # the names' pauses are over
    with caplog.at_level(logging.WARNING, logger="painlens.records"):
        assert [attempt(guard, name, WRONG, None) for name in NAMES for _ in range(4)] == ["wrong"] * 24
    assert sum("network address is not known" in r.getMessage() for r in caplog.records) == 1


def test_parallel_guesses_over_many_names_from_one_address_stop_at_its_limit(url, colleagues):
    clock = Clock()
    guards = [process(url, colleagues, clock) for _ in range(3)]
    guards[0].db.upgrade()  # the schema first: three processes making it at once race (one would count in memory)
    outcomes: list[str] = []

    def guess(guard: SignInGuard, name: str) -> None:
        outcomes.append(attempt(guard, name, WRONG, SPRAYER))

    # 24 guesses at once from three processes, four per name (no name is paused): exactly twenty are checked
    threads = [threading.Thread(target=guess, args=(guards[i % 3], NAMES[i % len(NAMES)])) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(o[:40] for o in outcomes) == sorted(
        ["Too many failed sign-ins from this netwo"] * 4 + ["wrong"] * ADDRESS_MAX_FAILURES)
    assert [e["action"] for e in audit_events(guards[0].db)].count("sign_in_address_locked") == 1
    for guard in guards:
        guard.db.dispose()


def test_names_and_addresses_are_hashed_with_a_key_kept_beside_the_users_file_or_in_the_environment(
        tmp_path, colleagues, caplog):
    users_file = tmp_path / "users.json"
    users_file.write_text(colleagues.read_text())
    # processes starting at once all make or read the one key file (written aside, linked into place)
    start, loaded = threading.Barrier(6), []

    def load() -> None:
        start.wait()
        loaded.append(sign_in.load_key(users_file))

    threads = [threading.Thread(target=load) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    key_file = tmp_path / sign_in.KEY_FILE
    assert set(loaded) == {(key_file.read_text().strip().encode(), "file")} and len(key_file.read_text().strip()) == 64
    assert os.stat(key_file).st_mode & 0o777 == 0o600 and sorted(p.name for p in tmp_path.iterdir()) == [
        sign_in.KEY_FILE, "users.json"]  # nothing left aside
    clock = Clock()
    first = process(f"sqlite:///{tmp_path / 'records.sqlite'}", users_file, clock)
    assert attempt(first, "ana", WRONG, SPRAYER) == "wrong"
    with first.db.engine.connect() as connection:
        stored = connection.execute(select(AuditEvent.address)).scalar_one()
        name_row = connection.execute(select(SignInFailures.name_digest)).scalar_one()
    key = key_file.read_text().strip().encode()
    assert stored == hmac.new(key, f"address\0{SPRAYER}".encode(), hashlib.sha256).hexdigest()
    assert name_row == hmac.new(key, b"name\0ana", hashlib.sha256).hexdigest() != hashlib.sha256(b"ana").hexdigest()
    second = process(first.db.url.render_as_string(), users_file, clock)  # another process, the same key
    assert second.address_counts(SPRAYER).failures == 1 and second.counts("ana").failures == 1
    # PAINLENS_ADDRESS_KEY wins over the file (several machines on one database share it)
    configured = SignInGuard(first.db, users_file, clock=clock, fallback=ProcessCounts(), address_key="s3cret " * 6)
    assert configured.key_source == "environment" and configured.address_digest(SPRAYER) != stored
    # a lost key: a new one is made; old audit lines no longer match, the counts start again
    key_file.unlink()
    renewed = process(first.db.url.render_as_string(), users_file, clock)
    assert renewed.key_source == "file" and renewed.address_digest(SPRAYER) != stored
    assert renewed.address_counts(SPRAYER).failures == 0
    # a key file that can be neither read nor made: this process's own key, and the log says so
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    with caplog.at_level(logging.WARNING, logger="painlens.records"):
        alone = sign_in.load_key(blocked / "users.json")
    assert alone[1] == "process" and len(alone[0]) == 32
    assert [r.getMessage() for r in caplog.records if "cannot be used" in r.getMessage()][0].endswith(
        "(set PAINLENS_ADDRESS_KEY, or fix the file)")
    for guard in (first, second, renewed):
        guard.db.dispose()
