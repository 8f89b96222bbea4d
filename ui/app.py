"""mlops — Streamlit UI. Started by `mlops ui` and `mlops up`; every number comes from
mlops_cli functions (the inference API, the MLflow registry, the data DB)."""

import io

import pandas as pd
import streamlit as st

from mlops_cli.errors import MlopsError
from ui.widgets import (
    fetch_or_stop,
    is_missing,
    listing_form,
    load_places,
    settings,
    show_explanation,
    shown,
    stop_with,
)

PAGES = ("Predict", "Models", "Explore a version", "Data", "Live traffic")

st.set_page_config(page_title="mlops — house prices", layout="wide")


def predict_page() -> None:
    from mlops_cli.ops.predict import listings_from_csv, predict
    from mlops_cli.pipeline.api_client import NotExplained, request_predictions
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
                st.warning(
                    f"Never seen in training: {', '.join(unseen)} (check the spelling); the model learnt "
                    "nothing of it — a model with location features still places a zip it finds in the zip table."
                )
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
            table[name] = [cell(name, None if is_missing(v) else v, empty="—") for v in table[name]]
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
