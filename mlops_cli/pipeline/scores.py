"""Versions scored on today's test set: the stored test rows known by their hashes, and every
score remembered in the data DB under the version's run and the rows' fingerprint (a version and
a test set never change, so neither do their scores)."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from mlops_cli.errors import ModelRefused, RegistryError
from mlops_cli.registry.light import LightRegistry
from mlops_cli.store import listings, meta
from mlops_cli.store.db import engine_for

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Engine

    from mlops_cli.config import Settings


class TestSet:
    """The stored test rows (of rounds up to ``up_to_round``), the set every comparison uses,
    known by their stored hashes: the rows themselves are read only for a score not remembered
    (so `promote`/`rollback` on remembered scores read neither rows nor models)."""

    def __init__(self, engine: Engine | None = None, up_to_round: int | None = None, rows: pd.DataFrame | None = None):
        self._engine, self._upto = engine, up_to_round
        if rows is not None:
            self.__dict__["rows"] = rows

    @classmethod
    def of(cls, test: TestSet | pd.DataFrame) -> TestSet:
        return test if isinstance(test, TestSet) else cls(rows=test)

    @cached_property
    def hashes(self) -> list[int]:
        if "rows" in self.__dict__:
            rows = self.rows
            return rows["row_hash"].tolist() if "row_hash" in rows.columns else []
        return listings.test_hashes(self._engine, self._upto)

    @cached_property
    def rows(self) -> pd.DataFrame:
        return listings.test_rows(self._engine, self._upto)

    @property
    def fingerprint(self) -> str | None:
        """Which rows it holds (their stored hashes), in 24 characters; None without hashes."""
        return _fingerprint_of(self.hashes)

    def __len__(self) -> int:
        return len(self.rows) if "rows" in self.__dict__ else len(self.hashes)


def current_test_set(engine: Engine, up_to_round: int | None = None) -> TestSet:
    """Today's test set (of the rounds up to ``up_to_round``), its rows read when needed."""
    return TestSet(engine, up_to_round)


def _fingerprint_of(hashes: list[int]) -> str | None:
    import hashlib

    if not hashes:
        return None
    digest = hashlib.sha256(",".join(map(str, sorted(int(h) for h in hashes))).encode()).hexdigest()
    return f"{len(hashes)}-{digest[:16]}"


def cached_metrics(
    settings: Settings, engine: Engine | None, version: int, run_id: str | None, test: TestSet | pd.DataFrame
) -> dict[str, float]:
    """MAE, RMSE, MAPE and R² of ``version`` on ``test``, remembered in the data DB: a version (its
    run) and a test set (its rows) never change, so neither do the scores — promote, rollback,
    `models list` and the UI reuse them instead of loading the model again."""
    test = TestSet.of(test)
    remembered = engine is not None and run_id and (fingerprint := test.fingerprint)
    if remembered:
        with engine.connect() as conn:
            known = meta.remembered_metrics(conn, run_id, fingerprint)
        if known is not None:
            return known
    from mlops_cli.registry.scoring import metrics_on  # numpy and the model: only when not remembered

    values = metrics_on(settings, version, rows := test.rows)
    # kept under the rows scored: test rows added since the hashes were read have their own key
    scored = _fingerprint_of(rows["row_hash"].tolist()) if "row_hash" in rows.columns else None
    if remembered and scored:
        with engine.begin() as conn:
            meta.remember_metrics(conn, run_id, scored, values)
    return values


def cached_rmse(
    settings: Settings, engine: Engine | None, version: int, run_id: str | None, test: TestSet | pd.DataFrame
) -> float:
    return cached_metrics(settings, engine, version, run_id, test)["rmse"]


def scores_today(settings: Settings, runs: dict[int, str], compute: bool = False) -> dict[int, float]:
    """RMSE of each version (version -> run id) on today's test set: the remembered ones only
    (reading just the test rows' hashes, no model loaded), or with ``compute`` every one."""
    engine = engine_for(settings)
    if compute:
        test = current_test_set(engine)
        return {v: cached_rmse(settings, engine, v, run, test) for v, run in runs.items()} if len(test) else {}
    fingerprint = current_test_set(engine).fingerprint
    if fingerprint is None:
        return {}
    with engine.connect() as conn:
        found = {v: meta.remembered_metrics(conn, run, fingerprint) for v, run in runs.items() if run}
    return {v: scores["rmse"] for v, scores in found.items() if scores is not None}


def rmse_today(settings: Settings, version: int, run_id: str | None) -> float | None:
    """`mlops models show`: one version's remembered RMSE on today's test set; None when none is
    remembered or the data DB cannot be read (showing a version needs the registry only)."""
    from mlops_cli.errors import MlopsError

    if not run_id:
        return None
    try:
        return scores_today(settings, {version: run_id}).get(version)
    except MlopsError:
        return None


def versions_today(settings: Settings, compute: bool = False) -> list[dict[str, Any]]:
    """`mlops models list`: every registered version (registry/info.py's fields) with its RMSE on
    today's test set — remembered ones only, or with ``compute`` every one."""
    from mlops_cli.registry.models import list_versions

    versions = list_versions(settings)
    today = scores_today(settings, {v["version"]: v["run_id"] for v in versions}, compute=compute)
    return [{**v, "rmse_today": today.get(v["version"])} for v in versions]


def metrics_today(settings: Settings, versions: list[int]) -> tuple[dict[int, dict[str, float]], int]:
    """Every metric of each version on today's test set: `mlops models compare`. Each version's
    signature is checked first (a refused one is never scored); remembered scores load nothing."""
    from mlops_cli.registry.signing import unsigned_reason

    engine = engine_for(settings)
    test = current_test_set(engine)
    if not len(test):
        raise RegistryError("no test rows stored: nothing to compare on", hint="train at least one batch first")
    registry = LightRegistry(settings)
    scores = {}
    for number in versions:
        version = registry.version(number)
        refused = unsigned_reason(settings, version, registry)
        if refused is not None:
            raise ModelRefused(f"refused {settings.model_name} {refused}")
        scores[number] = cached_metrics(settings, engine, number, version.run_id, test)
    return scores, len(test)
