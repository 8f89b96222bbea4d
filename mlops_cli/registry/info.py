"""A registered version, declared once.

Every view derives from these fields instead of keeping its own list: ``--json`` of `mlops
models list|show|compare` (:meth:`ModelInfo.to_dict`), the versions table of `mlops models list`
and of the UI (the ``listed`` fields in declaration order, with their heading and how each value
reads: :func:`cell`), `mlops models show` (every field), the inference API's identity of what it
serves (:data:`METRICS`). Where a value comes from the version's MLflow tags (written at training
by registry/runs.py) is declared here too. A new field is added here, and only here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal

# The test-set metrics every version carries as tags (so listing needs no run look-ups): the
# ones a promotion rule may name.
from mlops_cli.rule import METRICS

# How a value reads: a version number, a list of aliases, dollars, a score, a count of rows,
# a list of batches, a timestamp, text, or a structured part (name → value).
Kind = Literal["version", "aliases", "money", "score", "count", "batches", "time", "text", "record"]


def _field(label: str, kind: Kind, *, listed: str = "", wide: bool = False, **default: Any) -> Any:
    """``listed``: a column of every versions table, headed so in a terminal's (80 columns);
    ``wide``: a column of the UI's only (wider than a terminal)."""
    meta = {"label": label, "kind": kind, "listed": bool(listed), "heading": listed or label, "wide": wide}
    return field(metadata=meta, **default)


@dataclass(kw_only=True)
class ModelInfo:
    """One registered version of the model."""

    name: str = _field("Model name", "text")
    version: int = _field("Version", "version", listed="version")
    aliases: list[str] = _field("Aliases", "aliases", listed="aliases", default_factory=list)
    model_type: str | None = _field("Model", "text", listed="model", default=None)
    rmse: float | None = _field("RMSE at training", "money", listed="RMSE@train", default=None)
    # every version on the test rows stored now (filled from the score cache or by scoring)
    rmse_today: float | None = _field("RMSE today", "money", listed="today", default=None)
    mae: float | None = _field("MAE at training", "money", wide=True, default=None)
    r2: float | None = _field("R²", "score", wide=True, default=None)
    mape: float | None = _field("MAPE", "score", default=None)
    batches: list[int] = _field("Batches", "batches", listed="batches", default_factory=list)
    rows_train: int | None = _field("Training rows", "count", listed="rows", default=None)
    rows_test: int | None = _field("Test rows", "count", default=None)
    batch: int | None = _field("Trained at batch", "count", default=None)
    round: int | None = _field("Round", "count", default=None)
    dataset: str | None = _field("Dataset", "text", default=None)
    created: str | None = _field("Created", "time", listed="created", default=None)
    run_id: str | None = _field("MLflow run", "text", default=None)
    source: str | None = _field("Artifacts", "text", default=None)
    description: str | None = _field("Description", "text", default=None)
    # MLOPS_MODEL=auto: each candidate's RMSE on the validation rows it was chosen on
    validation_rmse: dict[str, float] = _field("Validation RMSE (auto)", "record", wide=True, default_factory=dict)

    @classmethod
    def of(cls, mv: Any, aliases: dict[int, list[str]]) -> ModelInfo:
        """From MLflow's ModelVersion or the light registry's Version (the same attributes)."""
        tags = dict(mv.tags or {})
        version = int(mv.version)

        def number(key: str) -> int | None:
            return int(tags[key]) if tags.get(key, "").isdigit() else None

        prefix = "validation_rmse_"
        return cls(
            name=mv.name,
            version=version,
            aliases=sorted(aliases.get(version, [])),
            run_id=mv.run_id,
            created=_iso(mv.creation_timestamp),
            source=mv.source,
            description=getattr(mv, "description", None) or None,
            **{key: float(tags[key]) if key in tags else None for key in METRICS},
            batches=[int(b) for b in tags.get("batches", "").split(",") if b.strip().isdigit()],
            rows_train=number("rows_train"),
            rows_test=number("rows_test"),
            batch=number("batch"),
            round=number("round"),
            dataset=tags.get("dataset"),
            model_type=tags.get("model_type"),
            validation_rmse={k.removeprefix(prefix): float(v) for k, v in tags.items() if k.startswith(prefix)},
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


LISTED = tuple(f.name for f in fields(ModelInfo) if f.metadata["listed"])  # `mlops models list`'s columns
LISTED_WIDE = tuple(f.name for f in fields(ModelInfo) if f.metadata["listed"] or f.metadata["wide"])  # the UI's
LABELS = {f.name: f.metadata["label"] for f in fields(ModelInfo)}
HEADINGS = {f.name: f.metadata["heading"] for f in fields(ModelInfo)}  # a terminal's column headings
KINDS: dict[str, Kind] = {f.name: f.metadata["kind"] for f in fields(ModelInfo)}


def of_kind(*kinds: Kind) -> list[str]:
    return [name for name, kind in KINDS.items() if kind in kinds]


def cell(name: str, value: Any, empty: str = "-", narrow: bool = False) -> str:
    """How field ``name``'s value reads in a table or a detail view (``narrow``: a terminal's table)."""
    if value is None or value == [] or value == {}:
        return empty
    kind = KINDS[name]
    if kind == "version":
        return f"v{value}"
    if kind == "aliases":
        return ", ".join(value)
    if kind == "money":  # a terminal's columns are all dollars: no sign there
        return f"{value:,.0f}" if narrow else f"${value:,.0f}"
    if kind == "score":
        return f"{value:.1%}" if name == "mape" else f"{value:.3f}"
    if kind == "count":
        return f"{value:,}"
    if kind == "batches":
        return batch_range(value)
    if kind == "time":
        return value[:10] if narrow else value[:16].replace("T", " ")
    if kind == "record":
        # in thousands: four full numbers made the UI's table wider than a 1400 px window
        return " · ".join(f"{k} {v / 1000:,.0f}k" for k, v in sorted(value.items()))
    return str(value)


def batch_range(batches: list[int]) -> str:
    """1-5 for a run of three or more, else 1,3."""
    if batches == list(range(batches[0], batches[-1] + 1)) and len(batches) > 2:
        return f"{batches[0]}-{batches[-1]}"
    return ",".join(map(str, batches))


def _iso(millis: int | None) -> str | None:
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="seconds") if millis else None
