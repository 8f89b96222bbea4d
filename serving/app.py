"""The inference API: `create_app()` builds it; `mlops serve` runs it under uvicorn.

No `from __future__ import annotations`: FastAPI reads these annotations at runtime.
"""

import gc
import logging
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response

from mlops_cli.config import Settings, load_settings
from mlops_cli.ops.docs import offline_docs
from serving.events import EventRecorder
from serving.metrics import ApiMetrics, MetricsMiddleware
from serving.model_server import LoadedModel, ModelHolder
from serving.monitor import DriftWatcher
from serving.predict import PredictEndpoint, predict_doc_route, predict_route
from serving.routes import health_router, model_router
from serving.schemas import Listing

log = logging.getLogger("mlops.serving")


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
    # /predict first: the hot route is matched first
    endpoint = PredictEndpoint(settings.api_max_batch, settings.api_max_body_bytes, metrics, settings.api_body_timeout)
    app.router.routes.insert(0, predict_route(endpoint))
    documented = predict_doc_route(settings.api_max_batch)
    app.include_router(model_router(settings))
    app.include_router(health_router())
    offline_docs(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=[documented, *app.routes]
            )
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
