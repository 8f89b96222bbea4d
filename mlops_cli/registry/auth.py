"""Who may use the MLflow server `mlops up` starts: MLflow's own basic-auth app, with one admin.

The admin's credentials are MLflow's standard client variables ``MLFLOW_TRACKING_USERNAME`` and
``MLFLOW_TRACKING_PASSWORD`` when both are set, else generated once into
``MLOPS_HOME/mlflow_admin.json`` (mode 0600, created whole). Our clients of that server (API,
UI, any `mlops` command pointed at it) authenticate through the same standard variables; the
saved credentials are only ever offered to the stack's own server, never to another URI.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlops_cli.config import Settings

ADMIN_USERNAME = "mlops-admin"
CREDENTIALS_FILE = "mlflow_admin.json"
USERNAME_VARIABLE = "MLFLOW_TRACKING_USERNAME"
PASSWORD_VARIABLE = "MLFLOW_TRACKING_PASSWORD"


_offered: dict[str, str] = {}  # what this process put into the standard variables, if anything


@dataclass(frozen=True)
class Admin:
    username: str
    password: str
    flask_secret_key: str  # signs the MLflow UI's CSRF tokens; the same across restarts

    def client_env(self) -> dict[str, str]:
        return {USERNAME_VARIABLE: self.username, PASSWORD_VARIABLE: self.password}


def credentials_path(settings: Settings) -> Path:
    return settings.home / CREDENTIALS_FILE


def admin(settings: Settings) -> Admin:
    """The server's admin: from the standard variables if both are set, else the saved (or newly
    generated) credentials in ``MLOPS_HOME``."""
    from mlops_cli.config import create_private

    path = credentials_path(settings)
    if not path.exists():
        settings.ensure_home()
        generated = {
            "username": ADMIN_USERNAME,
            "password": secrets.token_urlsafe(24),
            "flask_secret_key": secrets.token_hex(32),
        }
        create_private(path, json.dumps(generated, indent=2) + "\n")
    saved = json.loads(path.read_text())
    user, password = os.environ.get(USERNAME_VARIABLE), os.environ.get(PASSWORD_VARIABLE)
    if user and password and {USERNAME_VARIABLE: user, PASSWORD_VARIABLE: password} != _offered:
        return Admin(user, password, saved["flask_secret_key"])
    return Admin(saved["username"], saved["password"], saved["flask_secret_key"])


def server_env(settings: Settings) -> dict[str, str]:
    """The environment of `mlflow server --app-name basic-auth`: its configuration file (users in
    ``MLOPS_HOME/mlflow_auth.db``, no permission by default), the admin it creates on first start."""
    from mlops_cli.config import create_private

    user = admin(settings)
    config = settings.home / "mlflow_auth.ini"
    if not config.exists():
        create_private(config, auth_config(f"sqlite:///{settings.home / 'mlflow_auth.db'}", user.username))
    return {
        "MLFLOW_AUTH_CONFIG_PATH": str(config),
        "MLFLOW_AUTH_ADMIN_USERNAME": user.username,
        "MLFLOW_AUTH_ADMIN_PASSWORD": user.password,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": user.flask_secret_key,
    }


def auth_config(database_uri: str, admin_username: str) -> str:
    """MLflow's basic-auth configuration file: users in ``database_uri``, nobody but the admin
    allowed anything by default. (MLflow reads it with configparser: a ``%`` is written ``%%``.)"""
    return (
        "[mlflow]\n"
        "default_permission = NO_PERMISSIONS\n"
        f"database_uri = {database_uri.replace('%', '%%')}\n"
        f"admin_username = {admin_username}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )


def offer_saved_credentials(settings: Settings, uri: str) -> None:
    """Before talking to ``uri``: if it is the stack's own MLflow server, set the standard variables
    from the saved credentials — unless the user set them (never for any other server)."""
    own = f"http://{settings.mlflow_host}:{settings.mlflow_port}"
    if uri.rstrip("/") != own:
        return
    current = {k: os.environ.get(k) for k in (USERNAME_VARIABLE, PASSWORD_VARIABLE)}
    if current[USERNAME_VARIABLE] and current != _offered:
        return  # the user's own credentials win
    if credentials_path(settings).exists():
        saved = json.loads(credentials_path(settings).read_text())
        offered = {USERNAME_VARIABLE: saved["username"], PASSWORD_VARIABLE: saved["password"]}
        os.environ.update(offered)
        _offered.clear()
        _offered.update(offered)
