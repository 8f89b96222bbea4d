"""What the steps of one run share: a round's states, and the :class:`Pipeline` — settings, the
data DB, the source, one MLflow client, and what one step hands the next in memory (so that a
step run in the same process need not read or parse again what the previous one just wrote).

Every hand-over is an optimisation only: a step whose entry is missing (another process, a
crash between steps, an Airflow task) reads what it needs from the data DB instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from mlops_cli.store import meta
from mlops_cli.store.db import engine_for

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from sqlalchemy.engine import Engine

    from mlops_cli.config import Settings
    from mlops_cli.pipeline.clean import CleanResult
    from mlops_cli.pipeline.sources import DataSource
    from mlops_cli.registry.client import TrackingClient
    from mlops_cli.registry.light import LightRegistry

Progress = Callable[[str], None]
# The order a round's state moves through (a task advances a round up to its own state)::
#
#   fetched → stored → schema_checked → quality_checked → cleaned → validated → decided ─┬──→ done
#                                                                   └→ trained → compared → done
ORDER = (
    "fetched",
    "stored",
    "schema_checked",
    "quality_checked",
    "cleaned",
    "validated",
    "decided",
    "trained",
    "compared",
    "done",
)
FINAL_STATES = frozenset({"done", "duplicate", "empty", "rejected", "skipped"})
# Rounds whose rows count in decisions (the others brought none).
COUNTED = ORDER[ORDER.index("cleaned") :]


@dataclass(kw_only=True)
class SeenHashes:
    """The sorted ``row_hash`` of every clean row of the rounds up to ``upto``: what a new round
    is deduplicated against, kept between rounds so that each reads only the rows added since."""

    upto: int
    values: np.ndarray
    complete: bool = True  # False: rounds after ``upto`` were included too (never cached)


@dataclass(kw_only=True)
class Checked:
    """A round's quality check, handed to its cleaning: the rules' verdict on its raw rows and the
    hashes it was deduplicated against."""

    result: CleanResult
    seen: SeenHashes


@dataclass(kw_only=True)
class Pipeline:
    """What one run of the engine shares between steps: settings, the data DB, the source, one
    MLflow client, the hand-overs between steps of this process."""

    settings: Settings
    engine: Engine
    reload_api: bool = True
    actor: str = "pipeline"
    progress: Progress | None = None
    warnings: list[str] = field(default_factory=list)
    followed: bool = False  # the source is the dataset's own, not the configured one
    answers: dict[int, Any] = field(default_factory=dict)  # fetch → store: the rows received
    # store → quality check: the raw rows written, as reading them back would give them
    stored: dict[int, pd.DataFrame] = field(default_factory=dict)
    checked: dict[int, Checked] = field(default_factory=dict)  # quality check → clean
    seen: SeenHashes | None = None  # clean rows' hashes so far (see checks.seen_hashes)
    # train → compare: the test rows a round's training read (the comparison uses the same rows)
    test_sets: dict[int, pd.DataFrame] = field(default_factory=dict)

    @cached_property
    def source(self) -> DataSource:
        from mlops_cli.pipeline.sources import open_source

        return open_source(self.settings)

    @cached_property
    def mlflow(self) -> tuple[TrackingClient, str]:
        """One MLflow client (and our experiment's id) per run, not one per step."""
        from mlops_cli.registry.client import tracking

        return tracking(self.settings)

    @property
    def client(self) -> TrackingClient:
        return self.mlflow[0]

    @cached_property
    def registry(self) -> LightRegistry:
        """Aliases, tags and versions read and moved without MLflow's client (see registry.light)."""
        from mlops_cli.registry.light import LightRegistry

        return LightRegistry(self.settings)

    @cached_property
    def dataset_id(self) -> str:
        with self.engine.connect() as conn:
            return meta.dataset_id(conn)

    def say(self, text: str) -> None:
        if self.progress:
            self.progress(text)


def open_pipeline(settings: Settings, **options: Any) -> Pipeline:
    return Pipeline(settings=settings, engine=engine_for(settings), **options)


def with_parts(r: dict[str, Any], **parts: Any) -> dict[str, Any]:
    """Round ``r``'s validation report with ``parts`` written (each step writes its own parts)."""
    return {**(r.get("validation") or {}), **parts}
