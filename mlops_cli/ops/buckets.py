"""`mlops buckets create`: wait for an S3 endpoint (MinIO) and make sure buckets exist."""

from __future__ import annotations

import time
from typing import Any

from mlops_cli.errors import MlopsError

DEFAULT_BUCKETS = ("mlflows3", "api-artifacts")


def create_buckets(
    endpoint_url: str | None, buckets: list[str], wait: float = 0, region: str = "us-east-1"
) -> dict[str, Any]:
    """Create each bucket if missing; succeed when they already exist. Credentials come from the
    environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), never from code."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    client = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        config=Config(retries={"max_attempts": 1}, connect_timeout=3, read_timeout=10),
    )
    deadline = time.monotonic() + wait
    while True:
        try:
            existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
            break
        except (EndpointConnectionError, BotoCoreError) as exc:
            if time.monotonic() >= deadline:
                raise MlopsError(
                    f"S3 endpoint {endpoint_url or '(AWS default)'} is not reachable after {wait:g}s "
                    f"({type(exc).__name__})",
                    hint="check --endpoint-url, or raise --wait",
                ) from None
            time.sleep(min(2.0, max(0.1, deadline - time.monotonic())))
        except ClientError as exc:
            raise MlopsError(
                f"S3 refused to list buckets: {exc.response.get('Error', {}).get('Code')}",
                hint="check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
            ) from None
    result: dict[str, Any] = {"endpoint_url": endpoint_url, "created": [], "existing": []}
    for bucket in buckets:
        if bucket in existing:
            result["existing"].append(bucket)
            continue
        try:
            client.create_bucket(Bucket=bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                result["existing"].append(bucket)
                continue
            raise MlopsError(f"could not create bucket {bucket}: {code}") from None
        result["created"].append(bucket)
    return result
