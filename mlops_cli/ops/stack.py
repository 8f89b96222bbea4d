"""`mlops up/down/status`: the whole stack as supervised local processes, no containers.

Each service runs in its own process group with its log in ``MLOPS_HOME/logs`` (ops/logs.py);
pids, ports and start times are kept in ``MLOPS_HOME/stack.json`` (ops/processes.py) so that
`down` stops exactly the processes `up` started (a recycled pid is not ours).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_cli.config import Settings
from mlops_cli.errors import StackError
from mlops_cli.ops.logs import log_tail
from mlops_cli.ops.netutil import port_is_free
from mlops_cli.ops.processes import (
    ServiceState,
    is_ours,
    process_start_time,
    read_state,
    same_process,
    state_path,
    stop_process_groups,
    stop_services,
    write_state,
)
from mlops_cli.ops.services import ServiceSpec, data_api_spec, plan

if TYPE_CHECKING:
    from mlops_cli.pipeline.reports import RunReport

Event = Callable[[str, str], None]  # (service, what is happening)


@dataclass(kw_only=True)
class ServiceStatus:
    service: str
    url: str
    pid: int | None
    running: bool
    healthy: bool
    detail: str
    restarts: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- state ---------------------------------------------------------------------------------------


def healthy(url: str, timeout: float = 2.0) -> tuple[bool, str]:
    import httpx

    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as exc:
        return False, type(exc).__name__
    return response.status_code == 200, f"HTTP {response.status_code}"


# --- up / down / status --------------------------------------------------------------------------


def _spawn(settings: Settings, spec: ServiceSpec) -> ServiceState:
    logs = settings.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{spec.name}.log"
    env = {**os.environ, "MLOPS_HOME": str(settings.home), **spec.env}
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    env.setdefault("DO_NOT_TRACK", "true")
    with log.open("ab") as out:
        out.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(spec.command)}\n".encode())
        out.flush()
        process = subprocess.Popen(
            spec.command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=settings.home,
            start_new_session=True,  # its own process group: `down` stops its children too
        )
    return ServiceState(
        name=spec.name,
        pid=process.pid,
        start_time=process_start_time(process.pid),
        host=spec.host,
        port=spec.port,
        url=spec.url,
        health_url=spec.health_url,
        log=str(log),
        command=spec.command,
        open_url=spec.url + spec.open_path,
    )


def _prepare(settings: Settings, specs: list[ServiceSpec]) -> None:
    names = {s.name for s in specs}
    if "mlflow" in names:  # its server would create and migrate the embedded DB in place: a kill wedged it
        from mlops_cli.registry.client import offline_mlflow_env
        from mlops_cli.registry.embedded import ensure_embedded_db

        offline_mlflow_env()
        ensure_embedded_db(settings)
    if "prometheus" in names:
        from mlops_cli.ops.observability import prometheus_config

        targets = {
            "mlops-api": f"{settings.api_host}:{settings.api_port}",
            "mlops-data-api": f"{settings.data_api_host}:{settings.data_api_port}",
        }
        folder = settings.home / "prometheus"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "prometheus.yml").write_text(prometheus_config(targets))


def up(
    settings: Settings, on_event: Event | None = None, extras: tuple[str, ...] = ()
) -> tuple[list[ServiceStatus], dict[str, str]]:
    """Start what is not running, wait until every service is healthy. Returns (status, skipped).

    A taken port fails before anything starts; a service that dies or never becomes healthy
    stops every service this call started and raises with its last log lines.
    """
    event = on_event or (lambda name, what: None)
    settings.ensure_home()
    wanted = plan(settings, extras)
    state = {name: s for name, s in read_state(settings).items() if is_ours(s)}
    to_start = [spec for spec in wanted.services if spec.name not in state]
    for spec in to_start:
        if not port_is_free(spec.host, spec.port):
            raise StackError(
                f"port {spec.port} on {spec.host} is already in use; the {spec.name} service wanted it",
                hint=f"choose another with {spec.port_setting}=PORT",
            )
    for name in state:
        event(name, "already running")
    _prepare(settings, to_start)
    started: list[str] = []
    try:
        for spec in to_start:
            state[spec.name] = _spawn(settings, spec)
            started.append(spec.name)
            write_state(settings, state)
            event(spec.name, "starting")
        deadline = time.monotonic() + settings.stack_start_timeout
        waiting = list(started)
        while waiting:
            for name in list(waiting):
                service = state[name]
                if not is_ours(service):
                    raise StackError(
                        f"the {name} service exited while starting",
                        hint=f"see {service.log}; the services started with it were stopped",
                        details=f"--- last lines of {service.log} ---\n{log_tail(Path(service.log))}",
                    )
                if healthy(service.health_url, timeout=1.0)[0]:
                    waiting.remove(name)
                    event(name, "healthy")
            if waiting and time.monotonic() > deadline:
                name = waiting[0]
                raise StackError(
                    f"the {name} service did not become healthy within {settings.stack_start_timeout:.0f}s",
                    hint=f"see {state[name].log}; raise MLOPS_STACK_START_TIMEOUT if the machine is slow",
                    details=f"--- last lines of {state[name].log} ---\n{log_tail(Path(state[name].log))}",
                )
            time.sleep(0.25)
    except BaseException:
        for name in started:
            event(name, "stopping")
        stop_services([state.pop(name) for name in started], settings.stack_stop_timeout)
        write_state(settings, state)
        raise
    start_watchdog(settings)  # from now on a service that dies is started again (ops/supervise.py)
    return status(settings), wanted.skipped


# --- the watchdog (its loop is ops/supervise.py) -------------------------------------------------


def watchdog_path(settings: Settings) -> Path:
    return settings.home / "supervisor.json"


def start_watchdog(settings: Settings) -> None:
    """Start the watchdog unless one runs for this home (or restarts are turned off)."""
    from mlops_cli.ops.services import supervisor_command

    if settings.stack_max_restarts == 0 or watchdog_pid(settings) is not None:
        return
    log = settings.home / "logs" / "supervisor.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            supervisor_command(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "MLOPS_HOME": str(settings.home)},
            cwd=settings.home,
            start_new_session=True,
        )
    record = {"pid": process.pid, "start_time": process_start_time(process.pid)}
    watchdog_path(settings).write_text(json.dumps(record))


def watchdog_pid(settings: Settings) -> int | None:
    """The watchdog's pid, when the one recorded for this home is alive."""
    try:
        record = json.loads(watchdog_path(settings).read_text())
    except (OSError, ValueError):
        return None
    return record["pid"] if same_process(record["pid"], record.get("start_time")) else None


