"""Throughput of the inference API's /predict against a bare FastAPI echo endpoint and
`mlflow models serve`, side by side in one run: same load generator (wrk, 32 connections,
one-row JSON body), one uvicorn worker each (uvloop + httptools).

    python bench/serve.py [--duration 10] [--connections 32] [--rounds 3] [--pairs 10] [--home DIR] [--tree]
                          [--model lgbm_local] [--events-db postgresql://...]

Targets (ratios): /predict >= 0.75x the echo endpoint with metrics and inference events on
(the defaults), >= 0.9x the same API with MLOPS_API_EVENTS=off (the median of back-to-back
pairs of short runs: a best of rounds against a best moves with the machine's neighbours),
with another version in shadow at share 1 >= 0.8x events all (paired likewise), >= 20x
`mlflow models serve` on the same registered version; predictions equal to mlflow.pyfunc to 1e-6.
With --tree the champion is gradient-boosted trees (MLOPS_MODEL=hgb, served compiled through
treelite): one-row /predict >= 0.5x echo and >= 50x `mlflow models serve`, and batches of
1000 rows >= 20k rows/s. `--model TYPE` trains that model type instead (`lgbm_geo`, `lgbm_local`
are trees too). A model with exact contributions is also loaded with `?explain=true`: >= 0.3x
echo. Needs wrk (Debian package `wrk`). Without --home it trains a small
registry first.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from mlops_cli.ops.services import mlops_command
from mlops_cli.schema import EXAMPLE_LISTING

ROOT = Path(__file__).resolve().parent.parent
LISTING = EXAMPLE_LISTING


def free_port() -> int:
    from mlops_cli.ops.netutil import free_port as pick

    return pick()


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        args,
        env={**os.environ, **env},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=ROOT,
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def wait_ready(url: str, process: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    sys.exit(f"server not ready after {timeout}s: {log.read_text()[-2000:]}")


def wrk(url: str, body: str, duration: int, connections: int, workdir: Path) -> dict[str, float]:
    script = workdir / "post.lua"
    escaped = body.replace("\\", "\\\\").replace("'", "\\'")
    script.write_text(
        f"wrk.method = 'POST'\nwrk.body = '{escaped}'\nwrk.headers['Content-Type'] = 'application/json'\n"
    )
    threads = min(2, connections)
    result = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    )
    text = result.stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if non_2xx:
        sys.exit(f"{url} answered {non_2xx.group(1)} errors under load:\n{text}")

    def latency_ms(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", text).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
        "p50_ms": latency_ms("50%"),
        "p99_ms": latency_ms("99%"),
    }


def train_registry(home: Path, model: str = "linear") -> None:
    env = {"MLOPS_HOME": str(home), "MLOPS_GENERATOR_BATCHES": "4", "MLOPS_MODEL": model}
    subprocess.run(
        mlops_command("train", "--all", "--no-reload-api", "--json"),
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        cwd=ROOT,
    )


def check_equal_predictions(api: str, home: Path, version: int) -> int:
    """Our /predict against mlflow.pyfunc on the same stored rows (relative 1e-6)."""
    import numpy as np

    os.environ["MLOPS_HOME"] = str(home)
    from mlops_cli.config import load_settings
    from mlops_cli.registry.client import connect
    from mlops_cli.schema import FEATURES
    from mlops_cli.store.db import engine_for
    from mlops_cli.store.frames import read_table
    from mlops_cli.store.tables import clean_data

    settings = load_settings()
    connect(settings)
    import mlflow.pyfunc

    rows = read_table(engine_for(settings), clean_data).dropna(subset=["house_size", "city"])[FEATURES].head(500)
    listings = [{k: v for k, v in r.items() if v == v} for r in rows.to_dict(orient="records")]
    served: list[float] = []
    for start_at in range(0, len(listings), 100):
        served += httpx.post(f"{api}/predict", json=listings[start_at : start_at + 100]).json()["predictions"]
    expected = mlflow.pyfunc.load_model(f"models:/{settings.model_name}/{version}").predict(rows.reset_index(drop=True))
    np.testing.assert_allclose(served, expected, rtol=1e-6)
    return len(rows)


def events_accounted(api: str) -> dict[str, object]:
    """The API's own count of its inference events (from /metrics)."""
    text = httpx.get(f"{api}/metrics").text

    def value(pattern: str) -> float:
        return sum(float(m) for m in re.findall(pattern + r" ([0-9.e+]+)", text))

    by = dict(re.findall(r'mlops_api_events_dropped_total\{reason="(\w+)"\} ([0-9.e+]+)', text))
    return {
        "written": value(r"mlops_api_events_written_total"),
        "dropped": value(r"mlops_api_events_dropped_total\{[^}]*\}"),
        "dropped_by": ", ".join(f"{k} {float(v):,.0f}" for k, v in by.items()),
        "queued": value(r"mlops_api_events_queue_depth"),
        "shadowed": value(r"mlops_api_shadow_listings_total"),
        "writer_cpu": value(r"mlops_api_events_writer_cpu_seconds_total"),
    }


