"""The dataset a data DB holds: one source per dataset, followed when none is named, started again on
--restart, inference events aged out by the loop."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from mlops_cli.config import load_settings
from mlops_cli.errors import SourceChanged
from mlops_cli.pipeline.dataset import age_out_events, claim_dataset, restart_dataset
from mlops_cli.pipeline.engine import fetch, open_pipeline
from mlops_cli.store import meta
from mlops_cli.store.events import count_events, write_events
from mlops_cli.store.rounds import round_ids
from mlops_cli.store.tables import now
from tests.conftest import event_row


def _pipe(**settings: object):
    pipe = open_pipeline(load_settings(generator_batches=2, generator_batch_rows=50, **settings), reload_api=False)
    claim_dataset(pipe)
    return pipe


def test_a_data_db_keeps_one_source_and_a_named_other_one_is_refused(home: Path) -> None:
    first = _pipe(generator_seed=1)
    with first.engine.connect() as conn:
        identity, setting = meta.dataset_source(conn)
    assert identity == first.source.identity() and setting == "generator" and first.dataset_id
    claim_dataset(first)  # the same source again: the same dataset
    assert _pipe(generator_seed=1).dataset_id == first.dataset_id
    with pytest.raises(SourceChanged, match="--restart"):
        _pipe(generator_seed=2, data_source="generator")


def test_restart_forgets_the_stored_rows_and_starts_a_new_dataset(home: Path) -> None:
    pipe = _pipe()
    fetch(pipe, 0)
    before = pipe.dataset_id
    assert round_ids(pipe.engine)
    restart_dataset(pipe)
    assert round_ids(pipe.engine) == [] and pipe.dataset_id not in ("", before)


def test_events_older_than_the_retention_go_and_none_go_with_zero_days(home: Path) -> None:
    pipe = _pipe(api_events_retention_days=7)
    write_events(
        pipe.engine, [event_row("old", now() - timedelta(days=8)), event_row("new", now() - timedelta(days=6))]
    )
    assert age_out_events(pipe) == 1 and count_events(pipe.engine) == 1
    keep = _pipe(api_events_retention_days=0)
    write_events(keep.engine, [event_row("older", now() - timedelta(days=800))])
    assert age_out_events(keep) == 0 and count_events(keep.engine) == 2
