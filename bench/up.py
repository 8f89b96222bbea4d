"""Time from `mlops up` to all-healthy and the stack's peak memory, printed beside the time
(and memory) of starting a bare `mlflow server` alone, in the same run.

    python bench/up.py [--with airflow]

Ports are picked free; everything runs under a temporary MLOPS_HOME and is stopped after.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from mlops_cli.ops.services import mlops_command

ROOT = Path(__file__).resolve().parent.parent


def group_rss_mb(pgids: set[int]) -> float:
    """Resident memory of every process whose process group is one of ``pgids``."""
    total_kb = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[2]) not in pgids:
                continue
            status = (entry / "status").read_text()
        except (OSError, IndexError, ValueError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total_kb += int(line.split()[1])
    return total_kb / 1024


class PeakSampler(threading.Thread):
    def __init__(self, pgids_of: callable) -> None:
        super().__init__(daemon=True)
        self.pgids_of, self.peak, self.stop = pgids_of, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, group_rss_mb(self.pgids_of()))
            time.sleep(0.2)


def free_port() -> int:
    from mlops_cli.ops.netutil import free_port as pick

    return pick()


def bench_stack(extras: list[str]) -> tuple[float, float, int, float]:
    home = Path(tempfile.mkdtemp(prefix="bench-up-")) / ".mlops"
    env = {**os.environ, "MLOPS_HOME": str(home)}
    for name in ("MLFLOW", "DATA_API", "API", "UI", "PROMETHEUS", "AIRFLOW"):
        env[f"MLOPS_{name}_PORT"] = str(free_port())
    env.pop("MLOPS_API_URL", None)

    def pgids() -> set[int]:
        try:
            return {s["pid"] for s in json.loads((home / "stack.json").read_text())["services"].values()}
        except (OSError, ValueError, KeyError):
            return set()

    sampler = PeakSampler(pgids)
    sampler.start()
    start = time.perf_counter()
    args = [*mlops_command("up", "--json")] + [a for e in extras for a in ("--with", e)]
    result = subprocess.run(args, env=env, capture_output=True, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - start
    time.sleep(2)  # services settle after their health endpoint first answers
    sampler.stop.set()
    sampler.join()
    services = len(pgids())
    start = time.perf_counter()
    subprocess.run(mlops_command("down"), env=env, capture_output=True, cwd=ROOT)
    down_s = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"mlops up failed: {result.stderr[-2000:]}")
    return elapsed, sampler.peak, services, down_s


def bench_bare_mlflow() -> tuple[float, float]:
    from mlops_cli.config import load_settings
    from mlops_cli.ops.services import mlflow_spec

    work = Path(tempfile.mkdtemp(prefix="bench-mlflow-"))
    port = free_port()
    # the stack's own MLflow spec: same command, on a scratch backend and a free port
    spec = mlflow_spec(load_settings(home=work, mlflow_host="127.0.0.1", mlflow_port=port))
    start = time.perf_counter()
    process = subprocess.Popen(
        spec.command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", **spec.env},  # its backend URI is in env
    )
    sampler = PeakSampler(lambda: {process.pid})
    sampler.start()
    try:
        while True:
            try:
                if httpx.get(spec.health_url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.perf_counter() - start > 300:
                sys.exit("mlflow server did not start")
            time.sleep(0.1)
        elapsed = time.perf_counter() - start
        time.sleep(2)
    finally:
        sampler.stop.set()
        sampler.join()
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    return elapsed, sampler.peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--with", dest="extras", action="append", default=[], help="optional service (airflow)")
    args = parser.parse_args()
    bare_s, bare_mb = bench_bare_mlflow()
    stack_s, stack_mb, services, down_s = bench_stack(args.extras)
    print(f"{'':<34}{'to healthy':>12}{'peak RSS':>12}")
    print(f"{'bare `mlflow server`':<34}{bare_s:>10.1f} s{bare_mb:>9.0f} MB")
    print(f"{f'mlops up ({services} services)':<34}{stack_s:>10.1f} s{stack_mb:>9.0f} MB")
    print(f"\nmlops up / bare mlflow server: {stack_s / bare_s:.2f}x the time, {stack_mb / bare_mb:.2f}x the memory")
    print(f"mlops down (watchdog and {services} services, in parallel): {down_s:.1f} s (goal < 5 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
