"""A real MLflow registry (SQLite backend) trained by the core loop, shared by the serving tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_cli.settings import Settings, load_settings


@pytest.fixture(scope="session")
def registry_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs the loop once: at least two versions of house_prices, a champion."""
    home = tmp_path_factory.mktemp("registry") / ".mlops"
    settings = serving_settings(home)
    from mlops_cli.loop import run_batches
    from mlops_cli.registry import list_versions
    from mlops_cli.storage import engine_for
    from mlops_cli.train import train_model

    run_batches(settings, reload_api=False)
    if len(list_versions(settings)) < 2:
        train_model(settings, 3, engine_for(settings), model_type="ridge")
    engine_for(settings).dispose()
    return home


def serving_settings(home: Path, **extra: object) -> Settings:
    values = {
        "home": home,
        "generator_batches": 4,
        "generator_batch_rows": 400,
        "generator_price_drift": 0.3,
        "api_watch_interval": 0,
        "api_retry_interval": 0.2,
        "api_token": "test-token-" + "x" * 20,
        **extra,
    }
    return load_settings(**values)


@pytest.fixture
def registry_env(registry_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Environment for a child process serving from the shared registry."""
    for key in list(os.environ):
        if key.startswith("MLOPS_"):
            monkeypatch.delenv(key)
    env = {
        "MLOPS_HOME": str(registry_home),
        "MLOPS_API_TOKEN": "test-token-" + "x" * 20,
        "MLOPS_API_WATCH_INTERVAL": "0",
        "MLOPS_API_RETRY_INTERVAL": "0.2",
    }
    yield env
