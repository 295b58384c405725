"""The assessment records over HTTP, on the same database as the dashboard (``engine.records``):

    POST /v1/assessments                    save one answer record (from /v1/predict) under a person code
    GET  /v1/persons/{code}/assessments     that person's saved assessments, oldest first; each with its
                                            answer_kind (absolute: the face alone; with_reference: the answer
                                            with the person's calm reference), not on the same footing

Included by ``painlens.api.create_app`` behind the API's token guard. The database is
``PAINLENS_DATABASE_URL`` (default the SQLite file, ``engine/records/settings.py``), opened on first use; a
database that fails answers 503 with one sentence, bad input 422. Saves and views are audited under
``api:<saved_by>`` / ``api`` (the token names a system, not a person; the caller says who saved).
"""

from __future__ import annotations

import base64
import binascii

import anyio
from fastapi import APIRouter, Body, Path
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from engine.answers import PhotoAnswer, VideoAnswer
from engine.errors import PainLensError
from engine.records.assessments import SavedAssessment

MAX_IMAGE_BYTES = 25 * 1024 * 1024


class AssessmentIn(BaseModel):
    person_code: str = Field(description="Pseudonymous code of the person (letters, digits, - _ .), never a name")
    answer: PhotoAnswer | VideoAnswer = Field(description="The answer record /v1/predict gave, as it was given")
    saved_by: str = Field(min_length=1, max_length=200, description="Who saves it (the clinician, as your system names them)")
    rating_scale: str | None = Field(None, description="The clinician's own rating: wong_baker (0-10), ncapc (0-54) or facs (0-20)")
    rating_score: float | None = None
    note: str | None = Field(None, max_length=2000)
    image_base64: str | None = Field(None, description="The photo, kept in the database only when sent (it is health data)")
    image_media_type: str = "image/jpeg"


class AssessmentSaved(BaseModel):
    id: int
    person_code: str


class PersonHistory(BaseModel):
    person_code: str
    baseline_p_pain: float | None
    assessments: list[SavedAssessment]  # the store's own record, one shape for both


class RecordsFailure(BaseModel):
    error: str = Field(description="What went wrong, in one sentence")


FAILURES = {422: {"model": RecordsFailure, "description": "bad input (a person code, a rating)"},
            503: {"model": RecordsFailure, "description": "the records database failed; nothing was saved"}}


class RecordsRoute(APIRoute):
    """A body that is not an assessment gets this module's sentence (422), not the app's generic one."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def handle(request):
            try:
                return await handler(request)
            except RequestValidationError as exc:
                first = (exc.errors() or [{}])[0]
                where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "the body"
                return _json({"error": f"The request is not an assessment ({where}: {first.get('msg', 'invalid')}); "
                                       "nothing was saved."}, 422)
        return handle


def router(predictor, database=None) -> APIRouter:
    """The records routes for the app serving ``predictor`` (its experiment names what is saved)."""
    from engine.records.settings import RecordsSettings

    routes = APIRouter(route_class=RecordsRoute)
    opened = [database]

    def db():
        if opened[0] is None:
            from engine.records.database import open_database

            opened[0] = open_database(RecordsSettings.from_environment().database_url)
        return opened[0]

    @routes.post("/v1/assessments", response_model=AssessmentSaved, status_code=201, responses=FAILURES,
                 summary="Save an answer record as an assessment of a person")
    async def save(body: AssessmentIn = Body(...)):
        from engine.records.assessments import experiment_version, save_assessment

        try:
            image = _image(body.image_base64)
            number = await anyio.to_thread.run_sync(lambda: save_assessment(
                db(), body.person_code, body.answer, f"api:{body.saved_by}", predictor.store.experiment,
                experiment_version(predictor.store.manifest()), body.rating_scale, body.rating_score, body.note,
                image, body.image_media_type))
        except PainLensError as exc:
            return _failure(exc)
        return _json({"id": number, "person_code": body.person_code.strip()}, 201)

    @routes.get("/v1/persons/{code}/assessments", response_model=PersonHistory, responses=FAILURES,
                summary="A person's saved assessments, oldest first")
    async def history(code: str = Path(description="The person's pseudonymous code")):
        from engine.records.assessments import person_history

        try:
            found = await anyio.to_thread.run_sync(lambda: person_history(db(), code, "api"))
        except PainLensError as exc:
            return _failure(exc)
        return _json(PersonHistory(person_code=found.person_code, baseline_p_pain=found.baseline_p_pain,
                                   assessments=found.assessments)
                     .model_dump(mode="json"))

    return routes


def _image(encoded: str | None) -> bytes | None:
    from engine.records.assessments import BadAssessmentError

    if not encoded:
        return None
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise BadAssessmentError("image_base64 is not base64; nothing was saved.") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise BadAssessmentError("The photo is larger than 25 MB; nothing was saved.")
    return data


def _failure(exc: PainLensError):
    from engine.records.assessments import BadAssessmentError

    return _json({"error": str(exc)}, 422 if isinstance(exc, BadAssessmentError) else 503)


def _json(content: dict, status: int = 200):
    from fastapi.responses import JSONResponse

    return JSONResponse(content, status_code=status)
