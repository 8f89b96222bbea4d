"""The stack's MLflow login: an admin generated once and kept private, offered only to our server."""

from __future__ import annotations

import configparser
import os
from pathlib import Path

import pytest

from mlops_cli.config import load_settings
from mlops_cli.registry import auth


@pytest.fixture(autouse=True)
def _clean_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(auth.USERNAME_VARIABLE, raising=False)
    monkeypatch.delenv(auth.PASSWORD_VARIABLE, raising=False)
    monkeypatch.setattr(auth, "_offered", {})


def test_the_admin_is_generated_once_privately_and_a_users_own_login_wins(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings()
    first = auth.admin(settings)
    assert first.username == auth.ADMIN_USERNAME and len(first.password) >= 24
    assert auth.admin(settings) == first, "the same admin across restarts"
    assert auth.credentials_path(settings).stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv(auth.USERNAME_VARIABLE, "alice")
    monkeypatch.setenv(auth.PASSWORD_VARIABLE, "hers")
    assert (auth.admin(settings).username, auth.admin(settings).password) == ("alice", "hers")


def test_the_server_gets_a_private_config_that_grants_nobody_anything(home: Path) -> None:
    settings = load_settings()
    env = auth.server_env(settings)
    config = Path(env["MLFLOW_AUTH_CONFIG_PATH"])
    assert config.stat().st_mode & 0o777 == 0o600
    parsed = configparser.ConfigParser()
    parsed.read(config)
    assert parsed["mlflow"]["default_permission"] == "NO_PERMISSIONS"
    assert parsed["mlflow"]["admin_username"] == env["MLFLOW_AUTH_ADMIN_USERNAME"] == auth.ADMIN_USERNAME
    escaped = configparser.ConfigParser()
    escaped.read_string(auth.auth_config("mysql://u:100%-pw@h/db", "a"))
    assert escaped["mlflow"]["database_uri"] == "mysql://u:100%-pw@h/db", "a % survives configparser"


def test_saved_credentials_go_only_to_our_own_server(home: Path) -> None:
    settings = load_settings()
    saved = auth.admin(settings)
    auth.offer_saved_credentials(settings, "http://mlflow.example:5000")
    assert auth.USERNAME_VARIABLE not in os.environ, "never offered to another server"
    auth.offer_saved_credentials(settings, f"http://{settings.mlflow_host}:{settings.mlflow_port}/")
    assert os.environ[auth.PASSWORD_VARIABLE] == saved.password
