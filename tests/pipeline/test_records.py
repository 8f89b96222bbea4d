"""The batch record is the one field list: the JSON a script reads and the UI's batch table are
derived from it, so neither can miss a field or keep one the record dropped."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from mlops_cli.config import load_settings
from mlops_cli.pipeline.records import KINDS, LABELS, SHOWN_FIELDS, SUMMARY_FIELDS, BatchRecord, of_kind


def test_every_field_says_how_it_reads_and_the_views_are_the_records_own() -> None:
    names = [f.name for f in fields(BatchRecord)]
    assert set(LABELS) == set(KINDS) == set(names) and all(LABELS.values())
    assert set(SUMMARY_FIELDS) <= set(names) and set(SHOWN_FIELDS) <= set(names)
    assert list(SHOWN_FIELDS) == [n for n in names if n in SHOWN_FIELDS], "the table keeps the record's order"


def test_the_train_json_and_the_ui_table_hold_the_records_fields(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops_cli.pipeline.train import run
    from tests.conftest import small_generator_env
    from ui.data import batches_table

    small_generator_env(monkeypatch, batches=2, rows=300)
    settings = load_settings()
    report = run(settings, reload_api=False)
    summaries = report.to_dict()["batches"]
    assert [list(s) for s in summaries] == [list(SUMMARY_FIELDS)] * 2
    assert summaries[0]["version"] == 1 and summaries[0]["reason"], "values, not just names"
    table = batches_table(settings)
    shown = [c for c in table.columns if c != "why"]
    assert shown[: len(SHOWN_FIELDS)] == list(SHOWN_FIELDS) and "why" in table.columns
    # numbers are formatted (or "—") by the page itself; text the table holds is never None
    worded = [k for k in (*of_kind("text", "version"), "why", "change", "champion_error") if k in table.columns]
    assert {"why", "change", "champion_error", "reason"} <= set(worded)
    assert table["version"].tolist()[0] == "v1" and not table[worded].isna().any().any(), "no None cells"


def test_every_stored_decision_and_outcome_is_a_member_and_every_member_reads_as_a_sentence(home: Path) -> None:
    from mlops_cli.config import load_settings
    from mlops_cli.pipeline.records import Cause, PromotionOutcome, TrainingOutcome, decision_text, outcome_text
    from mlops_cli.pipeline.train import run
    from mlops_cli.store.db import engine_for
    from mlops_cli.store.rounds import batch_log_rows

    settings = load_settings(generator_batches=3, generator_batch_rows=200, model="linear")
    run(settings, reload_api=False)
    rounds = batch_log_rows(engine_for(settings))
    assert {r["decision"]["cause"] for r in rounds} <= set(Cause)
    assert {r["training"]["outcome"] for r in rounds if r["training"]} <= set(TrainingOutcome)
    assert {r["promotion"]["outcome"] for r in rounds if r["promotion"]} <= set(PromotionOutcome)
    for outcome in PromotionOutcome:  # none falls through to its bare name
        assert outcome_text(None, {"outcome": outcome, "why": "x"}) not in ("", str(outcome))
    new_rows = {"name": "new_rows", "value": 0.5, "threshold": 0.2}
    for cause in Cause:  # as decide.py stores each: a trigger fired for TRIGGERED and TOO_FEW_ROWS only
        fired = cause in (Cause.TRIGGERED, Cause.TOO_FEW_ROWS)
        decision = {"cause": cause, "triggers": [{**new_rows, "fired": fired}], "train_rows": 3, "min_train_rows": 20}
        assert decision_text(decision), cause
