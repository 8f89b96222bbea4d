"""`mlops predict` and the UI's CSV: listings read from flags or files, sent to the inference
API's /predict in chunks the API accepts, answered with the version that priced each one."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

from mlops_cli.errors import MlopsError
from mlops_cli.pipeline.api_client import request_predictions
from mlops_cli.schema import LISTING_FIELDS, NUMERIC_LISTING_FIELDS


def listing_from_pairs(pairs: list[str]) -> dict[str, Any]:
    """``["city=Austin", "bed=3"]`` → a listing; ValueError naming the bad pair."""
    listing: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or name not in LISTING_FIELDS:
            raise ValueError(f"expected FIELD=VALUE with FIELD one of {', '.join(LISTING_FIELDS)}; got {pair!r}")
        if name in NUMERIC_LISTING_FIELDS:
            try:
                listing[name] = float(value)
            except ValueError:
                raise ValueError(f"{name} must be a number, got {value!r}") from None
        else:
            listing[name] = value
    return listing


def listings_from_csv(source: Path | IO[bytes]) -> list[dict[str, Any]]:
    """The listing columns of a CSV (others ignored), missing cells left out."""
    import pandas as pd

    try:
        frame = pd.read_csv(source, dtype={"zip_code": str})
    except (ValueError, OSError) as exc:  # pandas' parser errors are ValueErrors
        raise MlopsError(f"cannot read the CSV: {exc}") from None
    frame = frame[[c for c in LISTING_FIELDS if c in frame.columns]]
    return [{k: v for k, v in row.items() if v == v} for row in frame.to_dict(orient="records")]  # v == v: not NaN


def read_listings(path: Path) -> list[dict[str, Any]]:
    """Listings from a .json file (one object or a list) or a .csv file."""
    import json

    if not path.exists():
        raise MlopsError(f"file not found: {path}")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text())
        except ValueError as exc:
            raise MlopsError(f"{path} is not valid JSON: {exc}") from None
        data = data if isinstance(data, list) else [data]
        if not all(isinstance(item, dict) for item in data):
            raise MlopsError(f"{path} must hold a listing object or a list of them")
        return data
    if path.suffix.lower() == ".csv":
        return listings_from_csv(path)
    raise MlopsError(f"{path}: expected a .json or .csv file")


def predict(api_url: str, listings: list[dict[str, Any]], max_batch: int, explain: bool = False) -> dict[str, Any]:
    """Prices for any number of listings, sent in chunks of at most ``max_batch`` (the API's
    limit). ``versions`` names the version that priced each listing (a promotion may land
    between two chunks); ``model`` is the last answer's model. ``intervals`` (per listing, None
    from a model without a calibrated range), ``missing`` and, with ``explain``, ``explanations``
    as the API gives them."""
    if not listings:
        raise MlopsError("no listings to price")
    out: dict[str, list[Any]] = {"predictions": [], "intervals": [], "unseen": [], "missing": [], "versions": []}
    if explain:
        out["explanations"] = []
    answer: dict[str, Any] = {}
    for start in range(0, len(listings), max_batch):
        chunk = listings[start : start + max_batch]
        answer = request_predictions(api_url, chunk, explain=explain)
        out["predictions"] += answer["predictions"]
        for key in ("intervals", "unseen", "missing", "explanations"):  # an older API gives fewer
            if key in out:
                out[key] += answer.get(key) or [None if key in ("intervals", "explanations") else [] for _ in chunk]
        out["versions"] += [answer["model"]["version"]] * len(chunk)
    return {**out, "interval_level": answer.get("interval_level"), "model": answer["model"]}
