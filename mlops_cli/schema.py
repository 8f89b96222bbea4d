"""The realtor listing: one contract for every source, table, API, UI and client.

Columns of a source row, the model's features, the plausible ranges cleaning enforces and the
API checks, the listing a prediction takes (``Listing``) with an example, and the normalisation
of text values.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from mlops_cli.errors import MalformedBatchError

if TYPE_CHECKING:
    from collections.abc import Callable

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
# What a clean row holds: the price and the model's inputs (clean_data's listing columns).
CLEAN_COLUMNS = [TARGET, *FEATURES]
# What the pipeline needs; the rest of the schema may be absent from a source.
REQUIRED = [TARGET, *FEATURES]
# Identifiers and facts known only after the sale: they would leak or overfit.
LEAKAGE = ["brokered_by", "street", "status", "prev_sold_date"]

# Plausibility limits: outside them a row describes no real house (or a typo). Cleaning drops
# such rows; the API refuses such listings.
LIMITS = {"house_size": (100.0, 50_000.0), "bed": (0.0, 30.0), "bath": (0.0, 30.0), "acre_lot": (0.0, 100_000.0)}
# The widest text a categorical feature keeps (clean_data's column width).
TEXT_WIDTH = 64
# A request id the inference API keeps from a caller's X-Request-ID (else it makes one) and
# records with the request's events: what `mlops events list --request-id` looks up.
REQUEST_ID = r"[\w.:/+=-]{1,64}"

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


def status_text(value: Any) -> Any:
    text = name_text(value)
    return text.lower().replace(" ", "_") if text else None


# Below this a whole float prints as digits and ".0" (1e16 prints as "1e+16").
_PLAIN_FLOAT_BOUND = 1e15


def whole_number_text(values: pd.Series) -> pd.Series | None:
    """``values.map(id_text)`` for a numeric column of whole numbers, computed column-wise:
    identifiers (``brokered_by``, ``street``) come as JSON numbers and are nearly all distinct, so
    calling :func:`id_text` per value would cost a Python call per row. None when a value is
    not a plain whole number (a fraction, -0.0, beyond 1e15): the caller then maps each value."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_integer_dtype(values.dtype) and not isinstance(values.dtype, pd.CategoricalDtype):
        digits = values.to_numpy(dtype="int64", na_value=0).astype(str).astype(object)
        return pd.Series(np.where(values.isna().to_numpy(), None, digits), index=values.index, dtype=object)
    if values.dtype != np.float64:
        return None
    numbers = values.to_numpy()
    present = ~np.isnan(numbers)
    given = numbers[present]
    if not (
        np.all(np.abs(given) < _PLAIN_FLOAT_BOUND)
        and np.all(given == np.floor(given))
        and not np.any((given == 0) & np.signbit(given))
    ):
        return None
    text = np.full(len(numbers), None, dtype=object)
    text[present] = given.astype(np.int64).astype(str).astype(object)
    return pd.Series(text, index=values.index, dtype=object)


def _each_distinct(values: pd.Series, normalised: Callable[[Any], Any]) -> pd.Series:
    """``values.map(normalised)``, calling it once per distinct value: a batch of 200k listings
    names a few thousand cities, so this is most of the normalisation's cost saved."""
    import numpy as np
    import pandas as pd

    try:
        codes, distinct = pd.factorize(values.astype(object), use_na_sentinel=True)
    except TypeError:  # unhashable: a JSON object or list where text belongs
        structured = values.map(lambda v: isinstance(v, dict | list)).to_numpy(dtype=bool)
        out = _each_distinct(values.where(~structured, None), normalised)
        out[structured] = values[structured].map(structured_text)
        return out
    mapped = np.array([normalised(v) for v in distinct] + [None], dtype=object)  # code -1: missing
    return pd.Series(mapped[codes], index=values.index, dtype=object)


