"""What one run shares between steps: the states in order, the source opened when first asked."""

from __future__ import annotations

from pathlib import Path

from mlops_cli.config import load_settings
from mlops_cli.pipeline.context import COUNTED, FINAL_STATES, ORDER, open_pipeline, with_parts


def test_the_states_run_in_one_order_and_rows_count_from_cleaned_on() -> None:
    assert ORDER[0] == "fetched" and ORDER[-1] == "done" and len(set(ORDER)) == len(ORDER)
    assert ORDER.index("schema_checked") < ORDER.index("quality_checked") < ORDER.index("cleaned")
    assert COUNTED == ("cleaned", "validated", "decided", "trained", "compared", "done")
    assert FINAL_STATES & set(ORDER) == {"done"}


def test_a_step_writes_its_part_of_the_report_and_keeps_the_others() -> None:
    r = {"validation": {"schema": {"ok": True}, "quality": {"nulls": 1}}}
    assert with_parts(r, quality={"nulls": 2}, volume=10) == {
        "schema": {"ok": True},
        "quality": {"nulls": 2},
        "volume": 10,
    }
    assert with_parts({"validation": None}, drift=0.1) == {"drift": 0.1}


def test_the_source_is_the_settings_one_opened_once_and_progress_is_said(home: Path) -> None:
    said: list[str] = []
    pipe = open_pipeline(load_settings(generator_seed=9), progress=said.append, reload_api=False)
    assert pipe.source is pipe.source and pipe.source.identity().startswith("generator seed=9")
    assert pipe.dataset_id == "", "no dataset claimed yet"
    pipe.say("batch 0: stored")
    assert said == ["batch 0: stored"]
    open_pipeline(load_settings()).say("nobody listens")  # without progress: nothing, no error
