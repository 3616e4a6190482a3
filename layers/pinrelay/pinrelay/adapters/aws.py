"""boto3 clients, created once per container, with timeouts sized to fit inside Lambda's.

Lambda kills an invocation at its timeout with no clean-up, so every AWS call must end (after
botocore's retries) well before it. ``worst_call_seconds(service)`` is the longest one call
can take: attempts x (connect + read timeout) + the retry backoff (standard mode waits a
random 0..2^n seconds, at most 1 + 2 s before the 2nd and 3rd attempts). Callers compare it
with the time left before they start a call. AWS_ENDPOINT_URL (the local stack) is honoured by
boto3 itself.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

# botocore and urllib3 log request and response bodies at DEBUG: Secrets Manager answers (tokens,
# webhook secrets) and queue messages. pinrelay's own DEBUG logging never turns them on.
for _noisy in ("botocore", "boto3", "urllib3"):
    logging.getLogger(_noisy).setLevel(logging.INFO)


@dataclass(frozen=True)
class CallLimits:
    connect_timeout: float
    read_timeout: float
    max_attempts: int

    @property
    def worst_call_seconds(self) -> float:
        backoff = sum(min(20, 2 ** attempt) for attempt in range(self.max_attempts - 1))
        return self.max_attempts * (self.connect_timeout + self.read_timeout) + backoff


# One place for them. DynamoDB and SQS answer in milliseconds in-region; a read timeout of 2 s
# is 100x that. Secrets are read once per container per 5 minutes.
CALL_LIMITS: dict[str, CallLimits] = {
    "dynamodb": CallLimits(connect_timeout=1, read_timeout=2, max_attempts=3),  # worst 12 s
    "sqs": CallLimits(connect_timeout=1, read_timeout=2, max_attempts=3),  # worst 12 s
    "secretsmanager": CallLimits(connect_timeout=1, read_timeout=2, max_attempts=2),  # worst 7 s
    "s3": CallLimits(connect_timeout=2, read_timeout=10, max_attempts=3),
}


def worst_call_seconds(service: str) -> float:
    return CALL_LIMITS[service].worst_call_seconds


def seconds_left(context: Any) -> Callable[[], float]:
    """The seconds Lambda leaves this invocation (its context), asked anew at each call; no limit
    without a context (a script, a test)."""
    if context is None:
        return lambda: math.inf
    return lambda: context.get_remaining_time_in_millis() / 1000


@cache
def client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    limits = CALL_LIMITS[service]
    return boto3.client(
        service,
        config=Config(
            # total_max_attempts counts the first attempt; botocore's max_attempts would count retries only
            retries={"mode": "standard", "total_max_attempts": limits.max_attempts},
            max_pool_connections=20,
            connect_timeout=limits.connect_timeout,
            read_timeout=limits.read_timeout,
        ),
    )
