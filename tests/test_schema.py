import pandas as pd
import pytest

from mlops_cli.errors import MalformedBatchError
from mlops_cli.schema import COLUMNS, rows_to_frame

ROW = {
    "price": 250000,
    "bed": 3,
    "bath": 2,
    "acre_lot": 0.2,
    "city": "austin",
    "state": "texas",
    "zip_code": 601.0,
    "house_size": 1500,
}


def test_normalises_ids_case_and_fills_optional_columns() -> None:
    frame = rows_to_frame([{**ROW, "brokered_by": "10481.0", "street": 99.0, "city": "  SAN   juan "}])
    assert list(frame.columns) == COLUMNS
    row = frame.iloc[0]
    assert row["brokered_by"] == "10481" and row["street"] == "99"
    assert row["zip_code"] == "00601"
    assert row["city"] == "San Juan" and row["state"] == "Texas"
    assert row["prev_sold_date"] is None and row["status"] is None


def test_missing_required_column_is_rejected_with_its_name() -> None:
    row = {k: v for k, v in ROW.items() if k != "house_size"}
    with pytest.raises(MalformedBatchError, match="house_size"):
        rows_to_frame([row])


def test_wrong_typed_column_is_rejected() -> None:
    rows = [{**ROW, "bed": "three"}, {**ROW, "bed": "four"}, {**ROW, "bed": 2}]
    with pytest.raises(MalformedBatchError, match="'bed' is not numeric"):
        rows_to_frame(rows)


def test_a_few_bad_cells_become_missing_values() -> None:
    rows = [{**ROW, "bath": "n/a"}] + [ROW] * 9
    frame = rows_to_frame(rows)
    assert pd.isna(frame.loc[0, "bath"]) and frame.loc[1, "bath"] == 2


@pytest.mark.parametrize("data", [{"price": 1}, [1, 2], "rows", [ROW, "x"]])
def test_data_must_be_a_list_of_objects(data: object) -> None:
    with pytest.raises(MalformedBatchError, match="list of objects"):
        rows_to_frame(data)
