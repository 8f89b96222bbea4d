"""A registered version declared once: every view reads the same fields."""

from __future__ import annotations

from types import SimpleNamespace

from mlops_cli.registry.info import KINDS, LABELS, LISTED, LISTED_WIDE, ModelInfo, batch_range, cell


def _version(**tags: str) -> SimpleNamespace:
    return SimpleNamespace(
        name="house_prices",
        version="7",
        run_id="abc",
        creation_timestamp=1_764_900_000_000,
        source="models:/m-1",
        description="",
        tags=tags,
    )


def test_a_version_reads_its_values_from_the_tags_training_wrote() -> None:
    mv = _version(
        rmse="123456.5", mae="80000.0", r2="0.71", batches="1,2,3", rows_train="900", round="4",
        model_type="lgbm_geo", dataset="d1", validation_rmse_linear="150000.0", validation_rmse_lgbm_geo="120000.0",
    )  # fmt: skip
    info = ModelInfo.of(mv, {7: ["champion", "a"]})
    assert (info.version, info.aliases, info.model_type) == (7, ["a", "champion"], "lgbm_geo")
    assert (info.rmse, info.mae, info.r2, info.mape) == (123456.5, 80000.0, 0.71, None)
    assert (info.batches, info.rows_train, info.rows_test, info.round) == ([1, 2, 3], 900, None, 4)
    assert info.validation_rmse == {"linear": 150000.0, "lgbm_geo": 120000.0}
    assert info.created == "2025-12-05T02:00:00+00:00" and info.description is None
    # --json carries every declared field, nothing else
    assert list(info.to_dict()) == list(LABELS)


def test_a_version_without_our_tags_is_listed_with_blanks() -> None:
    info = ModelInfo.of(_version(batches="x,", rows_train="many"), {})
    assert info.aliases == [] and info.batches == [] and info.rows_train is None and info.model_type is None
    assert [cell(name, getattr(info, name)) for name in ("rmse", "batches", "rows_train", "aliases")] == ["-"] * 4


def test_each_kind_reads_as_people_read_it() -> None:
    assert cell("version", 7) == "v7"
    assert cell("rmse", 123456.5) == "$123,456" and cell("rmse", 123456.5, narrow=True) == "123,456"
    assert cell("r2", 0.71234) == "0.712" and cell("mape", 0.1234) == "12.3%"
    assert cell("rows_train", 12345) == "12,345"
    assert cell("created", "2026-12-05T14:52:01+00:00") == "2026-12-05 14:52"
    assert cell("created", "2026-12-05T14:52:01+00:00", narrow=True) == "2026-12-05"
    assert cell("validation_rmse", {"linear": 150_400.0, "hgb": 99_900.0}) == "hgb 100k · linear 150k"
    assert cell("aliases", ["champion"]) == "champion" and cell("aliases", [], empty="—") == "—"
    assert batch_range([1, 2, 3, 4]) == "1-4" and batch_range([1, 3]) == "1,3" and batch_range([2, 3]) == "2,3"


def test_the_tables_are_the_listed_fields_in_declaration_order() -> None:
    assert LISTED[:3] == ("version", "aliases", "model_type") and "rmse_today" in LISTED
    # the UI's adds MAE and R² after today's RMSE, and the candidates' validation scores last
    assert [name for name in LISTED_WIDE if name not in LISTED] == ["mae", "r2", "validation_rmse"]
    assert LISTED_WIDE.index("mae") == LISTED_WIDE.index("rmse_today") + 1
    assert all(KINDS[name] != "record" for name in LISTED)  # structured parts do not fit a terminal
