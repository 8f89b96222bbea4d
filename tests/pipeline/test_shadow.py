"""Shadow evidence: two versions priced side by side on live requests, read from the events."""

from __future__ import annotations

from pathlib import Path

from mlops_cli.config import load_settings
from mlops_cli.pipeline.shadow import shadow_evidence
from mlops_cli.store.db import engine_for
from mlops_cli.store.events import write_events
from mlops_cli.store.tables import now
from tests.conftest import event_row


def test_disagreement_share_and_times_of_the_pairs_either_way_round(home: Path) -> None:
    engine = engine_for(load_settings())
    assert shadow_evidence(engine, 1, 2) is None, "never side by side: no evidence"
    at = now()
    write_events(
        engine,
        [
            # request a: two listings; v1 served, v2 in shadow (5 ms)
            event_row("a", at, version=1, item=0, prediction=100_000.0, shadow=(2, 105_000.0, 5.0)),
            event_row("a", at, version=1, item=1, prediction=200_000.0, shadow=(2, 250_000.0, 5.0)),
            event_row("b", at, version=1, item=0, prediction=300_000.0, shadow=(2, 300_000.0, 7.0)),
            event_row("c", at, version=1, item=0, prediction=1.0),  # not shadowed: not evidence
            event_row("d", at, version=3, item=0, prediction=1.0, shadow=(2, 9.0, 1.0)),  # another pair
        ],
    )
    evidence = shadow_evidence(engine, 2, 1)  # asked the other way round: found as served 1, shadow 2
    assert evidence == {
        "served": 1,
        "shadow": 2,
        "requests": 2,
        "listings": 3,
        "mean_abs_disagreement": round((5_000 + 50_000 + 0) / 3, 2),
        "median_abs_disagreement": 5_000.0,
        "share_over_10pct": round(1 / 3, 4),
        "served_request_ms_p50": 1.0,
        "shadow_pricing_ms_p50": 6.0,
    }
