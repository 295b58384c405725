"""The records database: one SQLAlchemy engine per URL, its schema version, and one transaction per unit of
work whose failures become one sentence (``RecordsError``), never a traceback.

SQLite (the default, a file) or PostgreSQL (``postgresql://...``, through psycopg 3). The schema is Alembic's
(``engine/records/migrations``): ``upgrade`` applies the migrations (``painlens db upgrade``); a database whose
schema is older than this code refuses work with "run `painlens db upgrade`". A database with no table at all
is given the schema on first use (nothing to migrate, and a clinic's first save should not need a command).

Several processes using an empty database for the first time at once (two dashboard processes started together,
a double click): one makes the schema, the others wait for it and then find it at head; none is told to upgrade.
Each looks again under a lock that spans the whole check and upgrade, in one transaction: PostgreSQL's advisory
lock ``SCHEMA_LOCK`` (its DDL is transactional, so the others never see half a schema), SQLite's write lock
(BEGIN IMMEDIATE). The wait is bounded by ``FIRST_USE_WAIT_S``, longer than a save's: a loaded machine may take
seconds to make the schema. ``painlens db upgrade`` takes the same lock.

SQLite: every transaction starts with BEGIN IMMEDIATE (it takes the write lock at once, so two savers queue on
the busy timeout instead of one failing when its read lock cannot be upgraded), but for reading the schema's
revision (a plain BEGIN: it does not wait on a process making the schema), WAL journal (readers do not block the
writer), foreign keys on (an erasure cascades to the images).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session

from engine.errors import PainLensError

log = logging.getLogger("painlens.records")

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 5
UPGRADE_HINT = "run `painlens db upgrade`"
FIRST_USE_WAIT_S = 60.0  # how long a process waits for another one making (or upgrading) the schema
READ_ONLY = "painlens_read_only"  # execution option: a SQLite transaction that only reads (a plain BEGIN)
SCHEMA_LOCK = 2891491998578157353  # PostgreSQL advisory lock key (a bigint: "PAINLENS" >> 1); per database


class RecordsError(PainLensError):
    """The records database could not do what was asked; the sentence says why and what to do."""


class SchemaOutdatedError(RecordsError):
    pass


def engine_url(url: str):
    """The URL SQLAlchemy gets: ``postgresql://`` means psycopg 3 (SQLAlchemy's default would be psycopg2)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


