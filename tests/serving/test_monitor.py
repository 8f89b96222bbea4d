"""Served drift: the listings the API answered, compared with the champion's training rows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from serving.app import create_app
from serving.model_server import wait_until_loaded
from tests.conftest import serving_settings
from tests.serving.conftest import metric, training_listings


def test_served_drift_moves_when_the_served_listings_shift(registry_home: Path) -> None:
    """Listings like the training rows read as no drift; the same listings three times as large
    read as drift of house_size and of the predictions, on /metrics and through `mlops events
    drift`'s function."""
    settings = serving_settings(registry_home, api_drift_interval=0, api_events_flush_interval=0.1)
    app = create_app(settings)
    listings = training_listings(registry_home, 300)
    larger = [{**row, "house_size": min(3 * (row["house_size"] or 1500), 49_000)} for row in listings]

    def served(rows: list[dict]) -> dict[str, float]:
        start = datetime.now(UTC)
        for chunk in range(0, len(rows), 50):
            assert client.post("/predict", json=rows[chunk : chunk + 50]).status_code == 200
        app.state.events.flush()
        report = app.state.drift.check(since=start)
        assert report.listings == len(rows) and report.note is None, report
        return {f: metric(app, "mlops_served_drift", feature=f) for f in ("house_size", "prediction", "bed", "state")}

    with TestClient(app) as client:
        assert wait_until_loaded(app.state.holder, 60) is not None
        alike, shifted = served(listings), served(larger)
    threshold = settings.drift_threshold
    assert max(alike.values()) < threshold, alike
    assert shifted["house_size"] > 5 * threshold and shifted["prediction"] > threshold, shifted
    assert shifted["bed"] == alike["bed"] and shifted["state"] == alike["state"], "only what changed drifts"
    assert metric(app, "mlops_served_listings") == 300
    assert metric(app, "mlops_served_unseen_share", field="any") == 0, "training places are all known"


def test_the_api_measures_served_drift_by_itself(registry_home: Path, tmp_path: Path) -> None:
    settings = serving_settings(registry_home, api_drift_interval=0.2, api_events_flush_interval=0.1)
    app = create_app(settings)
    with TestClient(app) as client:
        assert wait_until_loaded(app.state.holder, 60) is not None
        assert client.post("/predict", json=training_listings(registry_home, 60)).status_code == 200
        import time

        deadline = time.monotonic() + 30
        while not metric(app, "mlops_served_listings") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert metric(app, "mlops_served_listings") >= 60
        assert app.state.drift.last.version == app.state.holder.current.version
