"""mlops — Streamlit UI. Started by `mlops ui` and `mlops up`; every number comes from
mlops_cli functions (the inference API, the MLflow registry, the data DB)."""

import io

import pandas as pd
import streamlit as st

from mlops_cli.config import load_settings
from mlops_cli.errors import MlopsError

PAGES = ("Predict", "Models", "Explore a version", "Data", "Live traffic")
# (default, step, format): whole square feet and bedrooms are shown as whole numbers, not 3.00
NUMBERS = {
    "house_size": (1800, 50, "%d"),
    "bed": (3, 1, "%d"),
    "bath": (2.0, 0.5, "%.1f"),
    "acre_lot": (0.25, 0.05, "%.2f"),
}


def _missing(value) -> bool:  # noqa: ANN001 — a frame's empty cell: None or NaN (a list is a value)
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


st.set_page_config(page_title="mlops — house prices", layout="wide")


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


def predict_page() -> None:
    from mlops_cli.ops.predict import NotExplained, listings_from_csv, predict, request_predictions
    from mlops_cli.schema import REQUIRED_LISTING_FIELDS, listing_problem

    st.header("Predict a price")
    places = load_places()
    listing = listing_form("predict", places)
    if st.button("Predict", type="primary", key="predict-button"):
        problem = listing_problem(listing)
        if problem:
            st.error(f"Invalid listing: {problem}")
        else:
            sent = {k: v for k, v in listing.items() if v is not None}
            unexplained = None
            try:
                try:
                    answer = request_predictions(settings().api_url, [sent], explain=True)
                except NotExplained as exc:  # this model has no exact contributions: the price alone
                    unexplained = exc.message
                    answer = request_predictions(settings().api_url, [sent])
            except MlopsError as exc:
                stop_with(f"The inference API at {settings().api_url} did not answer: {exc.message}")
            model = answer["model"]
            st.metric("Predicted price", f"${answer['predictions'][0]:,.0f}")
            bounds = (answer.get("intervals") or [None])[0]
            if bounds:
                level = answer.get("interval_level") or 0.8
                st.write(f"{level:.0%} range: **${bounds[0]:,.0f} – ${bounds[1]:,.0f}**")
            st.caption(f"by {model['name']} version {model['version']} ({model['alias'] or 'pinned version'})")
            unseen = (answer.get("unseen") or [[]])[0]
            if unseen:
                st.warning(f"Never seen in training: {', '.join(unseen)}; priced as an unknown place.")
            missing = [m for m in (answer.get("missing") or [[]])[0] if m in ("city", "zip_code")]
            if missing:
                st.info(f"Not given: {', '.join(missing)}; priced from what the listing has.")
            if answer.get("explanations"):
                show_explanation(answer["explanations"][0])
            elif unexplained:
                st.caption(unexplained)
    st.subheader("Many listings from a CSV")
    upload = st.file_uploader("CSV with city, state, zip_code (and house_size, bed, bath, acre_lot)", type="csv")
    if upload is not None:
        frame = pd.read_csv(upload, dtype={"zip_code": str})
        missing = [c for c in REQUIRED_LISTING_FIELDS if c not in frame.columns]
        if missing:
            st.error(f"The CSV lacks column(s): {', '.join(missing)}")
            return
        upload.seek(0)
        try:
            answer = predict(settings().api_url, listings_from_csv(upload), settings().api_max_batch)
        except MlopsError as exc:
            st.error(f"Prediction failed: {exc.message}")
            return
        from ui.data import priced, readable

        frame = priced(frame, answer)
        st.dataframe(readable(frame), hide_index=True, width="stretch")
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False)
        st.download_button("Download predictions", buffer.getvalue(), "predictions.csv", "text/csv")


