"""`mlops dashboard import|show` as typed (the import against Grafana: tests/ops/test_dashboard.py)."""

from __future__ import annotations

import json

from mlops_cli.ops.dashboard import dashboard_json
from tests.conftest import run_mlops


def test_show_prints_the_dashboard_that_is_imported_and_provisioned() -> None:
    shown = run_mlops("dashboard", "show")
    assert shown.returncode == 0 and shown.stdout == dashboard_json()
    assert json.loads(shown.stdout)["panels"]


def test_a_user_without_a_password_is_a_usage_error() -> None:
    refused = run_mlops("dashboard", "import", "--user", "admin", env={"MLOPS_GRAFANA_PASSWORD": ""})
    assert refused.returncode == 2 and "--user needs --password" in refused.stderr
