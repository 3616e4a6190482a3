"""Secrets: Secrets Manager through Powertools Parameters (cached), or a plain local value.

The provider gets pinrelay's own Secrets Manager client (adapters.aws: short timeouts, few
attempts), so a slow Secrets Manager cannot hold an invocation past Lambda's timeout. When a
refresh fails (Secrets Manager throttled or down) a warm container goes on with the value it
read last, so that a webhook from a platform that never retries (WooCommerce) is still taken;
with no value at all, ``SecretUnavailable`` (the ingest handler answers 503).

What a secret's text holds (one secret byte for byte, or a JSON list during a rotation; none
under 32 characters) is ``pinrelay.secret_text``: ``secret_values`` and ``api_key_values`` read
it, ``secret_entries`` is re-exported here for the callers that read a secret's text themselves.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from pinrelay.config import SecretRef
from pinrelay.secret_text import PLACEHOLDER, InvalidSecret, api_key_entries, secret_entries

__all__ = ["PLACEHOLDER", "InvalidSecret", "SecretUnavailable", "api_key_values", "secret_entries", "secret_value",
           "secret_values"]

logger = logging.getLogger(__name__)
_last_read: dict[str, str] = {}  # secret name -> the value read last in this container


class SecretUnavailable(RuntimeError):
    """Secrets Manager could not be read and this container has no earlier value."""


@cache
def _provider() -> Any:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from pinrelay.adapters.aws import client

    return SecretsProvider(boto3_client=client("secretsmanager"))


def secret_value(ref: SecretRef, max_age_seconds: int, force_fetch: bool = False) -> str:
    """The secret's value; ``force_fetch`` skips the cache (after Pinterest refused a token)."""
    if ref.secret_name:
        try:
            value = _provider().get(ref.secret_name, max_age=max_age_seconds, force_fetch=force_fetch)
        except Exception as exc:  # noqa: BLE001 - throttled, unavailable, timed out
            if ref.secret_name in _last_read:
                logger.warning("Secrets Manager unavailable (%s): using the value read last", type(exc).__name__)
                return _last_read[ref.secret_name]
            raise SecretUnavailable(f"secret {ref.secret_name} could not be read ({type(exc).__name__})") from None
        text = value.decode("utf-8") if isinstance(value, bytes) else str(value)
        _last_read[ref.secret_name] = text
        return text
    if ref.plain_value is None:
        raise RuntimeError("secret not configured")
    return ref.plain_value


def secret_values(ref: SecretRef, max_age_seconds: int) -> list[str]:
    """``secret_entries`` of the secret ``ref`` names (InvalidSecret naming its setting)."""
    return secret_entries(secret_value(ref, max_age_seconds), ref.setting)


def api_key_values(ref: SecretRef, max_age_seconds: int) -> list[str]:
    """``api_key_entries`` of the ingest key secret ``ref`` names."""
    return api_key_entries(secret_value(ref, max_age_seconds), ref.setting)
