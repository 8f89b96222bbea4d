"""`mlops loadtest`: Locust, headless, against the inference API; thresholds gate a promotion."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlops_cli.errors import MlopsError

DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> int:
    """'30s', '2m', '1m30s', '90' → seconds."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    match = DURATION.match(text)
    if not text or not match:
        raise ValueError(f"expected a duration like 30s, 2m or 1m30s, got {text!r}")
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


@dataclass(kw_only=True)
class EndpointStats:
    name: str
    requests: int
    failures: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


@dataclass(kw_only=True)
class LoadResult:
    host: str
    users: int
    duration_s: int
    endpoints: list[EndpointStats]
    total: EndpointStats
    error_rate: float
    violations: list[str] = field(default_factory=list)
    html: str | None = None
    failures: list[str] = field(default_factory=list)  # the most frequent failure messages

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _number(value: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def read_stats(path: Path) -> tuple[list[EndpointStats], EndpointStats]:
    rows = list(csv.DictReader(path.open()))
    parsed = [
        EndpointStats(
            name=row["Name"],
            requests=int(_number(row["Request Count"])),
            failures=int(_number(row["Failure Count"])),
            rps=round(_number(row["Requests/s"]), 2),
            p50_ms=_number(row["50%"]),
            p95_ms=_number(row["95%"]),
            p99_ms=_number(row["99%"]),
        )
        for row in rows
    ]
    total = next((s for s in parsed if s.name == "Aggregated"), None)
    if total is None:
        raise MlopsError("Locust wrote no aggregated statistics")
    return [s for s in parsed if s.name != "Aggregated"], total


def run_loadtest(
    host: str,
    users: int,
    spawn_rate: float,
    duration: str,
    html: Path | None = None,
    max_p95_ms: float | None = None,
    max_error_rate: float | None = None,
    on_tick: Callable[[float, float], None] | None = None,
) -> LoadResult:
    """Run Locust headless for ``duration``; ``on_tick(elapsed, total)`` reports progress."""
    import importlib.util

    import httpx

    if importlib.util.find_spec("locust") is None:
        raise MlopsError(
            "Locust is not installed", hint="pip install -e '.[loadtest]' in a clone, or pip install 'mlops[loadtest]'"
        )
    seconds = parse_duration(duration)
    try:
        ready = httpx.get(host.rstrip("/") + "/health/ready", timeout=5)
    except httpx.HTTPError:
        raise MlopsError(
            f"inference API at {host} is not reachable",
            hint="start it with `mlops serve` or `mlops up`; or pass --host",
        ) from None
    if ready.status_code != 200:
        raise MlopsError(
            f"inference API at {host} is not ready: {ready.text[:200]}",
            hint="train a model first (`mlops train --all`)",
        )
    from mlops_cli.ops import PROJECT_ROOT

    locustfile = PROJECT_ROOT / "serving" / "locustfile.py"
    with tempfile.TemporaryDirectory(prefix="mlops-loadtest-") as work:
        prefix = Path(work) / "run"
        command = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(locustfile),
            "--headless",
            "--host",
            host,
            "-u",
            str(users),
            "-r",
            str(spawn_rate),
            "-t",
            f"{seconds}s",
            "--csv",
            str(prefix),
            "--only-summary",
            "--loglevel",
            "WARNING",
            "--exit-code-on-error",
            "0",
            "--stop-timeout",
            "5",
        ]
        if html:
            command += ["--html", str(html)]
        log = Path(work) / "locust.log"
        with log.open("w") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
            start = time.monotonic()
            while process.poll() is None:
                if on_tick:
                    on_tick(min(time.monotonic() - start, seconds), seconds)
                time.sleep(0.25)
        stats = prefix.with_name("run_stats.csv")
        if process.returncode != 0 or not stats.exists():
            raise MlopsError(f"Locust failed (exit {process.returncode})", details=log.read_text()[-3000:])
        endpoints, total = read_stats(stats)
        failure_file = prefix.with_name("run_failures.csv")
        failures = (
            [
                f"{row['Occurrences']}x {row['Name']}: {row['Error'][:120]}"
                for row in csv.DictReader(failure_file.open())
            ][:5]
            if failure_file.exists()
            else []
        )
    error_rate = total.failures / total.requests if total.requests else 1.0
    result = LoadResult(
        host=host,
        users=users,
        duration_s=seconds,
        endpoints=endpoints,
        total=total,
        error_rate=round(error_rate, 6),
        html=str(html) if html else None,
        failures=failures,
    )
    if total.requests == 0:
        result.violations.append("no request completed")
    if max_p95_ms is not None and total.p95_ms > max_p95_ms:
        result.violations.append(f"p95 latency {total.p95_ms:g} ms exceeds --max-p95-ms {max_p95_ms:g}")
    if max_error_rate is not None and error_rate > max_error_rate:
        result.violations.append(f"error rate {error_rate:.2%} exceeds --max-error-rate {max_error_rate:g}")
    return result