def models_page() -> None:
    import altair as alt

    from ui.data import models_table, promotions_table

    st.header("Model versions")
    versions = fetch_or_stop(models_table, "MLflow is not reachable", "No registered model yet")
    promotions = promotions_table(settings())
    from ui.data import rmse_on_current_test_set

    try:
        now = rmse_on_current_test_set(settings(), versions["version"].tolist())
    except MlopsError:
        now = {}
    from mlops_cli.registry.info import LABELS, LISTED_WIDE, cell

    table = versions.drop(columns="champion").assign(rmse_today=versions["version"].map(now))
    for name in LISTED_WIDE:  # as registry/info.py says each reads (the version stays a number: it sorts)
        if name != "version":
            table[name] = [cell(name, None if _missing(v) else v, empty="—") for v in table[name]]
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_order=list(LISTED_WIDE),
        column_config={name: LABELS[name] for name in LISTED_WIDE},
    )
    columns = ["version", "RMSE", "series", "champion"]
    long = pd.concat(
        [
            versions.assign(series="at training (own test set)", RMSE=versions["rmse"])[columns],
            versions.assign(series="on today's test set", RMSE=versions["version"].map(now))[columns],
        ]
    ).dropna(subset=["RMSE"])
    line = (
        alt.Chart(long)
        .mark_line(point=True)
        .encode(x="version:O", y=alt.Y("RMSE:Q", scale=alt.Scale(zero=False)), color="series:N")
    )
    champion = (
        alt.Chart(long[long["champion"]])
        .mark_point(size=300, shape="diamond", filled=True, color="orange")
        .encode(x="version:O", y="RMSE:Q")
    )
    st.altair_chart(line + champion, width="stretch")
    st.caption(
        "RMSE of each version when it was trained, and of all versions on the same current test set; ◆ champion."
    )
    st.subheader("Promotion history")
    st.dataframe(
        shown(promotions, money=["old_rmse", "new_rmse"], counts=["test_rows"]),
        hide_index=True,
        width="stretch",
        column_config={
            "at": st.column_config.DatetimeColumn("When", format="YYYY-MM-DD HH:mm"),
            "actor": "By",
            "action": "Action",
            "old_version": "From",
            "new_version": "To",
            "old_rmse": "RMSE of From",
            "new_rmse": "RMSE of To",
            "test_rows": "Test rows",
        },
    )


@st.cache_resource(max_entries=4, show_spinner="Loading the version (downloaded and verified once)…")
def served_version(version: int):  # noqa: ANN201 — the API's own loaded model
    """A registered version as the API serves it, loaded once per process: a version never
    changes (its signature binds its files), and loading one takes seconds."""
    from serving.model_server import load_registered

    return load_registered(settings(), version)


def explore_page() -> None:
    from mlops_cli.schema import listing_problem
    from ui.data import models_table

    st.header("Explore a version")
    versions = fetch_or_stop(models_table, "MLflow is not reachable", "No registered model yet")
    chosen = st.selectbox("Version", versions["version"].tolist(), key="explore-version")
    listing = listing_form("explore", load_places())
    problem = listing_problem(listing)
    if problem:
        st.error(f"Invalid listing: {problem}")
        return
    left, right = st.columns(2)
    champion = versions.loc[versions["champion"], "version"].tolist()
    try:
        left.metric(f"version {chosen}", f"${served_version(int(chosen)).predict([listing])[0]:,.0f}")
        if champion:
            right.metric("champion", f"${served_version(int(champion[0])).predict([listing])[0]:,.0f}")
        else:
            right.metric("champion", "—")
    except MlopsError as exc:
        stop_with(f"MLflow is not reachable: {exc.message}")


def data_page() -> None:
    from mlops_cli.pipeline.records import LABELS, SHOWN_FIELDS, of_kind
    from ui.data import batches_table

    st.header("Data and retraining decisions")
    batches = fetch_or_stop(batches_table, "The data DB is not reachable", "No batches yet")
    multiple = bool((batches["answers"].fillna(1) > 1).any())
    extra = ("why", "change", "champion_error", "run_id")
    order = [c for c in batches.columns if c in (*SHOWN_FIELDS, *extra) and (c != "answers" or multiple)]
    st.dataframe(
        shown(
            batches,
            counts=of_kind("count"),
            percent=of_kind("share"),
            decimals=dict.fromkeys(of_kind("score"), 3),
        ),
        hide_index=True,
        width="stretch",
        column_order=order,
        column_config={
            **LABELS,
            "why": st.column_config.TextColumn("Why", width="medium"),
            "change": st.column_config.TextColumn("vs champion", help="the candidate's change on the same test rows"),
            "champion_error": st.column_config.TextColumn(
                "Champion MAE here", help="the champion's MAE on the batch's rows, against its own test MAE"
            ),
            "run_id": st.column_config.TextColumn("MLflow run"),
        },
    )
    # the whole record, unclipped: one batch at a time
    chosen = st.selectbox("Details of batch", batches["batch"].tolist(), key="data-batch")
    batch_details(int(chosen))
    st.subheader("Rows kept and dropped per batch")
    counts = batches.set_index("batch")[["rows_kept", "rows_dropped"]].rename(
        columns={"rows_kept": "kept", "rows_dropped": "dropped"}
    )
    st.bar_chart(counts, x_label="batch", y_label="rows")
    st.subheader("New rows, drift and the champion's error per batch, against their retraining thresholds")
    st.altair_chart(threshold_chart(batches), width="stretch")


