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


# identifiers arrive as JSON numbers (the 2024 release's brokered_by/street): whole numbers, NaN,
# and the values where a column-wise rendering could differ from str(): -0.0, fractions, 1e15+
EDGE_NUMBERS = [0.0, -0.0, 1.0, -7.0, 0.5, 1e15 - 1, 1e15, 1e16, 2.0**53, -(1e15 - 1), float("nan"), 123456789.0]


def _ids_each(values: pd.Series) -> list:
    """What ingestion gave before the column-wise route: id_text once per distinct value."""
    from mlops_cli.schema import _each_distinct, id_text

    return list(_each_distinct(values, id_text))


@pytest.mark.parametrize("edge", EDGE_NUMBERS)
def test_identifier_columns_read_as_each_value_would_be(edge: float) -> None:
    """The column-wise rendering of numeric ids gives, value for value, what mapping each
    distinct value through id_text gives (rows and hashes stay as they were)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from mlops_cli.schema import whole_number_text

    @settings(max_examples=25, deadline=None)
    @given(st.lists(st.one_of(st.integers(-(10**15), 10**15).map(float), st.floats(allow_infinity=False)), max_size=30))
    def check(numbers: list[float]) -> None:
        column = pd.Series([*numbers, edge], dtype="float64")
        fast = whole_number_text(column)
        if fast is not None:
            assert list(fast) == _ids_each(column)
        frame = rows_to_frame([{**ROW, "brokered_by": n, "street": n} for n in column])  # the ingest route
        assert list(frame["brokered_by"]) == _ids_each(column) == list(frame["street"])

    check()


def test_integer_identifier_columns_read_as_each_value_would_be() -> None:
    from mlops_cli.schema import whole_number_text

    plain = pd.Series([73248, -5, 0, 10**17], dtype="int64")
    nullable = pd.Series([73248, None, 0], dtype="Int64")
    assert list(whole_number_text(plain)) == _ids_each(plain) == ["73248", "-5", "0", str(10**17)]
    assert list(whole_number_text(nullable)) == ["73248", None, "0"]
    frame = rows_to_frame([{**ROW, "brokered_by": 73248, "street": 12}, {**ROW, "brokered_by": 5, "street": 7}])
    assert list(frame["brokered_by"]) == ["73248", "5"] and list(frame["street"]) == ["12", "7"]
