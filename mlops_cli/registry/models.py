"""`mlops models list|show`: registered versions with aliases, metrics and the data they saw.

Read through the light registry (no MLflow import): these are everyday commands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_cli.registry.client import version_info
from mlops_cli.registry.light import LightRegistry

if TYPE_CHECKING:
    from mlops_cli.config import Settings


def _by_version(aliases: dict[str, int]) -> dict[int, list[str]]:
    by_version: dict[int, list[str]] = {}
    for alias, version in aliases.items():
        by_version.setdefault(version, []).append(alias)
    return by_version


def list_versions(settings: Settings) -> list[dict[str, Any]]:
    registry = LightRegistry(settings)
    aliases = _by_version(registry.aliases())
    return [version_info(None, settings, mv, aliases) for mv in registry.versions()]


def show_version(settings: Settings, ref: str) -> dict[str, Any]:
    registry = LightRegistry(settings)
    info = version_info(None, settings, registry.version(ref), _by_version(registry.aliases()))
    if info["run_id"]:
        info["metrics"], info["params"] = registry.run(info["run_id"])
    return info


@dataclass(kw_only=True)
class AliasState:
    champion: int | None
    challenger: int | None


def alias_state(settings: Settings) -> AliasState:
    aliases = LightRegistry(settings).aliases()
    return AliasState(champion=aliases.get(settings.champion_alias), challenger=aliases.get(settings.challenger_alias))
