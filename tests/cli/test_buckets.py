"""`mlops buckets create` as typed: an endpoint that never answers is one clear line after the wait."""

from __future__ import annotations

from pathlib import Path

from mlops_cli.ops.netutil import free_port
from tests.conftest import run_mlops

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test-access", "AWS_SECRET_ACCESS_KEY": "test-secret-key"}


def test_an_unreachable_endpoint_fails_clearly_after_waiting(home: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run_mlops("buckets", "create", "--endpoint-url", url, "--wait", "2", env=CREDENTIALS)
    assert result.returncode == 1
    assert f"S3 endpoint {url} is not reachable after 2s" in result.stderr and "Traceback" not in result.stderr
