"""POST /predict: a bare ASGI endpoint on the app's router.

FastAPI's own endpoint machinery (the Request object, dependency solving, the response class)
cost ~40 µs a request — a third of a one-listing answer (bench/serve.py). The route here keeps
what the app wraps around every route (the metrics middleware, FastAPI's exception handlers,
its telemetry) and reads the body, validates and answers itself. FastAPI still documents it:
:func:`predict_doc_route` is the route the OpenAPI page describes.

No `from __future__ import annotations`: FastAPI reads the documented route's annotations.
"""

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import parse_qsl

import msgspec
from fastapi import HTTPException
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import Field, TypeAdapter, ValidationError
from starlette.requests import ClientDisconnect
from starlette.routing import Route

from mlops_cli.schema import LISTING_FIELDS, REQUIRED_LISTING_FIELDS
from serving.model_server import LoadedModel
from serving.routes import serving_model
from serving.schemas import Listing, Prediction

log = logging.getLogger("mlops.serving")

EXCERPT_CHARS = 80
JSON_TYPES = ("application/json",)
# Compiled trees answer a row in ~30 µs: up to this many rows run on the event loop (a thread hop
# costs more, and treelite releases the GIL, which a busy worker thread then holds for up to 5 ms).
INLINE_TREE_ROWS = 100
# TreeSHAP of one row takes ~0.2 ms (100 trees of 15 leaves), in C: a few rows go to the batcher's
# thread (serving/batcher.py) with the other requests' rows; more rows' terms are milliseconds of
# Python, sent to a worker thread whole
INLINE_EXPLAIN_ROWS = 4
JSON_HEADER = (b"content-type", b"application/json")


def _plain_number(value: Any) -> Any:
    """msgspec's hook for what it does not encode itself: numpy's numbers, as Python's."""
    if hasattr(value, "item"):
        return value.item()
    raise NotImplementedError(f"cannot encode {type(value).__name__} as JSON")


_encode = msgspec.json.Encoder(enc_hook=_plain_number).encode

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def _excerpt(value: Any, depth: int = 0) -> Any:
    """What a 422 echoes of an invalid input: short and always valid JSON (a non-finite number
    as text, long text cut, a listing's values cut one by one, anything deeper summarised)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value if len(value) <= EXCERPT_CHARS else value[:EXCERPT_CHARS] + "…"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict) and depth == 0:
        shown = dict(list(value.items())[:20])
        return {str(k)[:EXCERPT_CHARS]: _excerpt(v, depth + 1) for k, v in shown.items()}
    return f"<{type(value).__name__}>"


def _safe_error(error: dict[str, Any]) -> dict[str, Any]:
    safe = {**error, "loc": ("body", *error["loc"]), "input": _excerpt(error.get("input"))}
    if "ctx" in error:
        safe["ctx"] = _excerpt(error["ctx"])
    return safe


def _too_large(cap: int) -> HTTPException:
    return HTTPException(413, detail=f"the body is larger than {cap} bytes (MLOPS_API_MAX_BODY_BYTES)")


async def _capped_body(scope: dict[str, Any], receive: Receive, cap: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``cap`` bytes (from
    Content-Length before reading anything, else while it streams in)."""
    declared = _header(scope, b"content-length")
    if declared.isdigit() and int(declared) > cap:
        raise _too_large(cap)
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            raise _too_large(cap)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _timed_body(scope: dict[str, Any], receive: Receive, cap: int, timeout: float) -> bytes:
    """:func:`_capped_body`, which must arrive whole within ``timeout`` seconds: else 408 and the
    connection closed (a client trickling its body would otherwise hold a connection for ever)."""
    try:
        async with asyncio.timeout(timeout):  # a deadline on this task: no second task, as wait_for made
            return await _capped_body(scope, receive, cap)
    except TimeoutError:
        raise HTTPException(
            408,
            detail=f"the body did not arrive within {timeout:g} s (MLOPS_API_BODY_TIMEOUT)",
            headers={"Connection": "close"},
        ) from None


