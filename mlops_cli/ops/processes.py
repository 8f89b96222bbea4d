"""The processes `mlops up` started: their record in ``MLOPS_HOME/stack.json`` (pid, port, start
time), telling ours from a recycled pid (its kernel start time differs), and stopping process
groups — SIGTERM together, SIGKILL what is left."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_cli.errors import StackError

if TYPE_CHECKING:
    from mlops_cli.config import Settings


@dataclass(kw_only=True)
class ServiceState:
    name: str
    pid: int
    start_time: str | None
    host: str
    port: int
    url: str
    health_url: str
    log: str
    command: list[str]
    open_url: str = ""
    restarts: int = 0  # times the supervisor (ops/supervise.py) started it again after it died


def state_path(settings: Settings) -> Path:
    return settings.home / "stack.json"


def read_state(settings: Settings) -> dict[str, ServiceState]:
    path = state_path(settings)
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text())
        return {name: ServiceState(**item) for name, item in raw.get("services", {}).items()}
    except (ValueError, TypeError) as exc:
        raise StackError(
            f"{path} is unreadable ({exc})", hint="stop leftover processes by hand and delete it"
        ) from None


def write_state(settings: Settings, services: dict[str, ServiceState]) -> None:
    path = state_path(settings)
    settings.ensure_home()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"services": {n: asdict(s) for n, s in services.items()}}, indent=2))
    tmp.replace(path)


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (Linux): [0] state, [19] start time."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid``, to tell our process from a recycled pid."""
    fields = _proc_stat(pid)
    return fields[19] if fields else None


def is_ours(service: ServiceState) -> bool:
    """Alive, and the same process we started."""
    return same_process(service.pid, service.start_time)


def same_process(pid: int, start_time: str | None) -> bool:
    """``pid`` is alive and is the process that started at ``start_time`` (not a recycled pid)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    if start_time is None or not Path("/proc").exists():
        return True
    fields = _proc_stat(pid)
    return fields is not None and fields[19] == start_time and fields[0] != "Z"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _leader_recycled(service: ServiceState) -> bool:
    """A live process holds the leader's pid but is not the one we started."""
    try:
        os.kill(service.pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return not is_ours(service)


def _reap(pgid: int) -> None:
    try:
        os.waitpid(pgid, os.WNOHANG)  # our child when `up` ran in this process
    except ChildProcessError:
        pass


def stop_process_groups(pgids: list[int], timeout: float, leader_alive: Callable[[int], bool] | None = None) -> None:
    """SIGTERM the process groups all at once, SIGKILL what is left after ``timeout``.

    A group counts as stopped once its leader is gone (``leader_alive``: by default, the group
    has a member); its stragglers get the SIGKILL round with the rest.
    """
    alive_leader = leader_alive or _group_alive
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        alive = [pgid for pgid in pgids if _group_alive(pgid)]
        for pgid in alive:
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while alive and time.monotonic() < deadline:
            for pgid in alive:
                _reap(pgid)
            alive = [pgid for pgid in alive if _group_alive(pgid) and alive_leader(pgid)]
            time.sleep(0.05)


def stop_services(services: list[ServiceState], timeout: float) -> list[ServiceState]:
    """Stop the services' process groups all at once. A group whose leader died is stopped too
    (its children may still hold the port); a pid recycled by another program is never
    signalled. Returns the services that were stopped."""
    ours = [s for s in services if not _leader_recycled(s) and _group_alive(s.pid)]
    by_pid = {s.pid: s for s in ours}
    stop_process_groups(list(by_pid), timeout, leader_alive=lambda pgid: is_ours(by_pid[pgid]))
    return ours
