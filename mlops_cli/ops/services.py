"""One spec per service: its command line, where it listens, the setting that moves it and its
health URL. The local stack, `mlops ui`, the benches and the tests start services from these.

Our own services are started as `mlops` subcommands (``python -m mlops_cli serve``, …), so there
is one way to start each of them, whoever starts it.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from dataclasses import dataclass, field

from mlops_cli.config import Settings
from mlops_cli.errors import StackError
from mlops_cli.registry import auth

OPTIONAL_SERVICES = ("airflow",)


@dataclass(kw_only=True)
class ServiceSpec:
    name: str
    command: list[str]
    host: str
    port: int
    health_path: str
    port_setting: str
    env: dict[str, str] = field(default_factory=dict)
    open_path: str = "/"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def health_url(self) -> str:
        return self.url + self.health_path


def mlops_command(*args: str) -> list[str]:
    """The `mlops` command with ``args``, run by this Python (works without the console script)."""
    return [sys.executable, "-m", "mlops_cli", *args]


def supervisor_command() -> list[str]:
    """The local stack's watchdog (``ops/supervise.py``), run by this Python."""
    return [sys.executable, "-m", "mlops_cli.ops.supervise"]


def local_tracking_uri(settings: Settings) -> str:
    return f"http://{settings.mlflow_host}:{settings.mlflow_port}"


def mlflow_spec(settings: Settings) -> ServiceSpec:
    """`mlflow server` on the tracking backend and artifact root of the settings."""
    return ServiceSpec(
        name="mlflow",
        command=[
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--default-artifact-root",
            str(settings.mlflow_artifact_root),
            "--host",
            settings.mlflow_host,
            "--port",
            str(settings.mlflow_port),
            "--workers",
            "1",
            # MLflow's basic-auth app: anonymous REST and UI requests get 401 (only /health is open)
            "--app-name",
            "basic-auth",
        ],
        host=settings.mlflow_host,
        port=settings.mlflow_port,
        health_path="/health",
        port_setting="MLOPS_MLFLOW_PORT",
        # through the environment: a database password never shows in `ps`, stack.json or the log
        env={"MLFLOW_BACKEND_STORE_URI": str(settings.mlflow_tracking_uri), **auth.server_env(settings)},
    )


def data_api_spec(settings: Settings) -> ServiceSpec:
    host, port = settings.data_api_host, settings.data_api_port
    return ServiceSpec(
        name="data-api",
        command=mlops_command("data", "serve", "--host", host, "--port", str(port)),
        host=host,
        port=port,
        health_path="/health",
        port_setting="MLOPS_DATA_API_PORT",
        open_path="/docs",
    )


def _tracking_env(settings: Settings, tracking_uri: str | None) -> dict[str, str]:
    """A client's view of MLflow: the server's URI and, for the stack's own server, its credentials
    through MLflow's standard variables (environment only: never a command line or stack.json)."""
    if not tracking_uri:
        return {}
    env = {"MLOPS_MLFLOW_TRACKING_URI": tracking_uri}
    if tracking_uri == local_tracking_uri(settings):
        env.update(auth.admin(settings).client_env())
    return env


def api_spec(settings: Settings, tracking_uri: str | None = None) -> ServiceSpec:
    host, port = settings.api_host, settings.api_port
    return ServiceSpec(
        name="api",
        command=mlops_command("serve", "--host", host, "--port", str(port)),
        host=host,
        port=port,
        health_path="/health/live",
        port_setting="MLOPS_API_PORT",
        env=_tracking_env(settings, tracking_uri),
        open_path="/docs",
    )


def streamlit_command(settings: Settings) -> list[str] | str:
    """Streamlit running the UI app (what `mlops ui` becomes), or why it cannot."""
    from mlops_cli.ops import PROJECT_ROOT

    script = PROJECT_ROOT / "ui" / "app.py"
    if importlib.util.find_spec("streamlit") is None or not script.exists():
        return "the Streamlit UI is not installed (pip install -e '.[ui]' in a clone, or pip install 'mlops[ui]')"
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(script),
        "--server.address",
        settings.api_host,
        "--server.port",
        str(settings.ui_port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        # a viewer's toolbar: no "Deploy" button (this app is deployed by mlops, not Streamlit Cloud)
        "--client.toolbarMode",
        "viewer",
    ]


