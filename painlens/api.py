"""``painlens api``: PainLens over HTTP, for hospital systems and research pipelines (FastAPI + uvicorn).

    GET  /health       {"status": "ok", ...}: the server is up and its networks are loaded
    GET  /v1/models    the kept networks: input size, seeds, and per scenario their AUC (and whether they learned)
    POST /v1/predict   one photo or video as the request body or as a multipart file → its answer record
                       (``engine.answers``: PhotoAnswer or VideoAnswer, the records ``painlens predict`` prints);
                       a multipart request may add the person's calm photo or clip as the field ``reference``:
                       the record is then the answer with that calm reference (``answer_kind`` with_reference,
                       ``engine.person_baseline``, as the upload page and ``painlens predict --reference``); a
                       video's may instead name the seconds of the clip itself at rest as the form field
                       ``calm_seconds`` ("0-3"; ``painlens predict --calm-seconds``)
    POST /v1/explain   one photo (+ ?network=&label=&samples=) → a LIME heatmap as PNG and its scores
    GET  /openapi.json, /docs   the API described (OpenAPI 3.1, generated from the typed records and handlers)
                                and that description as a plain page

Never open by accident: every route but ``/health`` needs the bearer token (``PAINLENS_API_TOKEN``, read by
the CLI; without one a token is generated at start and printed once, as Jupyter does), unless the server
was started with ``--no-auth``, which only 127.0.0.1 accepts. ``/health`` answers "ok" to anyone and names
the experiment only to a caller with the token; ``/docs`` and ``/openapi.json`` need the token too. The
Host header must name this server (127.0.0.1, localhost, the address served, or ``--allowed-host``), which
stops DNS rebinding, and a browser's cross-site request (an Origin naming another site) is refused. The
guard is one dependency of the whole application (``guard``), so every route, those of routers included
later too, passes it.

Bounded work (``painlens.admission``): at most ``queue`` requests are let in at once (more: 503 with
Retry-After, before their body is read), ``analyses_at_once`` of them analysed at a time, each within
``request_seconds``, and an analysis stops when its client goes away. A request body over the upload limit
is refused (413) before or while it is read, and each file of a multipart body (the photo, its calm reference)
over the limit after. Photos stay in memory: the body is read by this module (never
FastAPI's ``UploadFile``, which spools parts over 1 MB to a temporary file), never logged or kept after the
answer; the access log holds method, path and status, never the client's address. Bad input answers 4xx
with the upload page's sentence, in the same record with ``error`` set; a calm reference that cannot be used
answers 422 with a sentence that names it (never the face alone's answer in its place: the caller asked for the
answer with the reference).

One ``Predictor`` serves every request; analyses run on worker threads, ``analyses_at_once`` at a time.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import logging
import secrets
from dataclasses import dataclass, replace

import numpy as np
from fastapi import Depends, FastAPI, Query, Request  # at module level: FastAPI reads the handlers' annotations here
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPBearer
from pydantic import BaseModel

from engine.answers import EXPLAIN_SAMPLES, ExplanationAnswer, PhotoAnswer, VideoAnswer
from engine.errors import PainLensError
from engine.preprocess.decode import ACCEPTED_NAMES, MAX_UPLOAD_MB, media_kind
from painlens.admission import QUEUE, REQUEST_SECONDS, Admission, Busy, Cancelled, Late

log = logging.getLogger("painlens.api")

TOKEN_VARIABLE = "PAINLENS_API_TOKEN"
MIN_TOKEN_LENGTH = 16
DEFAULT_PORT = 8502
MAX_EXPLAIN_SAMPLES = 2000
ANALYSES_AT_ONCE = 2  # concurrent analyses (one per core here); further requests wait their turn
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
PUBLIC_PATHS = ("/health",)  # answered without the token (with "ok" and nothing else)
MULTIPART_SLACK = 64 * 1024  # bytes a multipart body may add around the photo (boundaries, headers)
REFERENCE_FIELD = "reference"  # the multipart field of the person's calm photo or clip (/v1/predict)
CALM_SECONDS_FIELD = "calm_seconds"  # the form field naming seconds of the clip itself at rest, "A-B" (/v1/predict)
NO_REFERENCE_HERE = ("/v1/explain explains one photo and takes no calm reference: send the calm photo with the photo to "
                     f"/v1/predict (the multipart field `{REFERENCE_FIELD}`).")
VIDEO_LATER = ("/v1/explain explains one photo; POST the video to /v1/predict for its pain timeline, or send one "
               f"frame of it here as a photo ({ACCEPTED_NAMES}).")
DESCRIPTION = "Facial pain recognition, a research tool and not a medical device. Photos are analysed in memory and never stored."


@dataclass(frozen=True)
class ApiSettings:
    address: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    token: str = ""  # bearer token every request but /health must send ("": one is generated at start)
    no_auth: bool = False  # no token at all: accepted on a loopback address only
    allowed_hosts: tuple[str, ...] = ()  # Host header names accepted besides 127.0.0.1, localhost, ::1, the address
    max_upload_mb: int = MAX_UPLOAD_MB
    analyses_at_once: int = ANALYSES_AT_ONCE
    queue: int = QUEUE  # requests admitted at once (analysing or waiting); more get 503 with Retry-After
    request_seconds: float = REQUEST_SECONDS  # from admission to the answer

    @property
    def hosts(self) -> set[str]:
        """The names a request's Host header may give ("*": any)."""
        names = {*LOOPBACK_HOSTS, *(h.lower().strip("[]") for h in self.allowed_hosts)}
        if not _wildcard(self.address):
            names.add(self.address.lower().strip("[]"))
        return names

    @property
    def max_file_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    @property
    def max_body_bytes(self) -> int:
        return self.max_file_bytes + MULTIPART_SLACK

    @property
    def max_multipart_bytes(self) -> int:
        """A multipart body may carry two files (the photo and its calm reference), each up to the limit."""
        return 2 * self.max_file_bytes + MULTIPART_SLACK


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False  # a host name: may resolve to anything


