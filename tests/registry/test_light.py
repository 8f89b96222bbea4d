"""The light registry (no MLflow import) answers exactly what MLflow's client answers: on the
embedded SQLite registry and through a real `mlflow server` with its basic-auth app."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mlops_cli.errors import VersionNotFound
from mlops_cli.ops.netutil import free_port
from mlops_cli.ops.services import mlflow_spec
from mlops_cli.registry.client import configure, model_aliases, version_info
from mlops_cli.registry.light import LightRegistry
from mlops_cli.registry.models import list_versions, show_version
from tests.conftest import copy_home, serving_settings, start_logged, stop_group, wait_http


def through_mlflow(settings) -> list[dict]:  # noqa: ANN001
    client = configure(settings)
    aliases = model_aliases(client, settings)
    versions = client.search_model_versions(f"name='{settings.model_name}'")
    return sorted((version_info(client, settings, mv, aliases) for mv in versions), key=lambda v: v["version"])


def check_same_as_mlflow(settings) -> None:  # noqa: ANN001
    light = list_versions(settings)
    assert light and light == through_mlflow(settings)
    client = configure(settings)
    for info in light:
        run = client.get_run(info["run_id"])
        shown = show_version(settings, str(info["version"]))
        assert shown["metrics"] == dict(run.data.metrics) and shown["params"] == dict(run.data.params)
    champion = next(v for v in light if "champion" in v["aliases"])
    assert show_version(settings, "champion")["version"] == champion["version"]
    for ref in ("9999", "nobody"):
        with pytest.raises(VersionNotFound):
            LightRegistry(settings).version(ref)


def check_writes_read_back_by_mlflow(settings) -> None:  # noqa: ANN001
    """What a promotion writes — aliases, tags, the description — read back by MLflow's client
    exactly; where the artifacts are, as MLflow resolves ``models:/name/version``."""
    from mlflow.exceptions import MlflowException

    light, client, name = LightRegistry(settings), configure(settings), settings.model_name
    first, second = (str(v["version"]) for v in list_versions(settings)[:2])
    assert light.artifact_uri(first) == client.get_model_version_download_uri(name, first)
    light.set_alias("staging", first)
    light.set_alias("staging", second)  # moved, not added
    assert str(client.get_model_version_by_alias(name, "staging").version) == second
    assert light.alias_version("staging").version == second and light.alias_version("nobody") is None
    light.delete_alias("staging")
    light.delete_alias("staging")  # already gone: nothing to do, as in MLflow
    with pytest.raises(MlflowException):
        client.get_model_version_by_alias(name, "staging")
    light.set_tag(second, "promoted_by", "ana")
    light.set_tag(second, "promoted_by", 'bea "b" ñ')
    assert client.get_model_version(name, second).tags["promoted_by"] == 'bea "b" ñ'
    light.set_description(second, "Champion since today.")
    assert client.get_model_version(name, second).description == "Champion since today."
    for write in (lambda: light.set_alias("staging", "9999"), lambda: light.set_tag("9999", "k", "v")):
        with pytest.raises(VersionNotFound):
            write()
    assert "staging" not in client.get_registered_model(name).aliases


def test_the_same_answers_as_mlflow_on_the_embedded_registry(registry_home: Path) -> None:
    check_same_as_mlflow(serving_settings(registry_home))


def test_writes_on_the_embedded_registry_are_what_mlflow_reads(registry_home: Path, tmp_path: Path) -> None:
    home = tmp_path / ".mlops"
    copy_home(registry_home, home)  # the shared registry stays as other tests expect it
    check_writes_read_back_by_mlflow(serving_settings(home))


@pytest.mark.slow
def test_the_same_answers_through_a_server_that_wants_a_login(registry_home: Path, tmp_path: Path) -> None:
    port = free_port()
    home = tmp_path / ".mlops"
    copy_home(registry_home, home)  # the server's writes stay in this copy
    settings = serving_settings(home, mlflow_port=port)
    spec = mlflow_spec(settings)
    server = start_logged(spec.command, spec.env, tmp_path / "mlflow.log")
    try:
        wait_http(f"http://127.0.0.1:{port}/health", process=server, ready=lambda r: r.status_code == 200)
        through_server = settings.model_copy(update={"mlflow_tracking_uri": f"http://127.0.0.1:{port}"})
        check_same_as_mlflow(through_server)
        check_writes_read_back_by_mlflow(through_server)
    finally:
        stop_group(server)


def test_missing_is_told_by_status_and_error_code_never_by_message_words() -> None:
    import httpx

    from mlops_cli.registry.light import not_found

    def answer(status: int, body: object) -> httpx.Response:
        return httpx.Response(status, json=body) if not isinstance(body, str) else httpx.Response(status, text=body)

    assert not_found(answer(404, {}))
    assert not_found(answer(400, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "anything"}))
    assert not not_found(answer(400, {"error_code": "INVALID_PARAMETER_VALUE", "message": "RESOURCE_DOES_NOT_EXIST"}))
    assert not not_found(answer(500, {"error_code": "RESOURCE_DOES_NOT_EXIST"})), "a server error is an outage"
    assert not not_found(answer(400, "RESOURCE_DOES_NOT_EXIST: not JSON"))


def test_a_database_without_mlflows_tables_is_an_empty_registry(home: Path) -> None:
    from mlops_cli.config import load_settings
    from mlops_cli.registry.light import LightRegistry

    home.mkdir(parents=True, exist_ok=True)
    empty = home / "empty.db"
    sqlite3.connect(empty).close()
    registry = LightRegistry(load_settings(mlflow_tracking_uri=f"sqlite:///{empty}"))
    assert registry.versions() == [] and registry.aliases() == {}
