"""Step 2: drop leakage columns, invalid rows and duplicates (counting why), and split
each batch 85/15 stratified by price quartile, reproducibly."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from mlops_cli.errors import MlopsError
from mlops_cli.schema import TARGET
from mlops_cli.storage import CLEAN_COLUMNS, clean_data, engine_for, raw_data, read_table, replace_batch

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Engine

    from mlops_cli.settings import Settings

# Plausibility limits: outside them a row describes no real house (or a typo).
LIMITS = {"house_size": (100.0, 50_000.0), "bed": (0.0, 30.0), "bath": (0.0, 30.0), "acre_lot": (0.0, 100_000.0)}
MIN_PRICE = 1_000.0
# A price this many robust standard deviations from the batch's (log) median is an outlier.
PRICE_OUTLIER_Z = 3.5


@dataclass
class CleanResult:
    batch: int
    rows_received: int
    rows_kept: int
    dropped: dict[str, int] = field(default_factory=dict)
    rows_train: int = 0
    rows_test: int = 0

    @property
    def rows_dropped(self) -> int:
        return self.rows_received - self.rows_kept


def invalid_reasons(frame: pd.DataFrame) -> pd.Series:
    """The first reason each row is invalid, or None for a valid row."""
    import pandas as pd

    reasons = pd.Series([None] * len(frame), index=frame.index, dtype=object)

    def mark(mask: pd.Series, reason: str) -> None:
        reasons[mask & reasons.isna()] = reason

    price = frame[TARGET]
    mark(price.isna(), "missing_price")
    mark(price <= 0, "non_positive_price")
    mark(price < MIN_PRICE, "implausible_price")
    for col, (low, high) in LIMITS.items():
        mark(
            (frame[col] < low) | (frame[col] > high), "impossible_size" if col == "house_size" else f"impossible_{col}"
        )
    mark(frame["state"].isna(), "missing_state")
    valid_price = price[reasons.isna()]
    if len(valid_price) >= 20:
        logs = np.log(valid_price)
        mad = float(np.median(np.abs(logs - np.median(logs)))) * 1.4826
        if mad > 0:
            mark((np.abs(np.log(price.clip(lower=1)) - np.median(logs)) / mad) > PRICE_OUTLIER_Z, "price_outlier")
    return reasons


def split_batch(frame: pd.DataFrame, test_size: float, seed: int) -> pd.Series:
    """'train'/'test' per row, stratified by price quartile; same rows and seed, same split."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    split = pd.Series("train", index=frame.index, dtype=object)
    if len(frame) < 8:  # too few rows to hold any out meaningfully
        return split
    quartile = pd.qcut(frame[TARGET].rank(method="first"), 4, labels=False)
    _, test_index = train_test_split(frame.index, test_size=test_size, random_state=seed, stratify=quartile)
    split[test_index] = "test"
    return split


def clean_and_split(settings: Settings, batch: int, engine: Engine | None = None) -> CleanResult:
    """Read batch ``batch`` from ``raw_data``, write its valid rows to ``clean_data``."""
    import pandas as pd

    engine = engine or engine_for(settings)
    raw = read_table(engine, raw_data, raw_data.c.batch == batch)
    received = len(raw)
    if received == 0 and not _was_ingested(engine, batch):
        raise MlopsError(f"batch {batch} has not been ingested", hint=f"run `mlops train --batch {batch}`")
    frame = raw[CLEAN_COLUMNS].copy()
    reasons = invalid_reasons(frame)
    earlier = read_table(engine, clean_data, clean_data.c.batch < batch)[CLEAN_COLUMNS]
    seen = pd.util.hash_pandas_object(earlier, index=False) if len(earlier) else pd.Series(dtype="uint64")
    row_hash = pd.util.hash_pandas_object(frame, index=False)
    duplicate = row_hash.duplicated() | row_hash.isin(set(seen.tolist()))
    reasons[duplicate & reasons.isna()] = "duplicate"
    kept = frame[reasons.isna()].copy()
    kept["split"] = split_batch(kept, settings.test_size, settings.split_seed + batch)
    dropped = {str(k): int(v) for k, v in reasons.value_counts().sort_index().items()}
    result = CleanResult(
        batch, received, len(kept), dropped, int((kept["split"] == "train").sum()), int((kept["split"] == "test").sum())
    )
    log = {
        "rows_received": received,
        "rows_kept": result.rows_kept,
        "rows_dropped": result.rows_dropped,
        "dropped": dropped,
        "rows_train": result.rows_train,
        "rows_test": result.rows_test,
    }
    replace_batch(engine, clean_data, batch, kept, log=log)
    return result


def _was_ingested(engine: Engine, batch: int) -> bool:
    from sqlalchemy import select

    from mlops_cli.storage import batch_log

    with engine.connect() as conn:
        return conn.execute(select(batch_log.c.batch).where(batch_log.c.batch == batch)).first() is not None
