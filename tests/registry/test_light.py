"""The light registry (no MLflow import) answers exactly what MLflow's client answers: on the
embedded SQLite registry and through a real `mlflow server` with its basic-auth app."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_cli.errors import VersionNotFound
from mlops_cli.ops.netutil import free_port
from mlops_cli.ops.services import mlflow_spec
from mlops_cli.registry.client import configure, model_aliases, version_info
from mlops_cli.registry.light import LightRegistry
from mlops_cli.registry.models import list_versions, show_version
from tests.conftest import serving_settings, start_logged, stop_group, wait_http


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


def test_the_same_answers_as_mlflow_on_the_embedded_registry(registry_home: Path) -> None:
    check_same_as_mlflow(serving_settings(registry_home))


@pytest.mark.slow
def test_the_same_answers_through_a_server_that_wants_a_login(registry_home: Path, tmp_path: Path) -> None:
    port = free_port()
    settings = serving_settings(registry_home, mlflow_port=port)
    spec = mlflow_spec(settings)
    server = start_logged(spec.command, spec.env, tmp_path / "mlflow.log")
    try:
        wait_http(f"http://127.0.0.1:{port}/health", process=server, ready=lambda r: r.status_code == 200)
        check_same_as_mlflow(settings.model_copy(update={"mlflow_tracking_uri": f"http://127.0.0.1:{port}"}))
    finally:
        stop_group(server)
