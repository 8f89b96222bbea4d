"""The data DB's tables: rows as received (``raw_data``) and cleaned (``clean_data``), the round
log (``batch_log``), the answer bodies, ``promotions``, a little metadata (``mlops_meta``) and what
the inference API answered (``inference_events``).

Every table of mlops is declared here, and only the store package reads or writes them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.mysql import LONGBLOB

from mlops_cli.schema import CLEAN_COLUMNS, COLUMNS, EXTRA, NUMERIC, TEXT_WIDTH

metadata = MetaData()
# Bumped whenever a table changes shape: an older data DB is refused with a hint, never misread.
SCHEMA_VERSION = "5"  # 5: raw_data.extra (nullable: added in place, see store.db)
# Answer bodies are stored compressed, in chunks well under MySQL's default max_allowed_packet.
CHUNK_BYTES = 4 * 1024 * 1024

BigBlob = LargeBinary().with_variant(LONGBLOB(), "mysql", "mariadb")


def _listing_columns(names: list[str], text_type: Any) -> list[Column]:
    # Double, not Float: MySQL's FLOAT is single precision and would round prices.
    return [Column(n, Double if n in NUMERIC else text_type) for n in names]


# Rows as received (typed, ids and names normalised), text never truncated: a value too long
# for clean_data is dropped in cleaning with a counted reason, on every backend.
raw_data = Table(
    "raw_data",
    metadata,
    *_listing_columns(COLUMNS, Text()),
    Column("batch", Integer, nullable=False),
    Column("round", Integer, nullable=False),
    # The row's values of columns beyond the contract, as one JSON object (None: it had none).
    Column(EXTRA, Text(), nullable=True),
    Index("ix_raw_data_batch", "batch"),
)
clean_data = Table(
    "clean_data",
    metadata,
    *_listing_columns(CLEAN_COLUMNS, String(TEXT_WIDTH)),
    Column("batch", Integer, nullable=False),
    Column("round", Integer, nullable=False),
    Column("split", String(8), nullable=False),
    # The row's content hash (pandas' hash of the listing columns, as a signed 64-bit value):
    # cleaning deduplicates a new round against this one column instead of every stored row.
    Column("row_hash", BigInteger, nullable=False),
    Index("ix_clean_data_batch", "batch"),
    Index("ix_clean_data_round", "round"),
)
# One row per answer of the source (a *round*): a batch number answered twice has two rounds.
# ``state`` is the round's durable progress, advanced in the same transaction as each step's
# output; a rerun resumes every round that is not in a final state.
batch_log = Table(
    "batch_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("batch", Integer, nullable=False, index=True),
    Column("state", String(16), nullable=False),
    Column("received_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("source", String(255)),
    Column("answer_bytes", BigInteger),
    Column("answer_sha256", String(64)),
    Column("rows_received", Integer),
    Column("rows_new", Integer),
    Column("rows_kept", Integer),
    Column("rows_dropped", Integer),
    Column("dropped", JSON),
    Column("rows_train", Integer),
    Column("rows_test", Integer),
    Column("new_rows", Integer),
    Column("total_rows", Integer),
    Column("new_share", Float),
    Column("drift_score", Float),
    Column("drift", JSON),
    Column("retrained", Boolean),
    Column("run_id", String(64)),
    Column("version", Integer),
    Column("rmse", Float),
    Column("promoted", Boolean),
    Column("champion_version", Integer),
    Column("error", Text),
    # The round's audit record (schema 4), each part written by the step that decides it; the
    # sentences people read are rendered from these, never stored (see pipeline/records.py).
    Column("validation", JSON),  # schema, quality, volume, drift, new categories, sufficiency
    Column("champion_on_batch", JSON),  # the champion's error on this round's rows, before training
    Column("decision", JSON),  # retrain or not: the cause and every trigger with value and threshold
    Column("training", JSON),  # trained, adopted, reused or unchanged; the version and its metrics
    Column("promotion", JSON),  # the rule, both versions' metrics, the deltas, the deciding clause
    sqlite_autoincrement=True,  # round ids are never reused, not even after a --restart
)
# The body of every data API answer, as received (zlib), written before anything else runs.
answer_chunks = Table(
    "answer_chunks",
    metadata,
    Column("round", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("data", BigBlob, nullable=False),
)
promotions = Table(
    "promotions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(32), nullable=False),
    Column("model_name", String(128), nullable=False),
    Column("old_version", Integer),
    Column("new_version", Integer, nullable=False),
    Column("old_rmse", Float),
    Column("new_rmse", Float),
    Column("test_rows", Integer),
    Column("note", String(255)),
    Column("round", Integer),  # the pipeline round that decided it (None: manual)
    Column("rule", String(255)),  # the promotion rule it was decided by (schema 4)
    Column("detail", JSON),  # both versions' metrics, the deltas, each clause's verdict
)
# Small facts about the dataset as a whole: schema version, its source, who writes it.
mlops_meta = Table(
    "mlops_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text),
)
# Raw domain, serving side: one row per listing the inference API was asked to price (one row per
# request when the body was refused before it held listings). Written in bulk, off the request's
# path, by the API's event writer (serving/events.py); not part of the dataset: `mlops train
# --restart` keeps it, and MLOPS_API_EVENTS_RETENTION_DAYS ages it out.
inference_events = Table(
    "inference_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False, index=True),
    Column("received_at", DateTime(timezone=True), nullable=False, index=True),
    Column("endpoint", String(32), nullable=False),
    Column("status", Integer, nullable=False),  # what the client saw (499: it hung up first)
    Column("error_kind", String(32)),  # too_large, media_type, invalid, unavailable, internal, ...
    Column("error", Text),  # the answer's detail, cut to ERROR_CHARS
    Column("model_name", String(128)),
    Column("model_version", Integer),
    Column("model_alias", String(64)),
    Column("model_path", String(16)),  # fast, trees or pyfunc
    Column("latency_ms", Double),  # the whole request, as the API's latency histogram sees it
    Column("item", Integer),  # the listing's index in its request (None: no listing was read)
    Column("listing", Text),  # the listing as received (JSON); a refused body's excerpt
    Column("prediction", Double),
    Column("unseen", String(255)),  # JSON list of the text fields the model never saw in training
    # the challenger's price of the same listing, computed in shadow after the answer was sent
    Column("shadow_version", Integer),
    Column("shadow_prediction", Double),
    Column("shadow_ms", Double),  # the challenger's time to price the request's listings
)
DATASET_TABLES = (raw_data, clean_data, batch_log, answer_chunks)


def now() -> datetime:
    return datetime.now(UTC)
