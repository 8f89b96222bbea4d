"""One spec per service: which run with these settings, and no secret on any command line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mlops_cli.config import load_settings
from mlops_cli.errors import StackError
from mlops_cli.ops import services
from mlops_cli.ops.services import mlops_command, plan


def test_the_local_plan_starts_mlflow_and_our_services_on_their_ports(home: Path) -> None:
    settings = load_settings(mlflow_port=5123, api_port=8123, data_api_port=8124)
    found = plan(settings)
    names = [s.name for s in found.services]
    assert names[:3] == ["mlflow", "data-api", "api"] and set(names) <= {
        "mlflow",
        "data-api",
        "api",
        "ui",
        "prometheus",
    }
    api = next(s for s in found.services if s.name == "api")
    assert api.command == mlops_command("serve", "--host", settings.api_host, "--port", "8123")
    assert api.health_url == f"http://{settings.api_host}:8123/health/live"
    assert api.env["MLOPS_MLFLOW_TRACKING_URI"] == f"http://{settings.mlflow_host}:5123", "the stack's own MLflow"
    assert mlops_command("x") == [sys.executable, "-m", "mlops_cli", "x"]


def test_an_outside_mlflow_is_used_not_started(home: Path) -> None:
    found = plan(load_settings(mlflow_tracking_uri="http://mlflow.example:5000"))
    assert "mlflow" not in [s.name for s in found.services]
    assert found.skipped["mlflow"] == "using the MLflow server at http://mlflow.example:5000"


def test_no_password_or_token_is_on_a_command_line(home: Path) -> None:
    settings = load_settings(mlflow_tracking_uri="postgresql://mlops:s3cret-pw@127.0.0.1:5432/mlflow")
    found = plan(settings)
    secrets = ["s3cret-pw", settings.api_token_value()]
    for spec in found.services:
        assert not any(secret in " ".join(spec.command) for secret in secrets), spec.name
    mlflow = next(s for s in found.services if s.name == "mlflow")
    assert "s3cret-pw" in mlflow.env["MLFLOW_BACKEND_STORE_URI"], "it goes through the environment"


def test_optional_services_that_cannot_run_are_skipped_with_the_reason(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services.shutil, "which", lambda name: None)
    found = plan(load_settings())
    assert found.skipped["prometheus"] == "prometheus not found on PATH: `apt-get install prometheus` to add it"
    with pytest.raises(StackError, match="Airflow is not installed"):
        plan(load_settings(), extras=("airflow",))
