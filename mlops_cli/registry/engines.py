"""One SQLAlchemy engine (and connection pool) per MLflow database URI and process: the light
registry is asked on every round of the loop and every reload of the API, and a new engine each
time would open connections of its own."""

from __future__ import annotations

from typing import Any

_engines: dict[str, Any] = {}


def shared_engine(uri: str) -> Any:
    if uri not in _engines:
        from sqlalchemy import create_engine

        _engines[uri] = create_engine(uri)
    return _engines[uri]


def forget(path: str) -> None:
    """Drop the engine of the SQLite database at ``path`` (its file is being replaced: pooled
    connections would go on reading the old one)."""
    for uri in [u for u in _engines if u.startswith("sqlite") and u.endswith(path)]:
        _engines.pop(uri).dispose()