def batch_details(number: int) -> None:
    """The batch's whole record as `mlops batches show` prints it: decision, triggers, champion on
    the batch, promotion, validation report (rendered from the same typed record)."""
    from mlops_cli.pipeline.batches import record
    from mlops_cli.pipeline.records import record_lines

    found, _ = record(settings(), number)
    if found is None:  # a batch number the source never served
        st.markdown("**Why:** the source never served this batch number")
        return
    st.markdown(f"**Why:** {found.reason or found.state}")
    st.markdown("\n".join(f"- **{key}**: {value}" for key, value in record_lines(found)[1:]))


def threshold_chart(batches: pd.DataFrame):  # noqa: ANN201 — an altair chart
    """New-row share, drift score and the champion's MAE change on each batch (the "how is
    production doing" series), each with its retrain threshold as a dashed rule."""
    import altair as alt

    config = settings()
    names = {
        "new_share": "new rows (share)",
        "drift_score": "drift score",
        "champion_mae_change": "champion MAE vs its test MAE",
    }
    long = batches.melt(id_vars="batch", value_vars=list(names), var_name="series").dropna()
    long["series"] = long["series"].map(names)
    rules = pd.DataFrame(
        {
            "series": list(names.values()),
            "threshold": [config.retrain_min_new_share, config.drift_threshold, config.retrain_max_degradation],
            "label": [
                f"retrain at {config.retrain_min_new_share:.0%} new",
                f"retrain at drift {config.drift_threshold:g}",
                f"retrain at MAE +{config.retrain_max_degradation:.0%}",
            ],
        }
    )
    color = alt.Color("series:N", title=None)
    lines = alt.Chart(long).mark_line(point=True).encode(x="batch:O", y=alt.Y("value:Q", title=None), color=color)
    rule = alt.Chart(rules).mark_rule(strokeDash=[6, 4]).encode(y="threshold:Q", color=color)
    text = alt.Chart(rules).mark_text(align="left", dx=4, dy=-6).encode(y="threshold:Q", text="label:N", color=color)
    return lines + rule + text


def live_page() -> None:
    from ui.data import live_traffic

    st.header("Live traffic")
    minutes = st.select_slider("Last", options=[15, 60, 360, 1440], value=60, format_func=_window, key="live-window")
    try:
        live = live_traffic(settings(), minutes)
    except MlopsError as exc:
        stop_with(f"The data DB is not reachable: {exc.message}")
    if not live["events"]:
        st.info(
            f"No request to the inference API in the last {_window(minutes)}: every /predict leaves its "
            "listings here (MLOPS_API_EVENTS). Price one on the Predict page, or run `mlops loadtest`."
        )
        return
    cols = st.columns(4)
    cols[0].metric("Requests", f"{live['requests']:,}")
    cols[1].metric("Refused", f"{live['refused_share']:.1%}")
    cols[2].metric("Listings priced", f"{live['listings']:,}")
    cols[3].metric("p95 latency", f"{live['p95_ms']:.1f} ms")
    st.subheader("Requests and refusals per minute (UTC)")
    st.line_chart(live["per_minute"], x_label="minute", y_label="requests")
    if len(live["by_version"]):
        st.subheader("Listings priced by each version")
        st.bar_chart(live["by_version"], x_label="version", y_label="listings")
    shadow = live["shadow"]
    if shadow is not None:
        st.subheader(f"v{shadow['shadow']} in shadow of v{shadow['served']}")
        cols = st.columns(4)
        cols[0].metric("Requests priced by both", f"{shadow['requests']:,}")
        cols[1].metric("Mean disagreement", f"${shadow['mean_abs_disagreement']:,.0f}")
        cols[2].metric("Median disagreement", f"${shadow['median_abs_disagreement']:,.0f}")
        cols[3].metric("More than 10 % apart", f"{shadow['share_over_10pct']:.1%}")
    st.subheader("The newest requests")
    st.dataframe(
        shown(live["newest"], decimals={"latency_ms": 1}),
        hide_index=True,
        width="stretch",
        column_config={
            "received_at": st.column_config.TextColumn("Time (UTC)"),
            "request_id": st.column_config.TextColumn("Request id"),
            "status": st.column_config.NumberColumn("Status"),
            "model_version": st.column_config.TextColumn("Version"),
            "latency_ms": st.column_config.TextColumn("ms"),
            "item": st.column_config.TextColumn("#", help="the listing's place in its request"),
            "answer": st.column_config.TextColumn("Price or refusal"),
            "listing": st.column_config.TextColumn("Listing as received", width="large"),
        },
    )
    st.caption("`mlops events list` and `mlops events export` read the same table (inference_events).")


def _window(minutes: int) -> str:
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h"


page = st.sidebar.radio("Page", PAGES, key="page")
st.sidebar.caption(f"API {settings().api_url}")
PAGE_VIEWS = {
    "Predict": predict_page,
    "Models": models_page,
    "Explore a version": explore_page,
    "Data": data_page,
    "Live traffic": live_page,
}
PAGE_VIEWS[page]()
