"""``painlens api``: PainLens over HTTP, for hospital systems and research pipelines (Starlette + uvicorn).

    GET  /health       {"status": "ok", ...}: the server is up and its networks are loaded
    GET  /v1/models    the kept networks: input size, seeds, and per scenario their AUC (and whether they learned)
    POST /v1/predict   one photo as the request body or as a multipart file → the answer's JSON
                       (``engine.predict.answer_record``: path, kind, error, p_pain, networks, face, notes...)
    POST /v1/explain   one photo (+ ?network=&label=&samples=) → a LIME heatmap as PNG and its scores
    GET  /openapi.json, /docs   the API described (OpenAPI 3.1) and that description as a page

Safety: 127.0.0.1 by default; on any other address the server refuses to start without a bearer token
(``PAINLENS_API_TOKEN``, read by the CLI), which every /v1 request must then send. A request body over
the upload limit is refused (413) before or while it is read. Photos stay in memory: they are never
written to disk (multipart parts included), logged, or kept after the answer; the access log holds
method, path and status only. Bad input answers 4xx with the dashboard's sentence. ``ANALYSERS`` dispatches
on what the bytes are: a photo gets its answer, a video its pain timeline (``engine.batch_predict.video_record``:
frames, peak_t, score, as ``painlens predict`` prints it); /v1/explain takes photos only (415 for a video).

One ``Predictor`` serves every request; analyses run on worker threads, ``analyses_at_once`` at a time.
"""

from __future__ import annotations

import base64
import hmac
import io
import ipaddress
import logging
import time
from dataclasses import dataclass

import numpy as np

from engine.errors import PainLensError
from engine.preprocess.decode import MAX_UPLOAD_MB, media_kind

log = logging.getLogger("painlens.api")

TOKEN_VARIABLE = "PAINLENS_API_TOKEN"
MIN_TOKEN_LENGTH = 16
DEFAULT_PORT = 8502
EXPLAIN_SAMPLES = 300  # LIME samples: the upload page's choice, a few seconds on the demo networks
MAX_EXPLAIN_SAMPLES = 2000
ANALYSES_AT_ONCE = 2  # concurrent analyses (one per core here); further requests wait their turn
MULTIPART_SLACK = 64 * 1024  # bytes a multipart body may add around the photo (boundaries, headers)
VIDEO_LATER = ("/v1/explain explains one photo; POST the video to /v1/predict for its pain timeline, or send one "
               "frame of it here as a photo (JPEG, PNG, WebP or HEIC).")


@dataclass(frozen=True)
class ApiSettings:
    address: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    token: str = ""  # bearer token every /v1 request must send ("" : none, loopback only)
    max_upload_mb: int = MAX_UPLOAD_MB
    analyses_at_once: int = ANALYSES_AT_ONCE

    @property
    def max_body_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024 + MULTIPART_SLACK


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False  # a host name: may resolve to anything


def check_settings(settings: ApiSettings) -> None:
    """Refuse (PainLensError) to serve other machines without a bearer token, or with a guessable one."""
    if settings.token and len(settings.token) < MIN_TOKEN_LENGTH:
        raise PainLensError(f"{TOKEN_VARIABLE} is shorter than {MIN_TOKEN_LENGTH} characters; use a long random token "
                            "(for example `python -c \"import secrets; print(secrets.token_urlsafe(32))\"`).")
    if not is_loopback(settings.address) and not settings.token:
        raise PainLensError(f"Serving on {settings.address} lets other machines send faces to this server, so it needs a "
                            f"bearer token: set {TOKEN_VARIABLE} to a long random string (clients send it as "
                            "`Authorization: Bearer TOKEN`), or serve 127.0.0.1 only.")


# --- the answers -------------------------------------------------------------------------------------

class Refused(Exception):
    """A request answered with a 4xx status and one sentence."""

    def __init__(self, status: int, sentence: str, path: str | None = None, kind: str = "image"):
        super().__init__(sentence)
        self.status, self.sentence, self.path, self.kind = status, sentence, path, kind


def predict_image(predictor, data: bytes, path: str | None) -> dict:
    """The JSON answer for one photo (BadImageError for a bad one)."""
    from engine.predict import answer_record, predict_bytes

    return answer_record(path, "image", predict_bytes(predictor, data))


def predict_video(predictor, data: bytes, path: str | None) -> dict:
    """The JSON answer for one clip: the answer fields plus frames, peak_t, score and notes (BadVideoError for a bad one)."""
    from engine.batch_predict import video_record

    return video_record(predictor, data, path)


