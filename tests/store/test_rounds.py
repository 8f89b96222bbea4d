"""Rounds: one row per answer with its durable state, bodies written ahead, JSON kept portable."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from mlops_cli.config import load_settings
from mlops_cli.errors import StorageError
from mlops_cli.store import rounds
from mlops_cli.store.db import engine_for
from mlops_cli.store.tables import CHUNK_BYTES, now


def test_a_round_is_added_advanced_and_read_back_with_its_json_made_portable(home: Path) -> None:
    engine = engine_for(load_settings())
    with engine.begin() as conn:
        first = rounds.add_round(conn, batch=0, state="fetched", received_at=now())
        second = rounds.add_round(conn, batch=2, state="fetched", received_at=now())
        rounds.update_round(conn, first, state="done", validation={"psi": np.float64(0.25), "bad": math.inf})
        assert rounds.last_batch(conn) == 2 and rounds.recorded_batches(conn) == {0, 2}
    got = rounds.get_round(engine, first)
    assert got["state"] == "done" and got["validation"] == {"psi": 0.25, "bad": None}
    assert rounds.round_ids(engine) == [first, second]
    assert rounds.round_ids(engine, not_in=("done",)) == [second] and rounds.round_ids(engine, after=first) == [second]
    assert [r["id"] for r in rounds.rounds_of_batch(engine, 2)] == [second]
    with pytest.raises(StorageError, match="round 99 is not in the batch log"):
        rounds.get_round(engine, 99)


def test_a_body_larger_than_a_chunk_reads_back_whole_and_is_dropped(home: Path) -> None:
    engine = engine_for(load_settings())
    body = os.urandom(CHUNK_BYTES + 1000)  # random bytes do not compress: two chunks
    with engine.begin() as conn:
        rounds.write_body(conn, 5, body)
        rounds.write_body(conn, 6, b"")
    with engine.begin() as conn:
        assert rounds.read_body(conn, 5) == body and rounds.read_body(conn, 6) == b""
        rounds.drop_body(conn, 5)
        assert rounds.read_body(conn, 5) is None