def _wildcard(address: str) -> bool:
    return address in ("0.0.0.0", "::", "")


def check_settings(settings: ApiSettings) -> None:
    """Refuse (PainLensError) to serve without a token anywhere but this machine, with a guessable token, or
    on every address without naming the hosts clients will use."""
    if settings.token and len(settings.token) < MIN_TOKEN_LENGTH:
        raise PainLensError(f"{TOKEN_VARIABLE} is shorter than {MIN_TOKEN_LENGTH} characters; use a long random token "
                            "(for example `python -c \"import secrets; print(secrets.token_urlsafe(32))\"`).")
    if settings.no_auth and settings.token:
        raise PainLensError(f"--no-auth and a token in {TOKEN_VARIABLE} contradict each other: unset the variable, "
                            "or drop --no-auth.")
    if settings.no_auth and not is_loopback(settings.address):
        raise PainLensError(f"--no-auth is refused on {settings.address}: other machines could send faces to this server "
                            f"without a token. Serve 127.0.0.1 only, or drop --no-auth (a token is then required: "
                            f"set {TOKEN_VARIABLE}, or use the one printed at start).")
    if _wildcard(settings.address) and not settings.allowed_hosts:
        raise PainLensError(f"Serving on every address ({settings.address}) needs the names clients use to reach this "
                            "server, so that requests for other names (DNS rebinding) are refused: give them with "
                            "--allowed-host NAME (repeatable), for example --allowed-host painlens.hospital.example.")


def with_token(settings: ApiSettings) -> tuple[ApiSettings, bool]:
    """(the settings with a token, whether it was generated now): without --no-auth the API always has one."""
    if settings.token or settings.no_auth:
        return settings, False
    return replace(settings, token=secrets.token_urlsafe(32)), True


# --- what the endpoints answer ------------------------------------------------------------------------

