"""``promotions``: every move of the champion, written before the registry is changed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select

from mlops_cli.store.tables import now, promotions

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine


def record_promotion(conn: Connection, **fields: Any) -> None:
    conn.execute(insert(promotions).values(at=now(), **fields))


def promotion_rows(engine: Engine, model_name: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = (
            conn.execute(select(promotions).where(promotions.c.model_name == model_name).order_by(promotions.c.id))
            .mappings()
            .all()
        )
    return [dict(row) for row in rows]
