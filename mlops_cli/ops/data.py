"""`mlops data serve`: any data source behind the course's data API contract.

``GET /data?group_number=G[&day=D]`` answers the current batch of that group (and day):
200 with ``batch_number`` and ``data``; 400 once every batch has been served, or for a group
outside 1..``groups``. ``GET /restart_data_generation`` starts the group again at its first batch;
``/health`` and ``/metrics`` as usual.

Like the course's server, a batch can stay current for a *release window*: every call inside it
answers the same batch number again (the whole batch, or a fresh random sample of it), and the
next batch is released by the first call after the window. With no window (the default) every
call moves on. Cursors are kept in a file when one is given, so a restart of the server does
not start its clients over.
"""

import json
import math
import random
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from pydantic import BaseModel

from mlops_cli.config import Settings
from mlops_cli.errors import MlopsError, SourceExhausted
from mlops_cli.ops.docs import offline_docs
from mlops_cli.pipeline.sources import DataSource, IndexedSource

# No `from __future__ import annotations` here: FastAPI reads these annotations at runtime.
Day = Annotated[str | None, Query(max_length=32, description="day, e.g. Tuesday (optional)")]
DAYS = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}


def day_label(day: str | None) -> str:
    """A bounded metrics label: a weekday, 'none' or 'other' (never the client's free text)."""
    if day is None:
        return "none"
    return day.lower() if day.lower() in DAYS else "other"


class DataAnswer(BaseModel):
    """One answer of ``GET /data`` (its documented shape)."""

    group_number: int
    day: str | None
    batch_number: int
    data: list[dict[str, Any]]