def structured_text(value: Any) -> str:
    """A JSON object or list that arrived where text belongs, kept as its JSON text (raw_data
    stores what was received); cleaning rejects it in a feature column (:func:`not_text`)."""
    import json

    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def not_text(values: pd.Series) -> pd.Series:
    """Which values are a JSON object or list kept as text (no city, state or zip starts with a
    brace or a bracket)."""
    return values.astype("string").str.startswith(("{", "[")).fillna(False).astype(bool)


def received_schema(frame: pd.DataFrame) -> dict[str, Any]:
    """The columns an answer arrived with against the contract: extra ones (kept per row in raw data), missing
    optional ones (stored as missing), missing required ones (the answer is rejected), numeric
    columns whose values came as text (read as numbers where they are)."""
    import pandas as pd

    received = [str(c) for c in frame.columns]
    as_text = [
        col
        for col in NUMERIC
        if col in frame.columns
        and not pd.api.types.is_numeric_dtype(frame[col])
        and frame[col].map(lambda v: isinstance(v, str)).any()
    ]
    return {
        "received": received,
        "extra": [c for c in received if c not in COLUMNS],
        "missing_required": [c for c in REQUIRED if c not in frame.columns],
        "missing_optional": [c for c in COLUMNS if c not in REQUIRED and c not in frame.columns],
        "numbers_as_text": as_text,
    }


def normalise(
    frame: pd.DataFrame, what: str = "batch", report: dict[str, Any] | None = None, *, keep_extra: bool = False
) -> pd.DataFrame:
    """Check columns, coerce types and normalise text. Returns a frame with exactly ``COLUMNS``
    (and ``EXTRA`` after them with ``keep_extra``: see :func:`extra_values`).

    Raises :class:`MalformedBatchError` when a required column is missing or a numeric
    column is mostly not numbers; isolated bad cells become missing values instead. ``report``
    (a dict) receives :func:`received_schema` of the frame, also when it is refused.
    """
    import pandas as pd

    if report is not None:
        report.update(received_schema(frame))
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
        given = raw.notna()
        if not pd.api.types.is_numeric_dtype(raw):  # only text can be blank; numbers never are
            given &= raw.astype("string").str.strip() != ""
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
            digits = whole_number_text(values)
            values = digits if digits is not None else _each_distinct(values, id_text)
        elif col == "zip_code":
            values = _each_distinct(values, zip_text)
        elif col in ("city", "state"):
            values = _each_distinct(values, name_text)
        elif col == "status":
            values = _each_distinct(values, status_text)
        else:  # prev_sold_date
            dates = pd.to_datetime(values, errors="coerce", format="mixed")
            values = dates.dt.strftime("%Y-%m-%d").where(dates.notna(), None)
        out[col] = values.astype(object).where(values.notna(), None)
    if keep_extra:
        out[EXTRA] = extra_values(frame)
        return out[[*COLUMNS, EXTRA]]
    return out[COLUMNS]


# The column of raw_data that keeps, per row, the values of columns beyond the contract.
EXTRA = "extra"


def extra_values(frame: pd.DataFrame) -> pd.Series:
    """Per row, its values of the columns beyond the contract as one JSON object (keys sorted,
    missing values left out), or None when the row has none: raw data keeps what was received,
    for later training, without a column per source's whim. (0.15 s for 220k rows of one extra
    column; nothing when there is none.)"""
    import math

    import msgspec
    import pandas as pd

    names = sorted((c for c in frame.columns if c not in COLUMNS), key=str)
    if not names:
        return pd.Series([None] * len(frame), index=frame.index, dtype=object)
    keys = [str(c) for c in names]
    encode = msgspec.json.Encoder(order="sorted").encode

    def given(value: Any) -> bool:
        return value is not None and not (isinstance(value, float) and math.isnan(value))

    def text(values: dict[str, Any]) -> str:
        try:
            return encode(values).decode()
        except (TypeError, msgspec.EncodeError):  # a value msgspec cannot write: as the standard library does
            return structured_text(values)

    texts = []
    for row in zip(*(frame[c].tolist() for c in names), strict=True):
        values = {k: v for k, v in zip(keys, row, strict=True) if given(v)}
        texts.append(text(values) if values else None)
    return pd.Series(texts, index=frame.index, dtype=object)


