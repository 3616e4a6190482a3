"""boto3 clients, created once per container. AWS_ENDPOINT_URL (local stack) is honoured by boto3."""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

# botocore and urllib3 log request and response bodies at DEBUG: Secrets Manager answers (tokens,
# webhook secrets) and queue messages. pinrelay's own DEBUG logging never turns them on.
for _noisy in ("botocore", "boto3", "urllib3"):
    logging.getLogger(_noisy).setLevel(logging.INFO)


@cache
def client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        config=Config(retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=20, connect_timeout=2, read_timeout=5),
    )
