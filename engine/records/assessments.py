"""Saving an assessment, reading a person's history, erasing a person: each one transaction, each audited.

An assessment is the answer record as PainLens gave it (``engine.answers.PhotoAnswer``/``VideoAnswer``, its
``to_json()``), under a pseudonymous person code (never a name), with who saved it and when, the experiment
and its version, optionally the clinician's own rating on one of the paper's scales and a note. The file's
name is not kept (``path`` is cleared: a file name may hold a person's name). The photo is kept only when the
caller passes it (the clinician ticked the box), in the database, never as a loose file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from engine.errors import PainLensError
from engine.records.database import Database
from engine.records.models import CODE_LENGTH, Assessment, AssessmentImage, AuditEvent, Person

CODE_PATTERN = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{CODE_LENGTH - 1}}}")
# The clinician's own rating: the paper's scales (engine/scales.py), as the total a clinician writes down.
RATING_SCALES: dict[str, tuple[str, float]] = {
    "wong_baker": ("Wong-Baker FACES (0-10)", 10.0),
    "ncapc": ("NCAPC total (0-54)", 54.0),
    "facs": ("FACS pain score (0-20)", 20.0),
}
NOTE_LENGTH = 2000
NOT_SAVED = "nothing was saved"


class BadAssessmentError(PainLensError):
    """What the clinician typed cannot be saved as it is (the sentence says what to change)."""


def check_code(code: str, outcome: str = NOT_SAVED) -> str:
    code = (code or "").strip()
    if not CODE_PATTERN.fullmatch(code):
        raise BadAssessmentError(f"A person code is 1 to {CODE_LENGTH} letters, digits, '-', '_' or '.', starting with a "
                                 f"letter or digit, and never a name (for example P-0042); {outcome}.")
    return code


def check_rating(scale: str | None, score: float | None) -> tuple[str | None, float | None]:
    if not scale or score is None:
        return None, None
    if scale not in RATING_SCALES:
        raise BadAssessmentError(f"The rating scale must be one of {', '.join(RATING_SCALES)}; nothing was saved.")
    label, top = RATING_SCALES[scale]
    if not 0 <= float(score) <= top:
        raise BadAssessmentError(f"A {label} score lies between 0 and {top:g}; nothing was saved.")
    return scale, float(score)


def experiment_version(manifest: dict) -> str:
    """The experiment's version as recorded: the code's git revision and when its results were last written."""
    revision = str(manifest.get("git_revision") or "unknown")[:12]
    return f"git {revision}, results of {manifest.get('updated') or manifest.get('started') or 'unknown date'}"


def now() -> datetime:
    return datetime.now(timezone.utc)


def save_assessment(db: Database, person_code: str, answer, saved_by: str, experiment: str, version: str,
                    rating_scale: str | None = None, rating_score: float | None = None, note: str | None = None,
                    image: bytes | None = None, media_type: str = "application/octet-stream",
                    at: datetime | None = None) -> int:
    """Save one assessment (and its photo when given) in one transaction; returns its id. RecordsError (a
    sentence ending "nothing was saved") when the database fails, BadAssessmentError for bad input."""
    code = check_code(person_code)
    scale, score = check_rating(rating_scale, rating_score)
    note = (note or "").strip() or None
    if note and len(note) > NOTE_LENGTH:
        raise BadAssessmentError(f"The note is longer than {NOTE_LENGTH} characters; shorten it. Nothing was saved.")
    record = answer.to_json() if hasattr(answer, "to_json") else dict(answer)
    record["path"] = None  # a file name may hold a person's name
    kind = answer_kind(record)
    when = at or now()
    with db.transaction(NOT_SAVED) as session:
        _ensure_person(session, code, when)
        row = Assessment(person_code=code, assessed_at=when, saved_by=saved_by, experiment=experiment,
                         experiment_version=version, answer=record, answer_kind=kind, rating_scale=scale,
                         rating_score=score, note=note, image_kept=image is not None)
        session.add(row)
        session.flush()  # its id, for the image and the audit
        if image is not None:
            session.add(AssessmentImage(assessment_id=row.id, media_type=media_type, data=image))
        session.add(AuditEvent(at=when, actor=saved_by, action="save", person_code=code, assessment_id=row.id, count=1))
        return row.id


def answer_kind(record: dict) -> str:
    """Which answer the record's p_pain is (``engine.answers.Answer.answer_kind``): absolute (the face alone) or
    with_reference (with the person's calm reference). A record without the field is from before it existed, when
    p_pain was always the face alone's. BadAssessmentError for a kind PainLens never gives."""
    kinds = answer_kinds()
    kind = record.get("answer_kind") or "absolute"
    if kind not in kinds:
        raise BadAssessmentError(f"The answer's answer_kind must be {' or '.join(kinds)}, not {str(kind)[:40]!r}; "
                                 "nothing was saved.")
    return kind


def answer_kinds() -> tuple[str, ...]:
    """The kinds the answer record knows (``engine.answers``, imported here only: it takes a second, and signing in
    or `painlens users` never needs it)."""
    import typing

    from engine.answers import Answer

    return typing.get_args(Answer.model_fields["answer_kind"].annotation)


def _ensure_person(session, code: str, when: datetime) -> None:
    """The person's row, made if new; two first saves at once both succeed (the second insert does nothing)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(Person).values(code=code, created_at=when).on_conflict_do_nothing(index_elements=["code"]))


@dataclass
class SavedAssessment:
    id: int
    assessed_at: datetime
    saved_by: str
    experiment: str
    experiment_version: str
    answer: dict
    answer_kind: str  # absolute or with_reference: which answer the saved p_pain is (also in ``answer``)
    rating_scale: str | None
    rating_score: float | None
    note: str | None
    image_kept: bool


@dataclass
class History:
    person_code: str
    baseline_p_pain: float | None
    assessments: list[SavedAssessment] = field(default_factory=list)


def person_history(db: Database, person_code: str, viewer: str, audit: bool = True) -> History:
    """The person's assessments, oldest first (none for an unknown code). ``audit``: write the view to the audit
    table (the history page does it once per person and session, not at every rerun)."""
    code = check_code(person_code, "nothing was looked up")
    with db.transaction("nothing was read") as session:
        person = session.get(Person, code)
        rows = session.scalars(select(Assessment).where(Assessment.person_code == code)
                               .order_by(Assessment.assessed_at, Assessment.id)).all()
        if audit:
            session.add(AuditEvent(at=now(), actor=viewer, action="view_history", person_code=code, count=len(rows)))
        return History(code, person.baseline_p_pain if person else None,
                       [SavedAssessment(r.id, _utc(r.assessed_at), r.saved_by, r.experiment, r.experiment_version,
                                        r.answer, r.answer_kind, r.rating_scale, r.rating_score, r.note, r.image_kept)
                        for r in rows])


def set_baseline(db: Database, person_code: str, baseline: float | None, actor: str) -> None:
    """The person's usual p(pain) at rest (None clears it), drawn beside their history."""
    code = check_code(person_code)
    if baseline is not None and not 0.0 <= baseline <= 1.0:
        raise BadAssessmentError("A baseline is a p(pain) between 0 and 1; nothing was saved.")
    with db.transaction(NOT_SAVED) as session:
        _ensure_person(session, code, now())
        session.execute(update(Person).where(Person.code == code).values(baseline_p_pain=baseline))
        session.add(AuditEvent(at=now(), actor=actor, action="set_baseline", person_code=code, count=1))


def erase_person(db: Database, person_code: str, actor: str) -> int:
    """Delete the person, every assessment and every kept photo of theirs, in one transaction; returns how
    many assessments went. The audit keeps that it happened (who, when, the code, how many), nothing else."""
    code = check_code(person_code, "nothing was erased")
    with db.transaction("nothing was erased") as session:
        ids = select(Assessment.id).where(Assessment.person_code == code)
        count = session.scalar(select(func.count()).select_from(Assessment).where(Assessment.person_code == code))
        session.execute(delete(AssessmentImage).where(AssessmentImage.assessment_id.in_(ids)))
        session.execute(delete(Assessment).where(Assessment.person_code == code))
        session.execute(delete(Person).where(Person.code == code))
        session.add(AuditEvent(at=now(), actor=actor, action="erase", person_code=code, count=int(count or 0)))
        return int(count or 0)


def stored_image(db: Database, assessment_id: int) -> tuple[str, bytes] | None:
    with db.transaction("nothing was read") as session:
        image = session.get(AssessmentImage, assessment_id)
        return (image.media_type, image.data) if image else None


def audit_events(db: Database, person_code: str | None = None) -> list[dict]:
    with db.transaction("nothing was read") as session:
        query = select(AuditEvent).order_by(AuditEvent.id)
        if person_code:
            query = query.where(AuditEvent.person_code == person_code)
        return [{"at": _utc(e.at), "actor": e.actor, "action": e.action, "person_code": e.person_code,
                 "assessment_id": e.assessment_id, "count": e.count, "account": e.account, "address": e.address}
                for e in session.scalars(query)]


def _utc(moment: datetime) -> datetime:
    """SQLite gives back naive times: they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def history_table(history: History):
    """One row per assessment (a pandas DataFrame): what the history page's table and CSV show. p(pain), band and
    abstention are read from the stored answer record; ``answer_kind`` says which answer p(pain) is (absolute: the
    face alone; with_reference: with the person's calm reference, not on the same footing); the rating also as a
    share of its scale's maximum."""
    import pandas as pd

    rows = []
    for item in history.assessments:
        answer, band = item.answer, item.answer.get("band") or {}
        calm = answer.get("baseline") or {}  # the comparison with the person's calm face, when one was given
        top = RATING_SCALES.get(item.rating_scale or "", ("", None))[1]
        rows.append({"assessment": item.id, "assessed_at": item.assessed_at.isoformat(timespec="seconds"),
                     "answer_kind": item.answer_kind, "judged_against": _judged_against(item.answer_kind, calm),
                     "p_pain": answer.get("p_pain"), "band_low": band.get("low"),
                     "band_high": band.get("high"),
                     "abstained": bool(answer.get("abstained")), "calm_face_p_pain": calm.get("p_baseline"),
                     "p_pain_from_change": calm.get("p_change"),
                     "why_no_number": answer.get("abstain_reason") or answer.get("reason") or answer.get("error"),
                     "rating_scale": item.rating_scale, "rating_score": item.rating_score,
                     "rating_share": None if item.rating_score is None or not top else round(item.rating_score / top, 4),
                     "baseline_p_pain": history.baseline_p_pain, "note": item.note, "saved_by": item.saved_by,
                     "experiment": item.experiment, "experiment_version": item.experiment_version,
                     "photo_kept": item.image_kept})
    columns = ["assessment", "assessed_at", "answer_kind", "p_pain", "judged_against", "band_low", "band_high", "abstained",
               "calm_face_p_pain",
               "p_pain_from_change", "why_no_number",
               "rating_scale", "rating_score", "rating_share", "baseline_p_pain", "note", "saved_by", "experiment",
               "experiment_version", "photo_kept"]
    return pd.DataFrame(rows, columns=columns)


def _judged_against(kind: str, calm: dict) -> str:
    """What the saved p(pain) was judged against, in words: the face alone, or the calm reference and its source."""
    from engine.answers import reference_source

    if kind != "with_reference":
        source = reference_source(calm.get("reference_from"), calm.get("calm_seconds")) if calm else ""
        return "the face alone" + (f" (the change from {source} beside it)" if calm else "")
    return f"the calm reference: {reference_source(calm.get('reference_from'), calm.get('calm_seconds'))}"
