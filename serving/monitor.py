"""The API's watch over its own traffic: every ``MLOPS_API_DRIFT_INTERVAL`` seconds, the listings
it answered in the last ``MLOPS_API_DRIFT_WINDOW`` minutes (read back from its inference events,
so the request path pays nothing) are compared with the served version's training rows, and the
result is exported on /metrics (``mlops_served_drift{feature}``, ``mlops_served_unseen_share``,
``mlops_served_prediction{quantile}``)."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from serving.event_writer import failure_kind

if TYPE_CHECKING:
    from mlops_cli.config import Settings
    from serving.model_server import ModelHolder

log = logging.getLogger("mlops.serving")


class DriftWatcher:
    def __init__(self, settings: Settings, holder: ModelHolder, metrics: Any) -> None:
        self.settings = settings
        self.holder = holder
        self.metrics = metrics
        self._references: dict[int, Any] = {}  # version → its training summary (None: not in this data DB)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing: str | None = None
        self.last: Any = None  # the last report (tests, /metrics)

    def check(self, since: datetime | None = None) -> Any:
        """One comparison of the listings answered since ``since`` (default: the window) with the
        served version's training rows; the gauges follow."""
        from mlops_cli.pipeline.monitor import served_drift, training_reference
        from mlops_cli.store.db import engine_for

        model = self.holder.current
        if model is None:
            return None
        engine = engine_for(self.settings)
        if model.version not in self._references:
            self._references[model.version] = training_reference(engine, model.trained_round)
        since = since or datetime.now(UTC) - timedelta(minutes=self.settings.api_drift_window)
        report = served_drift(engine, self._references[model.version], since=since, version=model.version)
        self.metrics.served(report)
        self.last = report
        return report

    def _run(self) -> None:
        while not self._stop.wait(self.settings.api_drift_interval):
            try:
                self.check()
            except Exception as exc:  # the data DB is away: the gauges keep their last values
                reason = failure_kind(exc)
                if reason != self._failing:
                    log.warning(
                        "served-traffic drift not measured (%s); trying again in %.0f s",
                        reason,
                        self.settings.api_drift_interval,
                    )
                self._failing = reason
                continue
            self._failing = None

    def start(self) -> None:
        if self._thread is None and self.settings.api_drift_interval > 0:
            self._thread = threading.Thread(target=self._run, name="mlops-drift", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
