"""What the Streamlit UI shows, as plain functions (the UI only lays them out)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from mlops_cli.config import Settings


# How a listing's fields (and a priced listing's answer) are named on screen.
LISTING_LABELS = {
    "city": "City",
    "state": "State",
    "zip_code": "Zip code",
    "house_size": "House size (sq ft)",
    "bed": "Bedrooms",
    "bath": "Bathrooms",
    "acre_lot": "Lot (acres)",
    "predicted_price": "Predicted price",
    "price_low": "Range low",
    "price_high": "Range high",
    "unseen": "Never seen in training",
    "model_version": "Version",
}


def priced(frame: pd.DataFrame, answer: dict[str, Any]) -> pd.DataFrame:
    """Uploaded listings with the API's answer for each: what the download holds."""
    bounds = answer.get("intervals") or [None] * len(answer["predictions"])
    return frame.assign(
        predicted_price=answer["predictions"],
        price_low=[b[0] if b else None for b in bounds],
        price_high=[b[1] if b else None for b in bounds],
        unseen=[", ".join(u) for u in answer["unseen"]],
        model_version=answer["versions"],
    )


def readable(frame: pd.DataFrame) -> pd.DataFrame:
    """Priced listings as people read them: labelled columns, $ and thousands separators, whole
    bedrooms, "—" for an empty cell (never None or nan), no index column of its own."""
    import pandas as pd

    formats = {
        "predicted_price": lambda v: f"${v:,.0f}",
        "price_low": lambda v: f"${v:,.0f}",
        "price_high": lambda v: f"${v:,.0f}",
        "house_size": lambda v: f"{v:,.0f}",
        "bed": lambda v: f"{v:,.0f}",
        "bath": lambda v: f"{v:g}",
        "acre_lot": lambda v: f"{v:,.2f}",
    }
    out = pd.DataFrame(index=range(len(frame)))
    for column in frame.columns:
        fmt = formats.get(column, str)
        out[LISTING_LABELS.get(column, column)] = [
            fmt(v) if pd.notna(v) and v != "" else "—" for v in frame[column].tolist()
        ]
    return out


def locations(settings: Settings) -> dict[str, dict[str, list[str]]]:
    """state → city → zip codes that exist in the clean data."""
    from mlops_cli.store.db import engine_for
    from mlops_cli.store.listings import locations as stored_locations

    out: dict[str, dict[str, list[str]]] = {}
    for state, city, zip_code in stored_locations(engine_for(settings)):
        out.setdefault(str(state), {}).setdefault(str(city), []).append(str(zip_code))
    return {
        state: {city: sorted(set(zips)) for city, zips in sorted(cities.items())}
        for state, cities in sorted(out.items())
    }


def models_table(settings: Settings) -> pd.DataFrame:
    """The registered versions, one column per field of the UI's versions table (registry/info.py
    declares them), values as stored (the page formats them), and whether each is the champion."""
    import pandas as pd

    from mlops_cli.registry.info import LISTED_WIDE
    from mlops_cli.registry.models import list_versions

    rows = [{name: v[name] for name in LISTED_WIDE} for v in list_versions(settings)]
    frame = pd.DataFrame(rows, columns=list(LISTED_WIDE))
    return frame.assign(champion=["champion" in aliases for aliases in frame["aliases"]])


def rmse_on_current_test_set(settings: Settings, versions: list[int]) -> dict[int, float]:
    """Every version scored on the same, current test set: the comparison promotions use.
    Scores are remembered per version and test set, so a page renders without reloading models."""
    from mlops_cli.pipeline.scores import scores_today
    from mlops_cli.registry.models import list_versions

    runs = {v["version"]: v["run_id"] for v in list_versions(settings) if v["version"] in versions}
    return scores_today(settings, runs, compute=True)


def promotions_table(settings: Settings) -> pd.DataFrame:
    import pandas as pd

    from mlops_cli.store.db import engine_for
    from mlops_cli.store.promotions import promotion_rows

    rows = promotion_rows(engine_for(settings), settings.model_name)
    columns = ["at", "actor", "action", "old_version", "new_version", "old_rmse", "new_rmse", "test_rows"]
    frame = pd.DataFrame([{k: r[k] for k in columns} for r in rows], columns=columns)
    for key in ("old_version", "new_version"):  # "v3", or "—" for none (a first champion has no "from")
        frame[key] = [f"v{int(v)}" if pd.notna(v) else "—" for v in frame[key]]
    return frame


def _signed(share: float | None) -> str | None:
    return None if share is None else f"{share:+.0%}".replace("-", "−")


