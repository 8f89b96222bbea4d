"""Reading the registry without importing MLflow: the everyday commands (`models list/show`,
`promote 9999`) answer in about the time `import mlflow` alone takes (bench/cli.py).

Two readers of the same facts MLflow's client returns: SQL against MLflow's own tables when the
tracking URI is a database (the embedded default, PostgreSQL, MySQL), and MLflow's REST API when
it is a server. tests/registry/test_light.py holds both to the MLflow client's answers.
Writes (aliases, tags) still go through MLflow's client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_cli.errors import VersionNotFound
from mlops_cli.registry.refs import version_number

if TYPE_CHECKING:
    from mlops_cli.config import Settings

DELETED = "Deleted_Internal"  # MLflow's mark on a deleted model version


@dataclass(frozen=True)
class Version:
    """The fields of MLflow's ModelVersion that mlops reads."""

    name: str
    version: str
    run_id: str | None
    creation_timestamp: int | None
    source: str | None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


class _Sql:
    def __init__(self, uri: str) -> None:
        from sqlalchemy import create_engine

        if uri.startswith("postgresql://"):
            uri = "postgresql+psycopg://" + uri.removeprefix("postgresql://")
        self.engine = create_engine(uri)

    def _rows(self, query: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def versions(self, name: str) -> list[Version]:
        # table() and column(): quoted as each dialect wants ("key" is reserved in MySQL)
        from sqlalchemy import column, or_, select, table

        mv = table(
            "model_versions",
            *(column(c) for c in ("name", "version", "run_id", "creation_time", "source", "description")),
            column("current_stage"),
        )
        tags_table = table("model_version_tags", column("name"), column("version"), column("key"), column("value"))
        rows = self._rows(
            select(mv.c.version, mv.c.run_id, mv.c.creation_time, mv.c.source, mv.c.description).where(
                mv.c.name == name, or_(mv.c.current_stage.is_(None), mv.c.current_stage != DELETED)
            )
        )
        tags: dict[int, dict[str, str]] = {}
        query = select(tags_table.c.version, tags_table.c.key, tags_table.c.value).where(tags_table.c.name == name)
        for version, key, value in self._rows(query):
            tags.setdefault(int(version), {})[key] = value
        return [
            Version(name, str(v), run, created, source, description, tags.get(int(v), {}))
            for v, run, created, source, description in rows
        ]

    def aliases(self, name: str) -> dict[str, int]:
        from sqlalchemy import column, select, table

        aliases = table("registered_model_aliases", column("name"), column("alias"), column("version"))
        rows = self._rows(select(aliases.c.alias, aliases.c.version).where(aliases.c.name == name))
        return {alias: int(version) for alias, version in rows}

    def run(self, run_id: str) -> tuple[dict[str, float], dict[str, str]]:
        from sqlalchemy import column, select, table

        def pairs(name: str) -> list[Any]:
            kv = table(name, column("key"), column("value"), column("run_uuid"))
            return self._rows(select(kv.c.key, kv.c.value).where(kv.c.run_uuid == run_id))

        return {k: float(v) for k, v in pairs("latest_metrics")}, dict(pairs("params"))


class _Rest:
    def __init__(self, uri: str) -> None:
        import os

        import httpx

        user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
        self.client = httpx.Client(
            base_url=uri.rstrip("/") + "/api/2.0/mlflow/", auth=(user, password) if user and password else None
        )

    def _get(self, path: str, **params: Any) -> dict[str, Any]:
        response = self.client.get(path, params=params, timeout=30)
        if response.status_code == 404 or "RESOURCE_DOES_NOT_EXIST" in response.text[:300]:
            return {}
        response.raise_for_status()
        return response.json()

    def versions(self, name: str) -> list[Version]:
        found, token = [], None
        while True:
            page = self._get(
                "model-versions/search",
                filter=f"name='{name}'",
                max_results=200,
                **({"page_token": token} if token else {}),
            )
            for mv in page.get("model_versions", []):
                tags = {t["key"]: t.get("value", "") for t in mv.get("tags", [])}
                created = int(mv["creation_timestamp"]) if mv.get("creation_timestamp") else None
                run, source, description = mv.get("run_id"), mv.get("source"), mv.get("description")
                found.append(Version(name, str(mv["version"]), run, created, source, description, tags))
            token = page.get("next_page_token")
            if not token:
                return found

    def aliases(self, name: str) -> dict[str, int]:
        model = self._get("registered-models/get", name=name).get("registered_model", {})
        return {a["alias"]: int(a["version"]) for a in model.get("aliases", [])}

    def run(self, run_id: str) -> tuple[dict[str, float], dict[str, str]]:
        data = self._get("runs/get", run_id=run_id).get("run", {}).get("data", {})
        metrics = {m["key"]: float(m["value"]) for m in data.get("metrics", [])}
        return metrics, {p["key"]: p["value"] for p in data.get("params", [])}


class LightRegistry:
    """Read-only registry facts for one model, with MLflow's meaning and without its import."""

    def __init__(self, settings: Settings) -> None:
        from mlops_cli.registry.auth import offer_saved_credentials

        self.settings = settings
        uri = str(settings.mlflow_tracking_uri)
        if uri.startswith("sqlite"):
            settings.ensure_home()
        offer_saved_credentials(settings, uri)
        self.reader = _Rest(uri) if uri.startswith(("http://", "https://")) else _Sql(uri)

    def _call(self, method: str, *args: Any) -> Any:
        from mlops_cli.registry.client import unreachable

        try:
            return getattr(self.reader, method)(*args)
        except Exception as exc:  # a DB or HTTP failure, in whatever type its driver raises
            if "no such table" in str(exc):  # a fresh embedded registry: nothing registered yet
                return {} if method == "aliases" else []
            raise unreachable(self.settings, exc) from None

    def versions(self) -> list[Version]:
        return sorted(self._call("versions", self.settings.model_name), key=lambda v: int(v.version))

    def aliases(self) -> dict[str, int]:
        return self._call("aliases", self.settings.model_name)

    def run(self, run_id: str) -> tuple[dict[str, float], dict[str, str]]:
        return self._call("run", run_id) or ({}, {})

    def version(self, ref: str | int) -> Version:
        """A version by number (3, v3) or alias (champion); VersionNotFound, like the MLflow client."""
        name = self.settings.model_name
        number = version_number(ref)
        text = str(number)
        if number is None:
            target = self.aliases().get(str(ref))
            if target is None:
                raise VersionNotFound(
                    f"model {name} has no alias '{ref}'", hint="`mlops models list` shows versions and aliases"
                )
            text = str(target)
        found = next((v for v in self.versions() if v.version == text), None)
        if found is None:
            raise VersionNotFound(f"model {name} has no version {text}", hint="`mlops models list` shows them")
        return found
