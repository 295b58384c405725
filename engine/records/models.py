"""The tables of the assessment records (SQLAlchemy 2 typed classes). The schema itself is made by the
migrations in ``engine/records/migrations`` (Alembic), never by ``create_all``: a change here needs a
migration and its test.

    persons             one row per pseudonymous code (never a name) and its baseline, when set
    assessments         one saved answer: when, by whom, the answer record as given (engine.answers), the
                        experiment and its version, the clinician's rating (optional) and note
    assessment_images   the photo, only when the clinician ticked the box that says what keeping it means
    audit_events        who did what when (save, history viewed, erasure, sign-in): no image, no free text
    sign_in_failures    failed sign-ins counted per name (its keyed hash, not the name) and the lockout they caused
                        (``engine.records.sign_in``); a row is forgotten once its window and lockout are over
    sign_in_address_failures  the same per network address the attempts came from (its keyed hash, never the address)
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

CODE_LENGTH = 40
NAME_LENGTH = 200


class Base(DeclarativeBase):
    pass


class Person(Base):
    __tablename__ = "persons"

    code: Mapped[str] = mapped_column(String(CODE_LENGTH), primary_key=True)
    baseline_p_pain: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Assessment(Base):
    __tablename__ = "assessments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_code: Mapped[str] = mapped_column(ForeignKey("persons.code", ondelete="CASCADE"), index=True)
    assessed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    saved_by: Mapped[str] = mapped_column(String(NAME_LENGTH))
    experiment: Mapped[str] = mapped_column(String(NAME_LENGTH))
    experiment_version: Mapped[str] = mapped_column(String(NAME_LENGTH))
    answer: Mapped[dict] = mapped_column(JSON)  # engine.answers.PhotoAnswer.to_json(), as given (but its file name)
    # the answer's answer_kind (absolute: the face alone; with_reference: with the person's calm reference), a column
    # so that a history or an export can tell the two apart without reading the JSON (migration 0003)
    answer_kind: Mapped[str] = mapped_column(String(40))
    rating_scale: Mapped[str | None] = mapped_column(String(40))
    rating_score: Mapped[float | None] = mapped_column(Float)
    note: Mapped[str | None] = mapped_column(Text)
    image_kept: Mapped[bool] = mapped_column(Boolean, default=False)


class AssessmentImage(Base):
    __tablename__ = "assessment_images"

    assessment_id: Mapped[int] = mapped_column(ForeignKey("assessments.id", ondelete="CASCADE"), primary_key=True)
    media_type: Mapped[str] = mapped_column(String(80))
    data: Mapped[bytes] = mapped_column(LargeBinary)


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(NAME_LENGTH))
    action: Mapped[str] = mapped_column(String(40))  # save, view_history, erase, set_baseline, sign_in...
    person_code: Mapped[str | None] = mapped_column(String(CODE_LENGTH))
    assessment_id: Mapped[int | None] = mapped_column(Integer)  # no foreign key: the event outlives an erasure
    count: Mapped[int | None] = mapped_column(Integer)  # how many records the action touched
    # the account a sign-in event is about (sign_in, sign_in_failed, sign_in_locked, sign_in_unlocked): a user's
    # name, or None for a name that is no user (it may be a password typed into the wrong field)
    account: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    # the keyed hash (HMAC-SHA-256, engine/records/sign_in.py) of the network address a sign-in event came from
    # (never the address); None when it is not known
    address: Mapped[str | None] = mapped_column(String(64))


class SignInFailures(Base):
    __tablename__ = "sign_in_failures"

    name_digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # keyed hash of the name as typed
    failures: Mapped[int] = mapped_column(Integer)  # failed sign-ins since window_start
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    forget_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)  # the row means nothing after


class SignInAddressFailures(Base):
    __tablename__ = "sign_in_address_failures"

    address_digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # keyed hash of the client's address
    failures: Mapped[int] = mapped_column(Integer)  # failed sign-ins from it since window_start, whatever the name
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    forget_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