class Cursors:
    """Per (group, day): the index of the current batch and when it was released."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.state: dict[str, list[float]] = {}
        if path is not None and path.exists():
            try:
                self.state = {k: [int(v[0]), float(v[1])] for k, v in json.loads(path.read_text()).items()}
            except (ValueError, TypeError, KeyError, IndexError):
                self.state = {}  # an unreadable cursor file starts every group over

    def get(self, key: str) -> tuple[int, float]:
        index, since = self.state.get(key, [-1, 0.0])
        return int(index), since

    def set(self, key: str, index: int, since: float) -> None:
        self.state[key] = [index, since]
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_suffix(".tmp")
            partial.write_text(json.dumps(self.state))
            partial.replace(self.path)


def create_app(
    source: DataSource,
    *,
    groups: int = 10,
    release_window: float = 0.0,
    sample_share: float = 1.0,
    cursor_file: Path | None = None,
) -> FastAPI:
    app = FastAPI(
        title="mlops data API",
        version="1",
        description="Batches of realtor listings.",
        docs_url=None,  # served by offline_docs: no CDN
        redoc_url=None,
    )
    offline_docs(app)
    registry = CollectorRegistry()
    labels = ["group_number", "day"]
    served = Counter("data_api_batches_served", "Answers with a batch", labels, registry=registry)
    rows_served = Counter("data_api_rows_served", "Rows handed out", labels, registry=registry)
    exhausted = Counter("data_api_exhausted", "Requests after the last batch", labels, registry=registry)
    restarts = Counter("data_api_restarts", "Restarts of data generation", labels, registry=registry)
    refused = Counter("data_api_refused", "Requests for an unknown group", registry=registry)
    failures = Counter("data_api_source_failures", "Failures of the underlying source", registry=registry)
    # 1..groups in the schema, checked by the handlers: a group outside is the course server's 400
    # ("invalid group_number"), not FastAPI's 422
    Group = Annotated[  # noqa: N806 (a type, built per app: its bounds are this app's)
        int, Query(description=f"group number, 1..{groups}", json_schema_extra={"minimum": 1, "maximum": groups})
    ]
    cursors = Cursors(cursor_file)
    lock = threading.Lock()
    indexed = isinstance(source, IndexedSource)
    rows_of = lru_cache(maxsize=2)(source.rows) if indexed else None
    json_of = lru_cache(maxsize=2)(source.batch_json) if indexed else None

    def check_group(group_number: int) -> None:
        if not 1 <= group_number <= groups:
            refused.inc()
            raise HTTPException(400, detail=f"invalid group_number {group_number}: groups are 1-{groups}")

    def current_batch(key: str) -> int:
        """The batch this call answers: the current one inside its window, else the next one."""
        assert isinstance(source, IndexedSource)
        numbers = source.numbers()
        index, since = cursors.get(key)
        if index < 0 or time.time() - since >= release_window:
            if index + 1 >= len(numbers):
                raise SourceExhausted(f"{len(numbers)} batches")
            index, since = index + 1, time.time()
            cursors.set(key, index, since)
        return numbers[index]

    # documented by DataAnswer, never validated against it: a 200k-row answer would be checked value by value
    @app.get(
        "/data",
        response_model=None,
        responses={
            200: {"model": DataAnswer, "description": "the current batch"},
            400: {"description": "a group outside 1..N, or every batch has been served to this group"},
            502: {"description": "the underlying source failed"},
        },
    )
    def data(group_number: Group, day: Day = None) -> Any:
        check_group(group_number)
        metric = (str(group_number), day_label(day))
        whole: tuple[bytes, int] | None = None
        with lock:  # one cursor move per request, in order, even under concurrent clients
            try:
                if rows_of is not None and json_of is not None:
                    number = current_batch(f"{group_number}:{day or ''}")
                    if sample_share < 1:
                        rows = rows_of(number)
                    else:
                        whole = json_of(number)
                else:
                    answer = source.fetch(None)
                    number, rows = answer.number, answer.rows
            except SourceExhausted as done:
                exhausted.labels(*metric).inc()
                raise HTTPException(
                    400,
                    detail=f"every batch has been served to group {group_number} ({done.detail}); "
                    "GET /restart_data_generation starts again",
                ) from None
            except MlopsError as exc:
                failures.inc()
                raise HTTPException(502, detail=str(exc)) from None
        served.labels(*metric).inc()
        if whole is not None:
            # the whole batch, serialised once from its frame: a 200k-row answer would otherwise
            # become Python objects, then FastAPI's encoding of every value, then JSON (3x slower)
            rows_json, count = whole
            rows_served.labels(*metric).inc(count)
            head = json.dumps({"group_number": group_number, "day": day, "batch_number": number})
            return Response(head[:-1].encode() + b', "data": ' + rows_json + b"}", media_type="application/json")
        if sample_share < 1 and rows:
            rows = random.sample(rows, max(1, math.ceil(len(rows) * sample_share)))
        rows_served.labels(*metric).inc(len(rows))
        return {"group_number": group_number, "day": day, "batch_number": number, "data": rows}

    @app.get("/restart_data_generation", responses={400: {"description": "a group outside 1..N"}})
    def restart(group_number: Group, day: Day = None) -> dict[str, Any]:
        check_group(group_number)
        with lock:
            cursors.set(f"{group_number}:{day or ''}", -1, 0.0)
            if rows_of is None:
                source.restart()
        restarts.labels(str(group_number), day_label(day)).inc()
        return {"ok": True, "group_number": group_number, "day": day, "next_batch": 0}

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "source": source.name}

    @app.get("/metrics", include_in_schema=False)  # Prometheus' text format, as the inference API's
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def serve(settings: Settings, announce: Callable[[str], None] | None = None) -> None:
    """`mlops data serve`: the settings' source on their host and port until stopped."""
    import uvicorn

    from mlops_cli.ops.netutil import ensure_port_free
    from mlops_cli.pipeline.sources import open_source

    source = open_source(settings)
    host, port = settings.data_api_host, settings.data_api_port
    ensure_port_free(host, port, "data API", "MLOPS_DATA_API_PORT or --port")
    app = create_app(
        source,
        groups=settings.data_groups,
        release_window=settings.data_api_release_window,
        sample_share=settings.data_api_sample_share,
        cursor_file=settings.ensure_home() / "data_api_cursors.json",
    )
    if announce:
        window = f", a batch every {settings.data_api_release_window:g}s" if settings.data_api_release_window else ""
        announce(
            f"serving {source.name} on http://{host}:{port}{window} "
            "(each group goes on where it stopped; `mlops data reset` starts it over)"
        )
    uvicorn.run(app, host=host, port=port, log_level="warning")


def reset(settings: Settings, url: str | None = None) -> dict[str, Any]:
    """`mlops data reset`: ask a data API (``url``, the source if it is one, else ours) to start over."""
    from mlops_cli.pipeline.sources import HttpSource

    if url is None:
        is_api = settings.data_source.startswith("http")
        url = settings.data_source if is_api else f"http://{settings.data_api_host}:{settings.data_api_port}"
    HttpSource(url, settings).restart()
    return {"url": url, "group_number": settings.data_group, "day": settings.data_day, "next_batch": 0}