def rows_to_frame(
    rows: Any, what: str = "batch", report: dict[str, Any] | None = None, *, keep_extra: bool = False
) -> pd.DataFrame:
    """A list of JSON objects → normalised frame; anything else is a malformed batch."""
    import pandas as pd

    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise MalformedBatchError(f"{what}: 'data' must be a list of objects (one per listing)")
    if not rows:
        names = [*COLUMNS, EXTRA] if keep_extra else COLUMNS
        return pd.DataFrame({col: pd.Series(dtype="float64" if col in NUMERIC else object) for col in names})
    return normalise(pd.DataFrame.from_records(rows), what, report, keep_extra=keep_extra)


# --- the listing a prediction takes ------------------------------------------------------------

EXAMPLE_LISTING = {
    "city": "Austin",
    "state": "Texas",
    "zip_code": "75003",
    "house_size": 1800,
    "bed": 3,
    "bath": 2,
    "acre_lot": 0.2,
}
# Not blank (a character other than white space), as sent: the schema a client reads is the rule the API
# applies (stripping before checking accepted "  " as a state's text and 70 characters of padding);
# surrounding spaces are normalised away when the model looks the value up.
Text = Annotated[str, Field(min_length=1, max_length=TEXT_WIDTH, pattern=r"\S")]


def _not_a_boolean(value: Any) -> Any:
    # JSON true/false would otherwise be read as 1/0: a client bug, never a listing's value.
    if isinstance(value, bool):
        raise ValueError("expected a number, not true/false")
    return value


def _a_number(value: Any) -> Any:
    # The schema documents numbers: text that reads as one ("1800", a zip "5") was taken all the
    # same by pydantic's lax mode, so the API accepted what its OpenAPI refuses (found by schemathesis).
    if isinstance(value, str):
        raise ValueError("expected a number, not text")
    return _not_a_boolean(value)


NotBool = BeforeValidator(_not_a_boolean)
Number = BeforeValidator(_a_number)


def _bounded(name: str, description: str) -> Any:
    low, high = LIMITS[name]
    return Field(None, ge=low, le=high, allow_inf_nan=False, description=f"{description} (missing: imputed)")


class Listing(BaseModel):
    """One listing to price; fields the model does not use (price, street, ...) are ignored. Text
    is normalised as at ingestion ("austin" → "Austin", 601 → "00601") by the model server, only
    when the value as sent is not one the model knows."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [EXAMPLE_LISTING]})

    city: Annotated[Text | None, Field(description="city (missing: priced from the zip and state)")] = None
    state: Text
    zip_code: Annotated[
        Annotated[str, Field(pattern=r"^\d{3,5}(\.0+)?$", description="US zip code, e.g. 00601")]
        | Annotated[int, Field(ge=0, le=99_999), Number]
        | None,
        NotBool,
        Field(description="US zip code (missing: priced from the city and state)"),
    ] = None
    house_size: Annotated[float | None, _bounded("house_size", "living area in sq ft"), Number] = None
    bed: Annotated[float | None, _bounded("bed", "bedrooms"), Number] = None
    bath: Annotated[float | None, _bounded("bath", "bathrooms"), Number] = None
    acre_lot: Annotated[float | None, _bounded("acre_lot", "lot size in acres"), Number] = None


LISTING_FIELDS = tuple(Listing.model_fields)
REQUIRED_LISTING_FIELDS = tuple(name for name, info in Listing.model_fields.items() if info.is_required())
NUMERIC_LISTING_FIELDS = tuple(name for name in LISTING_FIELDS if name in NUMERIC)


def listing_problem(listing: dict[str, Any]) -> str | None:
    """Why the API would refuse ``listing`` ('house_size: ...'), or None."""
    try:
        Listing.model_validate(listing)
    except ValidationError as exc:
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return None
