"""The Streamlit UI through AppTest against a real MLflow registry and a real inference API,
and once in a real headless Chromium against `mlops ui`."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from mlops_cli.ops.netutil import free_port, port_is_free
from mlops_cli.ops.services import mlops_command
from mlops_cli.pipeline.api_client import request_predictions
from mlops_cli.registry.info import LISTED_WIDE
from mlops_cli.registry.models import alias_state, list_versions
from tests.conftest import serving_settings, stop_group, wait_http

pytestmark = pytest.mark.slow
APP = str(Path(__file__).resolve().parents[2] / "ui" / "app.py")


@pytest.fixture
def ui_env(api: str, registry_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {**registry_env, "MLOPS_API_URL": api}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    import streamlit as st

    st.cache_resource.clear()  # settings are cached per process
    return env


def app(page: str = "Predict") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    if page != "Predict":
        at.sidebar.radio(key="page").set_value(page).run()
    assert not at.exception, at.exception
    return at


def default_listing(at: AppTest) -> dict:
    return {
        "state": at.selectbox(key="predict-state").value,
        "city": at.selectbox(key="predict-city").value,
        "zip_code": at.selectbox(key="predict-zip").value,
        "house_size": 1800,
        "bed": 3,
        "bath": 2.0,
        "acre_lot": 0.25,
    }


def test_predict_form_returns_the_champions_prediction(ui_env: dict[str, str]) -> None:
    at = app()
    listing = default_listing(at)
    at.button(key="predict-button").click().run()
    assert not at.error, [e.value for e in at.error]
    expected = request_predictions(ui_env["MLOPS_API_URL"], [listing])
    assert at.metric[0].value == f"${expected['predictions'][0]:,.0f}"
    champion = alias_state(serving_settings(Path(ui_env["MLOPS_HOME"]))).champion
    assert f"version {champion} (champion)" in at.caption[0].value


def test_choices_follow_the_location_hierarchy(ui_env: dict[str, str]) -> None:
    at = app()
    states = at.selectbox(key="predict-state").options
    at.selectbox(key="predict-state").set_value(states[-1]).run()
    cities = at.selectbox(key="predict-city").options
    from ui.data import locations

    places = locations(serving_settings(Path(ui_env["MLOPS_HOME"])))
    assert cities == [*places[states[-1]], "(not given)"]  # a listing may leave city and zip out
    assert at.selectbox(key="predict-zip").options == [*places[states[-1]][cities[0]], "(not given)"]


def test_a_price_comes_with_its_range_and_what_moved_it(ui_env: dict[str, str]) -> None:
    at = app()
    listing = default_listing(at)
    at.button(key="predict-button").click().run()
    assert not at.error, [e.value for e in at.error]
    expected = request_predictions(ui_env["MLOPS_API_URL"], [listing], explain=True)
    low, high = expected["intervals"][0]
    assert any(f"80% range: **${low:,.0f} – ${high:,.0f}**" in m.value for m in at.markdown)
    base = expected["explanations"][0]["base_price"]
    assert any(f"from an average listing's ${base:,.0f}" in c.value for c in at.caption)
    assert at.get("vega_lite_chart"), "the contributions' bar chart"


def test_a_listing_without_city_or_zip_is_priced_and_says_so(ui_env: dict[str, str]) -> None:
    at = app()
    at.selectbox(key="predict-city").set_value("(not given)").run()
    at.selectbox(key="predict-zip").set_value("(not given)").run()
    at.button(key="predict-button").click().run()
    assert not at.error, [e.value for e in at.error]
    assert at.metric and at.metric[0].value.startswith("$")
    assert any("Not given: city, zip_code" in i.value for i in at.info)


def test_an_invalid_input_shows_the_message(ui_env: dict[str, str]) -> None:
    at = app()
    assert at.number_input(key="predict-bed").value == 3 and isinstance(at.number_input(key="predict-bed").value, int)
    at.number_input(key="predict-house_size").set_value(5).run()
    at.button(key="predict-button").click().run()
    assert any("house_size" in e.value and "greater than or equal to 100" in e.value for e in at.error)
    assert not at.metric


def test_models_page_lists_every_version_and_the_promotions(ui_env: dict[str, str]) -> None:
    at = app("Models")
    versions = list_versions(serving_settings(Path(ui_env["MLOPS_HOME"])))
    shown = at.dataframe[0].value
    assert sorted(shown["version"].tolist()) == [v["version"] for v in versions]
    assert "champion" in " ".join(shown["aliases"].tolist())
    # the columns registry/info.py declares for it, each read as it says (dollars, counts)
    assert set(LISTED_WIDE) <= set(shown.columns)
    assert shown["rmse"].str.match(r"^\$\d{1,3}(,\d{3})*$").all() and shown["rows_train"].str.match(r"^[\d,]+$").all()
    assert len(at.dataframe[1].value) >= 1, "the promotion history"
    assert "same current test set" in at.caption[0].value
    from ui.data import rmse_on_current_test_set

    now = rmse_on_current_test_set(serving_settings(Path(ui_env["MLOPS_HOME"])), [v["version"] for v in versions])
    assert sorted(now) == [v["version"] for v in versions] and all(value > 0 for value in now.values())


def test_explore_compares_a_version_with_the_champion(ui_env: dict[str, str]) -> None:
    at = app("Explore a version")
    first = at.selectbox(key="explore-version").options[0]
    at.selectbox(key="explore-version").set_value(first).run()
    labels = [m.label for m in at.metric]
    assert labels == [f"version {first}", "champion"]
    assert all(m.value.startswith("$") for m in at.metric)


def test_data_page_shows_batches_and_decisions(ui_env: dict[str, str]) -> None:
    at = app("Data")
    table = at.dataframe[0].value
    assert table["batch"].tolist() == sorted(table["batch"].tolist()) and len(table) >= 1
    assert {"rows_kept", "rows_dropped", "retrained", "why", "reason", "drift_score"} <= set(table.columns)
    assert all(len(why) <= 40 for why in table["why"]), (
        "a short why that fits; the full text under Details",
        table["why"],
    )
    assert {"change", "champion_error", "run_id"} <= set(table.columns)
    later = table[table["batch"] > table["batch"].min()]
    assert all(e.startswith(("+", "−")) and e.endswith("%") for e in later["champion_error"]), later["champion_error"]
    assert len(at.get("arrow_vega_lite_chart")) == 2 or len(at.get("vega_lite_chart")) >= 1
    first = " ".join(m.value for m in at.markdown)
    assert "no champion yet" in first and "**nulls**" in first and "**drift**" not in first, "nothing to drift from"
    at.selectbox(key="data-batch").set_value(int(table["batch"].max())).run()
    details = " ".join(m.value for m in at.markdown)
    for part in ("**retrained**", "**triggers**", "**champion**", "**nulls**", "**drift**", "**unseen**"):
        assert part in details, part


def test_live_traffic_shows_what_the_api_answered_and_refused(ui_env: dict[str, str]) -> None:
    import httpx

    from tests.conftest import LISTING

    api = ui_env["MLOPS_API_URL"]
    answered = [httpx.post(f"{api}/predict", json=[LISTING, LISTING]) for _ in range(3)]
    refused = httpx.post(f"{api}/predict", json={**LISTING, "bed": -1})
    assert [r.status_code for r in answered] == [200] * 3 and refused.status_code == 422
    ids = {r.headers["x-request-id"] for r in [*answered, refused]}
    deadline = time.monotonic() + 20
    while True:  # the API's writer flushes every 0.5 s
        at = app("Live traffic")
        table = at.dataframe[0].value if at.dataframe else None
        if table is not None and ids <= set(table["request_id"]):
            break
        assert time.monotonic() < deadline, "the requests never reached the Live traffic page"
        time.sleep(0.5)
    mine = table[table["request_id"].isin(ids)]
    assert len(mine) == 7, "one row per listing, one for the refusal"
    assert set(mine["answer"]) >= {"invalid"} and mine["answer"].str.startswith("$").sum() == 6
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Requests"].replace(",", "")) >= 4 and metrics["Refused"] != "0.0%"
    assert len(at.get("arrow_vega_lite_chart")) + len(at.get("vega_lite_chart")) >= 1

    # a challenger priced two requests in shadow (as MLOPS_API_SHADOW_SHARE makes the API record)
    from datetime import UTC, datetime

    from mlops_cli.store.db import engine_for
    from mlops_cli.store.events import write_events
    from tests.conftest import event_row

    settings = serving_settings(Path(ui_env["MLOPS_HOME"]))
    now = datetime.now(UTC)
    shadowed = [(f"shadowed-{i}", (2, price, 0.01)) for i, price in enumerate((105_000.0, 150_000.0))]
    write_events(engine_for(settings), [event_row(rid, now, prediction=100_000.0, shadow=s) for rid, s in shadowed])
    at = app("Live traffic")
    metrics = {m.label: m.value for m in at.metric}
    assert any("v2 in shadow of v1" in h.value for h in at.subheader)
    assert metrics["Requests priced by both"] == "2" and metrics["Mean disagreement"] == "$27,500"
    assert metrics["More than 10 % apart"] == "50.0%"


@pytest.mark.parametrize("page", ["Models", "Data", "Live traffic"])
def test_no_none_in_any_table(ui_env: dict[str, str], page: str) -> None:
    at = app(page)
    for frame in at.dataframe:
        table = frame.value
        cells = [v for column in table.columns if table[column].dtype == object for v in table[column]]
        assert None not in cells and "None" not in map(str, cells), (page, table.head())


def test_an_unreachable_api_says_what_to_run(ui_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_API_URL", f"http://127.0.0.1:{free_port()}")
    import streamlit as st

    st.cache_resource.clear()
    at = app()
    at.button(key="predict-button").click().run()
    assert any("is not reachable" in e.value and "mlops up" in e.value for e in at.error)


def test_predict_page_in_a_real_headless_chromium(ui_env: dict[str, str], tmp_path: Path) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    chromium = "/usr/bin/chromium"
    if not os.path.exists(chromium):
        pytest.fail("Debian's chromium is required (apt-get install chromium)")
    port = free_port()
    log = (tmp_path / "ui.log").open("w")
    server = subprocess.Popen(
        [*mlops_command(), "ui", "--port", str(port)],
        env={**os.environ, **ui_env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", timeout=90, process=server)
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=chromium,
                args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            page.goto(f"http://127.0.0.1:{port}/", timeout=60_000)
            page.get_by_role("button", name="Predict").click(timeout=60_000)
            page.get_by_text("Predicted price").wait_for(timeout=60_000)
            page.locator(".vega-embed").first.wait_for(timeout=60_000)  # what moved the price, drawn
            time.sleep(0.5)
            shot = tmp_path / "predict.png"
            page.screenshot(path=str(shot), full_page=True)
            text = page.inner_text("body")
            assert "Deploy" not in text, "Streamlit's Deploy button is hidden"
            assert "House size (sq ft)" in text and "Zip code" in text
            assert "80% range: $" in text and "from an average listing's $" in text

            # many listings from a CSV: upload, see them priced, download them back
            listings = tmp_path / "listings.csv"
            listings.write_text("city,state,zip_code,house_size\nAustin,Texas,75003,1800\nAtlantis,Texas,75003,\n")
            page.set_input_files("input[type=file]", str(listings))
            download_button = page.get_by_role("button", name="Download predictions")
            download_button.wait_for(timeout=60_000)
            with page.expect_download(timeout=60_000) as started:
                download_button.click()
            priced = tmp_path / "priced.csv"
            started.value.save_as(str(priced))
            import pandas as pd

            table = pd.read_csv(priced)
            assert len(table) == 2 and (table["predicted_price"] > 0).all()
            assert table["unseen"].fillna("").tolist()[1] == "city", "Atlantis was never seen"

            # every page at 1400 px and at a laptop's 1024 px: screenshots, and nothing wider than the window
            for width in (1400, 1024):
                page.set_viewport_size({"width": width, "height": 900})
                for name in ("Models", "Explore a version", "Data", "Live traffic"):
                    page.get_by_text(name, exact=True).first.click()
                    page.get_by_role("heading").first.wait_for(timeout=60_000)
                    time.sleep(2.0)
                    page.screenshot(path=str(tmp_path / f"{name.split()[0].lower()}-{width}.png"), full_page=True)
                    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                    assert overflow <= 0, f"{name} at {width}px is {overflow}px wider than the window"
                    assert "Error" not in page.inner_text("section.main, [data-testid=stMain]")
            browser.close()
        assert "$" in text and "(champion)" in text
        assert shot.stat().st_size > 10_000
        assert all(
            (tmp_path / f"{n}-{w}.png").stat().st_size > 10_000
            for n in ("models", "data", "live")
            for w in (1400, 1024)
        )
        # A pod's SIGTERM goes to `mlops ui` alone (PID 1, not its group): Streamlit must stop with it.
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=20) is not None
        assert port_is_free("127.0.0.1", port), "Streamlit outlived `mlops ui`"
    finally:
        stop_group(server)
