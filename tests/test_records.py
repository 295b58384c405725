"""Assessment records (engine.records) on both databases: SQLite in a file, and a real PostgreSQL server the suite
starts (tests/postgres_fixtures.py; the PostgreSQL cases are slow: they start a server). Saving keeps the answer
record as given, one transaction each (a failure keeps nothing), two saves at once both succeed, erasure leaves
nothing, every save, view and erasure is audited without image or free text; the migrations build the schema the
models describe, several processes using an empty database at once all succeed (one makes the schema), and a
database older than the code is told to run `painlens db upgrade`; a locked, full,
unreachable or stopped database gets one sentence. Also `painlens users`/`db` and the dashboard's refusal to serve
other machines without users."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from engine.answers import Band, BaselineComparison, PhotoAnswer
from engine.errors import PainLensError
from engine.records import assessments as records
from engine.records.database import Database, RecordsError, SchemaOutdatedError
from engine.records.models import Assessment, AssessmentImage, AuditEvent, Base, Person

NOTE = "Grimaced when moved to the wheelchair"


def answer(p: float | None = 0.62, abstained: bool = False) -> PhotoAnswer:
    return PhotoAnswer(path="Jane Doe 1957.jpg", p_pain=None if abstained else p, abstained=abstained,
                       abstain_reason="The face is unlike the training faces." if abstained else None,
                       band=None if abstained else Band(low=p - 0.1, high=p + 0.1, seeds=4),
                       networks={"WeiNet": 0.7, "SongNet": 0.5}, used=["WeiNet", "SongNet"])


def save(db: Database, code: str, **extra) -> int:
    return records.save_assessment(db, code, extra.pop("answer", answer()), "alice", "tiny", "git abc", **extra)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def db(request, tmp_path):
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'records.sqlite'}")
    else:
        database = Database(request.getfixturevalue("postgres_server").create_database(f"t{uuid.uuid4().hex[:12]}"))
    yield database
    database.dispose()


def count(db: Database, table, **where) -> int:
    with db.engine.connect() as connection:
        query = select(func.count()).select_from(table)
        for column, value in where.items():
            query = query.where(getattr(table, column) == value)
        return connection.scalar(query)


# --- saving, reading, erasing ------------------------------------------------------------------------------

def test_a_saved_assessment_keeps_the_answer_record_as_given_but_the_file_name(db):
    first = save(db, "P-0042", rating_scale="wong_baker", rating_score=6, note=NOTE)
    second = save(db, "P-0042", answer=answer(abstained=True))
    history = records.person_history(db, "P-0042", "bob")
    assert [item.id for item in history.assessments] == [first, second]
    kept = history.assessments[0]
    expected = answer().to_json()
    expected["path"] = None  # a file name may hold a person's name
    assert kept.answer == expected and kept.saved_by == "alice" and kept.experiment == "tiny"
    assert (kept.rating_scale, kept.rating_score, kept.note, kept.image_kept) == ("wong_baker", 6.0, NOTE, False)
    assert "Jane" not in str(kept.answer)
    table = records.history_table(history)
    assert table["p_pain"].tolist()[0] == 0.62 and pd_isna(table["p_pain"].tolist()[1])
    assert table["abstained"].tolist() == [False, True] and table["rating_share"].tolist()[0] == 0.6
    assert "unlike the training faces" in table["why_no_number"].tolist()[1]
    assert [item.answer_kind for item in history.assessments] == table["answer_kind"].tolist() == ["absolute"] * 2


def test_which_answer_a_number_is_is_a_column_the_table_the_csv_and_the_chart_tell_apart(db):
    from dashboard.export import table_csv
    from dashboard.records import KIND_COLOURS, history_chart

    calm = BaselineComparison(p_absolute=0.9, p_baseline=0.95, p_change=0.3, leads_with="change", why="w",
                              baseline_frames=10, rule="r", reference_from="calm_seconds", calm_seconds=[0, 2])
    with_reference = answer(0.3).model_copy(update={"answer_kind": "with_reference", "baseline": calm})
    ids = [save(db, "P-3"), save(db, "P-3", answer=with_reference)]
    with db.engine.connect() as connection:
        kinds = connection.scalars(select(Assessment.answer_kind).order_by(Assessment.id)).all()
    assert kinds == ["absolute", "with_reference"]
    with pytest.raises(records.BadAssessmentError, match="answer_kind must be absolute or with_reference"):
        save(db, "P-3", answer={**answer().to_json(), "answer_kind": "guessed"})
    history = records.person_history(db, "P-3", "bob")
    assert [item.id for item in history.assessments] == ids  # the refused one kept nothing
    table = records.history_table(history)
    exported = table_csv(table).decode("utf-8").splitlines()
    assert exported[0].split(",")[:4] == ["assessment", "assessed_at", "answer_kind", "p_pain"]
    assert [line.split(",")[2:4] for line in exported[1:]] == [["absolute", "0.62"], ["with_reference", "0.3"]]
    assert exported[0].split(",")[4] == "judged_against"  # and against what: the face alone, or which calm reference
    assert table["judged_against"].tolist() == ["the face alone", "the calm reference: this clip's own calm seconds 0-2 s"]
    layers = history_chart(table, None).to_dict()["layer"]
    points = [layer for layer in layers if layer["mark"]["type"] == "point" and "shape" in layer["encoding"]]
    assert [layer["encoding"]["color"]["field"] for layer in points] == ["answer_kind"]  # marked by kind: no silent mix
    assert points[0]["encoding"]["color"]["scale"] == {"domain": ["absolute", "with_reference"],
                                                       "range": [KIND_COLOURS["absolute"], KIND_COLOURS["with_reference"]]}
    assert set(KIND_COLOURS) == set(records.answer_kinds())  # a new kind of answer needs its own colour and shape
    line = [layer for layer in layers if layer["mark"]["type"] == "line"]
    assert line[0]["encoding"]["color"]["field"] == "answer_kind"  # one line per kind, never one through both


def pd_isna(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def test_the_photo_is_kept_only_when_given_and_then_in_the_database(db):
    without = save(db, "P-1")
    photo = b"\xff\xd8\xff\xe0 a jpeg's bytes"
    with_photo = save(db, "P-1", image=photo, media_type="image/jpeg")
    assert records.stored_image(db, without) is None
    assert records.stored_image(db, with_photo) == ("image/jpeg", photo)


def test_two_clinicians_saving_at_the_same_moment_both_succeed(db):
    save(db, "P-warm")  # the schema exists: what is measured is two saves racing, a new person's first ones
    start, ids, failures = threading.Barrier(2), [], []

    def clinician(name):
        start.wait()
        try:
            for _ in range(3):
                ids.append(records.save_assessment(db, "P-new", answer(), name, "tiny", "git abc"))
        except Exception as exc:  # noqa: BLE001  collected: the assertion names it
            failures.append(exc)

    threads = [threading.Thread(target=clinician, args=(name,)) for name in ("alice", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures and len(set(ids)) == 6
    assert count(db, Assessment, person_code="P-new") == 6 and count(db, Person, code="P-new") == 1


def test_erasing_a_person_leaves_nothing_of_theirs_and_the_audit_says_who_and_how_many(db):
    save(db, "P-7", image=b"photo", media_type="image/png", note=NOTE)
    save(db, "P-7")
    save(db, "P-8")
    records.set_baseline(db, "P-7", 0.2, "alice")
    assert records.person_history(db, "P-7", "bob").baseline_p_pain == 0.2
    assert records.erase_person(db, "P-7", "carol") == 2
    assert count(db, Assessment, person_code="P-7") == 0 and count(db, Person, code="P-7") == 0
    assert count(db, AssessmentImage) == 0 and count(db, Assessment, person_code="P-8") == 1
    assert records.person_history(db, "P-7", "bob").assessments == []
    erase = [e for e in records.audit_events(db, "P-7") if e["action"] == "erase"]
    assert [(e["actor"], e["count"]) for e in erase] == [("carol", 2)]


def test_every_save_view_and_erasure_is_audited_without_image_or_free_text(db):
    number = save(db, "P-9", image=b"photo-bytes", media_type="image/png", note=NOTE)
    records.person_history(db, "P-9", "bob")
    records.person_history(db, "P-9", "bob", audit=False)  # a page's rerun: not a second view
    records.erase_person(db, "P-9", "carol")
    events = records.audit_events(db, "P-9")
    assert [(e["action"], e["actor"]) for e in events] == [("save", "alice"), ("view_history", "bob"), ("erase", "carol")]
    assert events[0]["assessment_id"] == number
    with db.engine.connect() as connection:
        dumped = str(connection.execute(select(AuditEvent.__table__)).all())
    assert NOTE not in dumped and "photo-bytes" not in dumped


@pytest.mark.parametrize("code, scale, score, said", [
    ("Jane Doe", None, None, "never a name"), ("", None, None, "person code"),
    ("P-1", "wong_baker", 11, "between 0 and 10"), ("P-1", "vas", 3, "rating scale must be")])
def test_bad_input_gets_a_sentence_and_saves_nothing(tmp_path, code, scale, score, said):
    db = Database(f"sqlite:///{tmp_path / 'records.sqlite'}")
    db.upgrade()
    with pytest.raises(records.BadAssessmentError, match=said) as caught:
        save(db, code, rating_scale=scale, rating_score=score)
    assert str(caught.value).endswith("nothing was saved.")
    assert count(db, Assessment) == 0


# --- the schema -------------------------------------------------------------------------------------------

def test_upgrade_builds_what_the_models_describe_on_an_empty_database_and_one_the_first_migration_made(db):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    assert db.upgrade() == (None, db.head())
    with db.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    first = save(db, "P-2")  # a database as the migrations left it, with a record
    assert db.upgrade() == (db.head(), db.head())
    assert [item.id for item in records.person_history(db, "P-2", "bob").assessments] == [first]


def test_several_processes_saving_first_on_an_empty_database_at_once_all_succeed_and_one_makes_the_schema(db):
    # Six "processes" (each its own Database: engine, pool, lock) save at the same moment on a database with no
    # table: one makes the schema, the others wait for it; none is told to run `painlens db upgrade`.
    url = db.url.render_as_string(hide_password=False)
    processes = [Database(url) for _ in range(6)]
    start, ids, failures = threading.Barrier(len(processes)), [], []

    def first_save(database: Database) -> None:
        start.wait()
        try:
            ids.append(save(database, "P-first"))
        except Exception as exc:  # noqa: BLE001  collected: the assertion names it
            failures.append(exc)

    threads = [threading.Thread(target=first_save, args=(database,), daemon=True) for database in processes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)  # bounded: processes that deadlock fail the test instead of hanging it
    assert not failures and len(set(ids)) == len(processes)
    assert [database.made_schema for database in processes].count(True) == 1
    with db.engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [db.head()]
    assert count(db, Assessment, person_code="P-first") == len(processes)
    for database in processes:
        database.dispose()


def test_a_database_older_than_the_code_is_told_to_run_painlens_db_upgrade(tmp_path):
    # A later PainLens: the shipped migrations plus a second one. A database the first made must be upgraded.
    migrations = tmp_path / "migrations"
    shutil.copytree(Database("sqlite://").migrations, migrations, ignore=shutil.ignore_patterns("__pycache__"))
    head = Database("sqlite://").head()
    (migrations / "versions" / "9999_note_language.py").write_text(
        f'revision = "9999"\ndown_revision = "{head}"\nbranch_labels = depends_on = None\n'
        "import sqlalchemy as sa\nfrom alembic import op\n\n\ndef upgrade():\n"
        '    op.add_column("assessments", sa.Column("note_language", sa.String(8), nullable=True))\n')
    url = f"sqlite:///{tmp_path / 'records.sqlite'}"
    save(Database(url), "P-3")  # made by this PainLens (its head revision)
    later = Database(url, migrations=migrations)
    with pytest.raises(SchemaOutdatedError, match=r"older schema than this PainLens.*run `painlens db upgrade`; "
                                                  r"nothing was saved\.$"):
        save(later, "P-3")
    assert later.upgrade() == (head, "9999")
    save(later, "P-3")
    assert count(later, Assessment, person_code="P-3") == 2
    with pytest.raises(SchemaOutdatedError, match="made by a newer PainLens"):
        save(Database(url), "P-3")  # and this PainLens does not write into the later one's database


# --- when the database fails ------------------------------------------------------------------------------

def test_a_locked_database_gets_a_sentence_and_nothing_is_saved(tmp_path):
    path = tmp_path / "records.sqlite"
    save(Database(f"sqlite:///{path}"), "P-1")
    db = Database(f"sqlite:///{path}", busy_timeout_s=0.2)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another program holds the file
    try:
        with pytest.raises(RecordsError, match=r"is locked by another program.*; nothing was saved\.$"):
            save(db, "P-1")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert count(db, Assessment) == 1


def test_a_full_database_gets_a_sentence_and_keeps_no_part_of_the_record(tmp_path):
    path = tmp_path / "records.sqlite"
    db = Database(f"sqlite:///{path}")
    save(db, "P-1")
    with sqlite3.connect(path) as connection:
        pages = connection.execute("PRAGMA page_count").fetchone()[0]

    from sqlalchemy import event

    # Its size limit: the new person's row fits, the photo does not (SQLITE_FULL in the middle of the save).
    event.listen(db.engine, "connect", lambda conn, _: conn.execute(f"PRAGMA max_page_count = {pages + 2}"))
    db.engine.dispose()
    with pytest.raises(RecordsError, match=r"is full.*; nothing was saved\.$"):
        save(db, "P-new", image=b"x" * 200_000, media_type="image/png")
    assert count(db, Person, code="P-new") == 0 and count(db, Assessment) == 1 and count(db, AuditEvent) == 1


def test_an_unreachable_database_gets_a_sentence(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    db = Database(f"sqlite:///{blocker / 'records.sqlite'}")
    with pytest.raises(RecordsError, match=r"cannot be reached.*PAINLENS_DATABASE_URL.*; nothing was saved\.$"):
        save(db, "P-1")
    closed = Database("postgresql://painlens:secret-password@127.0.0.1:9/painlens")  # nothing listens on port 9
    with pytest.raises(RecordsError, match="cannot be reached") as caught:
        save(closed, "P-1")
    assert "secret-password" not in str(caught.value)


@pytest.mark.slow
def test_a_stopped_postgresql_between_two_saves_keeps_the_first_and_nothing_of_the_second(postgres_server):
    db = Database(postgres_server.create_database(f"t{uuid.uuid4().hex[:12]}"))
    first = save(db, "P-5", note=NOTE)
    postgres_server.stop()
    try:
        with pytest.raises(RecordsError, match=r"cannot be reached.*; nothing was saved\.$"):
            save(db, "P-5", note="second")
    finally:
        postgres_server.start()
    history = records.person_history(db, "P-5", "bob")
    assert [(item.id, item.note) for item in history.assessments] == [(first, NOTE)]
    db.dispose()


# --- users, the commands, and serving other machines ------------------------------------------------------

def cli(args: list[str], env: dict, stdin: str | None = None):
    from typer.testing import CliRunner

    from painlens.cli import app

    return CliRunner().invoke(app, args, env=env, input=stdin)


def test_users_add_remove_and_sign_in_with_argon2_hashes(tmp_path):
    from engine.records import users

    env = {"PAINLENS_USERS": str(tmp_path / "users.json")}
    assert cli(["users", "add", "alice", "--role", "clinician", "--password-stdin"], env, "correct horse battery\n").exit_code == 0
    assert cli(["users", "add", "rita@clinic.example", "--role", "researcher", "--identity-provider"], env).exit_code == 0
    stored = (tmp_path / "users.json").read_text()
    assert "correct horse" not in stored and "$argon2id$" in stored
    assert (tmp_path / "users.json").stat().st_mode & 0o077 == 0
    assert users.verify(tmp_path / "users.json", "alice", "correct horse battery") == users.User("alice", "clinician")
    assert users.verify(tmp_path / "users.json", "alice", "wrong password!") is None
    assert users.verify(tmp_path / "users.json", "nobody", "correct horse battery") is None
    short = cli(["users", "add", "bob", "--password-stdin"], env, "short\n")  # main() prints the sentence
    assert isinstance(short.exception, PainLensError) and "shorter than 10 characters" in str(short.exception)
    assert cli(["users", "remove", "alice"], env).exit_code == 0
    assert cli(["users", "list", "--json"], env).output.strip() == '{"rita@clinic.example": "researcher"}'
    assert users.role_of(tmp_path / "users.json", "rita@clinic.example") == users.User("rita@clinic.example", "researcher")


def test_db_upgrade_creates_the_schema_and_says_so(tmp_path):
    env = {"PAINLENS_DATABASE_URL": f"sqlite:///{tmp_path / 'records.sqlite'}"}
    made = cli(["db", "upgrade"], env)
    head = Database("sqlite://").head()
    assert made.exit_code == 0 and f"upgraded from revision none to {head}" in made.output
    assert f"up to date (revision {head})" in cli(["db", "upgrade"], env).output


def test_the_dashboard_refuses_another_address_without_users_and_says_how_to_add_one(tmp_path):
    env = {"PAINLENS_USERS": str(tmp_path / "users.json"), "HOME": str(tmp_path)}
    refused = cli(["dashboard", "--address", "0.0.0.0", "--artifacts", str(tmp_path)], env)  # main() prints the sentence
    assert isinstance(refused.exception, PainLensError) and refused.exit_code == 1
    assert "no user is set up: add one with `painlens users add NAME --role clinician`" in str(refused.exception)
    from dashboard.access import serving_problem
    from engine.records.settings import RecordsSettings

    settings = RecordsSettings.from_environment(env)
    assert serving_problem("127.0.0.1", settings) == ""
    from engine.records import users

    users.add(settings.users_file, "alice", "clinician", "correct horse battery")
    assert serving_problem("0.0.0.0", settings) == ""


def test_a_clinician_sees_the_upload_page_and_the_history_and_a_researcher_the_experiment_pages():
    from dashboard.access import LOCAL, allowed
    from engine.records.users import User

    files = sorted(p.name for p in (Path(__file__).resolve().parent.parent / "dashboard" / "views").glob("*.py"))
    assert [f for f in files if allowed(f, User("alice", "clinician"))] == ["history.py", "upload.py"]
    assert set(f for f in files if allowed(f, User("rita", "researcher"))) == set(files) - {"upload.py", "history.py"}
    assert all(allowed(f, LOCAL) for f in files)  # 127.0.0.1 without users: as before, every page
