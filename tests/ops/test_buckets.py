"""`mlops buckets create` against moto's S3 server: a local S3-compatible stand-in, since a
MinIO server cannot be installed here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_cli.ops.netutil import free_port
from tests.conftest import run_mlops

moto_server = pytest.importorskip("moto.server")
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test-access", "AWS_SECRET_ACCESS_KEY": "test-secret-key"}


@pytest.fixture
def s3_stand_in() -> Iterator[str]:
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def test_creates_both_buckets_then_is_a_no_op(s3_stand_in: str, home: Path) -> None:
    args = [
        "buckets",
        "create",
        "--endpoint-url",
        s3_stand_in,
        "--bucket",
        "mlflows3",
        "--bucket",
        "api-artifacts",
        "--json",
    ]
    first = run_mlops(*args, env=CREDENTIALS)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["created"] == ["mlflows3", "api-artifacts"]
    second = run_mlops(*args, env=CREDENTIALS)
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    assert again["created"] == [] and again["existing"] == ["mlflows3", "api-artifacts"]
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=s3_stand_in,
        region_name="us-east-1",
        aws_access_key_id="test-access",
        aws_secret_access_key="test-secret-key",
    )
    assert {b["Name"] for b in client.list_buckets()["Buckets"]} == {"mlflows3", "api-artifacts"}
