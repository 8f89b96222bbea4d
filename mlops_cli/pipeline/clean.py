"""Step 2: drop leakage columns, invalid rows and duplicates (counting why), and split
each round's rows 85/15 stratified by price quartile, reproducibly."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops_cli.schema import CATEGORICAL_FEATURES, CLEAN_COLUMNS, COLUMNS, LIMITS, TARGET, TEXT_WIDTH, not_text

if TYPE_CHECKING:
    import pandas as pd

MIN_PRICE = 1_000.0
# No house is listed above a billion dollars: beyond it a price is a typo or a hostile value
# (1e308, Infinity), whatever the batch's size — the outlier rule below needs 20 rows.
MAX_PRICE = 1e9
# A price this many robust standard deviations from the batch's (log) median is an outlier.
PRICE_OUTLIER_Z = 3.5


@dataclass(kw_only=True)
class CleanResult:
    rows_received: int
    kept: pd.DataFrame = field(repr=False)  # the valid rows, with their split
    dropped: dict[str, int] = field(default_factory=dict)
    duplicates_in_answer: int = 0  # rows repeating an earlier row of the same answer
    duplicates_of_stored: int = 0  # rows repeating a clean row stored before
    nulls: dict[str, int] = field(default_factory=dict)  # missing values per listing column

    @property
    def rows_kept(self) -> int:
        return len(self.kept)

    @property
    def rows_dropped(self) -> int:
        return self.rows_received - self.rows_kept

    @property
    def rows_train(self) -> int:
        return int((self.kept["split"] == "train").sum())

    @property
    def rows_test(self) -> int:
        return int((self.kept["split"] == "test").sum())


def invalid_reasons(frame: pd.DataFrame) -> pd.Series:
    """The first reason each row is invalid, or None for a valid row."""
    import pandas as pd

    reasons = pd.Series([None] * len(frame), index=frame.index, dtype=object)

    def mark(mask: pd.Series, reason: str) -> None:
        reasons[mask & reasons.isna()] = reason

    price = frame[TARGET]
    mark(price.isna(), "missing_price")
    mark(price <= 0, "non_positive_price")
    mark((price < MIN_PRICE) | (price > MAX_PRICE), "implausible_price")
    for col, (low, high) in LIMITS.items():
        mark(
            (frame[col] < low) | (frame[col] > high), "impossible_size" if col == "house_size" else f"impossible_{col}"
        )
    for col in CATEGORICAL_FEATURES:
        mark(not_text(frame[col]), "not_text")
    mark(frame["state"].isna(), "missing_state")
    too_long = np.zeros(len(frame), dtype=bool)
    for col in CATEGORICAL_FEATURES:  # raw text is stored whole; clean_data keeps TEXT_WIDTH
        too_long |= (frame[col].astype("string").str.len() > TEXT_WIDTH).fillna(False).to_numpy(dtype=bool)
    mark(pd.Series(too_long, index=frame.index), "text_too_long")
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
    # Stratifying needs a row of each quartile on both sides; a small answer is split plainly.
    tested = -(-len(frame) * test_size // 1)
    quartile = pd.qcut(frame[TARGET].rank(method="first"), 4, labels=False)
    stratify = quartile if min(tested, len(frame) - tested) >= 4 else None
    _, test_index = train_test_split(frame.index, test_size=test_size, random_state=seed, stratify=stratify)
    split[test_index] = "test"
    return split


def contains(seen: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Which ``values`` are in ``seen``, by binary search: O(len(values) log len(seen)) when
    ``seen`` is sorted already (as the engine keeps it), instead of sorting both every time."""
    if len(seen) == 0:
        return np.zeros(len(values), dtype=bool)
    if len(seen) > 1 and not bool(np.all(seen[1:] >= seen[:-1])):
        seen = np.sort(seen)
    at = np.minimum(np.searchsorted(seen, values), len(seen) - 1)
    return seen[at] == values


def clean_rows(part: pd.DataFrame, seen: np.ndarray, test_size: float, seed: int) -> CleanResult:
    """Valid rows of ``part`` (raw rows of one round) that are not duplicates of each other or of a
    row stored before (``seen``: the ``row_hash`` of every clean row stored so far), with their
    split and hash; the count of each drop reason."""
    import pandas as pd

    from mlops_cli.store.frames import row_hashes

    frame = part[CLEAN_COLUMNS].reset_index(drop=True)
    reasons = invalid_reasons(frame)
    row_hash = row_hashes(frame)
    in_answer, of_stored = pd.Series(row_hash).duplicated().to_numpy(), contains(seen, row_hash)
    duplicate = in_answer | of_stored
    reasons[duplicate & reasons.isna().to_numpy()] = "duplicate"
    valid = reasons.isna().to_numpy()
    kept = frame[valid].copy()
    kept["split"] = split_batch(kept, test_size, seed)
    kept["row_hash"] = row_hash[valid]
    dropped = {str(k): int(v) for k, v in reasons.value_counts().sort_index().items()}
    return CleanResult(
        rows_received=len(frame),
        kept=kept,
        dropped=dropped,
        duplicates_in_answer=int(in_answer.sum()),
        duplicates_of_stored=int((of_stored & ~in_answer).sum()),
        nulls={col: int(n) for col, n in part.isna().sum().items() if col in COLUMNS},
    )


# The drop reasons of each quality check (the rest: duplicates, counted apart, and not_text).
OUT_OF_RANGE = ("implausible_price", "impossible_size", "impossible_bed", "impossible_bath", "impossible_acre_lot")


def quality_report(result: CleanResult) -> dict[str, Any]:
    """The quality part of a validation report: nulls per column, duplicates, rows out of range per
    rule, extreme prices and the target's consistency, each as a count and a share of the rows."""
    rows = result.rows_received

    def counted(n: int) -> dict[str, float]:
        return {"count": int(n), "share": round(n / rows, 4) if rows else 0.0}

    dropped = result.dropped
    return {
        "rows": rows,
        "nulls": {col: counted(n) for col, n in result.nulls.items()},
        "duplicates": {
            "in_answer": counted(result.duplicates_in_answer),
            "of_stored": counted(result.duplicates_of_stored),
        },
        "out_of_range": {rule: counted(dropped.get(rule, 0)) for rule in OUT_OF_RANGE},
        "extreme_price": counted(dropped.get("price_outlier", 0)),
        "target": {
            "missing": counted(dropped.get("missing_price", 0)),
            "non_positive": counted(dropped.get("non_positive_price", 0)),
        },
        "invalid_text": counted(dropped.get("not_text", 0) + dropped.get("text_too_long", 0)),
        "kept": counted(result.rows_kept),
    }
