"""`mlops models list|show` read through the light registry: every version, its aliases, its run."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_cli.errors import VersionNotFound
from mlops_cli.registry.models import alias_state, list_versions, show_version
from tests.conftest import serving_settings


def test_versions_in_order_with_their_aliases_and_one_shown_with_its_run(registry_home: Path) -> None:
    settings = serving_settings(registry_home)
    versions = list_versions(settings)
    assert [v["version"] for v in versions] == sorted(v["version"] for v in versions) and len(versions) >= 2
    state = alias_state(settings)
    champion = next(v for v in versions if "champion" in v["aliases"])
    assert state.champion == champion["version"]
    shown = show_version(settings, "champion")
    assert shown["version"] == champion["version"] and shown["metrics"]["rmse"] == pytest.approx(champion["rmse"])
    assert shown["params"]["model_type"] == champion["model_type"]
    assert show_version(settings, f"v{champion['version']}")["version"] == champion["version"]
    with pytest.raises(VersionNotFound):
        show_version(settings, "999")
