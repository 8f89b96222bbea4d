"""Served drift: the listings the API answered against the served version's training rows."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from mlops_cli.config import load_settings
from mlops_cli.pipeline.decide import DriftReference
from mlops_cli.pipeline.monitor import MIN_LISTINGS, served_drift
from mlops_cli.store.db import engine_for
from mlops_cli.store.events import write_events
from mlops_cli.store.tables import now
from tests.conftest import event_row


def _training(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "price": rng.lognormal(12.5, 0.4, n),
            "house_size": rng.normal(1800, 300, n),
            "bed": rng.integers(1, 6, n).astype(float),
            "bath": rng.integers(1, 4, n).astype(float),
            "acre_lot": rng.uniform(0.1, 1.0, n),
            "state": rng.choice(["Texas", "Ohio"], n),
        }
    )


def _answered(engine, rows: pd.DataFrame, version: int, unseen: list[str] | None = None) -> None:  # noqa: ANN001
    at = now()
    events = [
        event_row(
            f"r{i}",
            at,
            version=version,
            listing=json.dumps({k: row[k] for k in ("house_size", "bed", "bath", "acre_lot", "state")}),
            prediction=float(row["price"]),
            unseen=json.dumps(unseen or []),
        )
        for i, row in enumerate(rows.to_dict("records"))
    ]
    write_events(engine, events)


def test_served_listings_like_the_training_rows_do_not_drift_and_shifted_ones_do(home: Path) -> None:
    engine = engine_for(load_settings())
    training = _training()
    reference = DriftReference.of(training)
    since = now() - timedelta(minutes=1)
    _answered(engine, _training(300).sample(frac=1.0, random_state=1), version=1)
    alike = served_drift(engine, reference, since=since, version=1)
    assert alike.listings == 300 and alike.note is None
    assert max(alike.drift.values()) < 0.1, alike.drift
    bigger = _training(300).assign(house_size=lambda f: f["house_size"] * 3, state="Ohio")
    _answered(engine, bigger, version=2, unseen=["city"])
    shifted = served_drift(engine, reference, since=since, version=2)
    assert shifted.drift["house_size"] > 1 and shifted.drift["state"] > 0.4 and shifted.drift["bed"] < 0.1
    assert shifted.unseen_share == {"any": 1.0, "city": 1.0, "state": 0.0, "zip_code": 0.0}
    assert set(shifted.predictions) == {"0.1", "0.5", "0.9"}


def test_too_few_listings_or_no_reference_is_said_not_guessed(home: Path) -> None:
    engine = engine_for(load_settings())
    since = now() - timedelta(minutes=1)
    assert served_drift(engine, None, since=since).note == "no answered listing in the window"
    _answered(engine, _training(MIN_LISTINGS - 1), version=1)
    few = served_drift(engine, DriftReference.of(_training()), since=since, version=1)
    assert few.drift == {} and f"drift needs {MIN_LISTINGS}" in few.note
    _answered(engine, _training(MIN_LISTINGS), version=1)
    unknown = served_drift(engine, None, since=since, version=1)
    assert unknown.drift == {} and "training rows are not in this data DB" in unknown.note
