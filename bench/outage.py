"""The inference API under load through a data DB outage: PostgreSQL refuses the events'
database for a minute (its connections terminated, new ones refused) while wrk keeps sending
one-listing requests.

    python bench/outage.py [--outage 60] [--before 10] [--after 15] [--connections 16] [--home DIR]

Goals (issue #25): 0 non-2xx answers caused by the outage; every answered listing's event
written or counted dropped (written + dropped = answered, the table's rows = written); the API's
memory bounded by its events queue (MLOPS_API_EVENTS_QUEUE / _QUEUE_BYTES), sampled every second
from /proc for the API and its event writer process. The server is the machine's PostgreSQL
(MLOPS_BENCH_POSTGRES, an admin URL; default the local trust-auth server): a fresh database is
made for the run and dropped after. Needs wrk (Debian package `wrk`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve import events_accounted, free_port, start, stop, train_registry, wait_ready  # noqa: E402

from mlops_cli.ops.services import mlops_command  # noqa: E402
from mlops_cli.schema import EXAMPLE_LISTING  # noqa: E402

POSTGRES_ADMIN = os.environ.get("MLOPS_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def rss_mib(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def metric_sum(text: str, pattern: str) -> float:
    return sum(float(v) for v in re.findall(pattern + r" ([0-9.e+]+)", text))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage", type=int, default=60, help="seconds the database refuses the API")
    parser.add_argument("--before", type=int, default=10, help="seconds of load before the outage")
    parser.add_argument("--after", type=int, default=15, help="seconds of load after it")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--home", type=Path, help="an MLOPS_HOME with a champion (default: train one)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk")
    import psycopg

    work = Path(tempfile.mkdtemp(prefix="bench-outage-"))
    home = args.home or work / ".mlops"
    if args.home is None:
        print("training a small registry ...", flush=True)
        train_registry(home)
    name = f"mlops_outage_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(POSTGRES_ADMIN, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    events_db = POSTGRES_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    port = free_port()
    env = {
        "MLOPS_HOME": str(home),
        "MLOPS_DATA_DB_URL": events_db,
        "MLOPS_API_EVENTS": "all",
        "MLOPS_API_WATCH_INTERVAL": "0",
        "MLOPS_API_DRIFT_INTERVAL": "0",
        "OPENBLAS_NUM_THREADS": "1",
    }
    api = start(mlops_command("serve", "--port", str(port), "--workers", "1"), env, work / "api.log")
    url = f"http://127.0.0.1:{port}"
    samples: list[tuple[float, str, float, float]] = []  # (t, phase, api MiB, writer MiB)
    phase = "before"
    try:
        wait_ready(f"{url}/health/ready", api, work / "api.log")
        api_pid = api.pid  # one worker: `mlops serve` runs uvicorn in its own process; the writer is its child
        body = json.dumps(EXAMPLE_LISTING).replace("'", "\\'")
        script = work / "post.lua"
        script.write_text(f"wrk.method='POST'\nwrk.body='{body}'\nwrk.headers['Content-Type']='application/json'\n")
        total = args.before + args.outage + args.after
        load = subprocess.Popen(
            ["wrk", "-t2", f"-c{args.connections}", f"-d{total}s", "-s", str(script), f"{url}/predict"],
            stdout=subprocess.PIPE,
            text=True,
        )
        began = time.monotonic()
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                writers = children(api_pid)
                samples.append((time.monotonic() - began, phase, rss_mib(api_pid), sum(rss_mib(p) for p in writers)))
                done.wait(1.0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        time.sleep(args.before)
        phase = "outage"
        print(f"outage: database {name} refuses connections for {args.outage} s", flush=True)
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        time.sleep(args.outage)
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
        phase = "after"
        print("database back", flush=True)
        out, _ = load.communicate(timeout=total + 60)
        time.sleep(2.0)  # the writer's next flush
        done.set()
        sampler.join()
        metrics = httpx.get(f"{url}/metrics").text
        events = events_accounted(url)  # written, dropped (and by reason), as bench/serve.py reads them
    finally:
        stop(api)
    with psycopg.connect(events_db.replace("+psycopg", "")) as conn:
        rows = conn.execute("SELECT count(*) FROM inference_events").fetchone()[0]
    admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.close()

    answered = metric_sum(metrics, r'mlops_api_requests_total\{method="POST",path="/predict",status="200"\}')
    failed = metric_sum(metrics, r'mlops_api_requests_total\{method="POST",path="/predict",status="[^2]\d\d"\}')
    written, dropped_sum = events["written"], events["dropped"]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    by_phase = {p: [s for s in samples if s[1] == p] for p in ("before", "outage", "after")}
    print(f"\nload: {args.before} s + {args.outage} s outage + {args.after} s, {args.connections} connections")
    print(re.search(r"Requests/sec:.*", out).group(0))
    socket_errors = errors.group(1) if errors else 0
    print(f"non-2xx answers (wrk): {non_2xx.group(1) if non_2xx else 0}; socket errors: {socket_errors}")
    print(f"/predict answered 200: {answered:,.0f}; refused or failed: {failed:,.0f}")
    print(
        f"events: written {written:,.0f} + dropped {dropped_sum:,.0f} "
        f"({events['dropped_by']}) = {written + dropped_sum:,.0f} "
        f"vs answered {answered:,.0f}: {'equal' if written + dropped_sum == answered else 'NOT equal'}"
    )
    same = "equal" if rows == written else "NOT equal"
    print(f"rows in inference_events: {rows:,} vs written {written:,.0f}: {same}")
    print(f"\n{'phase':<8}{'API RSS MiB (min / max)':>26}{'writer RSS MiB (max)':>24}")
    for p, group in by_phase.items():
        if group:
            api_rss = [s[2] for s in group]
            print(f"{p:<8}{min(api_rss):>14.1f} / {max(api_rss):<9.1f}{max(s[3] for s in group):>20.1f}")
    before = max((s[2] for s in by_phase["before"]), default=0.0)
    peak = max((s[2] for s in by_phase["outage"] + by_phase["after"]), default=0.0)
    print(f"API RSS growth through the outage: {peak - before:+.1f} MiB (the queue holds at most 20,000 listings)")
    goals = (
        not non_2xx and failed == 0,
        written + dropped_sum == answered,
        rows == written,
    )
    return 0 if all(goals) else 1


if __name__ == "__main__":
    sys.exit(main())