class Refused(Exception):
    """A request answered with a 4xx status and one sentence."""

    def __init__(self, status: int, sentence: str, path: str | None = None, kind: str = "image"):
        super().__init__(sentence)
        self.status, self.sentence, self.path, self.kind = status, sentence, path, kind


class Health(BaseModel):
    status: str
    experiment: str | None = None  # only to a caller with the token
    networks: int | None = None


class ScenarioFacts(BaseModel):
    auc: float | None = None
    auc_low: float | None = None
    auc_high: float | None = None
    accuracy: float | None = None
    learned: bool | None = None
    learned_reason: str | None = None
    runs: int | None = None


class NetworkReport(BaseModel):
    name: str
    input_size: int
    seeds: list[int]
    learned: bool | None
    scenarios: dict[str, ScenarioFacts]


class ModelsReport(BaseModel):
    experiment: str
    answer_rule: str
    networks: list[NetworkReport]


# Per scenario in GET /v1/models: field -> the summary columns it comes from, first present wins (the
# subject-bootstrap AUC and its interval; the mean over folds where an older summary has no pooled one).
MODEL_FIELDS = {"auc": ("auc", "roc_auc_mean"), "auc_low": ("auc_low",), "auc_high": ("auc_high",),
                "accuracy": ("accuracy", "accuracy_mean"), "learned": ("learned",),
                "learned_reason": ("learned_reason",), "runs": ("runs",)}


def models_report(predictor) -> dict:
    """The kept networks and, per scenario, their validated AUC (and whether they learned), from the
    current results (never older than the runs' predictions)."""
    from engine.evaluation.results import current_results
    from engine.evaluation.answer import RULE

    _, summary = current_results(predictor.store)
    rows = summary[summary["class"] == "macro"].to_dict("records") if len(summary) and "class" in summary else []
    networks = []
    for network in predictor.networks.values():
        scenarios = {row["scenario"]: _scenario_fields(row) for row in rows if row["model"] == network.name}
        networks.append({"name": network.name, "input_size": network.input_size, "seeds": list(network.seeds),
                         "learned": scenarios.get("external", {}).get("learned"), "scenarios": scenarios})
    # serve_cp_adapt: the rule says the served models are CP-adapted and its CP-PAIN figures leave one subject out
    return {"experiment": predictor.store.experiment, "answer_rule": predictor.answer_basis().parameters.get("rule", RULE),
            "networks": networks}


def _scenario_fields(row: dict) -> dict:
    out = {}
    for field, columns in MODEL_FIELDS.items():
        column = next((c for c in columns if c in row), None)
        if column is not None:
            out[field] = _plain(row[column])
    return out


