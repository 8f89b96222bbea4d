"""Prometheus metrics of the inference API, recorded by a pure ASGI middleware.

A pure ASGI middleware, not Starlette's BaseHTTPMiddleware: the latter wraps every
response in a stream and task group, which cut throughput by about 3x when measured.
"""

import itertools
import re
import secrets
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.requests import ClientDisconnect

from mlops_cli.schema import REQUEST_ID as REQUEST_ID_PATTERN
from serving.events import PredictEvent

# Paths we label as themselves; anything else is "other" so that scanners cannot blow up cardinality.
KNOWN_PATHS = {
    "/predict",
    "/model",
    "/load_model",
    "/health/live",
    "/health/ready",
    "/metrics",
    "/docs",
    "/openapi.json",
}
KNOWN_METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"}
DROP_REASONS = ("queue_full", "db_error", "writer_died", "shutdown")
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mlops_api_requests", "HTTP requests", ["method", "path", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "mlops_api_request_duration_seconds",
            "Request latency",
            ["method", "path"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.client_disconnects = Counter(
            "mlops_api_client_disconnects",
            "Requests whose client hung up before its body arrived (not server errors)",
            registry=self.registry,
        )
        self.predictions = Counter("mlops_api_predictions", "Listings predicted", registry=self.registry)
        self.model_info = Gauge(
            "mlops_api_model_info",
            "The model being served (value 1)",
            ["name", "version", "alias", "path"],
            registry=self.registry,
        )
        self.model_version = Gauge("mlops_api_model_version", "Version being served", ["name"], registry=self.registry)
        self.reloads = Counter("mlops_api_model_reloads", "Model loads by result", ["result"], registry=self.registry)
        for result in ("success", "failure"):
            self.reloads.labels(result)
        self.refused = Counter(
            "mlops_api_model_refused",
            "Versions refused: not signed by mlops training, or not in the sklearn flavour",
            registry=self.registry,
        )

        # the champion's error on the newest batch it was checked on, before that batch trained
        # anything (the loop's "how is production doing" series; tags of the champion version)
        self.champion_batch = Gauge(
            "mlops_champion_batch_checked",
            "Last batch the champion was checked on",
            ["version"],
            registry=self.registry,
        )
        self.champion_batch_mae = Gauge(
            "mlops_champion_batch_mae", "The champion's MAE on that batch's rows", ["version"], registry=self.registry
        )
        self.champion_batch_change = Gauge(
            "mlops_champion_batch_mae_change",
            "The champion's MAE on that batch against its own test MAE (0.1: 10 % worse)",
            ["version"],
            registry=self.registry,
        )

        # the inference events (serving/events.py), counted in listings: written + dropped +
        # sampled out = every listing of every recorded request
        self.events_written = Counter(
            "mlops_api_events_written", "Inference events written to the data DB", registry=self.registry
        )
        self.events_dropped = Counter(
            "mlops_api_events_dropped",
            "Inference events lost: queue full, data DB failing, writer process ended with them, "
            "or still queued at a shutdown that timed out",
            ["reason"],
            registry=self.registry,
        )
        for reason in DROP_REASONS:
            self.events_dropped.labels(reason)
        self.events_sampled_out = Counter(
            "mlops_api_events_sampled_out",
            "Answered requests' events not recorded (MLOPS_API_EVENTS_SAMPLE below 1)",
            registry=self.registry,
        )
        self.events_writer_cpu = Counter(
            "mlops_api_events_writer_cpu_seconds",
            "CPU time of the event writer: its thread in the API (shadow priced, frames sent) "
            "and its process (rows built, written)",
            registry=self.registry,
        )
        self.events_queue = Gauge(
            "mlops_api_events_queue_depth", "Inference events waiting for the writer", registry=self.registry
        )
        self.events_lag = Gauge(
            "mlops_api_events_writer_lag_seconds",
            "Age of the oldest event of the writer's last successful write",
            registry=self.registry,
        )

        self.shadow_listings = Counter(
            "mlops_api_shadow_listings", "Listings also priced by the shadow model", registry=self.registry
        )
        self.shadow_errors = Counter(
            "mlops_api_shadow_errors", "Requests the shadow model failed to price", registry=self.registry
        )
        # served traffic against the served version's training rows (serving/monitor.py)
        self.served_listings = Gauge(
            "mlops_served_listings", "Answered listings in the drift window", registry=self.registry
        )
        self.served_drift = Gauge(
            "mlops_served_drift",
            "Served listings against the training rows: PSI of each number and of the predictions "
            "(against training prices), total-variation distance of the state mix",
            ["feature"],
            registry=self.registry,
        )
        self.served_unseen = Gauge(
            "mlops_served_unseen_share",
            "Share of answered listings with a value never seen in training (field 'any' or one field)",
            ["field"],
            registry=self.registry,
        )
        self.served_prediction = Gauge(
            "mlops_served_prediction", "Quantiles of the predicted prices", ["quantile"], registry=self.registry
        )

    def served(self, report: Any) -> None:
        """From a ServedDrift report: a series per feature it could measure, none for the others."""
        self.served_listings.set(report.listings)
        for gauge, values in (
            (self.served_drift, report.drift),
            (self.served_unseen, report.unseen_share),
            (self.served_prediction, report.predictions),
        ):
            gauge.clear()
            for label, value in values.items():
                gauge.labels(label).set(value)

    def champion_checked(self, version: int, tags: dict[str, str]) -> None:
        """From the champion version's tags (read by the API's alias watcher)."""
        for gauge, key in (
            (self.champion_batch, "batch_checked"),
            (self.champion_batch_mae, "batch_mae"),
            (self.champion_batch_change, "batch_mae_change"),
        ):
            gauge.clear()
            try:
                gauge.labels(str(version)).set(float(tags[key]))
            except (KeyError, ValueError):
                pass  # not checked on a batch yet (or a foreign tag): no series

    def model_loaded(self, result: str, model: Any) -> None:
        if result == "refused":
            self.refused.inc()
            result = "failure"
        self.reloads.labels(result).inc()
        if model is not None:
            self.model_info.clear()
            self.model_info.labels(model.name, str(model.version), model.alias or "", model.kind).set(1)
            self.model_version.labels(model.name).set(model.version)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    content_type = CONTENT_TYPE_LATEST


REQUEST_ID = re.compile(REQUEST_ID_PATTERN.encode())  # a caller's X-Request-ID we keep (else we make one)
ERROR_BODY_BYTES = 4096  # what a refused request's event keeps of the answer


class MetricsMiddleware:
    """Counts and times every request; on /predict also gives the request its id (the caller's
    X-Request-ID when it is a sane one) and hands its event to the recorder, when there is one."""

    def __init__(self, app: Any, metrics: ApiMetrics, events: Any = None) -> None:
        self.app = app
        self.metrics = metrics
        self.events = events
        self._ids = itertools.count(1)
        self._id_prefix = secrets.token_hex(6) + "-"  # one per process: ids stay unique across restarts
        # Labelled children, looked up once per label set instead of once per request.
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[tuple[str, str], Any] = {}

    def _record(self, method: str, path: str, status: int, seconds: float) -> None:
        timer = self._timers.get((method, path))
        if timer is None:
            timer = self._timers[(method, path)] = self.metrics.latency.labels(method, path)
        counter = self._counters.get((method, path, status))
        if counter is None:
            counter = self._counters[(method, path, status)] = self.metrics.requests.labels(method, path, str(status))
        timer.observe(seconds)
        counter.inc()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/predict":
            await self._predict(scope, receive, send)
            return
        path = scope["path"] if scope["path"] in KNOWN_PATHS else "other"
        method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
        status = 500
        start = time.perf_counter()

        async def send_and_record(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        except ClientDisconnect:  # the client hung up before its body arrived: nobody to answer
            self.metrics.client_disconnects.inc()
            return
        except BaseException:
            self._record(method, path, 500, time.perf_counter() - start)
            raise
        self._record(method, path, status, time.perf_counter() - start)

    async def _predict(self, scope: dict, receive: Any, send: Any) -> None:
        method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value if REQUEST_ID.fullmatch(value) else None
                break
        if request_id is None:
            request_id = f"{self._id_prefix}{next(self._ids):x}".encode()
        id_header = (b"x-request-id", request_id)
        event = None
        if self.events is not None:
            event = scope["mlops.event"] = PredictEvent(request_id.decode(), time.time())
        status, error = 500, b""
        start = time.perf_counter()

        async def send_and_record(message: dict) -> None:
            nonlocal status, error
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), id_header]}
            elif status >= 400 and len(error) < ERROR_BODY_BYTES:
                error += message.get("body", b"")[:ERROR_BODY_BYTES]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        except ClientDisconnect:  # the client hung up before its body arrived: nobody to answer
            self.metrics.client_disconnects.inc()
            if event is not None:
                self.events.record(
                    event, 499, time.perf_counter() - start, b"the client hung up before the body arrived"
                )
            return
        except BaseException:
            seconds = time.perf_counter() - start
            self._record(method, "/predict", 500, seconds)
            if event is not None:
                self.events.record(event, 500, seconds, b"internal error (see the API's log)")
            raise
        seconds = time.perf_counter() - start
        self._record(method, "/predict", status, seconds)
        if event is not None:
            self.events.record(event, status, seconds, error)
