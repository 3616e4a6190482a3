"""boto3 clients, created once per container. AWS_ENDPOINT_URL (local stack) is honoured by boto3."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        config=Config(retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=20, connect_timeout=2, read_timeout=5),
    )