# What each kind of upload goes to; a kind missing here answers 415.
ANALYSERS = {"image": predict_image, "video": predict_video}


def explain_image(predictor, data: bytes, path: str | None, network: str | None, label: int | None,
                  samples: int) -> tuple[dict, bytes]:
    """(scores, heatmap PNG) of one network's LIME explanation of one photo."""
    from engine.predict import predict_bytes

    name = network or next(iter(predictor.networks))
    if name not in predictor.networks:
        raise Refused(422, f"There is no network called {name!r} in this experiment; GET /v1/models lists them.", path)
    prediction = predict_bytes(predictor, data)
    p = float(prediction.probabilities.set_index("model").loc[name, "p_pain"])
    label = int(p >= 0.5) if label is None else label
    clock = time.perf_counter()
    explanation = predictor.explain(prediction.face.crop, name, label, seed=0, num_samples=samples)
    scores = {"path": path, "network": name, "label": label, "class": "pain" if label else "no pain",
              "p_pain": round(p, 4), "samples": samples, "fit_r2": round(float(explanation.score), 4),
              "superpixel_weights": [round(float(w), 6) for w in explanation.weights],
              "seconds": round(time.perf_counter() - clock, 3), "notes": list(prediction.notes)}
    return scores, heatmap_png(explanation)


def heatmap_png(explanation) -> bytes:
    """An 8-bit greyscale PNG at the network's input size: each pixel its superpixel's positive LIME
    weight for the class explained, 255 for the strongest (0: no support). It lies over the face crop."""
    from PIL import Image

    mask = explanation.mask()
    top = float(mask.max())
    scaled = np.round(mask / top * 255) if top > 0 else np.zeros_like(mask)
    buffer = io.BytesIO()
    Image.fromarray(scaled.astype(np.uint8), "L").save(buffer, format="PNG")
    return buffer.getvalue()


# Per scenario in GET /v1/models: field -> the summary columns it comes from, first present wins (the
# subject-bootstrap AUC and its interval; the mean over folds where an older summary has no pooled one).
MODEL_FIELDS = {"auc": ("auc", "roc_auc_mean"), "auc_low": ("auc_low",), "auc_high": ("auc_high",),
                "accuracy": ("accuracy", "accuracy_mean"), "learned": ("learned",),
                "learned_reason": ("learned_reason",), "runs": ("runs",)}


def models_report(predictor) -> dict:
    """The kept networks and, per scenario, their validated AUC (and whether they learned), from the
    current results (never older than the runs' predictions)."""
    from engine.evaluation.results import current_results
    from engine.predict import ANSWER_RULE

    _, summary = current_results(predictor.store)
    rows = summary[summary["class"] == "macro"].to_dict("records") if len(summary) and "class" in summary else []
    networks = []
    for network in predictor.networks.values():
        scenarios = {row["scenario"]: _scenario_fields(row) for row in rows if row["model"] == network.name}
        networks.append({"name": network.name, "input_size": network.input_size, "seeds": list(network.seeds),
                         "learned": scenarios.get("external", {}).get("learned"), "scenarios": scenarios})
    return {"experiment": predictor.store.experiment, "answer_rule": ANSWER_RULE, "networks": networks}


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

def create_app(predictor, settings: ApiSettings):
    """The Starlette application serving ``predictor`` (see the module docstring)."""
    import anyio
    from starlette.applications import Starlette
    from starlette.routing import Route

    limiter = anyio.CapacityLimiter(settings.analyses_at_once)

    async def analyse(function, *args):
        return await anyio.to_thread.run_sync(function, *args, limiter=limiter)

    async def health(request):
        return _json({"status": "ok", "experiment": predictor.store.experiment, "networks": len(predictor.networks)})

    async def models(request):
        _authorize(request, settings)
        return _json(await analyse(models_report, predictor))

    async def predict(request):
        path, kind = None, "image"
        try:
            _authorize(request, settings)
            path, data = await _upload(request, settings)
            kind = media_kind(data)
            if kind not in ANALYSERS:
                raise Refused(415, VIDEO_LATER, path, kind)
            return _json(await analyse(ANALYSERS[kind], predictor, data, path))
        except Exception as exc:  # noqa: BLE001  every failure becomes an answer with a sentence
            return _failure(exc, path, kind)

    async def explain(request):
        path = None
        try:
            _authorize(request, settings)
            network, label, samples = _explain_options(request)
            path, data = await _upload(request, settings)
            if media_kind(data) != "image":
                raise Refused(415, VIDEO_LATER, path, "video")
            scores, png = await analyse(explain_image, predictor, data, path, network, label, samples)
        except Exception as exc:  # noqa: BLE001
            return _failure(exc, path, "image")
        return _explanation_response(request, scores, png)

    routes = [Route("/health", health), Route("/v1/models", models), Route("/v1/predict", predict, methods=["POST"]),
              Route("/v1/explain", explain, methods=["POST"]), Route("/openapi.json", lambda r: _json(openapi(settings))),
              Route("/docs", lambda r: _docs_page(settings))]
    return Starlette(routes=routes, exception_handlers={Refused: lambda r, exc: _failure(exc, None, "image")})


