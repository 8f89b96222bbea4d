"""`mlops logs`: each service's log in ``MLOPS_HOME/logs``, one or all interleaved by time,
from a time on, followed as it grows."""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_cli.errors import StackError
from mlops_cli.ops.processes import read_state
from mlops_cli.ops.services import OPTIONAL_SERVICES, plan

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mlops_cli.config import Settings


LOG_TAIL_LINES = 20


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


_STAMP = re.compile(r"(\d{4})[-/](\d\d)[-/](\d\d)[T ](\d\d):(\d\d):(\d\d)")


def line_time(line: str) -> datetime | None:
    """The time a log line was written, when it says (MLflow, uvicorn, Prometheus, our own lines)."""
    found = _STAMP.search(line[:64])
    return datetime(*map(int, found.groups())) if found else None  # noqa: DTZ001 — logs write local time


def merged_logs(settings: Settings, since: datetime | None = None, lines: int = 50) -> list[str]:
    """Every service's log interleaved by time, each line prefixed with its service; a line without
    a time of its own (a traceback, Streamlit) keeps the time of the line before it."""
    folder = settings.home / "logs"
    if not folder.exists():
        raise StackError("no logs yet", hint="`mlops up` starts the stack")
    entries: list[tuple[datetime, int, str]] = []
    width = max((len(p.stem) for p in folder.glob("*.log")), default=0)
    for order, path in enumerate(sorted(folder.glob("*.log"))):
        stamp = datetime.fromtimestamp(path.stat().st_ctime)  # noqa: DTZ006 — compared with local times
        for line in path.read_text(errors="replace").splitlines():
            stamp = line_time(line) or stamp
            if line.strip() and (since is None or stamp >= since):
                entries.append((stamp, order, f"{path.stem:<{width}} | {line}"))
    entries.sort(key=lambda e: (e[0], e[1]))  # stable: a file's own order is kept within a second
    return [text for _, _, text in entries[-lines:]] if lines else [text for _, _, text in entries]


def log_file(settings: Settings, service: str) -> Path:
    known = {s.name for s in plan(settings).services} | set(read_state(settings)) | set(OPTIONAL_SERVICES)
    if service not in known:
        raise StackError(f"unknown service '{service}'", hint=f"one of: {', '.join(sorted(known))}")
    path = settings.home / "logs" / f"{service}.log"
    if not path.exists():
        raise StackError(f"no log for {service} yet", hint="`mlops up` starts it")
    return path


def since(text: str) -> datetime:
    """10m, 2h, 1d (ago) or an ISO time, as a local time; ValueError for anything else."""
    from datetime import timedelta

    relative = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if relative:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[relative.group(2)]
        return datetime.now() - timedelta(**{unit: int(relative.group(1))})  # noqa: DTZ005 — logs are local
    try:
        return datetime.fromisoformat(text.strip()).replace(tzinfo=None)
    except ValueError:
        raise ValueError(f"{text!r}: give 10m, 2h, 1d or a time like 2026-11-28T10:00") from None


def lines_since(path: Path, start: datetime, lines: int = 0) -> list[str]:
    """The lines of one log written at ``start`` or later (the last ``lines``; 0: all); a line
    without a time of its own keeps the time of the line before it."""
    stamp, shown = None, []
    for line in path.read_text(errors="replace").splitlines():
        stamp = line_time(line) or stamp
        if stamp is not None and stamp >= start:
            shown.append(line)
    return shown[-lines:] if lines else shown


def follow(settings: Settings, service: str | None = None, poll: float = 0.3) -> Iterator[str]:
    """New lines as they are written, of one service's log or of all (prefixed), from now on."""
    folder = settings.home / "logs"
    paths = [log_file(settings, service)] if service else sorted(folder.glob("*.log"))
    handles = {}
    for path in paths:
        handle = path.open(errors="replace")
        handle.seek(0, 2)
        handles[path.stem] = handle
    width = max(map(len, handles), default=0)
    while True:
        quiet = True
        for name, handle in handles.items():
            line = handle.readline()
            if line:
                quiet = False
                yield line if service else f"{name:<{width}} | {line}"
        if quiet:
            time.sleep(poll)
