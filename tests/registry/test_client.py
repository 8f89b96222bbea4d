"""The registry client against a real MLflow: versions by number or alias, typed errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_cli.errors import RegistryUnavailable, VersionNotFound
from mlops_cli.ops.netutil import free_port
from mlops_cli.registry.client import configure, resolve_version, version_info
from mlops_cli.registry.models import alias_state, list_versions
from tests.conftest import serving_settings


def test_versions_resolve_by_number_or_alias_and_describe_themselves(registry_home: Path) -> None:
    settings = serving_settings(registry_home)
    client = configure(settings)
    champion = alias_state(settings).champion
    assert int(resolve_version(client, settings, "champion").version) == champion
    assert int(resolve_version(client, settings, f"v{champion}").version) == champion
    info = version_info(client, settings, resolve_version(client, settings, champion))
    assert info["aliases"] == ["champion"] and info["rmse"] > 0 and info["batches"]
    assert [v["version"] for v in list_versions(settings)] == sorted(v["version"] for v in list_versions(settings))


@pytest.mark.parametrize("ref", ["999", "nobody"])
def test_an_unknown_version_or_alias_is_version_not_found(registry_home: Path, ref: str) -> None:
    settings = serving_settings(registry_home)
    with pytest.raises(VersionNotFound, match="models list"):
        resolve_version(configure(settings), settings, ref)


def test_an_unreachable_server_is_registry_unavailable(home: Path) -> None:
    settings = serving_settings(home, mlflow_tracking_uri=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(RegistryUnavailable, match="cannot reach MLflow"):
        configure(settings)
