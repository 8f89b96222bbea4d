"""The inference API: `create_app()` builds it; `mlops serve` runs it under uvicorn.

No `from __future__ import annotations`: FastAPI reads these annotations at runtime.
"""

import asyncio
import gc
import json
import logging
import math
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import Field, TypeAdapter, ValidationError

from mlops_cli.config import Settings, load_settings
from mlops_cli.ops.docs import offline_docs
from mlops_cli.schema import LISTING_FIELDS, REQUIRED_LISTING_FIELDS
from serving.events import EventRecorder
from serving.metrics import ApiMetrics, MetricsMiddleware
from serving.model_server import LoadedModel, ModelHolder
from serving.monitor import DriftWatcher
from serving.routes import health_router, model_router, serving_model
from serving.schemas import Listing, Prediction

log = logging.getLogger("mlops.serving")


EXCERPT_CHARS = 80
JSON_TYPES = ("application/json",)


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


async def _timed_body(request: Request, cap: int, timeout: float) -> bytes:
    """:func:`_capped_body`, which must arrive whole within ``timeout`` seconds: else 408 and the
    connection closed (a client trickling its body would otherwise hold a connection for ever)."""
    try:
        async with asyncio.timeout(timeout):  # a deadline on this task: no second task, as wait_for made
            return await _capped_body(request, cap)
    except TimeoutError:
        raise HTTPException(
            408,
            detail=f"the body did not arrive within {timeout:g} s (MLOPS_API_BODY_TIMEOUT)",
            headers={"Connection": "close"},
        ) from None


