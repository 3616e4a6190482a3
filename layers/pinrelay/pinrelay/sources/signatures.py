"""Webhook signatures: base64 HMAC-SHA256 of the raw body, compared in constant time."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable


def sign_body(raw_body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode("utf-8"), raw_body, hashlib.sha256).digest()).decode("ascii")


def verify_base64_hmac(raw_body: bytes, signature: str | None, secrets: Iterable[str]) -> bool:
    """True when ``signature`` is the HMAC of the raw bytes under any of ``secrets`` (rotation)."""
    if not signature:
        return False
    try:
        given = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    matched = False
    for secret in secrets:
        if secret:
            expected = hmac.new(secret.encode("utf-8"), raw_body, hashlib.sha256).digest()
            matched |= hmac.compare_digest(expected, given)
    return matched
