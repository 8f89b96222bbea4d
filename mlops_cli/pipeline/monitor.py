"""Served traffic against the model's training data: the listings the inference API answered
(its inference events) compared with the served version's training rows by the statistics the
retraining decision uses (PSI for the numbers, total-variation distance for the state mix), the
predictions against the training prices, and the share of listings with values never seen."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mlops_cli.pipeline.decide import DRIFT_CATEGORIES, DRIFT_NUMBERS, DriftReference, psi_against, share_distance

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

# Fewer listings than this give a PSI that is mostly noise: no drift is reported on them.
MIN_LISTINGS = 50
SERVED_NUMBERS = [name for name in DRIFT_NUMBERS if name != "price"]  # a listing to price has none
QUANTILES = (0.1, 0.5, 0.9)


@dataclass(kw_only=True)
class ServedDrift:
    """The served traffic of a window, against the training rows of the version that served it."""

    version: int | None
    since: str
    listings: int  # answered listings in the window (the newest ``limit`` at most)
    drift: dict[str, float] = field(default_factory=dict)  # feature → statistic; "prediction" vs training prices
    unseen_share: dict[str, float] = field(default_factory=dict)  # "any" and each text field
    predictions: dict[str, float] = field(default_factory=dict)  # "0.1", "0.5", "0.9" quantiles
    note: str | None = None  # why there is no drift (too few listings, no training summary)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def training_reference(engine: Engine, trained_round: int | None) -> DriftReference | None:
    """The training rows of the version trained in ``trained_round``, summarised as the
    retraining decision summarises them (stored then; computed here otherwise, not stored)."""
    from mlops_cli.pipeline.decide import DRIFT_COLUMNS
    from mlops_cli.store import listings, meta

    if trained_round is None:
        return None
    with engine.connect() as conn:
        stored = meta.drift_reference(conn, trained_round)
        reference = None if stored is None else DriftReference.from_json(stored)
        if reference is None:
            rows = listings.training_rows(conn, trained_round, columns=DRIFT_COLUMNS)
            reference = DriftReference.of(rows) if len(rows) else None
    return reference


def served_drift(
    engine: Engine,
    reference: DriftReference | None,
    *,
    since: datetime,
    version: int | None = None,
    limit: int = 10_000,
) -> ServedDrift:
    """Drift of the listings answered since ``since`` (by ``version``) against ``reference``."""
    import numpy as np
    import pandas as pd

    from mlops_cli.schema import name_text
    from mlops_cli.store.events import answered_listings

    rows = answered_listings(engine, since=since, version=version, limit=limit)
    report = ServedDrift(version=version, since=since.isoformat(timespec="seconds"), listings=len(rows))
    if not rows:
        report.note = "no answered listing in the window"
        return report
    parsed = [_listing(text) for text, _, _ in rows]  # the newest 10,000: PSI needs no more, the API's GIL less
    frame = pd.DataFrame.from_records(parsed, columns=[*SERVED_NUMBERS, *DRIFT_CATEGORIES])
    prices = np.array([p for _, p, _ in rows], dtype=float)
    unseen = [json.loads(u) if u else [] for _, _, u in rows]
    report.unseen_share = {"any": round(sum(1 for u in unseen if u) / len(rows), 4)}
    for name in ("city", "state", "zip_code"):
        report.unseen_share[name] = round(sum(1 for u in unseen if name in u) / len(rows), 4)
    report.predictions = {str(q): round(float(np.nanquantile(prices, q)), 2) for q in QUANTILES}
    if len(rows) < MIN_LISTINGS:
        report.note = f"{len(rows)} answered listing(s): drift needs {MIN_LISTINGS}"
        return report
    if reference is None:
        report.note = "the served version's training rows are not in this data DB"
        return report
    for name in SERVED_NUMBERS:
        values = pd.to_numeric(frame[name], errors="coerce").to_numpy(float)
        report.drift[name] = round(psi_against(reference.numbers.get(name), values), 4)
    report.drift["prediction"] = round(psi_against(reference.numbers.get("price"), prices), 4)
    for name in DRIFT_CATEGORIES:
        report.drift[name] = round(share_distance(reference.categories.get(name, {}), frame[name].map(name_text)), 4)
    return report


def _listing(text: str | None) -> dict[str, Any]:
    import msgspec

    try:
        value = msgspec.json.decode(text) if text else {}
    except msgspec.DecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def served_drift_of(settings: Any, ref: str | int | None, since: datetime) -> ServedDrift:
    """`mlops events drift`: the listings ``ref`` (a version or alias; default the champion)
    answered since ``since``, against its training rows."""
    from mlops_cli.registry.client import connect, resolve_version, version_info
    from mlops_cli.store.db import engine_for

    client = connect(settings)
    mv = resolve_version(client, settings, settings.champion_alias if ref is None else ref)
    info = version_info(client, settings, mv, aliases={})
    engine = engine_for(settings)
    return served_drift(engine, training_reference(engine, info["round"]), since=since, version=info["version"])
