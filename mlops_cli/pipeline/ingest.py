"""Step 1: an answer's rows, checked and normalised, merged into the batch's raw rows.

A data API may answer the same batch number again (the whole batch, or a fresh sample of it):
merging keeps every row received at most as many times as one answer had it, so a repeated
answer adds only what is new and a row listed twice in a batch stays listed twice.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mlops_cli.errors import MalformedBatchError
from mlops_cli.schema import COLUMNS, normalise, rows_to_frame

if TYPE_CHECKING:
    import pandas as pd


def parse_json(text: bytes | str) -> Any:
    """JSON text → Python values, by msgspec (1.8x the standard library on a 50 MB answer);
    what msgspec refuses but the standard library reads (NaN, 1e400, lone surrogates) is read
    by the standard library, so both give the same values. ValueError if neither can.

    Not orjson: it turns integers beyond 64 bits into floats silently (an id would change)."""
    import msgspec

    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        return json.loads(text)


def rows_of_body(body: bytes, what: str) -> Any:
    """The ``data`` rows of a stored data API answer."""
    try:
        document = parse_json(body)
    except ValueError:
        raise MalformedBatchError(f"{what}: the stored answer is not JSON") from None
    if not isinstance(document, dict) or "data" not in document:
        raise MalformedBatchError(f"{what}: the stored answer has no 'data'")
    return document["data"]


def normalised_rows(rows: Any, what: str, report: dict[str, Any] | None = None) -> pd.DataFrame:
    """Rows as received (JSON objects, or a frame of them from an in-process source) → the
    schema's columns, typed and normalised, and ``extra``: the row's values of any other column
    (MalformedBatchError if unusable). ``report`` receives the columns received against the
    contract (see ``schema.received_schema``)."""
    import pandas as pd

    if isinstance(rows, pd.DataFrame):
        if not len(rows):
            return rows_to_frame([], what=what, keep_extra=True)
        return normalise(rows, what, report, keep_extra=True)
    return rows_to_frame(rows, what=what, report=report, keep_extra=True)


def schema_report(received: dict[str, Any], first: list[str] | None) -> dict[str, Any]:
    """The schema part of a validation report: the columns received against the contract and
    against the dataset's first answer (``first``, None for the first answer itself)."""
    if not received:  # an empty answer: no columns to judge
        return {}
    columns = received["received"]
    versus = (
        None
        if first is None
        else {
            "new": [c for c in columns if c not in first],
            "missing": [c for c in first if c not in columns],
        }
    )
    handled = []
    if received["extra"]:
        handled.append("extra columns are kept in raw_data (column extra: one JSON object per row)")
    if received["missing_optional"]:
        handled.append("missing optional columns are stored as missing values")
    if received["numbers_as_text"]:
        handled.append("numbers sent as text are read as numbers")
    if received["missing_required"]:
        handled.append("a required column is missing: the answer is rejected")
    return {**received, "versus_first": versus, "handled": handled}


def new_rows(stored: pd.DataFrame, incoming: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``incoming`` not yet in ``stored``, counting copies: a row that ``incoming`` has
    k times and ``stored`` has j times is added max(0, k - j) times."""
    import pandas as pd

    if incoming.empty or stored.empty:
        return incoming
    incoming_hash = pd.util.hash_pandas_object(incoming[COLUMNS], index=False)
    stored_counts = pd.util.hash_pandas_object(stored[COLUMNS], index=False).value_counts()
    occurrence = incoming_hash.groupby(incoming_hash).cumcount()
    already = incoming_hash.map(stored_counts).fillna(0)
    return incoming[(occurrence >= already).to_numpy()]
