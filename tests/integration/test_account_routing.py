"""Several ad accounts in one deployment (issue 11, finding 4), through the real ingest and sender
handlers against moto server and the Pinterest stand-in, with real payloads (tests/fixtures) signed
as the platforms sign them.

* routing by X-Shopify-Shop-Domain / X-WC-Webhook-Source (unsigned headers) is checked against
  the shop the signed body names (order_status_url, abandoned_checkout_url, WooCommerce _links);
* an account map that would let one API key, shop or webhook secret reach two ad accounts (or
  that holds a conversion token) stops ingest: 503 and a log line naming the problem, no secret;
* the default account may be limited to listed shops (SHOPIFY_SHOP_DOMAINS, WOOCOMMERCE_SOURCES);
* the sender sends a mapped ad account's events only with that account's token from the tokens
  map: without one they go back to the queue, logged and counted, never with the default token.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time

import pytest

from pinrelay import config
from tests.conftest import load_fixture, shopify_order
from tests.integration.handler_stack import (
    API_KEY,
    EU_ACCOUNT,
    EU_TOKEN,
    SHOPIFY_SECRET,
    WOO_SECRET,
    api_event,
    call_ingest,
    drain,
    post_events,
    post_shopify,
    post_woocommerce,
)

UNAUTHORIZED = (401, {"message": "unauthorized"})
UNAVAILABLE = (503, {"message": "temporarily unavailable; retry the request"})
EU_SHOP, EU_SECRET = "eu-shop.myshopify.com", "eu-shop-secret-long-enough-to-resist-guessing"
US_ACCOUNT = {"name": "us", "ad_account_id": "444555666", "shopify_shop_domains": ["us-shop.myshopify.com"],
              "shopify_webhook_secrets": ["us-shop-secret-long-enough-to-resist-guessing"]}
SHARED_SECRET = "one-app-client-secret-long-enough-to-resist-guessing"


def order_from(host: str, now: int, fixture: str = "shopify_orders_create_shopifyappjs-rest-2025-10.json") -> dict:
    """The real order, placed at the shop ``host`` (its order status page is on that domain)."""
    order = shopify_order(now, fixture)
    order["order_status_url"] = order["order_status_url"].replace("jsmith.myshopify.com", host)
    return order


def woo_order(now: int, site: str | None = None) -> bytes:
    """The real WooCommerce order, paid now; ``site`` moves its REST links to another shop."""
    order = load_fixture("woocommerce/woocommerce_order_updated_wcrestdocs.json")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    for key in ("date_created_gmt", "date_modified_gmt", "date_paid_gmt", "date_completed_gmt"):
        order[key] = stamp
    body = json.dumps(order)
    return (body.replace("https://example.com/", f"{site}/") if site else body).encode()


def use(monkeypatch, *entries: dict, **environment: str) -> None:
    """Give ingest this account map (and settings), as a new value of its secret would."""
    monkeypatch.setenv("ACCOUNT_MAP", json.dumps({"accounts": list(entries)}))
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    config.ingest_settings.cache_clear()


def queued(stack) -> list[dict]:
    sqs = stack["aws"]["sqs"]
    messages = sqs.receive_message(QueueUrl=stack["queue_url"], MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


@pytest.fixture(autouse=True)
def handler_records(caplog):
    """The 'pinrelay' logger is configured once per process (as in Lambda), possibly by an earlier
    test at another level: read its records through caplog, at INFO."""
    caplog.set_level(logging.INFO, logger="pinrelay")


def logged(caplog, message_start: str) -> list:
    """The handlers' log records (Powertools loggers) whose message starts so."""
    return [record for record in caplog.records if record.getMessage().startswith(message_start)]