def ui_spec(settings: Settings, tracking_uri: str | None = None) -> ServiceSpec | str:
    """`mlops ui`, or why it cannot run here."""
    missing = streamlit_command(settings)
    if isinstance(missing, str):
        return missing
    env = {"MLOPS_API_URL": f"http://{settings.api_host}:{settings.api_port}", **_tracking_env(settings, tracking_uri)}
    return ServiceSpec(
        name="ui",
        command=mlops_command("ui", "--host", settings.api_host, "--port", str(settings.ui_port)),
        host=settings.api_host,
        port=settings.ui_port,
        health_path="/_stcore/health",
        port_setting="MLOPS_UI_PORT",
        env=env,
    )


def prometheus_spec(settings: Settings) -> ServiceSpec | str:
    """Debian's `prometheus` on the scrape config `mlops up` writes, or why it cannot run here."""
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        return "prometheus not found on PATH: `apt-get install prometheus` to add it"
    config_dir = settings.home / "prometheus"
    return ServiceSpec(
        name="prometheus",
        command=[
            prometheus,
            f"--config.file={config_dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={config_dir / 'data'}",
            f"--web.listen-address={settings.api_host}:{settings.prometheus_port}",
        ],
        host=settings.api_host,
        port=settings.prometheus_port,
        health_path="/-/ready",
        port_setting="MLOPS_PROMETHEUS_PORT",
    )


def airflow_spec(settings: Settings) -> ServiceSpec:
    """`airflow standalone` (API server, scheduler, DAG processor, triggerer) on this project's DAGs."""
    from mlops_cli.ops.airflow import dags_folder

    airflow = shutil.which("airflow")
    if airflow is None:
        raise StackError(
            "Airflow is not installed", hint="pip install -e '.[airflow]' in a clone, or pip install 'mlops[airflow]'"
        )
    host, port = settings.api_host, settings.airflow_port
    env = {
        "AIRFLOW_HOME": str(settings.home / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder(settings)),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__API__HOST": host,
        "AIRFLOW__API__PORT": str(port),
        # task runners report to the execution API of this API server, not the default :8080
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{host}:{port}/execution/",
        "MLOPS_API_URL": str(settings.api_url),
    }
    if not settings.airflow_user:
        env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] = "True"  # local stack on loopback only
    return ServiceSpec(
        name="airflow",
        command=[airflow, "standalone"],
        host=host,
        port=port,
        health_path="/api/v2/monitor/health",
        port_setting="MLOPS_AIRFLOW_PORT",
        env=env,
    )


@dataclass(kw_only=True)
class Plan:
    services: list[ServiceSpec]
    skipped: dict[str, str]  # service → why it is not started


def plan(settings: Settings, extras: tuple[str, ...] = ()) -> Plan:
    """The services `mlops up` supervises with these settings, and those it skips."""
    services: list[ServiceSpec] = []
    skipped: dict[str, str] = {}
    tracking = str(settings.mlflow_tracking_uri)
    if tracking.startswith(("http://", "https://")):
        skipped["mlflow"] = f"using the MLflow server at {tracking}"
        api_tracking = tracking
    else:
        services.append(mlflow_spec(settings))
        api_tracking = local_tracking_uri(settings)
    services += [data_api_spec(settings), api_spec(settings, api_tracking)]
    for name, optional in (("ui", ui_spec(settings, api_tracking)), ("prometheus", prometheus_spec(settings))):
        if isinstance(optional, str):
            skipped[name] = optional
        else:
            services.append(optional)
    if "airflow" in extras:
        services.append(airflow_spec(settings))
    return Plan(services=services, skipped=skipped)
