"""The UI's building blocks: tables as people read them, the listing form's "not given"."""

from __future__ import annotations

import math

import pandas as pd
from streamlit.testing.v1 import AppTest

from ui.widgets import is_missing, shown


def test_a_table_reads_as_dollars_counts_and_shares_with_a_dash_for_nothing() -> None:
    frame = pd.DataFrame(
        {"rmse": [123456.5, math.nan], "rows": [12345, None], "share": [0.474, 1.0], "r2": [0.71234, None]}
    )
    out = shown(frame, money=["rmse"], counts=["rows"], percent=["share"], decimals={"r2": 2})
    assert out.to_dict("list") == {
        "rmse": ["$123,456", "—"],
        "rows": ["12,345", "—"],
        "share": ["47%", "100%"],
        "r2": ["0.71", "—"],
    }
    assert frame["rmse"].iloc[0] == 123456.5, "the caller's frame is left as it was"


def test_only_none_and_nan_are_missing() -> None:
    assert is_missing(None) and is_missing(math.nan)
    assert not any(is_missing(v) for v in (0, 0.0, "", [], "nan"))


def _form() -> None:
    import streamlit as st

    from ui.widgets import listing_form

    st.session_state["listing"] = listing_form("t", {"Texas": {"Austin": ["78701", "78702"], "Dallas": ["75201"]}})


def test_the_listing_form_lets_city_and_zip_be_left_out() -> None:
    at = AppTest.from_function(_form).run()
    first = {"state": "Texas", "city": "Austin", "zip_code": "78701"}
    assert at.session_state["listing"] == {**first, "house_size": 1800, "bed": 3, "bath": 2.0, "acre_lot": 0.25}
    at.selectbox(key="t-city").select("(not given)").run()
    # without a city, every zip of the state is offered
    assert at.selectbox(key="t-zip").options == ["75201", "78701", "78702", "(not given)"]
    at.selectbox(key="t-zip").select("(not given)").run()
    assert at.session_state["listing"]["city"] is None and at.session_state["listing"]["zip_code"] is None