def _plain(value):
    """A JSON-safe scalar (NaN: None)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    value = float(value)
    return round(value, 4) if np.isfinite(value) else None


# --- HTTP ----------------------------------------------------------------------------------------------

ANY_ANSWER = {"model": PhotoAnswer | VideoAnswer}
ERRORS = {code: {**ANY_ANSWER, "description": text} for code, text in (
    (400, "a malformed request"), (401, "no or a wrong bearer token"),
    (403, "a Host header that does not name this server, or a cross-site request from a browser"),
    (408, "the body did not arrive within the request's time"), (413, "the body, or one of its files, is over the upload limit"),
    (415, "a video sent to /v1/explain (photos only)"),
    (422, "a bad photo or video: not one, truncated, too large, no usable face; or a calm reference (or calm seconds) "
          "that cannot be used; `error` says which in one sentence"),
    (503, "the server holds as many requests as it takes (Retry-After says when to try again), or the analysis "
          "took longer than the server allows"))}
BINARY = {"type": "string", "format": "binary"}
UPLOAD = {"requestBody": {"required": True, "content": {
    "image/*": {"schema": BINARY}, "video/*": {"schema": BINARY}, "application/octet-stream": {"schema": BINARY},
    "multipart/form-data": {"schema": {"type": "object", "properties": {"file": BINARY}, "required": ["file"]}}}}}
REFERENCE_DESCRIPTION = (
    "a calm photo (or short clip) of the same person, checked as the photo is (size limit, decoding, a face). The "
    "answer is then the one with the person's calm reference: `answer_kind` is `with_reference`, and `p_pain`, `band`, "
    "`prediction_set`, `abstained` and `abstain_reason` are that answer's; `baseline` keeps the face alone's "
    "(`p_absolute`, `absolute_abstain_reason`), the calm face's p(pain) and the change. An atypical resting face "
    "(common in cerebral palsy) reads as pain on its own; against the person's calm face it need not. A reference that "
    "cannot be used (unreadable, no face, unlike the training faces, or an experiment whose answer gives no number) "
    "answers 422 with a sentence naming the calm reference.")
CALM_SECONDS_DESCRIPTION = (
    "seconds A-B of this clip (from its start; A included, B not) in which the person is at rest. Those frames are the "
    "reference, as a calm clip's would be (the mean over their faces), and a photo's differences from the clip (light, "
    "pose, camera) are gone: `answer_kind` is `with_reference`, `baseline.reference_from` is `calm_seconds`, and the "
    "frames there are marked `reference` with no number of their own, left out of the score. A range that cannot be "
    "read, is empty or reversed, lies outside the clip, holds too few usable faces, or comes with a photo or with "
    f"`{REFERENCE_FIELD}`, answers 422 with a sentence.")
PREDICT_UPLOAD = {"requestBody": {**UPLOAD["requestBody"], "content": {
    **UPLOAD["requestBody"]["content"],
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {**BINARY, "description": "The photo or video to answer"},
        REFERENCE_FIELD: {**BINARY, "description": f"Optional: {REFERENCE_DESCRIPTION}"},
        CALM_SECONDS_FIELD: {"type": "string", "examples": ["0-3"], "description": "Optional, for a video (instead of "
                             f"`{REFERENCE_FIELD}`): {CALM_SECONDS_DESCRIPTION}"}}}}}}}


def guard(settings: ApiSettings):
    """The dependency every route passes (added to the whole application, so routers included later pass it
    too): the Host header names this server, a browser's Origin (if any) is this server, and the bearer token
    is sent, except on PUBLIC_PATHS; ``request.state.authorized`` says whether the token was there."""
    bearer = HTTPBearer(auto_error=False, scheme_name="bearer")  # only for the schema: the check is below

    async def guarded(request: Request, _=Depends(bearer)) -> None:
        _check_host(request, settings)
        request.state.authorized = _token_sent(request, settings)
        route = getattr(request.scope.get("route"), "path", None)
        if not request.state.authorized and route not in PUBLIC_PATHS:
            raise Refused(401, "This server needs its bearer token: send `Authorization: Bearer TOKEN` (the token the "
                               f"server was started with in {TOKEN_VARIABLE}, or the one it printed at start).")

    return guarded


def answer_upload(predictor, data: bytes, path: str | None, calm: "CalmGiven | None", check=None):
    """The answer record of one photo or video; with ``calm`` (the person's calm photo or clip, or the clip's own calm
    seconds: ``_with_calm_seconds``) the answer with that reference (``engine.person_baseline``, as the upload page
    and ``painlens predict --reference``). A calm file is read first: one that cannot be used is refused (422, its
    sentence names it) before the photo is analysed."""
    from engine.answers import answer_bytes
    from engine.person_baseline import answer_with_reference, person_baseline

    if calm is None:
        return answer_bytes(predictor, data, path, progress=check)
    if calm.seconds is not None:
        return _with_calm_seconds(predictor, data, path, calm, check)
    try:
        reference = person_baseline(predictor, calm.photo, progress=check)
    except PainLensError as exc:  # NoBaselineError: its sentence names the calm reference
        raise Refused(422, str(exc), path, media_kind(data) if data else "image") from None
    return answer_with_reference(predictor, answer_bytes(predictor, data, path, progress=check), reference)


@dataclass(frozen=True)
class CalmGiven:
    """The person's calm reference a multipart request gave: a calm photo or clip (``reference``), or seconds of
    the clip itself (``calm_seconds``, its text as sent)."""

    photo: bytes | None = None
    seconds: str | None = None


def _with_calm_seconds(predictor, data: bytes, path: str | None, calm: CalmGiven, check=None):
    """The clip's answer with its own calm seconds as the reference (``engine.person_baseline.stretch_baseline``);
    422 with a sentence for a range that cannot be read or used, and with a calm photo beside it (which one?)."""
    from engine.answers import answer_bytes
    from engine.person_baseline import NoBaselineError, answer_with_reference, calm_seconds, stretch_baseline

    kind = media_kind(data) if data else "image"
    if calm.photo is not None:
        raise Refused(422, f"Give the person's calm reference as a calm photo or clip (the field `{REFERENCE_FIELD}`) or "
                           f"as seconds of this clip (the field `{CALM_SECONDS_FIELD}`), not both.", path, kind)
    try:
        seconds = calm_seconds(calm.seconds)
    except NoBaselineError as exc:  # read before the clip is analysed: a mistyped range costs nothing
        raise Refused(422, f"{exc} (the field `{CALM_SECONDS_FIELD}`)", path, kind) from None
    record = answer_bytes(predictor, data, path, progress=check)
    try:
        reference = stretch_baseline(record, seconds)
    except NoBaselineError as exc:
        raise Refused(422, str(exc), path, record.kind) from None
    return answer_with_reference(predictor, record, reference)


def create_app(predictor, settings: ApiSettings):
    """The FastAPI application serving ``predictor`` (see the module docstring)."""
    from engine.answers import explain_photo

    admission = Admission(settings.queue, settings.analyses_at_once, settings.request_seconds)
    app = FastAPI(title="PainLens API", version="1", description=f"{DESCRIPTION} Uploads up to {settings.max_upload_mb} MB.",
                  docs_url=None, redoc_url=None, openapi_url=None, dependencies=[Depends(guard(settings))])
    app.state.admission = admission  # routers included later analyse through it too (``answer`` below)

    async def answer(request: Request, work, render=_json, body: bool = True, reference: bool = False):
        """``render(work(data, path, check))`` for an admitted request, or its failure with a sentence: the body is
        read only once admitted (``body=False``: ``work(None, None, check)``), ``work`` runs on a worker thread
        and ``check`` is its progress callback (it stops the work when nobody waits any more). ``reference``: the
        route takes a calm reference, ``work(data, path, check, calm)`` (``CalmGiven``, or None); elsewhere one is refused."""
        path, kind, calm = None, "image", None
        try:
            async with admission.admitted() as deadline:
                if body:
                    path, data, calm = await admission.read(deadline, lambda: _upload(request, settings))
                    kind = media_kind(data)
                    if calm is not None and not reference:
                        raise Refused(400, NO_REFERENCE_HERE, path, kind)
                else:
                    data = None
                result = await admission.run(request, deadline, lambda check: work(data, path, check, calm) if reference
                                             else work(data, path, check))
        except Exception as exc:  # noqa: BLE001  every failure becomes an answer with a sentence
            return _failure(exc, path, kind)
        return render(result)

    app.state.answer = answer  # routers included later analyse through the same admission

    @app.get("/health", response_model=Health, response_model_exclude_none=True,
             summary="The server is up (and, with the token, which experiment it serves)")
    async def health(request: Request):
        if not request.state.authorized:
            return Health(status="ok")
        return Health(status="ok", experiment=predictor.store.experiment, networks=len(predictor.networks))

    @app.get("/v1/models", response_model=ModelsReport, responses={401: ERRORS[401], 503: ERRORS[503]},
             summary="The kept networks, their AUC per scenario, whether they learned")
    async def models(request: Request):
        return await answer(request, lambda data, path, check: models_report(predictor),
                            lambda report: _json(ModelsReport.model_validate(report).model_dump(mode="json")), body=False)

    @app.post("/v1/predict", response_model=PhotoAnswer | VideoAnswer, responses=ERRORS, openapi_extra=PREDICT_UPLOAD,
              summary="p(pain) for one photo (per network and as one answer) or a video's timeline; with the person's "
                      "calm photo, the answer with that reference",
              description=f"The photo or video as the body, or as the multipart field `file`. With `{REFERENCE_FIELD}`, "
                          f"{REFERENCE_DESCRIPTION}")
    async def predict(request: Request):
        return await answer(request, lambda data, path, check, calm: answer_upload(predictor, data, path, calm, check),
                            lambda record: _json(record.to_json()), reference=True)

    @app.post("/v1/explain", response_model=ExplanationAnswer, openapi_extra=UPLOAD,
              responses={200: {"content": {"image/png": {}}}, **ERRORS},
              summary="A LIME heatmap (PNG; in JSON as base64 unless only image/png is accepted) and its scores")
    async def explain(request: Request, network: str | None = Query(None, description="Default: the first network"),
                      label: int | None = Query(None, ge=0, le=1, description="1 pain, 0 no pain; default: its answer"),
                      samples: int = Query(EXPLAIN_SAMPLES, ge=20, le=MAX_EXPLAIN_SAMPLES)):
        def work(data, path, check):
            if media_kind(data) != "image":
                raise Refused(415, VIDEO_LATER, path, "video")
            return explain_photo(predictor, data, path, network or next(iter(predictor.networks)), label, samples,
                                 progress=check)

        return await answer(request, work, lambda done: _explanation_response(request, *done))

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi():
        return app.openapi()

    from painlens.records_api import router as records_router

    app.include_router(records_router(predictor))  # the assessment records, behind the app-wide guard (token, Host)

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return _docs_page(app.openapi())

    @app.exception_handler(Refused)
    async def refused(request, exc):
        return _failure(exc, None, "image")

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc):
        return _failure(Refused(400, invalid_request_sentence(exc.errors())), None, "image")

    return app


# What each query parameter may be, for the sentence of a request that sends another value.
PARAMETER_RULES = {"label": "label must be 0 (no pain) or 1 (pain)",
                   "samples": f"samples must be a whole number between 20 and {MAX_EXPLAIN_SAMPLES}"}


def invalid_request_sentence(errors: list[dict]) -> str:
    """One sentence naming every parameter the request got wrong (never the value sent: it may be anything)."""
    said = []
    for error in errors:
        name = ".".join(str(part) for part in error.get("loc", ()) if part not in ("query", "path", "body", "header"))
        said.append(PARAMETER_RULES.get(name) or f"{name or 'the request'}: {error.get('msg', 'not valid')}")
    return "The request was refused: " + "; ".join(dict.fromkeys(said)) + "."


def _json(content: dict, status: int = 200, headers: dict | None = None):
    from fastapi.responses import JSONResponse

    return JSONResponse(content, status_code=status, headers=headers)


def _failure(exc: Exception, path: str | None, kind: str):
    """The answer to a request that could not be served: its status and one sentence, never a traceback."""
    from engine.answers import UnknownNetworkError, failed
    from engine.errors import BadImageError

    headers = None
    if isinstance(exc, Refused):
        status, sentence, path, kind = exc.status, exc.sentence, exc.path or path, exc.kind
    elif isinstance(exc, Busy):
        status, sentence, headers = 503, str(exc), {"Retry-After": str(exc.retry_after)}
    elif isinstance(exc, Late) and exc.reason == "body":
        status, sentence = 408, f"The upload did not arrive within the {exc.seconds:g} s this server allows a request."
    elif isinstance(exc, Late):
        status, sentence = 503, (f"The analysis took longer than the {exc.seconds:g} s this server allows a request and "
                                 "was stopped; send a shorter video, or ask for fewer LIME samples.")
    elif isinstance(exc, Cancelled):  # the client went away: nobody reads this answer
        status, sentence = 499, "The client closed the connection; the analysis was stopped."
    elif isinstance(exc, (BadImageError, UnknownNetworkError)):
        status, sentence = 422, str(exc)
    elif isinstance(exc, PainLensError):
        status, sentence = 400, str(exc)
    else:  # a bug, not the caller's doing: its type in the log, never the photo or its name
        log.error("request failed: %s", type(exc).__name__)
        status, sentence = 500, f"The photo could not be analysed ({type(exc).__name__}); try another photo."
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    return _json(failed(path, kind, sentence).to_json(), status, headers)


def _host_name(value: str) -> str:
    """The name in a Host header or an Origin's authority, lower case, without its port or IPv6 brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _check_host(request, settings: ApiSettings) -> None:
    """Refuse (403) a Host that does not name this server (DNS rebinding) and a browser's cross-site request."""
    from urllib.parse import urlsplit

    allowed = settings.hosts
    if "*" in allowed:
        return
    if _host_name(request.headers.get("host", "")) not in allowed:
        raise Refused(403, "This request names another host than this server (its Host header); if the server is "
                           "reached through that name, start it with --allowed-host NAME.")
    origin = request.headers.get("origin")
    if origin and origin != "null" and _host_name(urlsplit(origin).netloc) not in allowed:
        raise Refused(403, "Requests from another site's page are refused (cross-site); call the API from a program, "
                           "or serve the page from this server's own address.")
    if origin == "null":
        raise Refused(403, "Requests from a page without an origin (a file or a sandboxed frame) are refused.")


