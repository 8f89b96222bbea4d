"""`mlops up|down|status|logs` as a user types them (the stack itself: tests/ops/test_stack.py)."""

from pathlib import Path

from tests.conftest import run_mlops


def test_logs_of_every_service_interleaved_by_time_with_since(home: Path) -> None:
    logs = home / "logs"
    logs.mkdir(parents=True)
    (logs / "api.log").write_text(
        "2026-11-28 10:00:01 INFO inference API starting\n"
        "2026-11-28 10:00:05 ERROR could not load\nTraceback (most recent call last):\n"
    )
    (logs / "mlflow.log").write_text("2026/11/28 10:00:03 INFO mlflow server up\n2026/11/28 10:00:07 INFO done\n")
    (logs / "prometheus.log").write_text('ts=2026-11-28T10:00:04.123Z level=info msg="Server is ready"\n')
    result = run_mlops("logs", "-n", "0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "api        | 2026-11-28 10:00:01 INFO inference API starting",
        "mlflow     | 2026/11/28 10:00:03 INFO mlflow server up",
        'prometheus | ts=2026-11-28T10:00:04.123Z level=info msg="Server is ready"',
        "api        | 2026-11-28 10:00:05 ERROR could not load",
        "api        | Traceback (most recent call last):",
        "mlflow     | 2026/11/28 10:00:07 INFO done",
    ]
    since = run_mlops("logs", "--since", "2026-11-28T10:00:05", "-n", "0").stdout.splitlines()
    assert [line.split(" | ")[0].strip() for line in since] == ["api", "api", "mlflow"]
    assert run_mlops("logs", "api", "--since", "2026-11-28T10:00:04").stdout.splitlines()[0].endswith("could not load")
    assert run_mlops("logs", "-n", "2").stdout.splitlines()[-1].endswith("INFO done")
    bad = run_mlops("logs", "--since", "yesterday-ish")
    assert bad.returncode == 2 and "10m, 2h, 1d" in bad.stderr


def test_an_unknown_optional_service_is_a_usage_error_naming_the_known_ones(home: Path) -> None:
    result = run_mlops("up", "--with", "kafka", env={"COLUMNS": "200"})
    assert result.returncode == 2 and "unknown service 'kafka'; optional services: airflow" in result.stderr
