"""The local stack's watchdog: a service that dies is started again, with backoff, up to a limit.

`mlops up` starts it (detached, like the services: ``stack.start_watchdog``) once every
service is healthy; `mlops down` stops it first, so it never restarts what `down` is
stopping. It restarts on process death only (a living, unhealthy service is shown by
`mlops status`, not killed):
the old process group is stopped first (its children may hold the port after the leader
was killed), then the service is started as `up` starts it, after 1, 2, 4 … 60 s, at most
``MLOPS_STACK_MAX_RESTARTS`` times per service. Each restart is counted in ``stack.json``
and shown by `mlops status`; each is one line in ``logs/supervisor.log``.

Why not supervisord or circus: both would own the services' lifetime, log files and state,
i.e. replace `up`, `down`, `status` and `stack.json` rather than add restarts to them, and
neither stops a process group whose leader is gone. This module is the missing part only.

    python -m mlops_cli.ops.supervise   (settings from the environment, as `mlops up` has them)
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from mlops_cli.config import Settings
    from mlops_cli.ops.services import ServiceSpec

CHECK_EVERY = 1.0
MAX_BACKOFF = 60.0


def say(text: str) -> None:
    print(f"{datetime.now(UTC).isoformat(timespec='seconds')} {text}", flush=True)


def _specs(settings: Settings, running: Iterable[str]) -> dict[str, ServiceSpec]:
    """How to start each service again. Airflow only when `up` started it: planning it fails
    where Airflow is not installed (the README's `[ui]` install), and that must not stop the
    watchdog from restarting the others."""
    from mlops_cli.errors import StackError
    from mlops_cli.ops.services import plan

    try:
        return {spec.name: spec for spec in plan(settings, ("airflow",) if "airflow" in running else ()).services}
    except StackError as exc:
        say(f"cannot restart Airflow: {exc.message}")
        return {spec.name: spec for spec in plan(settings).services}


def watch(settings: Settings) -> None:
    """Restart dead services until SIGTERM."""
    from mlops_cli.ops.netutil import port_is_free
    from mlops_cli.ops.processes import is_ours, read_state, stop_process_groups, write_state
    from mlops_cli.ops.stack import _spawn

    stopping = False

    def on_term(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    planned = set(read_state(settings))
    specs = _specs(settings, planned)
    not_before: dict[str, float] = {}
    given_up: set[str] = set()
    say(f"watching the stack in {settings.home} (at most {settings.stack_max_restarts} restarts per service)")
    while not stopping:
        time.sleep(CHECK_EVERY)
        state = read_state(settings)
        if set(state) != planned:  # e.g. `mlops up --airflow` after `mlops up`
            planned = set(state)
            specs = _specs(settings, planned)
        for name, service in state.items():
            if stopping or is_ours(service) or name in given_up or name not in specs:
                continue
            if service.restarts >= settings.stack_max_restarts:
                say(f"{name} is down and was restarted {service.restarts} times already: giving up")
                given_up.add(name)
                continue
            if time.monotonic() < not_before.setdefault(name, time.monotonic()):
                continue
            stop_process_groups([service.pid], timeout=settings.stack_stop_timeout)  # its leftovers
            if not port_is_free(service.host, service.port):
                say(f"{name} is down but port {service.port} is still taken: waiting")
                not_before[name] = time.monotonic() + 2.0
                continue
            restarted = replace(_spawn(settings, specs[name]), restarts=service.restarts + 1)
            state[name] = restarted
            write_state(settings, state)
            backoff = min(2.0**service.restarts, MAX_BACKOFF)
            not_before[name] = time.monotonic() + backoff
            say(f"{name} (pid {service.pid}) had died: started again as pid {restarted.pid} ({restarted.restarts}x)")
    say("stopped")


if __name__ == "__main__":
    os.umask(0o077)
    from mlops_cli.config import load_settings

    watch(load_settings())
