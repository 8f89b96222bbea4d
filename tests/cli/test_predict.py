"""`mlops predict` and `mlops serve` as a user runs them."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from mlops_cli.ops.netutil import free_port
from tests.conftest import run_mlops

pytestmark = pytest.mark.slow
LISTING_ARGS = ["-s", "city=Austin", "-s", "state=Texas", "-s", "zip_code=75003", "-s", "house_size=1800"]


def test_predict_prints_the_version_that_answered(api: str, registry_env: dict[str, str]) -> None:
    table = run_mlops("predict", "--url", api, *LISTING_ARGS, env=registry_env)
    assert table.returncode == 0, table.stderr
    assert "house_prices v" in table.stdout and "(champion)" in table.stdout and "Austin" in table.stdout
    answer = json.loads(run_mlops("predict", "--url", api, *LISTING_ARGS, "--json", env=registry_env).stdout)
    assert answer["model"]["alias"] == "champion" and len(answer["predictions"]) == 1


def test_predict_shows_the_range_and_with_explain_what_moved_the_price(api: str, registry_env: dict[str, str]) -> None:
    answer = json.loads(run_mlops("predict", "--url", api, *LISTING_ARGS, "--json", env=registry_env).stdout)
    low, high = answer["intervals"][0]
    assert low < answer["predictions"][0] < high and answer["interval_level"] == 0.8
    shown = run_mlops("predict", "--url", api, *LISTING_ARGS, "--explain", env={**registry_env, "COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    assert "80% range" in shown.stdout and f"{low:,.0f} – {high:,.0f}" in shown.stdout
    explained = json.loads(
        run_mlops("predict", "--url", api, *LISTING_ARGS, "--explain", "--json", env=registry_env).stdout
    )["explanations"][0]
    assert f"from an average {explained['base_price']:,.0f}" in shown.stdout
    top = explained["contributions"][0]
    assert top["feature"] in shown.stdout and f"{abs(top['effect']):,.0f}" in shown.stdout
    no_zip = run_mlops("predict", "--url", api, "-s", "state=Texas", "-s", "city=Austin", "--json", env=registry_env)
    assert no_zip.returncode == 0 and json.loads(no_zip.stdout)["missing"][0][0] == "zip_code", no_zip.stderr


def test_explain_on_a_model_that_cannot_still_prices_and_says_why(home: Path, tmp_path: Path) -> None:
    """An hgb champion has no exact contributions: the prices come, a warning says why (exit 0)."""
    from mlops_cli.ops.services import mlops_command
    from mlops_cli.pipeline.train import run
    from tests.conftest import serving_settings, start_logged, stop_group, wait_http

    run(serving_settings(home, model="hgb", generator_batches=2), reload_api=False)
    env = {"MLOPS_HOME": str(home), "MLOPS_MODEL": "hgb", "MLOPS_API_WATCH_INTERVAL": "0"}
    port = free_port()
    server = start_logged(mlops_command("serve", "--port", str(port)), env, tmp_path / "api.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health/ready", process=server, ready=lambda r: r.status_code == 200)
        shown = run_mlops("predict", "--url", url, *LISTING_ARGS, "--explain", env=env)
        assert shown.returncode == 0, shown.stderr
        assert "80% range" in shown.stdout and "categorical" in shown.stderr and "moved by" not in shown.stdout
        answer = json.loads(run_mlops("predict", "--url", url, *LISTING_ARGS, "--explain", "--json", env=env).stdout)
        assert answer["predictions"][0] > 0 and "categorical" in answer["explain_refused"]
    finally:
        stop_group(server)


def test_the_helps_own_example_is_a_place_the_model_knows(api: str, registry_env: dict[str, str]) -> None:
    from mlops_cli.cli.predict import EXAMPLE

    shown = " ".join(run_mlops("predict", "--help", env={"COLUMNS": "300"}).stdout.replace("│", " ").split())
    assert f"Example: {EXAMPLE}" in shown
    answer = run_mlops(*shlex.split(EXAMPLE)[1:], "--url", api, "--json", env=registry_env)
    assert answer.returncode == 0 and json.loads(answer.stdout)["unseen"] == [[]], answer.stdout + answer.stderr
    assert "never saw" not in run_mlops(*shlex.split(EXAMPLE)[1:], "--url", api, env=registry_env).stderr


def test_predict_without_house_size_marks_a_value_never_seen(api: str, registry_env: dict[str, str]) -> None:
    odd = ["-s", "city=Austin", "-s", "state=Atlantis", "-s", "zip_code=75003"]
    table = run_mlops("predict", "--url", api, *odd, env=registry_env)
    assert table.returncode == 0, table.stderr
    assert "Atlantis*" in table.stdout and "never saw in training" in table.stderr
    answer = json.loads(run_mlops("predict", "--url", api, *odd, "--json", env=registry_env).stdout)
    assert answer["unseen"] == [["state"]] and answer["predictions"][0] > 0


def test_predict_from_json_and_csv_files(api: str, registry_env: dict[str, str], tmp_path: Path) -> None:
    listing = {"city": "Austin", "state": "Texas", "zip_code": "75003", "house_size": 1800}
    (tmp_path / "l.json").write_text(json.dumps([listing, {**listing, "house_size": 3000}]))
    (tmp_path / "l.csv").write_text(
        "city,state,zip_code,house_size,bed\nAustin,Texas,00601,1800,\nMiami,Florida,33000,900,2\n"
    )
    for name in ("l.json", "l.csv"):
        result = run_mlops("predict", "--url", api, "--file", str(tmp_path / name), "--json", env=registry_env)
        assert result.returncode == 0, result.stderr
        assert len(json.loads(result.stdout)["predictions"]) == 2


def test_invalid_field_is_one_clear_line(api: str, registry_env: dict[str, str]) -> None:
    result = run_mlops("predict", "--url", api, *LISTING_ARGS[:-2], "-s", "house_size=5", env=registry_env)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: invalid listing: house_size: Input should be greater than or equal to 100"
    usage = run_mlops("predict", "--url", api, "-s", "rooms=3", env=registry_env)
    assert usage.returncode == 2 and "FIELD=VALUE" in usage.stderr


def test_api_down_is_a_clear_error(home: Path) -> None:
    result = run_mlops("predict", "--url", f"http://127.0.0.1:{free_port()}", *LISTING_ARGS)
    assert result.returncode == 1 and "is not reachable" in result.stderr and "mlops serve" in result.stderr
    assert "Traceback" not in result.stderr


def test_predict_help_lists_the_fields_and_which_are_required() -> None:
    text = " ".join(run_mlops("predict", "--help", env={"COLUMNS": "200"}).stdout.split())
    assert "Fields: state (required); city, zip_code, house_size, bed, bath, acre_lot (optional" in text
    assert "--set -s FIELD=VALUE" in text.replace("│", " ").replace("  ", " ")
