"""A deterministic generator of realtor listings: same seed and batch, same rows.

Locations form a state → city → zip hierarchy; prices depend on size, beds, baths,
lot and location; values go missing, a few rows are outliers or duplicates, and the
price level and state mix drift from batch to batch so that retraining matters.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# state → (price per sq ft, zip prefix, cities with a location factor)
STATES: dict[str, tuple[float, int, dict[str, float]]] = {
    "California": (420.0, 900, {"Los Angeles": 1.25, "San Diego": 1.1, "Fresno": 0.6, "Sacramento": 0.75}),
    "Texas": (170.0, 750, {"Austin": 1.3, "Houston": 1.0, "Dallas": 1.05, "El Paso": 0.65}),
    "Florida": (240.0, 330, {"Miami": 1.35, "Orlando": 0.95, "Tampa": 1.0, "Tallahassee": 0.7}),
    "New York": (380.0, 100, {"New York": 1.6, "Buffalo": 0.5, "Albany": 0.65}),
    "Illinois": (190.0, 600, {"Chicago": 1.25, "Springfield": 0.6, "Peoria": 0.55}),
    "Washington": (360.0, 980, {"Seattle": 1.4, "Spokane": 0.7, "Tacoma": 0.9}),
    "Colorado": (300.0, 800, {"Denver": 1.15, "Boulder": 1.35, "Pueblo": 0.6}),
    "Georgia": (180.0, 300, {"Atlanta": 1.2, "Savannah": 0.95, "Macon": 0.6}),
    "Ohio": (140.0, 430, {"Columbus": 1.1, "Cleveland": 0.8, "Cincinnati": 0.95}),
    "Puerto Rico": (110.0, 6, {"San Juan": 1.3, "Ponce": 0.8, "Mayaguez": 0.7}),
}
# Where the state mix drifts to by the last batch: the cheap markets grow.
DRIFT_TARGET = ["Texas", "Ohio", "Georgia", "Puerto Rico", "Florida"]
ZIPS_PER_CITY = 3


@dataclass(frozen=True)
class GeneratorConfig:
    seed: int = 42
    batches: int = 10
    batch_rows: int = 1500
    price_drift: float = 0.06
    state_drift: float = 0.6


def _stable(text: str) -> int:
    return zlib.crc32(text.encode())


def locations() -> list[tuple[str, str, str, float]]:
    """Every (state, city, zip_code, location factor) the generator can produce."""
    out = []
    for state, (_ppsf, prefix, cities) in STATES.items():
        for ci, (city, factor) in enumerate(cities.items()):
            for zi in range(ZIPS_PER_CITY):
                zip_code = f"{prefix:03d}{ci * ZIPS_PER_CITY + zi:02d}"
                zip_factor = 0.9 + 0.2 * ((_stable(zip_code) % 100) / 100)
                out.append((state, city, zip_code, factor * zip_factor))
    return out


def _state_weights(batch: int, config: GeneratorConfig) -> np.ndarray:
    import numpy as np

    names = list(STATES)
    base = np.array([3.0, 2.5, 2.2, 1.8, 1.3, 1.0, 0.9, 1.1, 0.9, 0.6])
    target = np.array([2.0 if name in DRIFT_TARGET else 0.4 for name in names])
    progress = config.state_drift * (batch / max(config.batches - 1, 1))
    mix = (1 - progress) * base / base.sum() + progress * target / target.sum()
    return mix / mix.sum()


def batch_size(batch: int, config: GeneratorConfig) -> int:
    """Batches vary in size (±30 %), deterministically."""
    return max(10, int(config.batch_rows * (0.7 + 0.6 * ((_stable(f"{config.seed}:{batch}") % 1000) / 1000))))


def generate_batch(batch: int, config: GeneratorConfig) -> pd.DataFrame:
    """The rows of one batch, as a source would send them (ids with stray ``.0``, mixed case)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng([config.seed, batch])
    n = batch_size(batch, config)
    names = list(STATES)
    table = locations()  # grouped by state, in STATES order
    first = {state: next(i for i, loc in enumerate(table) if loc[0] == state) for state in names}
    count = {state: sum(1 for loc in table if loc[0] == state) for state in names}
    state_idx = rng.choice(len(names), size=n, p=_state_weights(batch, config))
    starts = np.array([first[s] for s in names])[state_idx]
    counts = np.array([count[s] for s in names])[state_idx]
    loc_idx = starts + (rng.random(n) * counts).astype(int)
    state = np.array([loc[0] for loc in table], dtype=object)[loc_idx]
    city = np.array([loc[1] for loc in table], dtype=object)[loc_idx]
    zip_code = np.array([loc[2] for loc in table], dtype=object)[loc_idx]
    factor = np.array([loc[3] for loc in table])[loc_idx]
    ppsf = np.array([STATES[s][0] for s in names])[state_idx]

    house_size = np.clip(rng.lognormal(np.log(1800), 0.38, n), 400, 9000).round()
    bed = np.clip(np.round(house_size / 650 + rng.normal(0, 0.7, n)), 1, 9)
    bath = np.clip(np.round((bed * 0.7 + rng.normal(0.3, 0.5, n)) * 2) / 2, 1, 7)
    acre_lot = np.round(np.clip(rng.lognormal(np.log(0.22), 0.9, n), 0.01, 40), 2)
    level = (1 + config.price_drift) ** batch
    price = (
        (
            25_000 * factor
            + ppsf * factor * house_size
            + 9_000 * bed
            + 14_000 * bath
            + 30_000 * np.minimum(acre_lot, 5.0)
        )
        * level
        * rng.lognormal(0, 0.1, n)
    )

    status = rng.choice(np.array(["for_sale", "For Sale", "ready_to_build"], dtype=object), n)
    status[rng.random(n) < 0.55] = "sold"
    casing = rng.random(n)
    city = np.where(
        casing < 0.05, [c.upper() for c in city], np.where(casing > 0.95, [f" {c.lower()}" for c in city], city)
    )
    as_float = rng.random(n) < 0.5  # some sources send zip codes and ids as floats
    zip_out = np.where(as_float, zip_code.astype(float), zip_code).astype(object)
    parts = {"year": rng.integers(1995, 2024, n), "month": rng.integers(1, 13, n), "day": rng.integers(1, 29, n)}
    sold_dates = pd.to_datetime(pd.DataFrame(parts)).dt.strftime("%Y-%m-%d").to_numpy(dtype=object)
    sold_dates[rng.random(n) < 0.35] = None
    frame = pd.DataFrame(
        {
            "brokered_by": rng.integers(1000, 110_000, n).astype(float),
            "status": status,
            "price": np.round(price, -2),
            "bed": bed,
            "bath": bath,
            "acre_lot": acre_lot,
            "street": rng.integers(10_000, 2_000_000, n).astype(float),
            "city": city,
            "state": state,
            "zip_code": zip_out,
            "house_size": house_size,
            "prev_sold_date": sold_dates,
        }
    )
    return _spoil(frame, rng)


def _spoil(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Realistic dirt: missing values, outliers, impossible rows and re-sent duplicates."""
    import numpy as np
    import pandas as pd

    n = len(frame)
    for col, share in (("bed", 0.04), ("bath", 0.05), ("house_size", 0.06), ("acre_lot", 0.1), ("city", 0.005)):
        frame.loc[rng.random(n) < share, col] = None if col == "city" else np.nan
    frame.loc[rng.random(n) < 0.006, "price"] = frame["price"] * 12  # mansions and typos
    frame.loc[rng.random(n) < 0.004, "price"] = 0
    frame.loc[rng.random(n) < 0.003, "price"] = np.nan
    frame.loc[rng.random(n) < 0.003, "house_size"] = 1.0
    frame.loc[rng.random(n) < 0.002, "bed"] = 250.0
    return pd.concat([frame, frame[rng.random(n) < 0.01]], ignore_index=True)
