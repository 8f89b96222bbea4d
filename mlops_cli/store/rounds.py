"""Rounds (``batch_log``: one row per answer of the source, with its durable state), the answer
bodies written ahead of everything else, and the writer-lock fence every round update checks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select

from mlops_cli.errors import StorageError
from mlops_cli.store.frames import _mappings
from mlops_cli.store.tables import CHUNK_BYTES, answer_chunks, batch_log, mlops_meta

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine


def write_body(conn: Connection, round_id: int, body: bytes) -> None:
    import zlib

    packed = zlib.compress(body, 1)  # level 1: ~8x smaller on listings' JSON, at memory speed
    conn.execute(
        insert(answer_chunks),
        [
            {"round": round_id, "seq": seq, "data": packed[start : start + CHUNK_BYTES]}
            for seq, start in enumerate(range(0, max(len(packed), 1), CHUNK_BYTES))
        ],
    )


def read_body(conn: Connection, round_id: int) -> bytes | None:
    import zlib

    chunks = conn.execute(
        select(answer_chunks.c.data).where(answer_chunks.c.round == round_id).order_by(answer_chunks.c.seq)
    ).scalars()
    packed = b"".join(bytes(chunk) for chunk in chunks)
    return zlib.decompress(packed) if packed else None


def drop_body(conn: Connection, round_id: int) -> None:
    conn.execute(delete(answer_chunks).where(answer_chunks.c.round == round_id))


# The fences this process holds, by data DB URL (innermost last): epoch and lock.
_fences: dict[str, list[tuple[int, Any]]] = {}


def check_fence(conn: Connection) -> None:
    """Inside a transaction about to write: raise :class:`LockLost` unless this process still holds
    the data DB's writer lock. The epoch row is read FOR UPDATE, so a writer taking the lock now
    waits for this transaction, and this one sees any epoch taken before it."""
    from mlops_cli.errors import LockLost

    held = _fences.get(str(conn.engine.url))
    if not held:
        return
    epoch, lock = held[-1]
    query = select(mlops_meta.c.value).where(mlops_meta.c.key == "writer_epoch").with_for_update()
    ours = conn.execute(query).scalar() == str(epoch)  # the row stays locked: nobody takes the epoch now
    # a dropped lock connection is a transient fault when nobody took the lock since: take it again
    if not ours or not (lock.holds() or lock.regain()):
        raise LockLost(
            "lost the data DB's writer lock (its connection was dropped): another run may have started; "
            "nothing more was written",
            hint="rerun the same command to resume",
        )


def fences_of(engine: Engine) -> list[tuple[int, Any]]:
    """The writer-lock fences this process holds on ``engine``'s data DB (innermost last)."""
    return _fences.setdefault(str(engine.url), [])


def plain(value: Any) -> Any:
    """A JSON column's value as every backend takes it: numpy numbers as Python ones, and NaN or
    infinity as null (PostgreSQL's JSON refuses them, SQLite would keep a non-standard token)."""
    import math

    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # a numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


_JSON = frozenset(c.name for c in batch_log.columns if c.type.__class__.__name__ == "JSON")


def _fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: plain(v) if k in _JSON else v for k, v in fields.items()}


def add_round(conn: Connection, **fields: Any) -> int:
    """Insert a round (one answer of the source); returns its id. Only while this writer holds the lock."""
    check_fence(conn)
    return int(conn.execute(insert(batch_log).values(**_fields(fields))).inserted_primary_key[0])


def update_round(conn: Connection, round_id: int, **fields: Any) -> None:
    """Advance a round, inside the step's transaction: only while this writer holds the lock."""
    from sqlalchemy import update

    check_fence(conn)
    conn.execute(update(batch_log).where(batch_log.c.id == round_id).values(**_fields(fields)))


def get_round(bind: Engine | Connection, round_id: int) -> dict[str, Any]:
    rows = _mappings(bind, select(batch_log).where(batch_log.c.id == round_id))
    if not rows:
        raise StorageError(f"round {round_id} is not in the batch log")
    return dict(rows[0])


def batch_log_rows(engine: Engine) -> list[dict[str, Any]]:
    """Every round, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(select(batch_log).order_by(batch_log.c.id)).mappings().all()
    return [dict(row) for row in rows]


def last_batch(conn: Connection) -> int | None:
    """The highest batch number any round holds."""
    from sqlalchemy import func

    return conn.execute(select(func.max(batch_log.c.batch))).scalar()


def recorded_batches(conn: Connection) -> set[int]:
    return set(conn.execute(select(batch_log.c.batch).distinct()).scalars())


def round_ids(engine: Engine, *, not_in: tuple[str, ...] = (), after: int | None = None) -> list[int]:
    """Ids of the rounds (oldest first): every one, those not in the states ``not_in``, or those
    after round ``after``."""
    query = select(batch_log.c.id).order_by(batch_log.c.id)
    if not_in:
        query = query.where(batch_log.c.state.not_in(not_in))
    if after is not None:
        query = query.where(batch_log.c.id > after)
    with engine.connect() as conn:
        return list(conn.execute(query).scalars())


def last_round_id(engine: Engine) -> int:
    from sqlalchemy import func

    with engine.connect() as conn:
        return int(conn.execute(select(func.max(batch_log.c.id))).scalar() or 0)


def rounds_of(engine: Engine, ids: list[int]) -> list[dict[str, Any]]:
    """The rounds ``ids``, oldest first."""
    return [
        dict(row)
        for row in _mappings(engine, select(batch_log).where(batch_log.c.id.in_(ids)).order_by(batch_log.c.id))
    ]


def rounds_of_batch(engine: Engine, batch: int) -> list[dict[str, Any]]:
    """Every round (answer) of batch number ``batch``, oldest first."""
    query = select(batch_log).where(batch_log.c.batch == batch).order_by(batch_log.c.id)
    return [dict(row) for row in _mappings(engine, query)]


def skipped_round_ids(engine: Engine, batches: list[int]) -> list[int]:
    """The rounds recorded as ``skipped`` (never served) for these batch numbers."""
    query = select(batch_log.c.id).where(batch_log.c.batch.in_(batches), batch_log.c.state == "skipped")
    with engine.connect() as conn:
        return list(conn.execute(query).scalars())


def counted_rounds(conn: Connection, upto: int, states: tuple[str, ...]) -> list[Any]:
    """(id, rows_kept, rows_train, rows_test, retrained) of the rounds up to ``upto`` in ``states``:
    what the retraining decision counts."""
    c = batch_log.c
    query = select(c.id, c.rows_kept, c.rows_train, c.rows_test, c.retrained).where(
        batch_log.c.id <= upto, batch_log.c.state.in_(states)
    )
    return list(conn.execute(query).all())
