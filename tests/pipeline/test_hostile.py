"""A hostile data API: values that are not what the contract says are data problems — counted,
dropped or refused in one line — never crashes, never a round stuck for good, never NaN scores."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.conftest import ROW, good_rows

pytestmark = pytest.mark.slow


def hostile_settings(home: Path, url: str, **extra: object):
    from mlops_cli.config import load_settings

    return load_settings(
        data_source=url, data_retries=0, data_backoff=0, data_poll_interval=0.1, data_max_wait=0, **extra
    )


def answers(*batches: list[dict] | str) -> list[tuple[int, str, float]]:
    """A script for ScriptedAPI: one answer per batch (a list of rows, or a raw JSON text), then the end."""
    script = []
    for number, rows in enumerate(batches):
        data = rows if isinstance(rows, str) else json.dumps(rows)
        script.append((200, f'{{"group_number": 1, "batch_number": {number}, "data": {data}}}', 0))
    return [*script, (400, '{"detail": "Ya se recolectó toda la información mínima necesaria"}', 0)]


def varied_rows(n: int, start: int = 0) -> list[dict]:
    """Listings a linear model can fit (price follows size, with noise)."""
    return [
        {**row, "price": 100_000 + 150 * row["house_size"] + 7_919 * (i % 13), "bed": 1 + i % 5}
        for i, row in enumerate(good_rows(n, start))
    ]


@pytest.mark.parametrize(
    "hostile",
    [
        {"city": {"a": 1}},
        {"city": ["Austin", "Dallas"]},
        {"state": {"nested": ["x"]}},
        {"zip_code": [78701]},
        {"prev_sold_date": {"y": 2020}},
        {"street": {"n": 1}},
    ],
    ids=["city-object", "city-list", "state-object", "zip-list", "date-object", "street-object"],
)
def test_a_text_field_that_is_not_text_is_a_counted_rejection(home: Path, scripted, hostile: dict) -> None:
    from mlops_cli.pipeline.train import run
    from mlops_cli.store.db import engine_for
    from mlops_cli.store.rounds import batch_log_rows

    bad = {**ROW, "price": 250_000, "house_size": 1_234, **hostile}
    api = scripted(answers(varied_rows(60), [*varied_rows(30, start=100), bad]))
    settings = hostile_settings(home, api.url)
    report = run(settings, reload_api=False, wait=False)
    assert [b.state for b in report.batches] == ["done", "done"]
    rounds = batch_log_rows(engine_for(settings))
    if set(hostile) & {"city", "state", "zip_code"}:  # a feature: the row cannot be used
        assert rounds[1]["dropped"].get("not_text") == 1
        assert rounds[1]["rows_kept"] == 30
    else:  # a leakage column the model never reads: the row is kept, the value stored as text
        assert rounds[1]["rows_kept"] == 31


@pytest.mark.parametrize("price", ["Infinity", "-Infinity", "1e308", "NaN", "1e12"])
def test_an_absurd_price_in_a_small_batch_is_dropped_and_never_poisons_a_score(
    home: Path, scripted, price: str
) -> None:
    """One absurd price in a batch under 20 rows (too few for the outlier rule): dropped by the
    absolute limits, so every later retrain scores a finite RMSE and can still be promoted."""
    from mlops_cli.pipeline.train import run
    from mlops_cli.store.db import engine_for
    from mlops_cli.store.rounds import batch_log_rows

    small = varied_rows(12, start=100)
    body = json.dumps([*small, {**ROW, "house_size": 1_777, "price": "PRICE"}]).replace('"PRICE"', price)
    api = scripted(answers(varied_rows(60), body, varied_rows(200, start=300)))
    settings = hostile_settings(home, api.url, retrain_min_new_share=0.01)
    report = run(settings, reload_api=False, wait=False)
    assert [b.state for b in report.batches] == ["done", "done", "done"]
    rounds = batch_log_rows(engine_for(settings))
    assert rounds[1]["rows_kept"] == 12
    assert rounds[1]["dropped"] in ({"implausible_price": 1}, {"missing_price": 1}, {"non_positive_price": 1})
    scores = [r["rmse"] for r in rounds if r["rmse"] is not None]
    assert scores and all(math.isfinite(s) for s in scores)
    assert rounds[2]["promoted"] is not None


def test_a_candidate_whose_score_is_not_finite_is_never_promoted(home: Path, monkeypatch) -> None:
    """Whatever the data, a NaN or infinite RMSE can neither win nor lose a comparison silently:
    a non-finite candidate is kept out (and says why), a non-finite champion is replaced."""

    from mlops_cli.config import load_settings
    from mlops_cli.pipeline import promote
    from mlops_cli.pipeline.scores import current_test_set
    from mlops_cli.pipeline.train import run
    from mlops_cli.store.db import engine_for

    settings = load_settings(generator_batches=1, generator_batch_rows=200)
    run(settings, reload_api=False)
    from mlops_cli.registry.light import LightRegistry
    from tests.conftest import train_extra_version

    candidate = train_extra_version(settings)
    client = LightRegistry(settings)
    test = current_test_set(engine_for(settings))
    scores = {1: 100.0, candidate: float("nan")}
    every = {"mae": 1.0, "mape": 0.1, "r2": 0.5}
    monkeypatch.setattr(promote, "cached_metrics", lambda s, e, version, run_id, t: {**every, "rmse": scores[version]})
    result = promote.compare(client, settings, candidate, test)
    assert not result.promoted and "not a finite number" in result.reason
    scores.update({1: float("inf"), candidate: 50.0})
    result = promote.compare(client, settings, candidate, test)
    assert result.promoted and "not a finite number" in result.reason


def test_a_gap_longer_than_the_limit_is_an_error_not_a_million_rounds(home: Path, scripted) -> None:
    from mlops_cli.errors import SourceError
    from mlops_cli.pipeline.train import run
    from mlops_cli.store.db import engine_for
    from mlops_cli.store.rounds import batch_log_rows

    script = answers(varied_rows(60))
    script.insert(1, (200, json.dumps({"batch_number": 1_000_003, "data": varied_rows(30, start=100)}), 0))
    api = scripted(script)
    settings = hostile_settings(home, api.url, data_max_skip=1000)
    with pytest.raises(SourceError, match=r"jumped from batch 0 to batch 1000003.*MLOPS_DATA_MAX_SKIP"):
        run(settings, reload_api=False, wait=False)
    rounds = batch_log_rows(engine_for(settings))
    assert [(r["batch"], r["state"]) for r in rounds] == [(0, "done")]
