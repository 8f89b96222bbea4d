"""`mlops predict`: ask the inference API for prices."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
    f"{', '.join(f for f in LISTING_FIELDS if f not in REQUIRED_LISTING_FIELDS)} (optional: the model imputes them). "
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
    as_json: JsonOption = False,
) -> None:
    """Predict prices through the inference API and show which model version answered."""
    from mlops_cli.ops.predict import listing_from_pairs, predict, read_listings

    if bool(sets) == bool(file):
        raise typer.BadParameter("give --set FIELD=VALUE ... or --file PATH", param_hint="--set/--file")
    app = application(ctx)
    try:
        listings = [listing_from_pairs(sets)] if sets else read_listings(file)  # type: ignore[arg-type]
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--set") from None
    config = app.settings(api_url=url)
    answer = predict(config.api_url, listings, config.api_max_batch)
    if as_json:
        app.print_json(answer)
        return
    from rich.table import Table

    model = answer["model"]
    table = Table(
        title=f"{model['name']} v{model['version']}" + (f" ({model['alias']})" if model["alias"] else ""),
        title_justify="left",
    )
    for name in (*LISTING_FIELDS, "predicted price"):
        table.add_column(name, justify="right" if name in (*NUMERIC_LISTING_FIELDS, "predicted price") else "left")
    for listing, price, unseen in zip(listings, answer["predictions"], answer["unseen"], strict=True):
        shown = [str(listing.get(name, "")) + ("*" if name in unseen else "") for name in LISTING_FIELDS]
        table.add_row(*shown, money(price))
    app.out.print(table)
    if any(answer["unseen"]):
        app.warn("* a value the model never saw in training: priced as an unknown place (check its spelling)")
