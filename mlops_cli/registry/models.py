"""`mlops models list|show`: registered versions with aliases, metrics and the data they saw."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_cli.registry.client import alias_version, configure, model_aliases, resolve_version, version_info

if TYPE_CHECKING:
    from mlops_cli.config import Settings


def list_versions(settings: Settings) -> list[dict[str, Any]]:
    client = configure(settings)
    versions = client.search_model_versions(f"name='{settings.model_name}'")
    aliases = model_aliases(client, settings)
    return sorted((version_info(client, settings, mv, aliases) for mv in versions), key=lambda v: v["version"])


def show_version(settings: Settings, ref: str) -> dict[str, Any]:
    client = configure(settings)
    info = version_info(client, settings, resolve_version(client, settings, ref))
    run = client.get_run(info["run_id"]) if info["run_id"] else None
    if run is not None:
        info["metrics"] = dict(run.data.metrics)
        info["params"] = dict(run.data.params)
    return info


@dataclass(kw_only=True)
class AliasState:
    champion: int | None
    challenger: int | None


def alias_state(settings: Settings) -> AliasState:
    client = configure(settings)
    champ = alias_version(client, settings, settings.champion_alias)
    chall = alias_version(client, settings, settings.challenger_alias)
    return AliasState(champion=int(champ.version) if champ else None, challenger=int(chall.version) if chall else None)