def emf_documents(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# -------------------------------------------------------------------------------- header vs body
def test_a_body_naming_another_mapped_shop_is_refused_whatever_the_header_says(stack, now, monkeypatch, caplog):
    use(monkeypatch, EU_ACCOUNT, US_ACCOUNT)
    eu_order = order_from(EU_SHOP, now)
    # signed for the US entry, routed there by its header, but the order is the EU shop's
    assert post_shopify(stack, eu_order, secret="us-shop-secret-long-enough-to-resist-guessing", **{"x-shopify-shop-domain": "us-shop.myshopify.com"}) == UNAUTHORIZED
    # an order naming no mapped shop (the fixture's own jsmith.myshopify.com) is not the EU entry's either
    assert post_shopify(stack, shopify_order(now), secret=EU_SECRET, **{"x-shopify-shop-domain": EU_SHOP}) == UNAUTHORIZED
    # nor may the default account take the EU shop's order
    assert post_shopify(stack, eu_order) == UNAUTHORIZED
    assert queued(stack) == []
    reasons = [record.reason for record in logged(caplog, "shopify webhook refused")]
    assert reasons == [
        'the signed body names shop host eu-shop.myshopify.com, not one of the shopify_shop_domains of entry 2 ("us")',
        'the signed body names shop host jsmith.myshopify.com, not one of the shopify_shop_domains of entry 1 ("eu")',
        "the signed body names shop host eu-shop.myshopify.com, which belongs to an account map entry",
    ]
    status, answer = post_shopify(stack, eu_order, secret=EU_SECRET, **{"x-shopify-shop-domain": EU_SHOP})
    assert status == 200 and answer["accepted"] == 1
    assert [m["ad_account_id"] for m in queued(stack)] == [EU_ACCOUNT["ad_account_id"]]


def test_a_mapped_shop_lists_its_custom_domain_and_its_carts_need_no_host(stack, now, monkeypatch):
    use(monkeypatch, {**EU_ACCOUNT, "shopify_shop_domains": [EU_SHOP, "shop.example.eu"]})
    headers = {"x-shopify-shop-domain": EU_SHOP}
    status, answer = post_shopify(stack, order_from("shop.example.eu", now), secret=EU_SECRET, **headers)
    assert status == 200 and answer["accepted"] == 1
    # the real checkout names its shop checkout.local: not one of the EU shop's domains
    checkout = shopify_order(now, "shopify_checkouts_create_triggerdev.json")
    assert post_shopify(stack, checkout, topic="checkouts/create", secret=EU_SECRET, **headers) == UNAUTHORIZED
    # a cart names no shop: the EU entry's own secret (no other entry or default may share it) binds it
    cart = load_fixture("shopify/shopify_carts_create_triggerdev.json")
    assert post_shopify(stack, cart, topic="carts/create", secret=EU_SECRET, **headers)[0] == 200
    assert [m["ad_account_id"] for m in queued(stack)] == [EU_ACCOUNT["ad_account_id"]]


def test_a_woocommerce_order_must_come_from_the_site_it_was_routed_to(stack, now, monkeypatch):
    entry = {"name": "eu-woo", "ad_account_id": "777888999", "woocommerce_sources": ["https://eu-shop.example"],
             "woocommerce_webhook_secrets": ["eu-woo-secret-long-enough-to-resist-guessing"]}
    use(monkeypatch, entry)
    headers = {"x-wc-webhook-source": "https://eu-shop.example/"}
    # the real order's links are on example.com: not the EU site, whatever the header says
    assert post_woocommerce(stack, woo_order(now), secret="eu-woo-secret-long-enough-to-resist-guessing", **headers) == UNAUTHORIZED
    assert post_woocommerce(stack, woo_order(now, "https://eu-shop.example"), secret=WOO_SECRET) == UNAUTHORIZED  # not the default's
    status, answer = post_woocommerce(stack, woo_order(now, "https://eu-shop.example"), secret="eu-woo-secret-long-enough-to-resist-guessing", **headers)
    assert status == 200 and answer["accepted"] == 1
    assert [m["ad_account_id"] for m in queued(stack)] == ["777888999"]


# -------------------------------------------------------------------------------- invalid maps
def test_two_shops_sharing_a_secret_stop_ingest_instead_of_reaching_each_others_account(stack, now, monkeypatch, caplog):
    """One Shopify app signing for two mapped shops: before, the EU shop's order sent with the US
    shop's domain in the header went to the US ad account with its token."""
    use(monkeypatch, {**EU_ACCOUNT, "shopify_webhook_secrets": [SHARED_SECRET]},
        {**US_ACCOUNT, "shopify_webhook_secrets": [SHARED_SECRET]})
    eu_order = order_from(EU_SHOP, now)
    assert post_shopify(stack, eu_order, secret=SHARED_SECRET, **{"x-shopify-shop-domain": "us-shop.myshopify.com"}) == UNAVAILABLE
    # every request that consults the map waits for it to be fixed: the default account's too
    assert post_events(stack, api_event(now)) == UNAVAILABLE
    assert post_shopify(stack, shopify_order(now)) == UNAVAILABLE
    assert post_woocommerce(stack, woo_order(now)) == UNAVAILABLE
    assert call_ingest(stack, "/webhooks/woocommerce", b"webhook_id=12", {"content-type": "application/x-www-form-urlencoded"})[0] == 200
    assert queued(stack) == []
    errors = logged(caplog, "account map invalid")
    assert len(errors) == 4 and errors[0].levelname == "ERROR"
    assert errors[0].error == ('account map: entry 1 ("eu") and entry 2 ("us") use the same webhook secret: each shop '
                                  "must sign with a secret of its own, or one shop could send its orders to the other's "
                                  "ad account")
    assert SHARED_SECRET not in caplog.text


@pytest.mark.parametrize(("entries", "problem"), [
    ([{**EU_ACCOUNT, "shopify_webhook_secrets": [SHOPIFY_SECRET]}],
     'entry 1 ("eu"): a secret in its shopify_webhook_secrets is the deployment\'s own Shopify webhook secret'),
    ([{**EU_ACCOUNT, "shopify_webhook_secrets": [WOO_SECRET]}],
     'entry 1 ("eu"): a secret in its shopify_webhook_secrets is the deployment\'s own WooCommerce webhook secret'),
    ([{**EU_ACCOUNT, "api_key_sha256": [hashlib.sha256(API_KEY.encode()).hexdigest()]}],
     'entry 1 ("eu"): an api_key_sha256 is the digest of one of the deployment\'s own ingest API keys'),
    ([EU_ACCOUNT, {**US_ACCOUNT, "shopify_shop_domains": [EU_SHOP]}],
     'shop domain eu-shop.myshopify.com is in entry 1 ("eu") and entry 2 ("us"): a shop goes to one ad account'),
    ([EU_ACCOUNT, {**US_ACCOUNT, "api_key_sha256": EU_ACCOUNT["api_key_sha256"]}],
     'entry 1 ("eu") and entry 2 ("us") list the same api_key_sha256'),
    ([{**EU_ACCOUNT, "conversion_token": "pina_eu-token-in-the-wrong-secret"}],
     'entry 1 ("eu"): conversion_token does not belong in the account map, which the public ingest function reads: '
     "move it to the tokens map"),
])
def test_a_map_that_routes_anything_to_two_places_is_refused_at_load(stack, now, monkeypatch, caplog, entries, problem):
    use(monkeypatch, *entries)
    assert post_events(stack, api_event(now), key="eu-key") == UNAVAILABLE
    assert post_shopify(stack, order_from(EU_SHOP, now), secret=EU_SECRET, **{"x-shopify-shop-domain": EU_SHOP}) == UNAVAILABLE
    assert queued(stack) == []
    (error, _) = [record.error for record in logged(caplog, "account map invalid")]
    assert problem in error
    for secret in (SHOPIFY_SECRET, WOO_SECRET, API_KEY, EU_SECRET, "pina_eu-token-in-the-wrong-secret"):
        assert secret not in caplog.text


def test_a_map_secret_left_at_the_placeholder_lets_nobody_in(stack, now, monkeypatch):
    use(monkeypatch, {**EU_ACCOUNT, "shopify_webhook_secrets": ["REPLACE_ME"]})
    order = order_from(EU_SHOP, now)
    assert post_shopify(stack, order, secret="REPLACE_ME", **{"x-shopify-shop-domain": EU_SHOP}) == UNAUTHORIZED
    assert queued(stack) == []


# -------------------------------------------------------------------------------- the default account's shops
def test_the_default_account_takes_only_the_shops_listed_for_it(stack, now, monkeypatch):
    use(monkeypatch, EU_ACCOUNT, SHOPIFY_SHOP_DOMAINS="jsmith.myshopify.com, jsmith.example",
        WOOCOMMERCE_SOURCES="https://example.com")
    order = shopify_order(now)  # names jsmith.myshopify.com
    assert post_shopify(stack, order, **{"x-shopify-shop-domain": "other.myshopify.com"}) == UNAUTHORIZED
    assert post_shopify(stack, order) == UNAUTHORIZED  # no header
    assert post_shopify(stack, order_from("other.example", now), **{"x-shopify-shop-domain": "jsmith.myshopify.com"}) == UNAUTHORIZED
    cart = load_fixture("shopify/shopify_carts_create_triggerdev.json")  # names no shop: cannot be checked
    assert post_shopify(stack, cart, topic="carts/create", **{"x-shopify-shop-domain": "jsmith.myshopify.com"}) == UNAUTHORIZED
    assert post_woocommerce(stack, woo_order(now), **{"x-wc-webhook-source": "https://other.example/"}) == UNAUTHORIZED
    assert post_woocommerce(stack, woo_order(now, "https://other.example"), **{"x-wc-webhook-source": "https://example.com/"}) == UNAUTHORIZED
    assert queued(stack) == []
    assert post_shopify(stack, order, **{"x-shopify-shop-domain": "JSmith.myshopify.com"})[1]["accepted"] == 1
    assert post_shopify(stack, order_from("jsmith.example", now), **{"x-shopify-shop-domain": "jsmith.myshopify.com"})[1]["accepted"] == 1
    assert post_woocommerce(stack, woo_order(now), **{"x-wc-webhook-source": "https://example.com/"})[1]["accepted"] == 1


# -------------------------------------------------------------------------------- the sender's tokens
def test_a_mapped_account_without_a_token_is_never_sent_with_the_default_token(stack, now, monkeypatch, capsys, caplog):
    monkeypatch.setenv("ACCOUNT_TOKENS", json.dumps({"999": "another-accounts-token"}))
    config.sender_settings.cache_clear()
    assert post_events(stack, api_event(now, "eu-1"), key="eu-key")[0] == 202
    assert post_events(stack, api_event(now, "default-1"))[0] == 202
    capsys.readouterr()
    records, answer = drain(stack)
    eu_message = next(m["MessageId"] for m in records if json.loads(m["Body"])["ad_account_id"] == EU_ACCOUNT["ad_account_id"])
    assert answer == {"batchItemFailures": [{"itemIdentifier": eu_message}]}  # back to the queue, then the DLQ
    (request,) = stack["standin"].received  # the default account's event only
    assert request["ad_account_id"] != EU_ACCOUNT["ad_account_id"] and request["status"] == 200
    (error,) = logged(caplog, "no conversion token")
    assert error.levelname == "ERROR" and error.ad_account_id == EU_ACCOUNT["ad_account_id"]
    assert error.getMessage().startswith("no conversion token for ad account 111222333: add it to the tokens map")
    out = capsys.readouterr().out
    totals = [document for document in emf_documents(out) if "_aws" in document and "source" not in document]
    assert totals[0]["ConversionTokenMissing"] == [1.0] and totals[0]["EventsRetryLater"] == [1.0]
    assert "another-accounts-token" not in out + caplog.text


def test_a_token_added_to_the_tokens_secret_is_used_at_once(stack, now, monkeypatch):
    name = f"pinrelay/account-tokens-{now}"
    stack["aws"]["secretsmanager"].create_secret(Name=name, SecretString="{}")
    monkeypatch.delenv("ACCOUNT_TOKENS")
    monkeypatch.setenv("ACCOUNT_TOKENS_SECRET_NAME", name)
    config.sender_settings.cache_clear()
    stack["standin"].account_tokens[EU_ACCOUNT["ad_account_id"]] = EU_TOKEN
    post_events(stack, api_event(now, "eu-1"), key="eu-key")
    _, answer = drain(stack)
    assert len(answer["batchItemFailures"]) == 1 and stack["standin"].received == []
    stack["aws"]["secretsmanager"].put_secret_value(SecretId=name, SecretString=json.dumps({EU_ACCOUNT["ad_account_id"]: EU_TOKEN}))
    post_events(stack, api_event(now, "eu-2"), key="eu-key")
    _, answer = drain(stack)  # the cached tokens map lacked the account: read again before giving up
    assert answer == {"batchItemFailures": []}
    (request,) = stack["standin"].received
    assert request["ad_account_id"] == EU_ACCOUNT["ad_account_id"] and request["status"] == 200


def test_an_invalid_tokens_map_holds_back_mapped_accounts_only(stack, now, monkeypatch, capsys, caplog):
    monkeypatch.setenv("ACCOUNT_TOKENS", json.dumps({"eu": "pina_written-under-the-wrong-key"}))
    config.sender_settings.cache_clear()
    post_events(stack, api_event(now, "eu-1"), key="eu-key")
    post_events(stack, api_event(now, "default-1"))
    capsys.readouterr()
    _, answer = drain(stack)
    assert len(answer["batchItemFailures"]) == 1 and len(stack["standin"].received) == 1
    (error,) = logged(caplog, "tokens map invalid")
    assert "1 key(s) are not ad account ids" in error.error
    assert "pina_written-under-the-wrong-key" not in capsys.readouterr().out + caplog.text