def _json(content: dict, status: int = 200, headers: dict | None = None):
    from starlette.responses import JSONResponse

    return JSONResponse(content, status_code=status, headers=headers)


def _failure(exc: Exception, path: str | None, kind: str):
    """The answer to a request that could not be served: its status and one sentence, never a traceback."""
    from engine.errors import BadImageError
    from engine.predict import answer_record

    if isinstance(exc, Refused):
        status, sentence, path, kind = exc.status, exc.sentence, exc.path or path, exc.kind
    elif isinstance(exc, BadImageError):
        status, sentence = 422, str(exc)
    elif isinstance(exc, PainLensError):
        status, sentence = 400, str(exc)
    else:  # a bug, not the caller's doing: its type in the log, never the photo or its name
        log.error("request failed: %s", type(exc).__name__)
        status, sentence = 500, f"The photo could not be analysed ({type(exc).__name__}); try another photo."
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return _json(answer_record(path, kind, error=sentence), status, headers)


def _authorize(request, settings: ApiSettings) -> None:
    if not settings.token:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), settings.token.encode()):
        raise Refused(401, "This server needs its bearer token: send `Authorization: Bearer TOKEN` (the token the "
                           f"server was started with in {TOKEN_VARIABLE}).")


async def _upload(request, settings: ApiSettings) -> tuple[str | None, bytes]:
    """(the file's name or None, its bytes) from the body or a multipart file part, in memory, capped."""
    limit = settings.max_body_bytes
    too_large = Refused(413, f"The upload is larger than the {settings.max_upload_mb} MB this server accepts; send a "
                             "smaller photo.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large  # refused before a byte is read
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        return _multipart_file(bytes(body), content_type)
    return None, bytes(body)


def _multipart_file(body: bytes, content_type: str) -> tuple[str | None, bytes]:
    """The first file part of a multipart/form-data body, parsed in memory (never spooled to disk)."""
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
    for headers, data in parts:
        _, disposition = parse_options_header(headers.get("content-disposition", b""))
        if b"filename" in disposition:
            return disposition[b"filename"].decode("utf-8", "replace") or None, bytes(data)
    raise Refused(400, "The multipart request holds no file: send the photo as a file field (for example `-F file=@photo.jpg`).")


def _explain_options(request) -> tuple[str | None, int | None, int]:
    query = request.query_params
    try:
        label = int(query["label"]) if "label" in query else None
        samples = int(query.get("samples", EXPLAIN_SAMPLES))
    except ValueError:
        raise Refused(400, "label and samples must be whole numbers (label 0: no pain, 1: pain).") from None
    if label not in (None, 0, 1) or not 20 <= samples <= MAX_EXPLAIN_SAMPLES:
        raise Refused(400, f"label must be 0 (no pain) or 1 (pain), and samples between 20 and {MAX_EXPLAIN_SAMPLES}.")
    return query.get("network") or None, label, samples


def _explanation_response(request, scores: dict, png: bytes):
    """PNG with the scores in headers when the client accepts only images; else JSON with the PNG in base64."""
    from starlette.responses import Response

    if "image/png" in request.headers.get("accept", "") and "json" not in request.headers.get("accept", ""):
        headers = {"X-PainLens-Network": scores["network"], "X-PainLens-Label": str(scores["label"]),
                   "X-PainLens-P-Pain": str(scores["p_pain"]), "X-PainLens-Fit-R2": str(scores["fit_r2"])}
        return Response(png, media_type="image/png", headers=headers)
    return _json({**scores, "heatmap_png": base64.b64encode(png).decode("ascii")})


# --- the description ------------------------------------------------------------------------------------

_ANSWER = {"type": "object", "description": "engine.predict.answer_record: path, kind, error, p_pain, rule, "
           "networks {name: p}, bands {name: {low, high, seeds}}, face {box, confidence, faces_found, background, "
           "image_size}, notes, timings; for a video also frames [{t, p_pain, face}], peak_t, score {mean, top10, "
           "above_half}", "required": ["path", "kind", "error", "p_pain", "networks"]}
_PHOTO = {"content": {"image/*": {"schema": {"type": "string", "format": "binary"}},
                      "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                      "multipart/form-data": {"schema": {"type": "object", "properties": {
                          "file": {"type": "string", "format": "binary"}}}}}, "required": True}