def other_version(home: Path, served: int) -> int:
    """A registered version that is not ``served`` (the shadow), else ``served`` itself."""
    os.environ["MLOPS_HOME"] = str(home)
    from mlops_cli.config import load_settings
    from mlops_cli.registry.models import list_versions

    versions = [v["version"] for v in list_versions(load_settings()) if v["version"] != served]
    return versions[0] if versions else served


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per server")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every server (best of each)")
    parser.add_argument("--pairs", type=int, default=10, help="back-to-back runs per paired comparison")
    parser.add_argument("--pair-duration", type=int, default=5, help="seconds of load per run of a pair")
    parser.add_argument("--home", type=Path, help="an MLOPS_HOME with a champion (default: train one)")
    parser.add_argument("--tree", action="store_true", help="train a gradient-boosted tree champion (hgb)")
    parser.add_argument("--model", help="train this MLOPS_MODEL instead (e.g. lgbm_local); default linear, or hgb")
    parser.add_argument(
        "--events-db", help="SQLAlchemy URL the APIs write their inference events to (default: the home's SQLite)"
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    home = args.home or work / ".mlops"
    if args.home is None:
        print("training a small registry ...", flush=True)
        train_registry(home, args.model or ("hgb" if args.tree else "linear"))
    env = {"MLOPS_HOME": str(home), "MLOPS_API_WATCH_INTERVAL": "0", "OPENBLAS_NUM_THREADS": "1"}
    one_row = json.dumps(LISTING)
    results: dict[str, dict[str, float]] = {}
    servers: list[subprocess.Popen] = []
    try:
        port = free_port()
        uvicorn = [
            sys.executable,
            "-m",
            "uvicorn",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--workers",
            "1",
            "--log-level",
            "warning",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        echo = start([*uvicorn, "--app-dir", str(ROOT / "bench"), "echo_app:app"], env, work / "echo.log")
        servers.append(echo)
        echo_url = f"http://127.0.0.1:{port}"
        wait_ready(f"{echo_url}/docs", echo, work / "echo.log")

        def serve_api(events: str, shadow: str | None = None) -> tuple[subprocess.Popen, str]:
            port = free_port()
            log = work / f"api-events-{events}{'-shadow' if shadow else ''}.log"
            extra = {"MLOPS_API_EVENTS": events}
            if args.events_db:
                extra["MLOPS_DATA_DB_URL"] = args.events_db
            if shadow:
                extra |= {"MLOPS_API_SHADOW": shadow, "MLOPS_API_SHADOW_SHARE": "1"}
            process = start(mlops_command("serve", "--port", str(port), "--workers", "1"), {**env, **extra}, log)
            servers.append(process)
            url = f"http://127.0.0.1:{port}"
            wait_ready(f"{url}/health/ready", process, log)
            return process, url

        api, api_url = serve_api("all")  # the default: every request recorded in inference_events
        quiet, quiet_url = serve_api("off")
        model = httpx.get(f"{api_url}/model").json()
        other = other_version(home, model["version"])
        shadowed, shadowed_url = serve_api("all", f"version:{other}")
        checked = check_equal_predictions(api_url, home, model["version"])
        ours = f"mlops /predict ({model['path']} path, events all)"
        without = f"mlops /predict ({model['path']} path, events off)"
        with_shadow = f"mlops /predict (events all, v{other} in shadow)"
        explained = "mlops /predict?explain=true"
        loads = [
            ("FastAPI echo (baseline)", f"{echo_url}/echo"),
            (ours, f"{api_url}/predict"),
            (without, f"{quiet_url}/predict"),
            (with_shadow, f"{shadowed_url}/predict"),
        ]
        if model.get("explain"):
            loads.append((explained, f"{api_url}/predict?explain=true"))
        # Interleaved rounds, best of each: machine noise hits every server alike.
        for _ in range(args.rounds):
            for name, url in loads:
                run = wrk(url, one_row, args.duration, args.connections, work)
                if name not in results or run["rps"] > results[name]["rps"]:
                    results[name] = run

        # Events all vs off, and the shadow vs events all, once more, paired: short runs back to
        # back, in alternating order, and the median of the pairs' ratios. A best against a best
        # moves with this machine's neighbours (two identical servers differed by 15 % in a round;
        # a trees shadow measured 0.70x best against best, 0.93x paired, on the same servers).
        def pairs(first: tuple[str, str], second: tuple[str, str]) -> list[float]:
            ratios = []
            for i in range(args.pairs):
                pair = [first, second] if i % 2 == 0 else [second, first]
                rps = {name: wrk(url, one_row, args.pair_duration, args.connections, work)["rps"] for name, url in pair}
                ratios.append(rps[first[0]] / rps[second[0]])
            return ratios

        paired = pairs((ours, f"{api_url}/predict"), (without, f"{quiet_url}/predict"))
        paired_shadow = pairs((with_shadow, f"{shadowed_url}/predict"), (ours, f"{api_url}/predict"))
        stop(quiet)
        time.sleep(1.0)
        one_row_events = events_accounted(api_url)  # before the 1000-row requests
        shadow_events = events_accounted(shadowed_url)
        stop(shadowed)
        # batches of 1000 listings: rows per second through /predict
        batch_body = json.dumps([LISTING] * 1000)
        results["mlops /predict, 1000 rows per request"] = wrk(
            f"{api_url}/predict", batch_body, args.duration, args.connections, work
        )
        stop(echo)
        time.sleep(1.0)  # the writer's last flush
        events = events_accounted(api_url)
        stop(api)

        port = free_port()
        mlflow_env = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{home}/mlflow.db"}
        model_uri = f"models:/house_prices/{model['version']}"
        served = start(
            [
                sys.executable,
                "-m",
                "mlflow",
                "models",
                "serve",
                "-m",
                model_uri,
                "--env-manager",
                "local",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            mlflow_env,
            work / "mlflow.log",
        )
        servers.append(served)
        wait_ready(f"http://127.0.0.1:{port}/ping", served, work / "mlflow.log")
        mlflow_body = json.dumps({"dataframe_records": [LISTING]})
        results["mlflow models serve"] = wrk(
            f"http://127.0.0.1:{port}/invocations", mlflow_body, args.duration, args.connections, work
        )
    finally:
        for server in servers:
            stop(server)
    print(f"\n{'server':<46}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name, r in results.items():
        print(f"{name:<46}{r['rps']:>10,.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}")
    ours = results[ours]
    vs_echo = ours["rps"] / results["FastAPI echo (baseline)"]["rps"]
    vs_off = ours["rps"] / results[without]["rps"]
    shadow_vs_events = results[with_shadow]["rps"] / ours["rps"]
    vs_mlflow = ours["rps"] / results["mlflow models serve"]["rps"]
    rows_per_s = results["mlops /predict, 1000 rows per request"]["rps"] * 1000
    echo_goal, mlflow_goal = (0.5, 50) if model["path"] == "trees" else (0.75, 20)
    met = {True: "met", False: "NOT met"}
    print(f"\n/predict vs echo:          {vs_echo:6.2f}x  (target >= {echo_goal}: {met[vs_echo >= echo_goal]})")
    print(f"/predict vs mlflow serve:  {vs_mlflow:6.1f}x  (target >= {mlflow_goal}: {met[vs_mlflow >= mlflow_goal]})")
    print(f"1000-row batches:          {rows_per_s:,.0f} rows/s  (target >= 20,000: {met[rows_per_s >= 20_000]})")
    paired_off = statistics.median(paired) if paired else vs_off
    print(
        f"events all vs events off:  {paired_off:6.2f}x  (target >= 0.9: {met[paired_off >= 0.9]}; median of "
        f"{len(paired)} back-to-back pairs, {min(paired or [0]):.2f}-{max(paired or [0]):.2f}; "
        f"best vs best {vs_off:.2f}x)"
    )
    echo_rps = results["FastAPI echo (baseline)"]["rps"]
    explain_vs_echo = results[explained]["rps"] / echo_rps if explained in results else None
    if explain_vs_echo is not None:
        print(f"explain=true vs echo:      {explain_vs_echo:6.2f}x  (target >= 0.3: {met[explain_vs_echo >= 0.3]})")
    else:
        print(f"explain=true: not measured ({model.get('explain_reason')})")
    shadow_paired = statistics.median(paired_shadow) if paired_shadow else shadow_vs_events
    print(
        f"shadow (share 1) vs events: {shadow_paired:5.2f}x  (target >= 0.8: {met[shadow_paired >= 0.8]}; median of "
        f"{len(paired_shadow)} back-to-back pairs, {min(paired_shadow or [0]):.2f}-{max(paired_shadow or [0]):.2f}; "
        f"best vs best {shadow_vs_events:.2f}x)"
    )
    print(
        f"  shadow server: {shadow_events['shadowed']:,.0f} listings priced in shadow, "
        f"{shadow_events['dropped']:,.0f} events dropped"
    )
    print(
        f"inference events: {events['written']:,.0f} written, {events['dropped']:,.0f} dropped "
        f"({events['dropped_by']}), {events['queued']:,.0f} still queued"
    )
    one = one_row_events
    print(
        f"  one-row requests: {one['written']:,.0f} written, {one['dropped']:,.0f} dropped; the event writer's CPU "
        f"{one['writer_cpu'] / max(one['written'] + one['dropped'], 1) * 1e6:.1f} µs an event (its thread in the API "
        "and its own process)"
    )
    print(f"predictions equal to mlflow.pyfunc (rtol 1e-6) on {checked} stored rows: yes")
    goals = (
        vs_echo >= echo_goal,
        vs_mlflow >= mlflow_goal,
        rows_per_s >= 20_000,
        paired_off >= 0.9,
        shadow_paired >= 0.8,
        explain_vs_echo is None or explain_vs_echo >= 0.3,
    )
    return 0 if all(goals) else 1


if __name__ == "__main__":
    sys.exit(main())
