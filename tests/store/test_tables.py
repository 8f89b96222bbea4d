"""The data DB's tables as declared: what a dataset is made of, and its clock."""

from __future__ import annotations

from datetime import UTC, datetime

from mlops_cli.schema import LISTING_FIELDS, TARGET
from mlops_cli.store.tables import DATASET_TABLES, SCHEMA_VERSION, clean_data, inference_events, now, raw_data


def test_listing_tables_hold_the_contract_columns_and_raw_keeps_what_else_came() -> None:
    for table in (raw_data, clean_data):
        assert {*LISTING_FIELDS, TARGET} <= set(table.c.keys()), table.name
    assert "extra" in raw_data.c and raw_data.c.extra.nullable and "extra" not in clean_data.c
    assert int(SCHEMA_VERSION) >= 5


def test_a_restart_wipes_the_dataset_but_never_the_served_traffic() -> None:
    names = {table.name for table in DATASET_TABLES}
    assert {"raw_data", "clean_data", "batch_log"} <= names and inference_events.name not in names


def test_the_clock_is_utc() -> None:
    stamp = now()
    assert stamp.tzinfo is not None and abs((stamp - datetime.now(UTC)).total_seconds()) < 5
