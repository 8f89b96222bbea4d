"""`mlops predict`: ask the inference API for prices."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer

from mlops_cli.cli.application import application, money
from mlops_cli.cli.options import JsonOption
from mlops_cli.schema import EXAMPLE_LISTING, LISTING_FIELDS, NUMERIC_LISTING_FIELDS, REQUIRED_LISTING_FIELDS

# a listing of the built-in data, so that the help's own example is a place the model knows
EXAMPLE = "mlops predict " + " ".join(
    f"-s {name}={EXAMPLE_LISTING[name]}" for name in ("city", "state", "zip_code", "house_size")
)

FIELDS_HELP = (
    f"Fields: {', '.join(REQUIRED_LISTING_FIELDS)} (required); "
    f"{', '.join(f for f in LISTING_FIELDS if f not in REQUIRED_LISTING_FIELDS)} "
    "(optional: priced from what the listing has). "
    f"Example: {EXAMPLE}"
)


def predict(
    ctx: typer.Context,
    sets: Annotated[
        list[str] | None,
        typer.Option("--set", "-s", metavar="FIELD=VALUE", help="One field of one listing (repeat; fields below)."),
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", metavar="PATH", help="Listings in a .json or .csv file.")
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="The inference API.", envvar="MLOPS_API_URL", show_envvar=True)
    ] = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="Also show what moved each price (the exact contributions).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Predict prices through the inference API: each with its 80 % range and the version that answered."""
    from mlops_cli.ops.predict import listing_from_pairs, predict, read_listings
    from mlops_cli.pipeline.api_client import NotExplained

    if bool(sets) == bool(file):
        raise typer.BadParameter("give --set FIELD=VALUE ... or --file PATH", param_hint="--set/--file")
    app = application(ctx)
    try:
        listings = [listing_from_pairs(sets)] if sets else read_listings(file)  # type: ignore[arg-type]
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--set") from None
    config = app.settings(api_url=url)
    unexplained = None
    try:
        answer = predict(config.api_url, listings, config.api_max_batch, explain=explain)
    except NotExplained as refused:  # the prices still answer; the note says why there is no breakdown
        unexplained = refused.message
        answer = predict(config.api_url, listings, config.api_max_batch)
    if as_json:
        app.print_json({**answer, **({"explain_refused": unexplained} if unexplained else {})})
        return
    from rich.table import Table

    model = answer["model"]
    table = Table(
        title=f"{model['name']} v{model['version']}" + (f" ({model['alias']})" if model["alias"] else ""),
        title_justify="left",
    )
    level = answer.get("interval_level")
    ranged = level is not None and any(answer["intervals"])
    range_name = f"{level:.0%} range" if ranged else ""
    for name in (*LISTING_FIELDS, "predicted price", *([range_name] if ranged else [])):
        table.add_column(name, justify="right" if name in (*NUMERIC_LISTING_FIELDS, "predicted price") else "left")
    for i, (listing, price, unseen) in enumerate(zip(listings, answer["predictions"], answer["unseen"], strict=True)):
        shown = [str(listing.get(name, "")) + ("*" if name in unseen else "") for name in LISTING_FIELDS]
        bounds = answer["intervals"][i]
        extra = [f"{money(bounds[0])} – {money(bounds[1])}" if bounds else ""] if ranged else []
        table.add_row(*shown, money(price), *extra)
    app.out.print(table)
    if any(answer["unseen"]):
        app.warn(
            "* a value the model never saw in training (check its spelling): it learnt nothing of it; "
            "a model with location features still places a zip it finds in the zip table"
        )
    for i, explained in enumerate(answer.get("explanations") or []):
        _show_explanation(app, i, answer["predictions"][i], explained)
    if unexplained:
        app.warn(unexplained)


def _show_explanation(app: Any, index: int, price: float, explained: dict[str, Any], top: int = 6) -> None:
    """The largest contributions of one listing, in dollars, from the average listing's price."""
    from rich.table import Table

    app.out.print(f"listing {index + 1}: {money(price)} from an average {money(explained['base_price'])}, moved by")
    table = Table()
    for name, justify in (("feature", "left"), ("value", "left"), ("effect", "right")):
        table.add_column(name, justify=justify)
    terms = explained["contributions"]
    for term in terms[:top]:
        value = "not given" if term["value"] is None else term["value"]
        shown = f"{value:,.4g}" if isinstance(value, float) else str(value)
        table.add_row(term["feature"], shown, f"{'+' if term['effect'] >= 0 else '-'}{money(abs(term['effect']))}")
    if len(terms) > top:
        together = sum(term["contribution"] for term in terms[top:])  # in log price, effects do not add
        rest = price * (1 - math.exp(-together)) if explained["scale"] == "log" else together
        table.add_row(f"{len(terms) - top} more", "", f"{'+' if rest >= 0 else '-'}{money(abs(rest))}")
    app.out.print(table)
