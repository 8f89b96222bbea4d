"""What every page of the UI is made of: the settings, tables as people read them, the listing
form, stopping a page with what to run, the bar chart of a price's explanation."""

import pandas as pd
import streamlit as st

from mlops_cli.config import load_settings
from mlops_cli.errors import MlopsError

# (default, step, format): whole square feet and bedrooms are shown as whole numbers, not 3.00
NUMBERS = {
    "house_size": (1800, 50, "%d"),
    "bed": (3, 1, "%d"),
    "bath": (2.0, 0.5, "%.1f"),
    "acre_lot": (0.25, 0.05, "%.2f"),
}


def is_missing(value) -> bool:  # noqa: ANN001 — a frame's empty cell: None or NaN (a list is a value)
    return value is None or (isinstance(value, float) and value != value)


def shown(frame: pd.DataFrame, money=(), counts=(), percent=(), decimals=None) -> pd.DataFrame:  # noqa: ANN001
    """A table as people read it: $123,456, 12,345, 47%, and "—" where there is no value."""
    out = frame.copy()

    def each(column: str, fmt) -> None:  # noqa: ANN001
        out[column] = [fmt(v) if pd.notna(v) else "—" for v in out[column]]

    for column in money:
        each(column, lambda v: f"${v:,.0f}")
    for column in counts:
        each(column, lambda v: f"{int(v):,}")
    for column in percent:
        each(column, lambda v: f"{v:.0%}")
    for column, places in (decimals or {}).items():
        each(column, lambda v, p=places: f"{v:.{p}f}")
    return out


@st.cache_resource
def settings():
    return load_settings()


def stop_with(problem: str, what_to_run: str = "mlops up") -> None:
    st.error(f"{problem} — run `{what_to_run}`.")
    st.stop()


NOT_GIVEN = "(not given)"


def listing_form(key: str, places: dict[str, dict[str, list[str]]]) -> dict:
    """A listing from the places the data holds; city and zip may be left out (priced without)."""
    state = st.selectbox("State", list(places), key=f"{key}-state")
    city = st.selectbox("City", [*places[state], NOT_GIVEN], key=f"{key}-city")
    zips = places[state].get(city) or sorted({z for zs in places[state].values() for z in zs})
    zip_code = st.selectbox("Zip code", [*zips, NOT_GIVEN], key=f"{key}-zip")
    city = None if city == NOT_GIVEN else city
    zip_code = None if zip_code == NOT_GIVEN else zip_code
    cols = st.columns(4)
    from ui.data import LISTING_LABELS

    values = {
        name: cols[i].number_input(LISTING_LABELS[name], value=default, key=f"{key}-{name}", step=step, format=shape)
        for i, (name, (default, step, shape)) in enumerate(NUMBERS.items())
    }
    return {"state": state, "city": city, "zip_code": zip_code, **values}


def fetch_or_stop(fetch, problem: str, empty: str):
    """Call ``fetch(settings)``; on an outage or an empty answer, say so and stop the page."""
    try:
        value = fetch(settings())
    except MlopsError as exc:
        stop_with(f"{problem}: {exc.message}")
    if len(value) == 0:
        stop_with(empty, "mlops train --all")
    return value


def load_places() -> dict[str, dict[str, list[str]]]:
    from ui.data import locations

    return fetch_or_stop(locations, "The data DB is not reachable", "No data yet")


def _shown(value: object) -> str:
    """A listing's value as people read it: 1,800 not 1800.0, 'not given' for a missing one."""
    if value is None:
        return "not given"
    if isinstance(value, float):
        return f"{int(value):,}" if value.is_integer() else f"{value:,.4g}"
    return str(value)


def show_explanation(explained: dict, top: int = 8) -> None:
    """What moved the price: the largest contributions in dollars, as bars from the average."""
    import altair as alt

    terms = explained["contributions"][:top]
    frame = pd.DataFrame(
        {
            "feature": [f"{t['feature']} = {_shown(t['value'])}" for t in terms],
            "effect ($)": [t["effect"] for t in terms],
        }
    )
    frame["direction"] = ["raises" if v >= 0 else "lowers" for v in frame["effect ($)"]]
    st.caption(
        f"Why this price: from an average listing's ${explained['base_price']:,.0f}, "
        "each bar is how much this value moves it (the rest held)."
    )
    chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("effect ($):Q", axis=alt.Axis(format="$,.0f")),
            y=alt.Y("feature:N", sort=None, title=None),
            color=alt.Color("direction:N", scale=alt.Scale(domain=["raises", "lowers"], range=["#2e7d32", "#c62828"])),
            tooltip=["feature", alt.Tooltip("effect ($):Q", format="$,.0f")],
        )
    )
    st.altair_chart(chart, width="stretch")