def stop_watchdog(settings: Settings) -> None:
    """Stop the watchdog and wait for it: after this, nothing restarts a service."""
    pid = watchdog_pid(settings)
    if pid is not None:
        stop_process_groups([pid], timeout=10)
    watchdog_path(settings).unlink(missing_ok=True)


def down(settings: Settings, on_event: Event | None = None) -> list[str]:
    """Stop every service `up` started, in parallel. Returns the names stopped."""
    event = on_event or (lambda name, what: None)
    stop_watchdog(settings)  # first: it must not restart what is being stopped
    state = read_state(settings)
    for name in state:
        event(name, "stopping")
    stopped = {s.pid for s in stop_services(list(state.values()), settings.stack_stop_timeout)}
    for name in state:
        event(name, "stopped")
    if state_path(settings).exists():
        state_path(settings).unlink()
    return [name for name, service in state.items() if service.pid in stopped]


def status(settings: Settings) -> list[ServiceStatus]:
    """Each known service with its real health (HTTP), not just its pid."""
    out = []
    for name, service in read_state(settings).items():
        running = is_ours(service)
        ok, detail = healthy(service.health_url) if running else (False, "not running")
        if running and name == "api":
            ready, why = _api_readiness(service.url)
            detail = why if ok else detail
            ok = ok and ready is not None
        out.append(
            ServiceStatus(
                service=name,
                url=service.open_url or service.url,
                pid=service.pid if running else None,
                running=running,
                healthy=ok,
                detail=detail + (f" (restarted {service.restarts}x)" if service.restarts else ""),
                restarts=service.restarts,
            )
        )
    return out


def _api_readiness(url: str) -> tuple[bool | None, str]:
    import httpx

    try:
        response = httpx.get(f"{url}/health/ready", timeout=2)
    except httpx.HTTPError as exc:
        return None, type(exc).__name__
    if response.status_code == 200:
        body = response.json()
        return True, f"serving v{body.get('version')} ({body.get('path')} path)"
    return False, "live; no model yet"


def train_through(settings: Settings, progress: Callable[[str], None] | None = None) -> tuple[RunReport, dict]:
    """`mlops up --train`: every batch of the stack's data API through the loop, then one
    prediction through the stack's inference API (once it has taken the champion)."""
    from mlops_cli.errors import MlopsError
    from mlops_cli.pipeline.api_client import request_predictions
    from mlops_cli.pipeline.train import run
    from mlops_cli.schema import EXAMPLE_LISTING

    report = run(settings.model_copy(update={"data_source": data_api_spec(settings).url}), progress=progress)
    deadline = time.monotonic() + 30  # the API takes the champion on /load_model (or its watcher)
    while True:
        try:
            return report, request_predictions(str(settings.api_url), [EXAMPLE_LISTING])
        except MlopsError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