_ERRORS = {str(code): {"description": text, "content": {"application/json": {"schema": _ANSWER}}} for code, text in (
    (400, "a malformed request"), (401, "no or a wrong bearer token"), (413, "the body is over the upload limit"),
    (415, "a video sent to /v1/explain (photos only)"), (422, "a bad photo: not an image, truncated, too large, no "
                                                             "usable face; `error` says which in one sentence"))}


def openapi(settings: ApiSettings) -> dict:
    """The OpenAPI 3.1 description of this server."""
    security = [{"bearer": []}] if settings.token else []
    explain_query = [{"name": "network", "in": "query", "schema": {"type": "string"}},
                     {"name": "label", "in": "query", "schema": {"type": "integer", "enum": [0, 1]}},
                     {"name": "samples", "in": "query", "schema": {"type": "integer", "minimum": 20,
                                                                     "maximum": MAX_EXPLAIN_SAMPLES}}]
    json_ok = {"description": "OK", "content": {"application/json": {"schema": _ANSWER}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "PainLens API", "version": "1",
                 "description": "Facial pain recognition, a research tool and not a medical device. Photos are "
                                f"analysed in memory and never stored; uploads up to {settings.max_upload_mb} MB."},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": {
            "/health": {"get": {"summary": "The server is up and its networks are loaded", "responses": {"200": {"description": "OK"}}}},
            "/v1/models": {"get": {"summary": "The kept networks, their AUC per scenario, whether they learned",
                                   "security": security, "responses": {"200": {"description": "OK"}}}},
            "/v1/predict": {"post": {"summary": "p(pain) for one photo, per network and as one answer", "security": security,
                                     "requestBody": _PHOTO, "responses": {"200": json_ok, **_ERRORS}}},
            "/v1/explain": {"post": {"summary": "A LIME heatmap (PNG; in JSON as base64 unless only image/png is "
                                                "accepted) and its scores", "security": security,
                                     "parameters": explain_query, "requestBody": _PHOTO,
                                     "responses": {"200": {"description": "OK", "content": {
                                         "application/json": {}, "image/png": {}}}, **_ERRORS}}},
        },
    }


def _docs_page(settings: ApiSettings):
    """The description as a plain page (no script from elsewhere: the server may have no internet)."""
    import html
    import json

    from starlette.responses import HTMLResponse

    spec = openapi(settings)
    rows = "".join(f"<li><code>{method.upper()} {html.escape(path)}</code>: {html.escape(op['summary'])}</li>"
                   for path, item in spec["paths"].items() for method, op in item.items())
    return HTMLResponse(f"<!doctype html><title>PainLens API</title><h1>PainLens API</h1>"
                        f"<p>{html.escape(spec['info']['description'])}</p><ul>{rows}</ul>"
                        f"<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a></p>"
                        f"<pre>{html.escape(json.dumps(spec, indent=2))}</pre>")


def serve(experiment: str, settings: ApiSettings) -> None:
    """Load the experiment's networks, then serve until stopped (Ctrl+C or SIGTERM)."""
    import uvicorn

    from engine.artifacts import ExperimentStore
    from engine.native_log import import_tensorflow_quietly
    from engine.predict import Predictor

    check_settings(settings)
    found = ExperimentStore.find(experiment)
    if not found:
        raise PainLensError(f"No experiment in {experiment}: run `painlens run experiments/demo.toml` first, or give "
                            "--artifacts the folder `painlens run` wrote.")
    import_tensorflow_quietly()
    predictor = Predictor(found[0])
    log.info("serving %s (%d networks) on %s:%d", found[0].name, len(predictor.networks), settings.address, settings.port)
    uvicorn.run(create_app(predictor, settings), host=settings.address, port=settings.port, log_level="info",
                server_header=False, timeout_keep_alive=5)
