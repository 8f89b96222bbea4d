"""The inference API as our own commands call it: prices (`mlops predict`, the UI, `mlops up
--train`'s example) and the champion's reload after a promotion. One place knows its routes,
its token and what each refusal means."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops_cli.errors import MlopsError

if TYPE_CHECKING:
    from mlops_cli.config import Settings


class NotExplained(MlopsError):
    """The served model has no exact contributions (the API's 409): ask again without explain."""


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


def request_predictions(
    api_url: str, listings: list[dict[str, Any]], timeout: float = 30, explain: bool = False
) -> dict[str, Any]:
    import httpx

    url = api_url.rstrip("/") + "/predict" + ("?explain=true" if explain else "")
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
    if response.status_code == 409 and explain:
        raise NotExplained(f"the served model cannot explain its prices: {response.json().get('detail')}")
    if response.status_code == 503:
        raise MlopsError(
            f"the inference API has no model yet: {response.json().get('detail')}",
            hint="train one with `mlops train --all`",
        )
    if response.status_code >= 400:
        raise MlopsError(f"inference API answered HTTP {response.status_code}: {response.text[:300]}")
    return response.json()


def request_reload(settings: Settings) -> str | None:
    """Ask the inference API to load the new champion. Returns a warning instead of failing."""
    import httpx

    url = settings.api_url.rstrip("/") + "/load_model"
    try:
        response = httpx.post(url, headers={"Authorization": f"Bearer {settings.api_token_value()}"}, timeout=30)
    except httpx.HTTPError:
        return f"inference API at {settings.api_url} is not reachable; it loads the champion when it starts"
    if response.status_code >= 400:
        return f"inference API reload failed: HTTP {response.status_code} {response.text[:200]}"
    return None
