"""Webhook signatures, each compared in constant time: base64 HMAC-SHA256 of the raw body (Shopify,
WooCommerce), Stripe's `Stripe-Signature`, the Standard Webhooks `webhook-signature` (BigCommerce),
and a shared secret sent back as a header (BigCommerce's webhook `headers`)."""

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


# -------------------------------------------------------------------------------- Stripe
STRIPE_TOLERANCE_SECONDS = 300  # Stripe's libraries' default
def stripe_signature_header(raw_body: bytes, secret: str, timestamp: int) -> str:
    """``Stripe-Signature`` as Stripe writes it for ``raw_body`` (samples, stand-ins, tests)."""
    signed = str(timestamp).encode("ascii") + b"." + raw_body
    return f"t={timestamp},v1={hmac.new(secret.encode('utf-8'), signed, hashlib.sha256).hexdigest()}"


def _stripe_header_parts(header: str) -> tuple[str | None, list[str]]:
    """(``t``, every ``v1``) of a ``Stripe-Signature`` header: comma-separated ``key=value`` pairs;
    other schemes (``v0``, the test-mode scheme) are left out."""
    timestamp: str | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t" and timestamp is None:
            timestamp = value
        elif key == "v1":
            signatures.append(value)
    return timestamp, signatures


def verify_stripe_signature(raw_body: bytes, header: str | None, secrets: list[str], now: float,
                            tolerance_seconds: int = STRIPE_TOLERANCE_SECONDS) -> int | None:
    """The position in ``secrets`` of the secret that signed ``raw_body``, or None.

    Stripe's scheme: ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">[,v1=...]``;
    any ``v1`` may match (Stripe sends one per active secret while an endpoint's secret is
    rolled). Every secret is compared with every ``v1`` in constant time, without stopping at a
    match; a ``t`` more than ``tolerance_seconds`` from ``now`` (either way) is refused as a
    replay even when signed."""
    if not header or not secrets:
        return None
    timestamp, given = _stripe_header_parts(header)
    if timestamp is None or not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12 or not given:
        return None
    signed = timestamp.encode("ascii") + b"." + raw_body
    found: int | None = None
    for position, secret in enumerate(secrets):
        expected = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest().encode("ascii")
        matched = False
        for signature in given:
            matched |= hmac.compare_digest(expected, signature.encode("utf-8", "replace"))
        if matched and found is None:
            found = position
    if found is None or abs(now - int(timestamp)) > tolerance_seconds:
        return None
    return found


# -------------------------------------------------------------------------------- Standard Webhooks
def standard_webhook_signature(raw_body: bytes, message_id: str, timestamp: int, key: bytes) -> str:
    """``webhook-signature`` of the Standard Webhooks specification: ``v1,<base64 HMAC-SHA256 of
    "<webhook-id>.<webhook-timestamp>.<raw body>">`` (stand-ins and tests)."""
    signed = f"{message_id}.{timestamp}.".encode() + raw_body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


def verify_standard_webhook(raw_body: bytes, message_id: str | None, timestamp: str | None, signatures: str | None,
                            keys: list[bytes], now: float, tolerance_seconds: int = 300) -> bool:
    """True when one of the space-separated ``v1,<base64>`` entries of ``webhook-signature`` is the
    HMAC of ``"<webhook-id>.<webhook-timestamp>.<body>"`` under one of ``keys``, and the timestamp
    is within ``tolerance_seconds`` of ``now``; every key and entry compared in constant time."""
    if not (message_id and timestamp and signatures and keys) or not timestamp.isascii() or not timestamp.isdigit():
        return False
    given: list[bytes] = []
    for entry in signatures.split():
        version, sep, value = entry.partition(",")
        if version == "v1" and sep:
            try:
                given.append(base64.b64decode(value, validate=True))
            except (binascii.Error, ValueError):
                continue
    if not given or len(timestamp) > 12:
        return False
    signed = f"{message_id}.{timestamp}.".encode("utf-8", "replace") + raw_body
    matched = False
    for key in keys:
        expected = hmac.new(key, signed, hashlib.sha256).digest()
        for signature in given:
            matched |= hmac.compare_digest(expected, signature)
    return matched and abs(now - int(timestamp)) <= tolerance_seconds


# -------------------------------------------------------------------------------- a shared header secret
def header_secret_matches(given: str | None, secrets: list[str]) -> bool:
    """True when the header's value is one of ``secrets`` (a secret the platform sends back as a
    custom header, e.g. BigCommerce's webhook ``headers``): compared as SHA-256 digests in
    constant time, so neither a value nor its length leaks through timing."""
    if not given:
        return False
    digest = hashlib.sha256(given.encode("utf-8", "replace")).digest()
    matched = False
    for secret in secrets:
        if secret:
            matched |= hmac.compare_digest(digest, hashlib.sha256(secret.encode("utf-8")).digest())
    return matched
