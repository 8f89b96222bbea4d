"""Where a listing is, as numbers the trees can split on: the location is most of a price.

:class:`LocationFeatures` turns a listing's ``state``, ``city`` and ``zip_code`` into

- the smoothed mean log price and the smoothed median log price per square foot of its zip, its
  city and its state, **computed from the training rows only** and shrunk toward the wider area
  (a zip seen twice says little; its city says more), at the most specific level the listing has;
- how many training listings its zip and its city held (0: never seen, or not given);
- the zip's latitude and longitude from the ``zipcodes`` package's own table (shipped inside its
  wheel: nothing is downloaded), else the mean position of its city's or state's training zips;
- the zip as a number (US zips run roughly east to west and north to south);
- the zip's county from the same table, as a number: the county's place in the table's counties
  sorted by state and name (so a state's counties are neighbours), else the county most of its
  city's training zips are in; :func:`county_name` turns it back into ``"Travis County, TX"``.

Fitted inside the registered pipeline, so the API computes them exactly as training did. On the
training rows themselves ``fit_transform`` answers out of fold (each row's encodings come from
the other folds only), as sklearn's ``TargetEncoder`` does: a row never sees its own price.

Every value a listing can get is precomputed at ``fit`` into plain dictionaries, so serving a
row is a handful of lookups (:meth:`LocationFeatures.row`), the same lookups ``transform`` does.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

INPUTS = ["state", "city", "zip_code", "house_size"]
# "geo": where the zip is (no price involved); "prices": what the training rows say of its area
GEO = ["latitude", "longitude", "zip_number", "county"]
PRICES = [
    "area_log_price",  # smoothed mean log price of the most specific area known (zip, city, state)
    "area_log_ppsf",  # smoothed median log price per sq ft of the same area
    "city_log_price",
    "city_log_ppsf",
    "state_log_price",
    "zip_listings",
    "city_listings",
]
PARTS = {"geo": GEO, "prices": PRICES}
OUTPUTS = GEO + PRICES
_NAN = float("nan")


@lru_cache(maxsize=65_536)
def _zip_entries(zip_code: str) -> tuple[dict[str, Any], ...]:
    """The ``zipcodes`` table's entries of a five-digit US zip (none for anything else)."""
    if not (len(zip_code) == 5 and zip_code.isdigit()):
        return ()
    import zipcodes

    try:
        return tuple(zipcodes.matching(zip_code))
    except (ValueError, TypeError):
        return ()


def zip_point(zip_code: str) -> tuple[float, float] | None:
    """(latitude, longitude) of a five-digit US zip from the ``zipcodes`` table, or None."""
    for entry in _zip_entries(zip_code):
        try:
            return float(entry["lat"]), float(entry["long"])
        except (KeyError, TypeError, ValueError):
            continue
    return None


@lru_cache(maxsize=1)
def _counties() -> tuple[dict[tuple[str, str], int], list[str]]:
    """Every county of the ``zipcodes`` table numbered in (state, name) order, and their names."""
    import zipcodes

    keys = sorted({(e["state"], e["county"]) for e in zipcodes.list_all() if e.get("county") and e.get("state")})
    return {key: i for i, key in enumerate(keys)}, [f"{county}, {state}" for state, county in keys]


def zip_county(zip_code: str) -> float:
    """The number of a zip's county (:func:`_counties`), NaN when the table names none."""
    numbers = _counties()[0]
    for entry in _zip_entries(zip_code):
        number = numbers.get((entry.get("state"), entry.get("county")))
        if number is not None:
            return float(number)
    return _NAN


def county_name(number: Any) -> str | None:
    """``"Travis County, TX"`` for a county's number; None for NaN or a number no county has."""
    names = _counties()[1]
    try:
        index = int(number)
    except (TypeError, ValueError, OverflowError):
        return None
    return names[index] if 0 <= index < len(names) and index == number else None


def zip_number(zip_code: Any) -> float:
    return float(zip_code) if isinstance(zip_code, str) and zip_code.isdigit() else _NAN


def pd_values(X: Any, column: str) -> list[Any]:
    """A column of a frame as Python values, missing ones as None (through one list: iterating
    pandas' arrow-backed strings one by one is ~20x slower)."""
    values = X[column]
    return [v if isinstance(v, str) else None for v in (values.tolist() if hasattr(values, "tolist") else values)]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _texts(X: Any, column: str) -> np.ndarray:
    """:func:`pd_values` as an object array, empty strings as None too."""
    return np.array([v or None for v in pd_values(X, column)], dtype=object)


