"""The registry without importing MLflow: the everyday commands (`models list/show`, `promote`,
`rollback`, `models compare` on remembered scores) answer in about the time `import mlflow`
alone takes (bench/cli.py), and the loop moves its aliases the same way.

Two backends with MLflow's meaning: SQL against MLflow's own tables when the tracking URI is a
database (the embedded default, PostgreSQL, MySQL), and MLflow's REST API when it is a server.
They read versions, aliases, runs and where a version's artifacts are, and write what a
promotion changes — aliases, version tags, the description — as MLflow's own store does.
tests/registry/test_light.py holds both to what MLflow's client reads back. Logging runs and
registering versions stay MLflow's (training imports it anyway).
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


# MLflow's error codes for a model, version or alias that does not exist (its REST answers say so
# with 404, or with one of these codes in the JSON body of another 4xx).
MISSING_CODES = ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")


def not_found(response: Any) -> bool:
    """An MLflow REST answer saying the thing asked for does not exist: by its status and the
    ``error_code`` of its JSON body, never by the words of its message."""
    if response.status_code == 404:
        return True
    if not 400 <= response.status_code < 500:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("error_code") in MISSING_CODES


class _Sql:
    def __init__(self, uri: str) -> None:
        from mlops_cli.registry.engines import shared_engine

        if uri.startswith("postgresql://"):
            uri = "postgresql+psycopg://" + uri.removeprefix("postgresql://")
        self.engine = shared_engine(uri)

    def _rows(self, query: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def is_empty(self) -> bool:
        """No registry yet: MLflow has not created its tables in this database (False when the
        database cannot be asked: that is an outage, said as one)."""
        from sqlalchemy import inspect

        try:
            return not inspect(self.engine).has_table("model_versions")
        except Exception:
            return False

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

    def artifact_uri(self, name: str, version: str) -> str | None:
        from sqlalchemy import column, select, table

        mv = table("model_versions", column("name"), column("version"), column("storage_location"), column("source"))
        rows = self._rows(select(mv.c.storage_location, mv.c.source).where(mv.c.name == name, mv.c.version == version))
        return (rows[0][0] or rows[0][1]) if rows else None

    # Writes, each in one transaction, as MLflow's SqlAlchemyStore makes them: a row keyed by its
    # workspace (the version's own), merged (delete + insert) so that a repeat changes nothing.
    def _workspace(self, conn: Any, name: str, version: str) -> str:
        from sqlalchemy import column, select, table

        mv = table("model_versions", column("name"), column("version"), column("workspace"))
        found = conn.execute(select(mv.c.workspace).where(mv.c.name == name, mv.c.version == version)).first()
        if found is None:
            raise VersionNotFound(f"model {name} has no version {version}", hint="`mlops models list` shows them")
        return found[0]

    def _merge(self, table_name: str, key: dict[str, Any], values: dict[str, Any], version: str) -> None:
        from sqlalchemy import and_, column, delete, insert, table

        with self.engine.begin() as conn:
            row = {**key, "workspace": self._workspace(conn, key["name"], version), **values}
            t = table(table_name, *(column(c) for c in row))
            conn.execute(delete(t).where(and_(*(t.c[c] == row[c] for c in ("workspace", *key)))))
            conn.execute(insert(t).values(row))

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._merge("registered_model_aliases", {"name": name, "alias": alias}, {"version": int(version)}, version)

    def delete_alias(self, name: str, alias: str) -> None:
        from sqlalchemy import column, delete, table

        aliases = table("registered_model_aliases", column("name"), column("alias"))
        with self.engine.begin() as conn:
            conn.execute(delete(aliases).where(aliases.c.name == name, aliases.c.alias == alias))

    def set_tag(self, name: str, version: str, key: str, value: str) -> None:
        key_of = {"name": name, "version": int(version), "key": key}
        self._merge("model_version_tags", key_of, {"value": value}, version)

    def set_description(self, name: str, version: str, description: str) -> None:
        import time

        from sqlalchemy import column, table, update

        columns = ("name", "version", "description", "last_updated_time")
        mv = table("model_versions", *(column(c) for c in columns))
        with self.engine.begin() as conn:
            self._workspace(conn, name, version)
            conn.execute(
                update(mv)
                .where(mv.c.name == name, mv.c.version == int(version))
                .values(description=description, last_updated_time=int(time.time() * 1000))
            )


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
        if not_found(response):
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

    def artifact_uri(self, name: str, version: str) -> str | None:
        return self._get("model-versions/get-download-uri", name=name, version=version).get("artifact_uri")

    def _send(self, method: str, path: str, body: dict[str, Any]) -> None:
        response = self.client.request(method, path, json=body, timeout=30)
        if not_found(response):
            raise VersionNotFound(
                f"model {body.get('name')} has no version {body.get('version')}",
                hint="`mlops models list` shows them",
            )
        response.raise_for_status()

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._send("POST", "registered-models/alias", {"name": name, "alias": alias, "version": version})

    def delete_alias(self, name: str, alias: str) -> None:
        self._send("DELETE", "registered-models/alias", {"name": name, "alias": alias})

    def set_tag(self, name: str, version: str, key: str, value: str) -> None:
        self._send("POST", "model-versions/set-tag", {"name": name, "version": version, "key": key, "value": value})

    def set_description(self, name: str, version: str, description: str) -> None:
        self._send("PATCH", "model-versions/update", {"name": name, "version": version, "description": description})


READS = ("versions", "aliases", "run", "artifact_uri")


class LightRegistry:
    """One model's registry, read and moved with MLflow's meaning and without its import."""

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
        except VersionNotFound:
            raise
        except Exception as exc:  # a DB or HTTP failure, in whatever type its driver raises
            if method in READS and isinstance(self.reader, _Sql) and self.reader.is_empty():  # nothing yet
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

    def alias_version(self, alias: str) -> Version | None:
        """The version ``alias`` points at, or None when the alias (or the model) does not exist."""
        target = self.aliases().get(alias)
        return None if target is None else self.version(target)

    def artifact_uri(self, version: str | int) -> str | None:
        """Where ``version``'s model files are (MLflow's download URI for ``models:/name/version``)."""
        return self._call("artifact_uri", self.settings.model_name, str(version))

    def set_alias(self, alias: str, version: str | int) -> None:
        self._call("set_alias", self.settings.model_name, alias, str(version))

    def delete_alias(self, alias: str) -> None:
        self._call("delete_alias", self.settings.model_name, alias)

    def set_tag(self, version: str | int, key: str, value: str) -> None:
        self._call("set_tag", self.settings.model_name, str(version), key, value)

    def set_description(self, version: str | int, description: str) -> None:
        self._call("set_description", self.settings.model_name, str(version), description)
