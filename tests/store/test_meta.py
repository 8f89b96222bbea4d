"""The data DB's key/value record: the dataset, its first schema, drift references, remembered scores."""

from __future__ import annotations

from pathlib import Path

from mlops_cli.config import load_settings
from mlops_cli.store import meta
from mlops_cli.store.db import engine_for
from mlops_cli.store.promotions import promotion_rows, record_promotion


def test_keys_are_set_updated_deleted_and_a_restart_forgets_only_the_datasets(home: Path) -> None:
    engine = engine_for(load_settings())
    with engine.begin() as conn:
        meta.start_dataset(
            conn, dataset="d1", kind="generator", identity="gen seed=1", setting="generator", created="t"
        )
        meta.set_first_schema(conn, {"columns": ["price"]})
        meta.set_drift_reference(conn, 3, '{"numbers": {}}')
        meta.remember_metrics(conn, "run1", "40-abc", {"rmse": 1.5, "mae": float("nan")})
        meta.set_meta(conn, writer_epoch="7")
        record_promotion(conn, model_name="house_prices", action="promote", new_version=2, actor="me")
    with engine.begin() as conn:
        assert meta.dataset_id(conn) == "d1" and meta.dataset_source(conn) == ("gen seed=1", "generator")
        assert meta.first_schema(conn) == {"columns": ["price"]} and meta.drift_reference(conn, 3) == '{"numbers": {}}'
        remembered = meta.remembered_metrics(conn, "run1", "40-abc")
        assert remembered["rmse"] == 1.5 and remembered["mae"] != remembered["mae"], "NaN kept as NaN"
        assert meta.remembered_metrics(conn, "run1", "other-set") is None
        meta.set_meta(conn, writer_epoch="8")
        assert meta.get_meta(conn, "writer_epoch") == "8"
        meta.wipe_dataset(conn)
    with engine.connect() as conn:
        assert meta.first_schema(conn) is None and meta.drift_reference(conn, 3) is None
        assert meta.remembered_metrics(conn, "run1", "40-abc") is None
        assert meta.get_meta(conn, "writer_epoch") == "8", "the lock's record is not the dataset's"
    assert [p["new_version"] for p in promotion_rows(engine, "house_prices")] == [2], "promotions stay"
    with engine.begin() as conn:
        meta.set_meta(conn, writer_epoch=None)
        assert meta.get_meta(conn, "writer_epoch") is None
