"""Secrets: Secrets Manager through Powertools Parameters (cached), or a plain local value."""

from __future__ import annotations

from pinrelay.config import SecretRef


def secret_value(ref: SecretRef, max_age_seconds: int) -> str:
    if ref.secret_name:
        from aws_lambda_powertools.utilities.parameters import get_secret

        value = get_secret(ref.secret_name, max_age=max_age_seconds)
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
