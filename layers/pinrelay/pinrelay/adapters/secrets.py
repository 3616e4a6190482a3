"""Secrets: Secrets Manager through Powertools Parameters (cached), or a plain local value.

The provider gets pinrelay's own Secrets Manager client (adapters.aws: short timeouts, few
attempts), so a slow Secrets Manager cannot hold an invocation past Lambda's timeout.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pinrelay.config import SecretRef


@cache
def _provider() -> Any:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from pinrelay.adapters.aws import client

    return SecretsProvider(boto3_client=client("secretsmanager"))


def secret_value(ref: SecretRef, max_age_seconds: int, force_fetch: bool = False) -> str:
    """The secret's value; ``force_fetch`` skips the cache (after Pinterest refused a token)."""
    if ref.secret_name:
        value = _provider().get(ref.secret_name, max_age=max_age_seconds, force_fetch=force_fetch)
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)
    if ref.plain_value is None:
        raise RuntimeError("secret not configured")
    return ref.plain_value


PLACEHOLDER = "REPLACE_ME"  # what the stack puts in a secret the operator has not set yet


def secret_values(ref: SecretRef, max_age_seconds: int) -> list[str]:
    """A secret holding one value, or several separated by commas or newlines (rotation).

    The stack's placeholder is never a usable value: a secret nobody has set lets nobody in.
    """
    raw = secret_value(ref, max_age_seconds)
    return [part.strip() for part in raw.replace("\n", ",").split(",") if part.strip() and part.strip() != PLACEHOLDER]
