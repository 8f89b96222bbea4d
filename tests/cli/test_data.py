"""`mlops data serve|reset` as typed: a reset starts the API over, a taken port or no API is one clear line."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from mlops_cli.ops.netutil import free_port
from tests.conftest import run_mlops


@pytest.mark.slow
def test_data_reset_starts_the_api_again_at_batch_zero(data_api: str, home: Path) -> None:
    import httpx

    assert [httpx.get(f"{data_api}/data", params={"group_number": 1}).json()["batch_number"] for _ in "ab"] == [0, 1]
    reset = run_mlops("data", "reset", "--url", data_api, "--json")
    assert reset.returncode == 0 and json.loads(reset.stdout)["next_batch"] == 0
    assert httpx.get(f"{data_api}/data", params={"group_number": 1}).json()["batch_number"] == 0


def test_a_taken_port_or_an_api_that_is_not_there_is_one_clear_line(home: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        served = run_mlops("data", "serve", "--port", str(port))
    assert (
        served.returncode == 1
        and f"port {port} on 127.0.0.1 is already in use; the data API wanted it" in served.stderr
    )
    nobody = f"http://127.0.0.1:{free_port()}"
    reset = run_mlops("data", "reset", "--url", nobody, env={"MLOPS_DATA_RETRIES": "0"})
    assert reset.returncode == 1 and nobody in reset.stderr and "Traceback" not in reset.stderr
