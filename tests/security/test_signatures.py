"""Webhook signatures over HTTP (in-process local stack): the HMAC is of the raw bytes, so a body
that was re-serialised, truncated or signed with another shop's secret is refused, with the same
401 as any other; and Shopify's replay window (X-Shopify-Triggered-At, WEBHOOK_MAX_AGE_SECONDS)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from pinrelay.sources import signatures

from tests.conftest import load_fixture, shopify_order
from tests.security.conftest import (
    deliver,
    SHOPIFY_SECRET,
    WOO_SECRET,
    assert_json_answer,
    drain,
    post,
    post_shopify,
    post_woocommerce,
    sign,
    start_stack,
)

pytestmark = pytest.mark.e2e
UNAUTHORIZED = b'{"message":"unauthorized"}'
MAX_AGE = 600
SHOPS = {
    "a": {
        "domain": "shop-a.myshopify.com",
        "shopify": "shop-a-shopify-secret-long-enough-to-resist-guessing",
        "woo_url": "https://shop-a.example",
        "woo": "shop-a-woo-secret-long-enough-to-resist-guessing",
        "ad_account_id": "111111111",
    },
    "b": {
        "domain": "shop-b.myshopify.com",
        "shopify": "shop-b-shopify-secret-long-enough-to-resist-guessing",
        "woo_url": "https://shop-b.example",
        "woo": "shop-b-woo-secret-long-enough-to-resist-guessing",
        "ad_account_id": "222222222",
    },
}
ACCOUNT_MAP = {
    "accounts": [
        {
            "name": name,
            "ad_account_id": shop["ad_account_id"],
            "shopify_shop_domains": [shop["domain"]],
            "shopify_webhook_secrets": [shop["shopify"]],
            "woocommerce_sources": [shop["woo_url"]],
            "woocommerce_webhook_secrets": [shop["woo"]],
        }
        for name, shop in SHOPS.items()
    ]
}


@pytest.fixture(scope="module")
def stack():
    local = start_stack(handler_env={"WEBHOOK_MAX_AGE_SECONDS": str(MAX_AGE), "ACCOUNT_MAP": json.dumps(ACCOUNT_MAP)})
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture(autouse=True)
def empty_queue(stack):
    drain(stack)
    yield


def refused(answer) -> None:
    assert (answer.status, answer.raw) == (401, UNAUTHORIZED), answer


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(epoch))


def order_bytes(shop: str | None = None, **changes) -> bytes:
    """A real order (at the fixture's shop, or at ``shop``: its order status page is on that domain)."""
    order = shopify_order()
    if shop:
        order["order_status_url"] = order["order_status_url"].replace("jsmith.myshopify.com", shop)
    order["id"] = int(time.time() * 1000) % 10**12  # a new order each time: no duplicate
    order["note"] = "Caf\u00e9 \u2013 https://shop.example/thanks"
    order.update(changes)
    return json.dumps(order, indent=2, ensure_ascii=False).encode()


def woo_body(order_id: int | None = None, site: str | None = None) -> bytes:
    """An order as WooCommerce (PHP json_encode) writes it: '/' as '\\/', non-ASCII as \\uXXXX;
    ``site`` moves its REST links (``_links``) to that shop."""
    order = load_fixture("woocommerce/woocommerce_order_updated_wcrestdocs.json")
    if site:
        order["_links"] = json.loads(json.dumps(order["_links"]).replace("https://example.com", site))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    for key in ("date_created_gmt", "date_modified_gmt", "date_paid_gmt", "date_completed_gmt"):
        order[key] = stamp
    order["id"] = order_id or int(time.time() * 1000) % 10**12
    order["customer_note"] = "Caf\u00e9 https://shop.example/thanks"
    php = json.dumps(order, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/")
    assert "\\/" in php and "\\u00e9" in php
    return php.encode()


# -------------------------------------------------------------------------------- Shopify
def test_a_correctly_signed_shopify_order_is_accepted(stack):
    answer = post_shopify(stack, order_bytes())
    assert answer.status == 200 and answer.json["accepted"] == 1, answer
    assert len(drain(stack)) == 1


def test_shopify_hmac_is_of_the_raw_bytes_not_of_the_json(stack):
    raw = order_bytes()
    signature = sign(raw, SHOPIFY_SECRET)
    same_json = [
        json.dumps(json.loads(raw)).encode(),  # re-serialised (spacing)
        json.dumps(json.loads(raw), indent=2, ensure_ascii=True).encode(),  # \u00e9 instead of é
        json.dumps(json.loads(raw), indent=2, ensure_ascii=False).encode().replace(b"/", b"\\/"),
        raw + b"\n",
        b" " + raw,
        raw.replace(b"\n", b"\r\n"),
    ]
    for body in same_json:
        assert json.loads(body) == json.loads(raw)
        refused(post_shopify(stack, body, signature=signature))
    refused(post_shopify(stack, raw[:-1], signature=signature))  # truncated
    refused(post_shopify(stack, raw[: len(raw) // 2], signature=signature))
    flipped = bytearray(raw)
    flipped[len(raw) // 3] ^= 0x01
    refused(post_shopify(stack, bytes(flipped), signature=signature))
    assert drain(stack) == []
    assert post_shopify(stack, raw, signature=signature).status == 200  # the original bytes still pass


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "not base64!",
        "=" * 44,
        base64.b64encode(b"\x00" * 32).decode(),
        "hex:" + "0" * 64,
        base64.b64encode(b"short").decode(),
    ],
)
def test_malformed_shopify_signatures_get_the_same_401(stack, signature):
    refused(post_shopify(stack, order_bytes(), signature=signature))


def test_a_missing_shopify_signature_header_gets_the_same_401(stack):
    raw = order_bytes()
    refused(
        post(stack, "/webhooks/shopify", raw, {"content-type": "application/json", "x-shopify-topic": "orders/create"})
    )


def test_hex_digest_or_sha256_instead_of_hmac_is_refused(stack):
    raw = order_bytes()
    hex_hmac = hmac.new(SHOPIFY_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    plain_sha = base64.b64encode(hashlib.sha256(raw).digest()).decode()
    secret_appended = base64.b64encode(hashlib.sha256(SHOPIFY_SECRET.encode() + raw).digest()).decode()
    for signature in (hex_hmac, plain_sha, secret_appended):
        refused(post_shopify(stack, raw, signature=signature))


def test_a_shop_cannot_sign_for_another_shop(stack):
    a, b = SHOPS["a"], SHOPS["b"]
    raw = order_bytes(a["domain"])
    refused(post_shopify(stack, raw, secret=b["shopify"], **{"x-shopify-shop-domain": a["domain"]}))
    refused(post_shopify(stack, raw, secret=SHOPIFY_SECRET, **{"x-shopify-shop-domain": a["domain"]}))
    refused(post_shopify(stack, raw, secret=a["shopify"]))  # a mapped shop's secret is not the default one
    refused(post_shopify(stack, raw, secret=a["shopify"], **{"x-shopify-shop-domain": "unknown.myshopify.com"}))
    assert drain(stack) == []
    answer = post_shopify(stack, raw, secret=a["shopify"], **{"x-shopify-shop-domain": a["domain"].upper()})
    assert answer.status == 200 and answer.json["accepted"] == 1, answer
    (body,) = drain(stack)
    assert json.loads(body)["ad_account_id"] == a["ad_account_id"]


def test_the_header_cannot_route_an_order_that_names_another_shop(stack):
    """X-Shopify-Shop-Domain is not signed: the order's own shop (its order status page) must be
    the one the header routed it to, even under that shop's valid signature."""
    a, b = SHOPS["a"], SHOPS["b"]
    refused(post_shopify(stack, order_bytes(a["domain"]), secret=b["shopify"], **{"x-shopify-shop-domain": b["domain"]}))
    refused(post_shopify(stack, order_bytes(), secret=a["shopify"], **{"x-shopify-shop-domain": a["domain"]}))
    refused(post_shopify(stack, order_bytes(a["domain"])))  # the default account takes no mapped shop's order
    refused(post_woocommerce(stack, woo_body(site=a["woo_url"]), secret=b["woo"], **{"x-wc-webhook-source": b["woo_url"]}))
    refused(post_woocommerce(stack, woo_body(site=a["woo_url"])))
    assert drain(stack) == []


# -------------------------------------------------------------------------------- replay window
def test_a_shopify_webhook_older_than_the_replay_window_is_refused(stack):
    raw = order_bytes()
    # each moment from the clock at its own post (a loaded machine takes seconds between posts),
    # outside the window by 30 s: the window is [now - MAX_AGE, now + 300]
    for offset in (-MAX_AGE - 30, -86_400, 330):
        refused(post_shopify(stack, raw, **{"x-shopify-triggered-at": iso(time.time() + offset)}))
    refused(post_shopify(stack, raw, **{"x-shopify-triggered-at": iso(0)}))
    now = time.time()
    for malformed in ("yesterday", "2025-13-45T00:00:00Z", "1e309", "\u00e9"):
        refused(post_shopify(stack, raw, **{"x-shopify-triggered-at": malformed}))
    assert drain(stack) == []
    answer = post_shopify(stack, raw, **{"x-shopify-triggered-at": iso(now - MAX_AGE + 30)})
    assert answer.status == 200 and answer.json["accepted"] == 1, answer
    assert len(drain(stack)) == 1


def test_a_replay_within_the_window_reaches_pinterest_once(stack):
    raw = order_bytes()
    triggered = iso(time.time() - 60)
    assert post_shopify(stack, raw, **{"x-shopify-triggered-at": triggered}).json["accepted"] == 1
    first = deliver(stack, drain(stack))
    replay = post_shopify(stack, raw, **{"x-shopify-triggered-at": triggered})
    assert replay.status == 200, replay
    assert len(first) == 1 and deliver(stack, drain(stack)) == []  # the sender's claim dropped the copy


def test_the_triggered_at_header_is_not_signed_so_dedup_is_what_stops_a_forged_replay(stack):
    """X-Shopify-Triggered-At is outside the HMAC: whoever replays a captured webhook can drop it
    or set it to now. The window catches Shopify's own late redeliveries; a forged replay passes
    it and is stopped by the sender's dedup claim (7 days + 5 minutes, as long as the event can be
    accepted at all)."""
    raw = order_bytes()
    assert post_shopify(stack, raw, **{"x-shopify-triggered-at": iso(time.time() - 60)}).json["accepted"] == 1
    assert len(deliver(stack, drain(stack))) == 1
    refused(post_shopify(stack, raw, **{"x-shopify-triggered-at": iso(time.time() - 86_400)}))
    for forged in ({}, {"x-shopify-triggered-at": iso(time.time())}):
        answer = post_shopify(stack, raw, **forged)
        assert answer.status == 200, answer
    assert deliver(stack, drain(stack)) == []


# -------------------------------------------------------------------------------- WooCommerce
def test_a_woocommerce_order_signed_as_php_wrote_it_is_accepted(stack):
    answer = post_woocommerce(stack, woo_body())
    assert answer.status == 200 and answer.json["accepted"] == 1, answer
    assert len(drain(stack)) == 1


def test_woocommerce_hmac_is_of_the_raw_bytes_php_escapes_included(stack):
    raw = woo_body()
    signature = sign(raw, WOO_SECRET)
    parsed = json.loads(raw)
    same_json = [
        json.dumps(parsed, separators=(",", ":")).encode(),  # '/' unescaped
        json.dumps(parsed, separators=(",", ":"), ensure_ascii=False).encode(),  # 'é' raw, '/' unescaped
        json.dumps(parsed, separators=(",", ":"), ensure_ascii=False).replace("/", "\\/").encode(),  # 'é' raw
        json.dumps(parsed).replace("/", "\\/").encode(),  # spaces
        raw + b"\n",
    ]
    for body in same_json:
        assert json.loads(body) == parsed
        refused(post_woocommerce(stack, body, signature=signature))
    refused(post_woocommerce(stack, raw[:-1], signature=signature))
    refused(post_woocommerce(stack, raw, secret="not-the-secret"))
    refused(post_woocommerce(stack, raw, signature=""))
    refused(
        post(
            stack,
            "/webhooks/woocommerce",
            raw,
            {"content-type": "application/json", "x-wc-webhook-topic": "order.created"},
        )
    )
    assert drain(stack) == []
    assert post_woocommerce(stack, raw, signature=signature).status == 200


def test_a_woocommerce_shop_cannot_sign_for_another_shop(stack):
    a, b = SHOPS["a"], SHOPS["b"]
    raw = woo_body(site=a["woo_url"])
    refused(post_woocommerce(stack, raw, secret=b["woo"], **{"x-wc-webhook-source": a["woo_url"]}))
    refused(post_woocommerce(stack, raw, secret=WOO_SECRET, **{"x-wc-webhook-source": a["woo_url"] + "/"}))
    refused(post_woocommerce(stack, raw, secret=a["woo"]))
    assert drain(stack) == []
    answer = post_woocommerce(stack, raw, secret=a["woo"], **{"x-wc-webhook-source": a["woo_url"] + "/"})
    assert answer.status == 200 and answer.json["accepted"] == 1, answer
    (body,) = drain(stack)
    assert json.loads(body)["ad_account_id"] == a["ad_account_id"]


def test_only_the_unsigned_ping_gets_through_unsigned(stack):
    answer = post(
        stack, "/webhooks/woocommerce", b"webhook_id=42", {"content-type": "application/x-www-form-urlencoded"}
    )
    assert (answer.status, answer.json) == (200, {"message": "pong"})
    for body, content_type in (
        (b"webhook_id=42", "application/json"),
        (b'{"webhook_id": 42}', "application/json"),
        (b"webhook_id=42&status=completed", "application/x-www-form-urlencoded"),
        (b"webhook_id=" + b"9" * 100, "application/x-www-form-urlencoded"),
    ):
        refused(
            post(
                stack,
                "/webhooks/woocommerce",
                body,
                {"content-type": content_type, "x-wc-webhook-topic": "order.created"},
            )
        )
    assert drain(stack) == []


def test_every_refusal_is_the_same_answer(stack):
    """Wrong secret, no signature, stale: nothing in the answer says which check failed."""
    raw = order_bytes()
    answers = [
        post_shopify(stack, raw, secret="wrong"),
        post_shopify(stack, raw, signature=""),
        post_shopify(stack, raw, **{"x-shopify-triggered-at": iso(0)}),
        post_woocommerce(stack, raw, secret="wrong"),
        post(stack, "/events", raw, {"x-api-key": "wrong"}),
    ]
    for answer in answers:
        assert_json_answer(answer)
        refused(answer)
    assert (
        len(
            {
                tuple(
                    sorted((k.lower(), v) for k, v in a.headers.items() if k.lower() not in ("date", "apigw-requestid"))
                )
                for a in answers
            }
        )
        == 1
    )


# -------------------------------------------------------------------------------- constant time
def test_every_secret_is_compared_in_constant_time_without_short_cut(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def counting(a, b):
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(signatures.hmac, "compare_digest", counting)
    body = b'{"id": 1}'
    secrets = ["first", "second", "third"]
    assert signatures.verify_base64_hmac(body, sign(body, "first"), secrets)
    assert len(calls) == 3  # the match on the first secret does not end the loop early
    calls.clear()
    assert not signatures.verify_base64_hmac(body, sign(body, "other"), secrets)
    assert len(calls) == 3