def _token_sent(request, settings: ApiSettings) -> bool:
    if settings.no_auth:
        return True
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), settings.token.encode())


async def _upload(request, settings: ApiSettings) -> tuple[str | None, bytes, "CalmGiven | None"]:
    """(the file's name or None, its bytes, the calm reference given or None) from the body or a multipart body's
    parts, in memory, capped: the body before and while it is read, each multipart file after."""
    content_type = request.headers.get("content-type", "")
    multipart = content_type.lower().startswith("multipart/form-data")
    limit = settings.max_multipart_bytes if multipart else settings.max_body_bytes
    too_large = Refused(413, f"The upload is larger than the {settings.max_upload_mb} MB this server accepts"
                             f"{' per file' if multipart else ''}; send a smaller photo.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large  # refused before a byte is read
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    if multipart:
        name, data, calm = _multipart_files(bytes(body), content_type)
        for what, part in (("photo", data), ("calm reference", calm.photo if calm else None)):
            if part is not None and len(part) > settings.max_file_bytes:
                raise Refused(413, f"The {what} is larger than the {settings.max_upload_mb} MB this server accepts; "
                                   f"send a smaller {'photo' if what == 'photo' else 'calm photo'}.", name)
        return name, data, calm
    return None, bytes(body), None


def _multipart_files(body: bytes, content_type: str) -> tuple[str | None, bytes, "CalmGiven | None"]:
    """(name, bytes) of the first file part of a multipart/form-data body that is not the calm reference, and the
    calm reference: the bytes of the part named ``reference`` and the text of the field ``calm_seconds`` (None
    without either; an empty one from a form's unfilled field is none),
    parsed in memory (never spooled to disk)."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, options = parse_options_header(content_type)
    parts: list[tuple[dict, bytearray]] = []
    header = [b"", b""]

    def on_header_end():
        parts[-1][0][header[0].decode("latin-1").lower()] = header[1]
        header[:] = [b"", b""]

    callbacks = {"on_part_begin": lambda: parts.append(({}, bytearray())),
                 "on_header_field": lambda data, start, end: header.__setitem__(0, header[0] + data[start:end]),
                 "on_header_value": lambda data, start, end: header.__setitem__(1, header[1] + data[start:end]),
                 "on_header_end": on_header_end,
                 "on_part_data": lambda data, start, end: parts[-1][1].extend(data[start:end])}
    try:
        parser = MultipartParser(options.get(b"boundary", b""), callbacks)
        parser.write(body)
        parser.finalize()
    except Exception:  # noqa: BLE001  python-multipart raises several kinds for a malformed body
        raise Refused(400, "The multipart body could not be read; send the photo as the body, or as one file field "
                           "of a multipart/form-data request.") from None
    found, calm, seconds = None, None, None
    for headers, data in parts:
        _, disposition = parse_options_header(headers.get("content-disposition", b""))
        field = disposition.get(b"name", b"").decode("utf-8", "replace")
        if field == REFERENCE_FIELD:
            if calm is None and (data or disposition.get(b"filename")):  # a form's empty file field: none given
                calm = bytes(data)
        elif field == CALM_SECONDS_FIELD and b"filename" not in disposition:
            text = bytes(data[:200]).decode("utf-8", "replace").strip()
            if text and seconds is None:  # a form's empty text field: none given
                seconds = text
        elif b"filename" in disposition and found is None:
            found = disposition[b"filename"].decode("utf-8", "replace") or None, bytes(data)
    if found is None:
        raise Refused(400, "The multipart request holds no file: send the photo as a file field (for example `-F "
                           f"file=@photo.jpg`; its calm reference, if any, as `-F {REFERENCE_FIELD}=@calm.jpg`).")
    return *found, (None if calm is None and seconds is None else CalmGiven(calm, seconds))


def _explanation_response(request, record: ExplanationAnswer, png: bytes):
    """PNG with the scores in headers when the client accepts only images; else JSON with the PNG in base64."""
    from fastapi.responses import Response

    accept = request.headers.get("accept", "")
    if "image/png" in accept and "json" not in accept:
        headers = {"X-PainLens-Network": record.network, "X-PainLens-Label": str(record.label),
                   "X-PainLens-P-Pain": str(record.p_pain), "X-PainLens-Fit-R2": str(record.fit_r2)}
        return Response(png, media_type="image/png", headers=headers)
    record.heatmap_png = base64.b64encode(png).decode("ascii")
    return _json(record.to_json())


def _docs_page(spec: dict):
    """The description as a plain page (no script from elsewhere: the server may have no internet)."""
    import html
    import json

    from fastapi.responses import HTMLResponse

    rows = "".join(f"<li><code>{method.upper()} {html.escape(path)}</code>: {html.escape(op.get('summary', ''))}</li>"
                   for path, item in spec["paths"].items() for method, op in item.items())
    return HTMLResponse(f"<!doctype html><title>PainLens API</title><h1>PainLens API</h1>"
                        f"<p>{html.escape(spec['info']['description'])}</p><ul>{rows}</ul>"
                        f"<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a></p>"
                        f"<pre>{html.escape(json.dumps(spec, indent=2))}</pre>")


def log_config() -> dict:
    """uvicorn's logging with an access line of method, path and status only: no client address, by default."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["access"]["fmt"] = '%(levelprefix)s "%(request_line)s" %(status_code)s'
    return config


def serve(experiment: str, settings: ApiSettings) -> None:
    """Load the experiment's networks, then serve until stopped (Ctrl+C or SIGTERM)."""
    import uvicorn

    from pathlib import Path

    from painlens.batch import load_predictor

    check_settings(settings)
    if not settings.token and not settings.no_auth:
        raise PainLensError("No token: call with_token first (the API is never served open by accident).")
    predictor = load_predictor(Path(experiment))
    log.info("serving %s (%d networks) on %s:%d", predictor.store.experiment, len(predictor.networks), settings.address, settings.port)
    uvicorn.run(create_app(predictor, settings), host=settings.address, port=settings.port, log_level="info",
                log_config=log_config(), server_header=False, timeout_keep_alive=5)