class Database:
    """One database: ``with db.transaction() as session: ...`` commits everything or nothing."""

    def __init__(self, url: str, busy_timeout_s: float = BUSY_TIMEOUT_S, migrations: Path = MIGRATIONS):
        self.url = engine_url(url)
        self.where = make_url(url).render_as_string(hide_password=True)  # for people: no password
        self.migrations = Path(migrations)
        self.sqlite = self.url.get_backend_name() == "sqlite"
        self._checked = False
        self._lock = threading.Lock()
        self.made_schema = False  # whether this process gave an empty database its schema (first use)
        self.busy_timeout_s = busy_timeout_s
        if self.sqlite:
            self.engine = create_engine(self.url, connect_args={"timeout": busy_timeout_s, "check_same_thread": False})
            event.listen(self.engine, "connect", _sqlite_connect(busy_timeout_s))
            event.listen(self.engine, "begin", _sqlite_begin)
        else:
            # pre-ping: a pooled connection that a restarted server dropped is replaced, not handed out broken
            self.engine = create_engine(self.url, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})

    # --- the schema ---------------------------------------------------------------------------------

    def _alembic_config(self, connection):
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(self.migrations))
        config.attributes["connection"] = connection
        return config

    def head(self) -> str:
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self._alembic_config(None)).get_current_head()

    def revision(self) -> str | None:
        """The schema's revision in the database (None: none applied)."""
        with self._errors("its schema version is unknown"):
            return self._revision()

    def upgrade(self, target: str = "head") -> tuple[str | None, str | None]:
        """Apply the migrations up to ``target`` (``painlens db upgrade``); returns (revision before, after)."""
        with self._errors("the schema was not changed"):
            before = self._revision()
            self._upgrade(target)
            return before, self._revision()

    def _make_folder(self) -> None:
        """A SQLite file's folder, made when the database is first used (not when it is only named)."""
        if self.sqlite and self.url.database and self.url.database != ":memory:":
            try:
                Path(self.url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError:
                pass  # the connection says the database cannot be reached

    def _revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        self._make_folder()
        with self.engine.connect().execution_options(**{READ_ONLY: True}) as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def _upgrade(self, target: str) -> None:
        from alembic import command

        with self._schema_lock() as connection:
            command.upgrade(self._alembic_config(connection), target)
        self._checked = False

    def _first_use(self) -> str | None:
        """The schema's revision, looked at again under the schema lock, after giving an empty database the schema: a
        process that waited on another one's upgrade finds it done, and tables without a revision are a database
        that is not PainLens's (or older than Alembic), never half an upgrade. Only when the revision read without
        the lock was none: a database at head is never held up by the lock's longer wait."""
        from alembic import command
        from alembic.runtime.migration import MigrationContext

        with self._schema_lock() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
            if current is None and not inspect(connection).get_table_names():
                command.upgrade(self._alembic_config(connection), "head")
                current = MigrationContext.configure(connection).get_current_revision()
                self.made_schema = True
                log.info("records database: the schema was made (first use)")
            return current

    @contextmanager
    def _schema_lock(self):
        """One transaction holding the database's schema lock until it ends; waits up to FIRST_USE_WAIT_S for it.
        PostgreSQL: an advisory lock taken first thing in the transaction, freed by its commit or rollback. SQLite:
        BEGIN IMMEDIATE (the engine's "begin" listener), with the busy timeout raised for this one transaction."""
        self._make_folder()
        with self.engine.connect() as connection:
            if self.sqlite:
                _busy_timeout(connection, FIRST_USE_WAIT_S)  # before BEGIN IMMEDIATE, which waits on it
                try:
                    with connection.begin():
                        yield connection
                finally:
                    _busy_timeout(connection, self.busy_timeout_s)  # the pooled connection goes back as it was
            else:
                with connection.begin():
                    connection.execute(text(f"SET LOCAL lock_timeout = '{int(FIRST_USE_WAIT_S * 1000)}ms'"))
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
                    yield connection

    def _check_schema(self) -> None:
        """Nothing when the schema is this code's; an empty database gets it; else SchemaOutdatedError. Checked
        once per process while it works (a failure checks again)."""
        if self._checked:
            return
        with self._lock:
            if self._checked:
                return
            current, head = self._revision(), self.head()
            if current is None:  # empty (first use), being made by another process, or not PainLens's: look again
                current = self._first_use()
            if current != head:
                if current is None or self._known(current):
                    raise SchemaOutdatedError(f"The records database ({self.where}) has an older schema than this "
                                              f"PainLens (revision {current or 'none'}, needs {head}): {UPGRADE_HINT}")
                raise SchemaOutdatedError(f"The records database ({self.where}) was made by a newer PainLens (revision "
                                          f"{current}): use that version, or a database of this one's")
            self._checked = True

    def _known(self, revision: str) -> bool:
        from alembic.script import ScriptDirectory

        try:
            return ScriptDirectory.from_config(self._alembic_config(None)).get_revision(revision) is not None
        except Exception:  # noqa: BLE001  alembic raises several kinds for an unknown revision
            return False

    def warm(self) -> None:
        """Connect and check the schema now (a RecordsError says why not), so that the first save is not slower. A
        SQLite file that does not exist yet is left alone: nothing is written before someone saves."""
        if self.sqlite and not (self.url.database and Path(self.url.database).expanduser().exists()):
            return
        with self._errors("nothing was changed"):
            self._check_schema()

    # --- units of work -----------------------------------------------------------------------------

    @contextmanager
    def transaction(self, outcome: str = "nothing was changed") -> Iterator[Session]:
        """One session, one transaction: committed when the block ends, rolled back (nothing kept) on any error.
        ``outcome``: how a failure's sentence ends ("nothing was saved")."""
        with self._errors(outcome):
            self._check_schema()
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                yield session

    @contextmanager
    def _errors(self, outcome: str) -> Iterator[None]:
        """Database failures become RecordsError: "The records database (where) <what happened>; <outcome>." """
        try:
            yield
        except SchemaOutdatedError as exc:
            raise SchemaOutdatedError(f"{exc}; {outcome}.") from None
        except RecordsError:
            raise
        except (SQLAlchemyError, OSError) as exc:
            self._checked = False  # the next call looks at the schema again (it may have been the cause)
            kind, happened = explain(exc)
            # the kind and type only: the statement's parameters hold person codes and notes
            log.warning("records database error (%s, %s)", kind, type(getattr(exc, "orig", exc)).__name__)
            raise RecordsError(f"The records database ({self.where}) {happened}; {outcome}.") from None

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_begin(connection) -> None:
    """BEGIN IMMEDIATE (the write lock at once), but a plain BEGIN for reading the schema's revision: in WAL mode a
    reader does not wait on the writer, so a process that looks while another one makes the schema is not held up
    by the short busy timeout (it then waits under the schema lock, ``Database._first_use``)."""
    connection.exec_driver_sql("BEGIN" if connection.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")


def _busy_timeout(connection, seconds: float) -> None:
    """Set a SQLite connection's busy timeout outside any transaction (through the driver: SQLAlchemy would begin
    one, and BEGIN IMMEDIATE would wait on the old timeout). A failure leaves it as it was (the wait is shorter)."""
    try:
        cursor = connection.connection.driver_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")
        cursor.close()
    except sqlite3.Error:
        pass  # PRAGMA busy_timeout touches no file; a broken connection fails at its next statement, with a sentence


def _sqlite_connect(busy_timeout_s: float):
    def on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # the "begin" listener issues BEGIN IMMEDIATE itself
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()
    return on_connect


def explain(exc: BaseException) -> tuple[str, str]:
    """(kind, what happened) for a database failure: unreachable, locked, full, schema or refused."""
    original = getattr(exc, "orig", None) or exc
    text = str(original).lower()
    state = getattr(original, "sqlstate", None) or ""
    if "locked" in text or "busy" in text or state in ("55P03", "40P01"):
        return "locked", "is locked by another program and was not freed in time (try again in a moment)"
    if "full" in text or "no space" in text or "could not extend" in text or state.startswith("53"):
        return "full", "is full, its disk or its size limit (free space, then try again)"
    if "no such table" in text or "undefinedtable" in type(original).__name__.lower() or state == "42P01":
        return "schema", f"lacks this PainLens's tables ({UPGRADE_HINT})"
    if (isinstance(exc, DBAPIError) and exc.connection_invalidated) or state.startswith(("08", "57P")) or isinstance(
            exc, OSError) or any(words in text for words in (
                "connect", "unable to open", "server closed", "terminating", "shutting down", "no such host",
                "name or service", "readonly", "read-only")):
        return "unreachable", "cannot be reached (check that it is running and that PAINLENS_DATABASE_URL names it)"
    return "refused", f"refused the request ({type(original).__name__})"


_OPEN: dict[str, Database] = {}
_OPEN_LOCK = threading.Lock()


def open_database(url: str) -> Database:
    """The process's one ``Database`` for ``url`` (its connection pool is shared by every page and request)."""
    with _OPEN_LOCK:
        if url not in _OPEN:
            _OPEN[url] = Database(url)
        return _OPEN[url]
