"""The realtor listing schema shared by every source, table and API, and its normalisation."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from mlops_cli.errors import MalformedBatchError

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = [
    "brokered_by",
    "status",
    "price",
    "bed",
    "bath",
    "acre_lot",
    "street",
    "city",
    "state",
    "zip_code",
    "house_size",
    "prev_sold_date",
]
NUMERIC = ["price", "bed", "bath", "acre_lot", "house_size"]
TEXT = ["brokered_by", "status", "street", "city", "state", "zip_code", "prev_sold_date"]
TARGET = "price"
CATEGORICAL_FEATURES = ["city", "state", "zip_code"]
NUMERIC_FEATURES = ["bed", "bath", "acre_lot", "house_size"]
FEATURES = CATEGORICAL_FEATURES + NUMERIC_FEATURES
# What the pipeline needs; the rest of the schema may be absent from a source.
REQUIRED = [TARGET, *FEATURES]
# Identifiers and facts known only after the sale: they would leak or overfit.
LEAKAGE = ["brokered_by", "street", "status", "prev_sold_date"]

# A numeric column where more than this share of the given values is not a number is
# a wrong-typed column (reject the batch), not a few bad cells (drop those rows later).
MAX_UNPARSEABLE_SHARE = 0.5

_TRAILING_ZERO = re.compile(r"\.0+$")
_SPACES = re.compile(r"\s+")


def id_text(value: Any) -> Any:
    """``'10481.0'`` and ``10481.0`` → ``'10481'``; missing stays missing."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = _TRAILING_ZERO.sub("", str(value).strip())
    return text or None


def zip_text(value: Any) -> Any:
    text = id_text(value)
    if text is not None and text.isdigit() and len(text) < 5:
        text = text.zfill(5)
    return text


def name_text(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = _SPACES.sub(" ", str(value).strip())
    return text.title() if text else None


def normalise(frame: pd.DataFrame, what: str = "batch") -> pd.DataFrame:
    """Check columns, coerce types and normalise text. Returns a frame with exactly ``COLUMNS``.

    Raises :class:`MalformedBatchError` when a required column is missing or a numeric
    column is mostly not numbers; isolated bad cells become missing values instead.
    """
    import pandas as pd

    missing = [col for col in REQUIRED if col not in frame.columns]
    if missing:
        raise MalformedBatchError(
            f"{what} is missing required column(s): {', '.join(missing)}",
            hint=f"every row needs {', '.join(REQUIRED)}",
        )
    out = pd.DataFrame(index=range(len(frame)))
    frame = frame.reset_index(drop=True)
    for col in NUMERIC:
        raw = frame[col]
        numbers = pd.to_numeric(raw, errors="coerce").astype("float64")
        given = raw.notna() & (raw.astype("string").str.strip() != "")
        bad = given & numbers.isna()
        if given.sum() and bad.sum() / given.sum() > MAX_UNPARSEABLE_SHARE:
            examples = ", ".join(repr(v) for v in raw[bad].astype(str).unique()[:3])
            raise MalformedBatchError(
                f"{what}: column '{col}' is not numeric ({int(bad.sum())} of {int(given.sum())} "
                f"values, e.g. {examples})",
                hint="fix the source or its type mapping; nothing was stored",
            )
        out[col] = numbers
    for col in TEXT:
        values = frame[col] if col in frame.columns else pd.Series([None] * len(frame))
        if col in ("brokered_by", "street"):
            values = values.map(id_text)
        elif col == "zip_code":
            values = values.map(zip_text)
        elif col in ("city", "state"):
            values = values.map(name_text)
        elif col == "status":
            values = values.map(lambda v: name_text(v).lower().replace(" ", "_") if name_text(v) else None)
        else:  # prev_sold_date
            dates = pd.to_datetime(values, errors="coerce", format="mixed")
            values = dates.dt.strftime("%Y-%m-%d").where(dates.notna(), None)
        out[col] = values.astype(object).where(values.notna(), None)
    return out[COLUMNS]


def rows_to_frame(rows: Any, what: str = "batch") -> pd.DataFrame:
    """A list of JSON objects → normalised frame; anything else is a malformed batch."""
    import pandas as pd

    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise MalformedBatchError(f"{what}: 'data' must be a list of objects (one per listing)")
    if not rows:
        return pd.DataFrame({col: pd.Series(dtype="float64" if col in NUMERIC else object) for col in COLUMNS})
    return normalise(pd.DataFrame.from_records(rows), what)
