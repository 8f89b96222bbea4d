"""An attacker who can write to the MLflow registry cannot get their code run by the API."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import mlflow.pyfunc
import pytest
from fastapi.testclient import TestClient

from mlops_cli.ops.netutil import free_port
from mlops_cli.ops.services import mlflow_spec
from serving.app import create_app
from serving.model_server import wait_until_loaded
from tests.conftest import LISTING, TOKEN, serving_settings, start_logged, stop_group, wait_http

pytestmark = pytest.mark.slow


class Payload(mlflow.pyfunc.PythonModel):
    """What the attacker registers: loading it runs their code (here: it writes a file)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def load_context(self, context) -> None:
        Path(self.marker).write_text("pwned")

    def predict(self, context, model_input, params=None):
        return [1.0] * len(model_input)


def test_a_foreign_version_aliased_champion_on_a_real_mlflow_server_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server wants a login (basic-auth app): this attacker holds the registry's admin password
    (a leaked credential, an insider), which is exactly what the API's own check must survive."""
    from mlflow import MlflowClient

    from mlops_cli.pipeline.train import run
    from mlops_cli.registry.auth import admin

    home = tmp_path / ".mlops"
    port = free_port()
    settings = serving_settings(home, generator_batches=1, mlflow_port=port)
    run(settings, reload_api=False)  # our champion, v1, trained and signed by the loop
    spec = mlflow_spec(settings)
    server = start_logged(spec.command, spec.env, tmp_path / "mlflow.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health", process=server, ready=lambda r: r.status_code == 200)
        api_settings = settings.model_copy(update={"mlflow_tracking_uri": url, "api_watch_interval": 0.3})

        # the attacker: an experiment whose artifacts they place, a pickled pyfunc, the alias
        assert httpx.get(f"{url}/api/2.0/mlflow/registered-models/search").status_code == 401
        for variable, value in admin(settings).client_env().items():
            monkeypatch.setenv(variable, value)
        attacker = MlflowClient(url, registry_uri=url)
        marker = tmp_path / "pwned"
        experiment = attacker.create_experiment("innocent", artifact_location=(tmp_path / "evil").as_uri())
        before = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(url)
        try:
            with mlflow.start_run(experiment_id=experiment):
                info = mlflow.pyfunc.log_model(name="model", python_model=Payload(str(marker)))
            evil = mlflow.register_model(info.model_uri, settings.model_name)
        finally:
            mlflow.set_tracking_uri(before)
        marker.unlink(missing_ok=True)  # MLflow loads a pyfunc once while logging it

        app = create_app(api_settings)
        with TestClient(app) as api:
            assert wait_until_loaded(app.state.holder, 60).version == 1
            attacker.set_registered_model_alias(settings.model_name, "champion", evil.version)
            deadline = time.monotonic() + 20
            while "mlops_api_model_refused_total 0.0" in api.get("/metrics").text and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1.0)  # several more watch intervals: refused once, not retried every interval
            assert "mlops_api_model_refused_total 1.0" in api.get("/metrics").text
            answer = api.post("/predict", json=LISTING).json()
            assert answer["model"]["version"] == 1 and answer["predictions"][0] != 1.0
            forced = api.post("/load_model", json={"version": int(evil.version)}, headers=TOKEN)
            assert forced.status_code == 409 and "not registered by mlops training" in forced.json()["detail"]
        assert not marker.exists(), "the attacker's code ran inside the inference API"
    finally:
        stop_group(server)
