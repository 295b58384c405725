"""What throttling adds to a password sign-in (engine/records/sign_in.py): the argon2 check alone
(``users.verify``, the library's default parameters, as ``painlens users add`` writes them) against a throttled
sign-in that succeeds, one that fails, and one refused during a lockout (no password check at all), on SQLite (a
file) and on PostgreSQL (a local server started here from Debian's postgresql package, as the tests do; skipped
where it is not installed).

    .venv/bin/python bench/sign_in_cost.py [--repeats 20]

Prints the median and the 95th percentile in milliseconds, and the throttle's own transactions apart (count the
attempt, then clear and audit a success or audit a failure), since argon2's quarter second hides them, with the
client's address counted too and without one (what the per-address limit adds). The clock is the guard's own (moved forward between
failures, so that the measured failures never reach a lockout), never slept on.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from engine.records import users  # noqa: E402
from engine.records.assessments import now  # noqa: E402
from engine.records.database import Database  # noqa: E402
from engine.records.sign_in import MAX_FAILURES, WINDOW, ProcessCounts, SignInGuard, SignInRefused  # noqa: E402

ADDRESS = "203.0.113.7"  # a client's network address: each attempt counted for it too (the per-address limit)

PASSWORD = "correct horse battery staple"


def timed(call, repeats: int) -> tuple[float, float]:
    seconds = []
    for _ in range(repeats):
        clock = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - clock)
    seconds.sort()
    return statistics.median(seconds) * 1000, seconds[min(len(seconds) - 1, int(0.95 * len(seconds)))] * 1000


def measure(url: str, users_file: Path, repeats: int) -> dict[str, tuple[float, float]]:
    moment = [now()]
    guard = SignInGuard(Database(url), users_file, clock=lambda: moment[0], fallback=ProcessCounts())
    guard.sign_in("alice", PASSWORD)  # the first: connection, schema (made on an empty database)
    failures = [0]

    def fail() -> None:
        failures[0] += 1
        if failures[0] % (MAX_FAILURES - 1) == 0:
            moment[0] += WINDOW  # a new window before the limit: failures, not refusals, are measured
        assert guard.sign_in("alice", "wrong password here", ADDRESS) is None

    def refused() -> None:
        try:
            guard.sign_in("mallory", "wrong password here", ADDRESS)
        except SignInRefused:
            return
        raise AssertionError("not refused")

    def database_work(succeeded: bool, where: str | None = None):
        """The throttle's own transactions around a check (count first; then clear and audit, or audit), with the
        client's address counted too (``where``) or not (an unknown address: per name only)."""
        def work() -> None:
            reserved = guard._reserve(key, where, moment[0])
            assert reserved.in_database and not reserved.refused
            if succeeded:
                guard._settle_success(key, where, reserved, alice, moment[0])
            else:
                moment[0] += WINDOW  # never a lockout
                guard._settle_failure("bob", where, reserved, moment[0])
        return work

    key, alice, where = guard.digest("alice"), users.User("alice", "clinician"), guard.address_digest(ADDRESS)
    out = {"the throttle's transactions, success": timed(database_work(True, where), repeats),
           "  success, no address (per name only)": timed(database_work(True), repeats),
           "the throttle's transactions, failure": timed(database_work(False, where), repeats),
           "  failure, no address (per name only)": timed(database_work(False), repeats),
           "argon2 check alone (users.verify)": timed(lambda: users.verify(users_file, "alice", PASSWORD), repeats),
           "throttled sign-in, right password": timed(lambda: guard.sign_in("alice", PASSWORD, ADDRESS), repeats),
           "throttled sign-in, wrong password": timed(fail, repeats)}
    for _ in range(MAX_FAILURES):
        guard.sign_in("mallory", "wrong password here", ADDRESS)
    out["refused during a lockout"] = timed(refused, repeats)
    guard.db.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="painlens-sign-in-bench-") as folder:
        users_file = Path(folder) / "users.json"
        users.add(users_file, "alice", "clinician", PASSWORD)
        databases = {"SQLite": f"sqlite:///{Path(folder) / 'records.sqlite'}"}
        from postgres_fixtures import PostgresServer, missing

        server = None
        if missing():
            print(f"PostgreSQL skipped: {missing()}")
        else:
            server = PostgresServer()  # its own folder: the postgres user cannot enter ours
            databases["PostgreSQL (local)"] = server.url
        try:
            for name, url in databases.items():
                print(f"{name}, {args.repeats} repeats: median / 95th percentile, ms")
                for what, (median, p95) in measure(url, users_file, args.repeats).items():
                    print(f"  {what:<36} {median:8.1f} {p95:8.1f}")
        finally:
            if server:
                server.remove()


if __name__ == "__main__":
    main()