def batches_table(settings: Settings) -> pd.DataFrame:
    """One row per batch number, over every answer of it (skipped numbers included)."""
    import pandas as pd

    from mlops_cli.pipeline.records import SHOWN_FIELDS, of_kind, short_reason
    from mlops_cli.pipeline.reports import all_batches
    from mlops_cli.rule import describe_changes
    from mlops_cli.store.db import engine_for

    # the record's own fields, the short why rendered from its reasoning after "retrained", and
    # after the versions the change against production and the champion's error on the batch
    shown = list(SHOWN_FIELDS)
    columns = [
        *shown[: shown.index("retrained") + 1],
        "why",
        *shown[shown.index("retrained") + 1 :],
        "change",
        "champion_error",
        "champion_mae_change",
        "run_id",
        "reason",
        "dropped",
    ]
    report = all_batches(engine_for(settings))
    rows = [
        {
            **{k: b.to_dict().get(k) for k in columns},
            "why": short_reason(b),
            "change": describe_changes({m: (b.deltas or {}).get(m) for m in ("mae", "rmse")}) or None,
            "champion_error": _signed((b.champion_on_batch or {}).get("mae_change")),
            "champion_mae_change": (b.champion_on_batch or {}).get("mae_change"),
            "run_id": (b.mlflow or {}).get("run_id"),
        }
        for b in report.batches
    ]
    for number in report.skipped_batches:
        rows.append(
            {"batch": number, "state": "skipped", "why": "never served", "reason": "the source never served it"}
        )
    frame = pd.DataFrame(sorted(rows, key=lambda r: r["batch"]), columns=columns)
    for key in of_kind("version"):  # "v3", or "—": no None cells
        frame[key] = [f"v{int(v)}" if pd.notna(v) else "—" for v in frame[key]]
    for key in [k for k in (*of_kind("text"), "why", "change", "champion_error", "run_id") if k in frame.columns]:
        frame[key] = frame[key].fillna("—")
    frame["retrained"] = frame["retrained"].fillna(False).astype(bool)
    return frame


def predict_with_version(settings: Settings, version: int | str, listings: list[dict[str, Any]]) -> list[float]:
    """Predict locally with any registered version (through the same fast path as the API)."""
    from serving.model_server import load_registered

    return load_registered(settings, version).predict(listings)


def live_traffic(settings: Settings, minutes: int = 60, newest: int = 20) -> dict[str, Any]:
    """The inference API's last ``minutes`` from its inference events: totals, requests and
    refusals per minute, listings priced per model version, and the ``newest`` events as a table
    (one row per listing, time in UTC)."""
    from datetime import UTC, datetime, timedelta

    import pandas as pd

    from mlops_cli.store.db import engine_for
    from mlops_cli.store.events import read_events

    since = datetime.now(UTC) - timedelta(minutes=minutes)
    events = pd.DataFrame(read_events(engine_for(settings), since=since, limit=500_000))
    if events.empty:
        return {"events": 0}
    requests = events.drop_duplicates("request_id")
    refused = requests["status"] >= 400
    answered = events[events["status"] < 400]
    per_minute = (
        requests.assign(minute=requests["received_at"].dt.floor("min").dt.tz_localize(None), refused=refused)
        .groupby("minute")
        .agg(requests=("request_id", "size"), refused=("refused", "sum"))
    )
    by_version = answered.groupby(answered["model_version"].map(lambda v: f"v{v:.0f}")).size().rename("listings")
    table = events.head(newest).assign(
        received_at=events["received_at"].head(newest).dt.strftime("%H:%M:%S"),
        model_version=events["model_version"].head(newest).map(lambda v: f"v{v:.0f}" if pd.notna(v) else None),
        answer=[
            f"${p:,.0f}" if pd.notna(p) else (k or "")
            for p, k in zip(events["prediction"].head(newest), events["error_kind"].head(newest), strict=True)
        ],
    )
    shadowed = answered[answered["shadow_prediction"].notna()]
    shadow = None
    if len(shadowed):  # the newest pair of versions priced side by side on these requests
        served, other = shadowed.iloc[0][["model_version", "shadow_version"]]
        pair = shadowed[(shadowed["model_version"] == served) & (shadowed["shadow_version"] == other)]
        apart = (pair["shadow_prediction"] - pair["prediction"]).abs()
        shadow = {
            "served": int(served),
            "shadow": int(other),
            "requests": pair["request_id"].nunique(),
            "listings": len(pair),
            "mean_abs_disagreement": float(apart.mean()),
            "median_abs_disagreement": float(apart.median()),
            "share_over_10pct": float((apart > 0.1 * pair["prediction"].abs()).mean()),
        }
    table["item"] = [f"{v:.0f}" if pd.notna(v) else "—" for v in table["item"]]
    for column in ("model_version", "listing", "answer"):
        table[column] = table[column].fillna("—").replace("", "—")
    return {
        "events": len(events),
        "requests": len(requests),
        "refused_share": float(refused.mean()),
        "listings": len(answered),
        "p95_ms": float(requests["latency_ms"].quantile(0.95)),
        "per_minute": per_minute,
        "shadow": shadow,
        "by_version": by_version,
        "newest": table[
            ["received_at", "request_id", "status", "model_version", "latency_ms", "item", "answer", "listing"]
        ],
    }
