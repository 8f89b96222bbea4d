"""`mlops data serve`: any data source behind the course's data API contract.

``GET /data?group_number=G&day=D`` hands out the next batch of that group and day
(200 with ``batch_number`` and ``data``; 400 once every batch has been served),
``GET /restart_data_generation`` starts again at batch 0, plus ``/health`` and ``/metrics``.
"""

import threading
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

from mlops_cli.errors import MlopsError, SourceExhausted
from mlops_cli.sources import DataSource, IndexedSource

# No `from __future__ import annotations` here: FastAPI reads these annotations at runtime.
Group = Annotated[int, Query(ge=0, le=100_000, description="group number")]
Day = Annotated[str, Query(min_length=1, max_length=32, description="day, e.g. Tuesday")]


def create_app(source: DataSource) -> FastAPI:

    app = FastAPI(title="mlops data API", version="1", description="Batches of realtor listings.")
    registry = CollectorRegistry()
    served = Counter("data_api_batches_served", "Batches handed out", ["group_number", "day"], registry=registry)
    rows_served = Counter("data_api_rows_served", "Rows handed out", ["group_number", "day"], registry=registry)
    exhausted = Counter(
        "data_api_exhausted", "Requests after the last batch", ["group_number", "day"], registry=registry
    )
    restarts = Counter("data_api_restarts", "Restarts of data generation", ["group_number", "day"], registry=registry)
    failures = Counter("data_api_source_failures", "Failures of the underlying source", registry=registry)
    cursors: dict[tuple[int, str], int] = {}
    lock = threading.Lock()

    @app.get("/data")
    def data(group_number: Group, day: Day) -> dict[str, Any]:
        key = (group_number, day)
        labels = (str(group_number), day)
        with lock:  # one batch per request, in order, even under concurrent clients
            try:
                if isinstance(source, IndexedSource):
                    batch = source.fetch(cursors.get(key, 0))
                    cursors[key] = batch.number + 1
                else:
                    batch = source.fetch(None)
            except SourceExhausted as done:
                exhausted.labels(*labels).inc()
                raise HTTPException(
                    400,
                    detail=f"No more data for group {group_number} on {day}: {done.detail}. "
                    "Call /restart_data_generation to start again.",
                ) from None
            except MlopsError as exc:
                failures.inc()
                raise HTTPException(502, detail=str(exc)) from None
        served.labels(*labels).inc()
        rows_served.labels(*labels).inc(len(batch.rows))
        return {"group_number": group_number, "day": day, "batch_number": batch.number, "data": batch.rows}

    @app.get("/restart_data_generation")
    def restart(group_number: Group, day: Day) -> dict[str, Any]:
        with lock:
            cursors[(group_number, day)] = 0
            if not isinstance(source, IndexedSource):
                source.restart()
        restarts.labels(str(group_number), day).inc()
        return {"ok": True, "group_number": group_number, "day": day, "next_batch": 0}

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "source": source.name}

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
