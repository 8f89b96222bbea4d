"""A client for the inference API's /predict (used by `mlops predict` and the UI)."""

from __future__ import annotations

from typing import Any

from mlops_cli.errors import MlopsError


def describe_422(body: Any) -> str:
    """FastAPI's validation errors as 'listing 2 → house_size: Input should be ...'."""
    detail = body.get("detail") if isinstance(body, dict) else body
    if not isinstance(detail, list):
        return str(detail)
    parts = []
    for item in detail[:5]:
        loc = [str(p) for p in item.get("loc", []) if p != "body"]
        where = " → ".join(f"listing {p}" if p.isdigit() else p for p in loc) or "body"
        parts.append(f"{where}: {item.get('msg', item)}")
    return "; ".join(parts)


def request_predictions(api_url: str, listings: list[dict[str, Any]], timeout: float = 30) -> dict[str, Any]:
    import httpx

    url = api_url.rstrip("/") + "/predict"
    body: Any = listings[0] if len(listings) == 1 else listings
    try:
        response = httpx.post(url, json=body, timeout=timeout)
    except httpx.HTTPError as exc:
        raise MlopsError(
            f"inference API at {api_url} is not reachable ({type(exc).__name__})",
            hint="start it with `mlops serve` (or `mlops up`), or set MLOPS_API_URL",
        ) from None
    if response.status_code == 422:
        raise MlopsError(f"invalid listing: {describe_422(response.json())}")
    if response.status_code == 503:
        raise MlopsError(
            f"the inference API has no model yet: {response.json().get('detail')}",
            hint="train one with `mlops train --all`",
        )
    if response.status_code >= 400:
        raise MlopsError(f"inference API answered HTTP {response.status_code}: {response.text[:300]}")
    return response.json()