async def _capped_body(request: Request, cap: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``cap`` bytes (from
    Content-Length before reading anything, else while it streams in)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit():
        if int(declared) > cap:
            raise HTTPException(413, detail=f"the body is larger than {cap} bytes (MLOPS_API_MAX_BODY_BYTES)")
        return await request.body()  # the server reads no more than Content-Length says
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise HTTPException(413, detail=f"the body is larger than {cap} bytes (MLOPS_API_MAX_BODY_BYTES)")
        chunks.append(chunk)
    return b"".join(chunks)


def configure_logging() -> None:
    """The API's own story (starts, loads, refusals, outages) on stderr, which `mlops up` writes to
    logs/api.log; once per process, whatever number of apps it builds."""
    logger = logging.getLogger("mlops")
    if not any(getattr(handler, "mlops", False) for handler in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        handler.mlops = True
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


# Compiled trees answer a row in ~30 µs: up to this many rows run on the event loop (a thread hop
# costs more, and treelite releases the GIL, which a busy worker thread then holds for up to 5 ms).
INLINE_TREE_ROWS = 100
# TreeSHAP of one row takes ~0.2 ms (100 trees of 15 leaves): inline, a few rows cost less than the
# hop to a worker thread and back (bench/serve.py, lgbm_local: 0.10x -> 0.13x echo); more go to the pool
INLINE_EXPLAIN_ROWS = 4


def _flag(value: str | None, name: str) -> bool:
    """A boolean query parameter: true/1/yes, false/0/no (absent: false); else 422."""
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


def add_predict_route(
    app: FastAPI, max_batch: int, max_body: int, metrics: ApiMetrics, body_timeout: float = 10.0
) -> None:
    """/predict reads the raw body and validates it in one pydantic-core pass (JSON parsing
    included), choosing the one-listing or list schema from the first byte: FastAPI's own
    union body handling cost about a third of the throughput (bench/serve.py). The route sits
    on the app itself: an included router adds a second routing pass per request."""
    one = TypeAdapter(Listing)
    many = TypeAdapter(Annotated[list[Listing], Field(min_length=1, max_length=max_batch)])
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

    @app.post(
        "/predict",
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
    async def predict(request: Request) -> Response:
        """Predict the price of one listing or a list of up to `MLOPS_API_MAX_BATCH`."""
        # JSON only: a page on any site may POST text/plain or a form here without a preflight.
        explain = _flag(request.query_params.get("explain"), "explain")
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type not in JSON_TYPES:
            raise HTTPException(415, detail="send the listing(s) as JSON (Content-Type: application/json)")
        raw = await _timed_body(request, max_body, body_timeout)
        event = request.scope.get("mlops.event")  # this request's inference event, when they are recorded
        if event is not None:
            event.raw = raw
        model = serving_model(request.app.state.holder)  # this request finishes on this model
        sent_list = raw.lstrip()[:1] == b"["
        if event is not None:
            event.model, event.sent_list = model, sent_list
        try:
            parsed = (many if sent_list else one).validate_json(raw)
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
        metrics.predictions.inc(len(prices))
        if event is not None:
            event.prices, event.unseen, event.rows = prices, unseen, rows
        extra = ""
        if explain:
            if model.explainer is None:
                raise HTTPException(409, detail=f"model version {model.version} cannot explain: {model.explain_reason}")
            if model.kind == "fast" or (model.kind == "trees" and len(rows) <= INLINE_EXPLAIN_ROWS):
                explained = model.explain(rows, prices)  # folded terms (µs) or TreeSHAP of a few rows
            else:  # pandas, or TreeSHAP of many rows: milliseconds, off the event loop
                explained = await run_in_threadpool(model.explain, rows, prices)
            extra = ',"explanations":' + json.dumps(explained)
        unseen_json = ",".join("[]" if not u else json.dumps(u) for u in unseen)
        missing_json = ",".join(_missing_json(row) for row in rows)
        # floats' repr is valid JSON for finite numbers; the model part is made once per model
        body = (
            f'{{"predictions":[{",".join(map(repr, prices))}],{_intervals_json(model, prices)}'
            f'"unseen":[{unseen_json}],"missing":[{missing_json}]{extra},"model":{model.ref_json}}}'
        )
        return Response(body, media_type="application/json")


def create_app(
    settings: Settings | None = None, holder: ModelHolder | None = None, load_on_start: bool = True
) -> FastAPI:
    """The inference API. Loads the champion in the background so it starts even when MLflow is down."""
    settings = settings or load_settings()
    configure_logging()
    log.info(
        "inference API starting: model %s@%s from %s",
        settings.model_name,
        settings.champion_alias,
        settings.public_dict()["mlflow_tracking_uri"],  # password masked
    )
    metrics = ApiMetrics()
    frozen = []

    def model_loaded(result: str, model: LoadedModel | None) -> None:
        metrics.model_loaded(result, model)
        if result == "success" and not frozen:
            # Once the first model is in, everything imported so far (MLflow, sklearn, pandas: a
            # million objects) leaves the collector's view: a full collection walked it all, and
            # the events queued between two writes made them frequent (p99 14 ms, not 170 ms).
            frozen.append(True)
            gc.collect()
            gc.freeze()

    if holder is None:
        holder = ModelHolder(settings, on_load=model_loaded, on_champion=metrics.champion_checked)
    else:
        holder.on_load, holder.on_champion = model_loaded, metrics.champion_checked

    shadow = None
    if settings.api_shadow_share > 0 and settings.api_events == "all":  # the shadow's prices live in the events
        target = settings.api_shadow
        shadow = ModelHolder(settings, target=int(target[8:]) if target.startswith("version:") else target)
    events = EventRecorder(settings, metrics, shadow) if settings.api_events != "off" else None
    # served drift is read back from the events: without answered events there is nothing to watch
    watcher = DriftWatcher(settings, holder, metrics) if settings.api_events == "all" else None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if events is not None:
            events.start()
        if load_on_start:
            holder.start()
        if watcher is not None:
            watcher.start()
        if shadow is not None:
            shadow.start()
        yield
        if watcher is not None:
            watcher.stop()
        if shadow is not None:
            shadow.stop()
        holder.stop()
        if events is not None:
            events.stop()  # what is queued is written before the process ends

    app = FastAPI(
        title="mlops inference API",
        version="1",
        description=f"House prices from `{settings.model_name}@{settings.champion_alias}`.",
        lifespan=lifespan,
        docs_url=None,  # served by offline_docs: no CDN
        redoc_url=None,
    )
    app.state.holder = holder
    app.state.metrics = metrics
    app.state.events = events
    app.state.drift = watcher
    app.state.shadow = shadow
    add_predict_route(app, settings.api_max_batch, settings.api_max_body_bytes, metrics, settings.api_body_timeout)
    app.include_router(model_router(settings))
    app.include_router(health_router())
    offline_docs(app)  # after /predict: the hot route is matched first

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            listing = Listing.model_json_schema(ref_template="#/components/schemas/{model}")
            schema.setdefault("components", {}).setdefault("schemas", {})["Listing"] = listing
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi

    @app.get("/metrics", tags=["metrics"], include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    app.add_middleware(MetricsMiddleware, metrics=metrics, events=events)
    return app
