"""Stripe-Signature, the Standard Webhooks signature (BigCommerce) and a shared header secret, as
pinrelay.sources.signatures checks them: on the raw bytes, in constant time, every secret and every
signature compared, replays outside the tolerance refused."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from pinrelay.sources import signatures
from pinrelay.sources.signatures import (
    header_secret_matches,
    standard_webhook_signature,
    stripe_signature_header,
    verify_standard_webhook,
    verify_stripe_signature,
)

SECRET = "whsec_" + "a" * 32
OTHER = "whsec_" + "b" * 32
BODY = b'{\n  "id": "evt_1",\n  "object": "event"\n}'
NOW = 1_800_000_000


def stripe_v1(body: bytes, secret: str, t: int) -> str:
    """Stripe's scheme written out here, independently of the code under test."""
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def test_a_signature_stripe_wrote_verifies_and_says_which_secret_signed():
    header = f"t={NOW},v1={stripe_v1(BODY, SECRET, NOW)}"
    assert stripe_signature_header(BODY, SECRET, NOW) == header
    assert verify_stripe_signature(BODY, header, [SECRET], NOW) == 0
    assert verify_stripe_signature(BODY, header, [OTHER, SECRET], NOW) == 1  # a rotation, or another account


def test_any_v1_may_match_and_other_schemes_are_ignored():
    header = f"t={NOW},v1={'0' * 64},v0={stripe_v1(BODY, OTHER, NOW)},v1={stripe_v1(BODY, SECRET, NOW)}"
    assert verify_stripe_signature(BODY, header, [SECRET], NOW) == 0
    only_v0 = f"t={NOW},v0={stripe_v1(BODY, SECRET, NOW)}"
    assert verify_stripe_signature(BODY, only_v0, [SECRET], NOW) is None


def test_the_signature_is_of_the_raw_bytes():
    header = stripe_signature_header(BODY, SECRET, NOW)
    assert verify_stripe_signature(BODY.replace(b"\n  ", b""), header, [SECRET], NOW) is None
    assert verify_stripe_signature(BODY + b" ", header, [SECRET], NOW) is None


@pytest.mark.parametrize(("signed_at", "ok"), [(NOW, True), (NOW - 300, True), (NOW - 301, False), (NOW + 300, True),
                                               (NOW + 301, False), (NOW - 86400, False)])
def test_a_replay_outside_the_tolerance_is_refused_even_when_signed(signed_at, ok):
    header = stripe_signature_header(BODY, SECRET, signed_at)
    assert (verify_stripe_signature(BODY, header, [SECRET], NOW) == 0) is ok


@pytest.mark.parametrize("header", [None, "", "garbage", f"v1={'0' * 64}", "t=abc,v1=00", f"t=-{NOW},v1=00",
                                    f"t={NOW}", f"t={'9' * 20},v1=00", f"t={NOW},v1=",
                                    "t=\u0661\u0662,v1=00", "t=1,t=2,v1=zz"])
def test_malformed_headers_are_refused_not_crashed_on(header):
    assert verify_stripe_signature(BODY, header, [SECRET], NOW) is None


def test_no_secret_verifies_nothing():
    assert verify_stripe_signature(BODY, stripe_signature_header(BODY, SECRET, NOW), [], NOW) is None


def test_every_secret_is_compared_with_every_signature_without_stopping_at_a_match(monkeypatch):
    compared = []
    real = hmac.compare_digest
    monkeypatch.setattr(signatures.hmac, "compare_digest", lambda a, b: compared.append(1) or real(a, b))
    header = f"t={NOW},v1={stripe_v1(BODY, SECRET, NOW)},v1={'0' * 64}"
    assert verify_stripe_signature(BODY, header, [SECRET, OTHER, OTHER + "x"], NOW) == 0
    assert len(compared) == 3 * 2


# -- Standard Webhooks (BigCommerce) ------------------------------------------------------------

KEY = b"bigcommerce-client-secret-" + b"x" * 10


def standard(body: bytes, message_id: str, t: int, key: bytes) -> str:
    return "v1," + base64.b64encode(hmac.new(key, f"{message_id}.{t}.".encode() + body, hashlib.sha256).digest()).decode()


def test_a_standard_webhooks_signature_verifies():
    signature = standard(BODY, "msg_1", NOW, KEY)
    assert standard_webhook_signature(BODY, "msg_1", NOW, KEY) == signature
    assert verify_standard_webhook(BODY, "msg_1", str(NOW), signature, [KEY], NOW)
    assert verify_standard_webhook(BODY, "msg_1", str(NOW), f"v1,AAAA {signature} v2,xyz", [b"other", KEY], NOW)


@pytest.mark.parametrize(("message_id", "t", "body", "key"), [
    ("msg_2", NOW, BODY, KEY),  # another message id
    ("msg_1", NOW + 1, BODY, KEY),  # another timestamp
    ("msg_1", NOW, BODY + b" ", KEY),  # another body
    ("msg_1", NOW, BODY, b"wrong"),  # another key
])
def test_anything_changed_breaks_the_signature(message_id, t, body, key):
    signature = standard(BODY, "msg_1", NOW, KEY)
    assert not verify_standard_webhook(body, message_id, str(t), signature, [key], NOW)


@pytest.mark.parametrize(("signed_at", "ok"), [(NOW - 300, True), (NOW - 301, False), (NOW + 301, False)])
def test_standard_webhooks_timestamps_outside_five_minutes_are_refused(signed_at, ok):
    signature = standard(BODY, "msg_1", signed_at, KEY)
    assert verify_standard_webhook(BODY, "msg_1", str(signed_at), signature, [KEY], NOW) is ok


@pytest.mark.parametrize("signature", [None, "", "v1,", "v1,@@@", "v2," + base64.b64encode(b"x" * 32).decode(), "garbage"])
def test_malformed_standard_signatures_are_refused(signature):
    assert not verify_standard_webhook(BODY, "msg_1", str(NOW), signature, [KEY], NOW)


def test_missing_standard_headers_are_refused():
    signature = standard(BODY, "msg_1", NOW, KEY)
    assert not verify_standard_webhook(BODY, None, str(NOW), signature, [KEY], NOW)
    assert not verify_standard_webhook(BODY, "msg_1", None, signature, [KEY], NOW)
    assert not verify_standard_webhook(BODY, "msg_1", "soon", signature, [KEY], NOW)


# -- a secret sent back as a header ---------------------------------------------------------------


def test_a_header_secret_matches_only_itself():
    secret = "s" * 40
    assert header_secret_matches(secret, ["x" * 40, secret])
    for given in (None, "", secret[:-1], secret + " ", secret.upper(), " " + secret):
        assert not header_secret_matches(given, [secret])
    assert not header_secret_matches(secret, [])