def _header(scope: dict[str, Any], name: bytes) -> str:
    """The first value of a header (names arrive lower-cased), else ''."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return ""


def _flag(query: bytes, name: str) -> bool:
    """A boolean query parameter: true/1/yes, false/0/no (absent: false); else 422."""
    if not query:
        return False
    value = dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True)).get(name)
    if value is None:
        return False
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise RequestValidationError(
        [{"type": "bool_parsing", "loc": ("query", name), "msg": "Input should be true or false", "input": value[:64]}]
    )


# the listing fields a client may leave out, in the order the answer names them
_OPTIONAL = tuple(name for name in LISTING_FIELDS if name not in REQUIRED_LISTING_FIELDS)


_MISSING_JSON: dict[tuple[bool, ...], str] = {}  # at most 2^6 shapes of a listing


def _missing_json(row: dict[str, Any]) -> str:
    shape = tuple(row.get(name) is None for name in _OPTIONAL)
    text = _MISSING_JSON.get(shape)
    if text is None:
        text = _MISSING_JSON[shape] = json.dumps([name for name, gone in zip(_OPTIONAL, shape, strict=True) if gone])
    return text


def _intervals_json(model: LoadedModel, prices: list[float]) -> str:
    """``"intervals":[[low,high],...],"interval_level":L,`` (null without a calibrated range)."""
    if model.interval is None:
        return '"intervals":null,"interval_level":null,'
    bounds = (model.interval.bounds(price) for price in prices)
    pairs = ",".join(f"[{low!r},{high!r}]" for low, high in bounds)
    return f'"intervals":[{pairs}],"interval_level":{model.interval.level!r},'


class PredictEndpoint:
    """The ASGI app of POST /predict. It reads the raw body and validates it in one pydantic-core
    pass (JSON parsing included), choosing the one-listing or list schema from the first byte
    (FastAPI's union body handling cost about a third of the throughput). Refusals are raised as
    FastAPI's exceptions, which the app's handlers turn into the same answers as on every route."""

    def __init__(self, max_batch: int, max_body: int, metrics: Any, body_timeout: float = 10.0) -> None:
        self.one = TypeAdapter(Listing)
        self.many = TypeAdapter(Annotated[list[Listing], Field(min_length=1, max_length=max_batch)])
        self.max_body, self.metrics, self.body_timeout = max_body, metrics, body_timeout

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        body = await self.answer(scope, receive)
        headers = [JSON_HEADER, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def answer(self, scope: dict[str, Any], receive: Receive) -> bytes:
        """The answer's JSON; a refusal raises HTTPException or RequestValidationError."""
        explain = _flag(scope.get("query_string", b""), "explain")
        # JSON only: a page on any site may POST text/plain or a form here without a preflight.
        media_type = _header(scope, b"content-type").split(";", 1)[0].strip().lower()
        if media_type not in JSON_TYPES:
            raise HTTPException(415, detail="send the listing(s) as JSON (Content-Type: application/json)")
        raw = await _timed_body(scope, receive, self.max_body, self.body_timeout)
        event = scope.get("mlops.event")  # this request's inference event, when they are recorded
        if event is not None:
            event.raw = raw
        model = serving_model(scope["app"].state.holder)  # this request finishes on this model
        sent_list = raw.lstrip()[:1] == b"["
        if event is not None:
            event.model, event.sent_list = model.event_ref, sent_list
        try:
            parsed = (self.many if sent_list else self.one).validate_json(raw)
        except ValidationError as exc:
            errors = [_safe_error(e) for e in exc.errors(include_url=False)]
            raise RequestValidationError(errors) from None
        listings = parsed if sent_list else [parsed]
        rows = [listing.__dict__ for listing in listings]
        if model.kind == "fast" or (model.kind == "trees" and len(rows) <= INLINE_TREE_ROWS):
            prices, unseen = model.predict_marked(rows)  # microseconds: cheaper than a thread hop
        else:  # pandas, or many rows through the trees: milliseconds, kept off the event loop
            prices, unseen = await run_in_threadpool(model.predict_marked, rows)
        if not all(map(math.isfinite, prices)):
            log.error("model version %s produced a non-finite prediction; answered 503", model.version)
            raise HTTPException(503, detail=f"model version {model.version} produced a non-finite prediction")
        self.metrics.predictions.inc(len(prices))
        if event is not None:
            event.prices, event.unseen, event.rows = prices, unseen, rows
        extra = ""
        if explain:
            if model.explainer is None:
                raise HTTPException(409, detail=f"model version {model.version} cannot explain: {model.explain_reason}")
            if model.kind != "trees" or len(rows) <= INLINE_EXPLAIN_ROWS:
                explained = await model.explain_async(rows, prices)  # TreeSHAP in the batcher's thread
            else:  # the trees' terms of many rows: milliseconds of Python, in a worker thread
                explained = await run_in_threadpool(model.explain, rows, prices)
            # msgspec: 3 µs where json.dumps took 41 for one listing's 17 terms
            extra = ',"explanations":' + _encode(explained).decode()
        unseen_json = ",".join("[]" if not u else json.dumps(u) for u in unseen)
        missing_json = ",".join(_missing_json(row) for row in rows)
        # floats' repr is valid JSON for finite numbers; the model part is made once per model
        return (
            f'{{"predictions":[{",".join(map(repr, prices))}],{_intervals_json(model, prices)}'
            f'"unseen":[{unseen_json}],"missing":[{missing_json}]{extra},"model":{model.ref_json}}}'
        ).encode()


def predict_route(endpoint: PredictEndpoint) -> Route:
    """The route that serves /predict (POST only: another method gets FastAPI's 405)."""
    return Route("/predict", endpoint=endpoint, methods=["POST"], include_in_schema=False)


def predict_doc_route(max_batch: int) -> APIRoute:
    """/predict as the OpenAPI page shows it: its body, query flag, answer and refusals. Requests
    never reach this route (it is not on the router); :class:`PredictEndpoint` serves them."""

    def predict() -> Prediction:  # the OpenAPI summary and description come from here
        """Predict the price of one listing or a list of up to `MLOPS_API_MAX_BATCH`."""
        raise NotImplementedError  # pragma: no cover - documentation only, never routed

    body_schema = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/Listing"},
                        {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Listing"},
                            "minItems": 1,
                            "maxItems": max_batch,
                        },
                    ]
                }
            }
        },
    }
    return APIRoute(
        "/predict",
        predict,
        methods=["POST"],
        tags=["predict"],
        response_model=Prediction,
        openapi_extra={
            "requestBody": body_schema,
            "parameters": [
                {
                    "name": "explain",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "boolean", "default": False},
                    "description": "add each price's exact contributions per feature (`explanations`)",
                }
            ],
        },
        responses={
            200: {
                "headers": {
                    "X-Request-ID": {
                        "description": "the request's id in the inference events (the caller's, when sent)",
                        "schema": {"type": "string"},
                    }
                }
            },
            413: {"description": "body larger than `MLOPS_API_MAX_BODY_BYTES`"},
            415: {"description": "not sent as application/json"},
            408: {"description": "the body did not arrive within `MLOPS_API_BODY_TIMEOUT` seconds"},
            409: {"description": "`explain=true` for a model with no exact contributions (`GET /model` says why)"},
            422: {"description": "invalid listing: the field and the reason"},
            503: {"description": "no model loaded yet"},
        },
    )
