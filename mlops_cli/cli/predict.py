"""`mlops predict`: ask the inference API for prices."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mlops_cli.cli.common import money, out, print_json, settings

NUMERIC = ("house_size", "bed", "bath", "acre_lot")
FIELDS = ("city", "state", "zip_code", *NUMERIC)


def parse_sets(pairs: list[str]) -> dict[str, Any]:
    listing: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or name not in FIELDS:
            raise typer.BadParameter(
                f"expected FIELD=VALUE with FIELD one of {', '.join(FIELDS)}; got {pair!r}", param_hint="--set"
            )
        if name in NUMERIC:
            try:
                listing[name] = float(value)
            except ValueError:
                raise typer.BadParameter(f"{name} must be a number, got {value!r}", param_hint="--set") from None
        else:
            listing[name] = value
    return listing


def read_listings(path: Path) -> list[dict[str, Any]]:
    import json

    from mlops_cli.errors import MlopsError

    if not path.exists():
        raise MlopsError(f"file not found: {path}")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text())
        except ValueError as exc:
            raise MlopsError(f"{path} is not valid JSON: {exc}") from None
        data = data if isinstance(data, list) else [data]
        if not all(isinstance(item, dict) for item in data):
            raise MlopsError(f"{path} must hold a listing object or a list of them")
        return data
    if path.suffix.lower() == ".csv":
        import pandas as pd

        frame = pd.read_csv(path, dtype={"zip_code": str})
        frame = frame[[c for c in FIELDS if c in frame.columns]]
        return [{k: v for k, v in row.items() if v == v} for row in frame.to_dict(orient="records")]  # v == v: not NaN
    raise MlopsError(f"{path}: expected a .json or .csv file")


def predict(
    sets: Annotated[list[str] | None, typer.Option("--set", "-s", help="FIELD=VALUE of one listing (repeat).")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Listings in a .json or .csv file.")] = None,
    url: Annotated[
        str | None, typer.Option(help="The inference API.", envvar="MLOPS_API_URL", show_envvar=True)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON answer.")] = False,
) -> None:
    """Predict prices through the inference API and show which model version answered."""
    from mlops_cli.predict_client import request_predictions

    if bool(sets) == bool(file):
        raise typer.BadParameter("give --set FIELD=VALUE ... or --file PATH", param_hint="--set/--file")
    listings = [parse_sets(sets)] if sets else read_listings(file)  # type: ignore[arg-type]
    api = url or settings().api_url
    answer = request_predictions(api, listings)
    if as_json:
        print_json(answer)
        return
    from rich.table import Table

    model = answer["model"]
    table = Table(
        title=f"{model['name']} v{model['version']}" + (f" ({model['alias']})" if model["alias"] else ""),
        title_justify="left",
    )
    for name in (*FIELDS, "predicted price"):
        table.add_column(name, justify="right" if name in (*NUMERIC, "predicted price") else "left")
    for listing, price in zip(listings, answer["predictions"], strict=True):
        table.add_row(*(str(listing.get(name, "")) for name in FIELDS), money(price))
    out.print(table)
