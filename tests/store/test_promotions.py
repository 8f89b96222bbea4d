"""Every move of the champion, recorded in order, per model."""

from __future__ import annotations

from pathlib import Path

from mlops_cli.config import load_settings
from mlops_cli.store.db import engine_for
from mlops_cli.store.promotions import promotion_rows, record_promotion


def test_moves_read_back_oldest_first_for_their_model_only(home: Path) -> None:
    engine = engine_for(load_settings())
    with engine.begin() as conn:
        record_promotion(conn, model_name="house_prices", action="promote", new_version=1, actor="loop")
        record_promotion(conn, model_name="other", action="promote", new_version=9, actor="me")
        record_promotion(
            conn, model_name="house_prices", action="rollback", old_version=2, new_version=1, old_rmse=5.0, actor="me"
        )
    rows = promotion_rows(engine, "house_prices")
    assert [(r["action"], r["new_version"]) for r in rows] == [("promote", 1), ("rollback", 1)]
    assert rows[1]["old_rmse"] == 5.0 and rows[0]["at"] <= rows[1]["at"]
