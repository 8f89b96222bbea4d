"""Two versions priced side by side on live requests (one serving, the other in shadow), from
the inference events: what `mlops models compare` and the promotion rule's ``shadow`` clause
read. Numbers only when there is evidence: a compare without any imports nothing numeric."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


def shadow_evidence(engine: Engine, first: int, second: int) -> dict[str, Any] | None:
    """What the inference events say of two versions priced side by side on live requests (one
    serving, the other in shadow, either way round), or None when they never were: requests and
    listings seen, the mean and median absolute disagreement, the share of listings priced more
    than 10 % apart, and each one's time (the served one's whole request, the shadow's pricing)."""
    import numpy as np

    from mlops_cli.store.events import shadow_pairs

    for served, shadow in ((first, second), (second, first)):
        pairs = shadow_pairs(engine, served, shadow)
        if pairs:
            break
    else:
        return None
    served_prices = np.array([p[1] for p in pairs], dtype=float)
    shadow_prices = np.array([p[2] for p in pairs], dtype=float)
    apart = np.abs(shadow_prices - served_prices)
    requests = {p[0]: (p[3], p[4]) for p in pairs}
    return {
        "served": served,
        "shadow": shadow,
        "requests": len(requests),
        "listings": len(pairs),
        "mean_abs_disagreement": round(float(apart.mean()), 2),
        "median_abs_disagreement": round(float(np.median(apart)), 2),
        "share_over_10pct": round(float((apart > 0.1 * np.abs(served_prices)).mean()), 4),
        "served_request_ms_p50": round(float(np.median([t[0] for t in requests.values()])), 3),
        "shadow_pricing_ms_p50": round(float(np.median([t[1] for t in requests.values()])), 3),
    }