def _summaries(
    codes: np.ndarray, names: np.ndarray, values: np.ndarray, ppsf: np.ndarray
) -> dict[Any, tuple[int, float, float, int]]:
    """Per key (``codes`` index ``names``, -1: none): rows, mean log price, median log price per sq
    ft (NaN without a size), rows with a size. Grouped on the integer codes: grouping millions of
    strings costs far more."""
    import pandas as pd

    frame = pd.DataFrame({"key": codes, "value": values, "ppsf": ppsf})
    frame = frame[frame["key"] >= 0]
    grouped = frame.groupby("key", sort=True)
    table = pd.DataFrame(
        {
            "n": grouped["value"].size(),
            "mean": grouped["value"].mean(),
            "ppsf": grouped["ppsf"].median(),
            "sized": grouped["ppsf"].count(),
        }
    )
    return {
        names[key]: (int(row.n), float(row.mean), float(row.ppsf), int(row.sized))
        for key, row in zip(table.index, table.itertuples(index=False), strict=True)
    }


def _shrunk(n: int, value: float, parent: float, k: float) -> float:
    if n == 0 or math.isnan(value):
        return parent
    return (n * value + k * parent) / (n + k)


class LocationFeatures(TransformerMixin, BaseEstimator):
    """``state, city, zip_code, house_size`` → :data:`OUTPUTS` (see the module's text).

    ``parts``: which of :data:`PARTS` it answers, in that order;
    ``smoothing``: how many listings of the wider area a local mean is worth (shrinkage);
    ``folds``: the out-of-fold split of the training rows; ``seed``: its shuffle.
    ``y`` is the log price (the pipeline sits inside the log-price target transform).
    """

    def __init__(
        self, parts: tuple[str, ...] = ("geo", "prices"), smoothing: float = 20.0, folds: int = 5, seed: int = 0
    ) -> None:
        self.parts = parts
        self.smoothing = smoothing
        self.folds = folds
        self.seed = seed

    # -- fitting ------------------------------------------------------------------------------

    @staticmethod
    def _inputs(X: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per row the codes of its state, "state|city" and zip (-1: none) and its house size, as
        arrays the folds index, with the names the codes stand for: converted once per fit, not
        once per fold."""
        import pandas as pd

        state, zips = _texts(X, "state"), _texts(X, "zip_code")
        city = np.array(
            [f"{s}|{c}" if s and c else None for s, c in zip(state, _texts(X, "city"), strict=True)], dtype=object
        )
        coded = [pd.factorize(column) for column in (state, city, zips)]
        rows = [codes for codes, _ in coded] + [np.asarray(X["house_size"], dtype=float)]
        return rows, [np.asarray(names, dtype=object) for _, names in coded]

    def _tables(self, inputs: tuple[list[np.ndarray], list[np.ndarray]], y: np.ndarray) -> dict[str, Any]:
        (state, city, zips, size), (state_names, city_names, zip_names) = inputs
        with np.errstate(divide="ignore", invalid="ignore"):
            ppsf = np.where(size > 0, y - np.log(size), np.nan)
        k = float(self.smoothing)
        top_price = float(np.mean(y))
        top_ppsf = float(np.nanmedian(ppsf)) if np.isfinite(ppsf).any() else _NAN
        states: dict[str, tuple[float, float]] = {}
        for key, (n, mean, med, sized) in _summaries(state, state_names, y, ppsf).items():
            states[key] = (_shrunk(n, mean, top_price, k), _shrunk(sized, med, top_ppsf, k))
        cities: dict[str, tuple[float, float, int]] = {}
        for key, (n, mean, med, sized) in _summaries(city, city_names, y, ppsf).items():
            parent = states.get(key.split("|", 1)[0], (top_price, top_ppsf))
            cities[key] = (_shrunk(n, mean, parent[0], k), _shrunk(sized, med, parent[1], k), n)
        # a zip's wider area: the city most of its training rows name (on a tie, the one named
        # first); counted in one grouping, not one count per zip (a US file has 30k zips)
        import pandas as pd

        pairs = pd.DataFrame({"zip": zips, "city": city})
        pairs = pairs[(pairs["zip"] >= 0) & (pairs["city"] >= 0)].groupby(["zip", "city"], sort=False).size()
        pairs = pairs.reset_index(name="rows").sort_values(["zip", "rows"], ascending=[True, False], kind="stable")
        first = pairs.drop_duplicates("zip")
        majority = dict(zip(zip_names[first["zip"]], city_names[first["city"]], strict=True))
        zips_out: dict[str, tuple[float, float, int]] = {}
        for key, (n, mean, med, sized) in _summaries(zips, zip_names, y, ppsf).items():
            home = cities.get(majority.get(key, ""))
            parent = (home[0], home[1]) if home else (top_price, top_ppsf)
            zips_out[key] = (_shrunk(n, mean, parent[0], k), _shrunk(sized, med, parent[1], k), n)
        return {"top": (top_price, top_ppsf), "states": states, "cities": cities, "zips": zips_out}

    def _points(self, X: Any) -> tuple[dict[str, Any], dict[str, float]]:
        """Mean position of each city's and state's training zips, and the county most of a city's
        training zips are in (for a listing whose zip the table lacks)."""
        from collections import Counter

        sums: dict[str, list[float]] = {}
        counties: dict[str, Counter[float]] = {}
        # once per distinct place, weighted by its rows: millions of rows hold a few thousand places
        places = Counter(zip(*(pd_values(X, column) for column in ("state", "city", "zip_code")), strict=True))
        for (state, city, zip_code), rows in places.items():
            point = zip_point(zip_code) if _text(zip_code) else None
            if point is None or not _text(state):
                continue
            keys = [state] + ([f"{state}|{city}"] if _text(city) else [])
            for key in keys:
                total = sums.setdefault(key, [0.0, 0.0, 0.0])
                total[0] += point[0] * rows
                total[1] += point[1] * rows
                total[2] += rows
            county = zip_county(zip_code)
            if _text(city) and county == county:
                counties.setdefault(f"{state}|{city}", Counter())[county] += rows
        points = {key: (lat / n, lon / n) for key, (lat, lon, n) in sums.items()}
        # the most common county; on a tie the lowest number (the same answer on every fit)
        return points, {key: min(c, key=lambda k: (-c[k], k)) for key, c in counties.items()}

    def fit(self, X: Any, y: Any = None) -> LocationFeatures:
        return self._fit(X, y, None)

    def _fit(self, X: Any, y: Any, inputs: tuple[list[np.ndarray], list[np.ndarray]] | None) -> LocationFeatures:
        unknown = [p for p in self.parts if p not in PARTS]
        if unknown or not self.parts:
            raise ValueError(f"LocationFeatures parts are {', '.join(PARTS)}, not {unknown or 'none'}")
        self.outputs_ = [name for part in self.parts for name in PARTS[part]]
        self.prices_ = "prices" in self.parts
        if self.prices_ and y is None:
            raise ValueError("LocationFeatures needs the (log) prices to fit its area prices")
        if self.prices_:
            self.tables_ = self._tables(inputs or self._inputs(X), np.asarray(y, dtype=float))
        else:
            self.tables_ = {}
        self.points_, self.counties_ = self._points(X) if "geo" in self.parts else ({}, {})
        self.n_features_in_ = len(INPUTS)
        return self

    def fit_transform(self, X: Any, y: Any = None, **_: Any) -> np.ndarray:
        """Fit on every row; each training row's own encodings come from the other folds."""
        from sklearn.model_selection import KFold

        inputs = self._inputs(X) if "prices" in self.parts else None
        self._fit(X, y, inputs)
        if inputs is None or len(X) < 2 * self.folds:  # geography alone knows no price
            return self.transform(X)
        values = np.asarray(y, dtype=float)
        out = np.empty((len(X), len(self.outputs_)))
        for fitting, held in KFold(self.folds, shuffle=True, random_state=self.seed).split(X):
            tables = self._tables(([column[fitting] for column in inputs[0]], inputs[1]), values[fitting])
            out[held] = self._apply(tables, X.iloc[held])
        return out

    # -- answering ----------------------------------------------------------------------------

    def _row(self, tables: dict[str, Any], state: Any, city: Any, zip_code: Any) -> list[float]:
        state, city, zip_code = _text(state), _text(city), _text(zip_code)
        city_key = f"{state}|{city}" if state and city else None
        out: list[float] = []
        if "geo" in self.parts:
            point = zip_point(zip_code) if zip_code else None
            if point is None:
                point = self.points_.get(city_key or "") or self.points_.get(state or "") or (_NAN, _NAN)
            out += [point[0], point[1], zip_number(zip_code)]
            if "county" in self.outputs_:  # a model pickled before counties has no such column
                county = zip_county(zip_code) if zip_code else _NAN
                out.append(county if county == county else self.counties_.get(city_key or "", _NAN))
        if self.prices_:
            top = tables["top"]
            state_values = tables["states"].get(state, top) if state else top
            city_values = tables["cities"].get(city_key) if city_key else None
            zip_values = tables["zips"].get(zip_code) if zip_code else None
            area = zip_values or city_values or state_values
            wider = city_values or state_values
            out += [
                area[0],
                area[1],
                wider[0],
                wider[1],
                state_values[0],
                float(zip_values[2]) if zip_values else 0.0,
                float(city_values[2]) if city_values else 0.0,
            ]
        return out

    def row(self, state: Any, city: Any, zip_code: Any) -> list[float]:
        """One listing's features (the serving fast path); what :meth:`transform` gives its row."""
        return self._row(self.tables_, state, city, zip_code)

    def transform(self, X: Any) -> np.ndarray:
        return self._apply(self.tables_, X)

    def _apply(self, tables: dict[str, Any], X: Any) -> np.ndarray:
        """:meth:`_row` once per distinct (state, city, zip) of ``X``: far fewer than its rows."""
        seen: dict[tuple[Any, Any, Any], int] = {}
        codes = np.array(
            [
                seen.setdefault(key, len(seen))
                for key in zip(*(pd_values(X, column) for column in ("state", "city", "zip_code")), strict=True)
            ],
            dtype=np.int64,
        )
        if not seen:
            return np.empty((len(X), len(self.outputs_)))
        table = np.array([self._row(tables, *key) for key in seen], dtype=float)
        return table[codes]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array(self.outputs_, dtype=object)
