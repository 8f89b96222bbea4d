"""``mlops_meta``: small facts about the dataset as a whole, each key written by one function
here (the dataset's identity and source, drift references, remembered metrics, the writer)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import delete, insert, select

from mlops_cli.store.tables import DATASET_TABLES, mlops_meta

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


def get_meta(conn: Connection, key: str) -> str | None:
    return conn.execute(select(mlops_meta.c.value).where(mlops_meta.c.key == key)).scalar()


def set_meta(conn: Connection, **values: str | None) -> None:
    """Create, update or (value None) delete keys of ``mlops_meta``."""
    from sqlalchemy import update

    for key, value in values.items():
        if value is None:
            conn.execute(delete(mlops_meta).where(mlops_meta.c.key == key))
        elif get_meta(conn, key) is None:
            conn.execute(insert(mlops_meta).values(key=key, value=value))
        else:
            conn.execute(update(mlops_meta).where(mlops_meta.c.key == key).values(value=value))


def wipe_dataset(conn: Connection) -> None:
    """Forget every stored row, round and answer body (``--restart``); promotions stay."""
    for table in DATASET_TABLES:
        conn.execute(delete(table))
    for prefix in ("drift_reference:", "metrics:"):  # the key formats of the functions below
        conn.execute(delete(mlops_meta).where(mlops_meta.c.key.like(f"{prefix}%")))
    set_meta(conn, first_schema=None)


# --- the dataset: which source it comes from -------------------------------------------------


def dataset_id(conn: Connection) -> str:
    return get_meta(conn, "dataset_id") or ""


def dataset_source(conn: Connection) -> tuple[str | None, str | None]:
    """The dataset's source: its identity (None: no dataset yet) and the MLOPS_DATA_SOURCE it was
    opened from (None for datasets started before that was recorded)."""
    return get_meta(conn, "source_identity"), get_meta(conn, "source_setting")


def start_dataset(conn: Connection, *, dataset: str, kind: str, identity: str, setting: str, created: str) -> None:
    set_meta(
        conn,
        dataset_id=dataset,
        source_kind=kind,
        source_identity=identity,
        source_setting=setting,  # what to open to follow this dataset later
        dataset_created=created,
    )


def first_schema(conn: Connection) -> dict | None:
    """The columns of the dataset's first answer (what later answers are compared with)."""
    import json

    value = get_meta(conn, "first_schema")
    return None if value is None else json.loads(value)


def set_first_schema(conn: Connection, schema: dict) -> None:
    import json

    set_meta(conn, first_schema=json.dumps(schema))


# --- drift references and remembered scores ----------------------------------------------------


def drift_reference(conn: Connection, round_id: int) -> str | None:
    """The stored summary (JSON) of the training rows of the version trained in ``round_id``."""
    return get_meta(conn, f"drift_reference:{round_id}")


def set_drift_reference(conn: Connection, round_id: int, summary: str) -> None:
    set_meta(conn, **{f"drift_reference:{round_id}": summary})


def remembered_metrics(conn: Connection, run_id: str, test_fingerprint: str) -> dict[str, float] | None:
    """The metrics remembered for a version's run on a test set (by its fingerprint), if any."""
    import json

    value = get_meta(conn, f"metrics:{run_id}:{test_fingerprint}")
    return None if value is None else json.loads(value)


def remember_metrics(conn: Connection, run_id: str, test_fingerprint: str, metrics: dict[str, float]) -> None:
    import json

    set_meta(conn, **{f"metrics:{run_id}:{test_fingerprint}": json.dumps(metrics)})  # NaN written as NaN
