"""Several shops on one ad account (issue 18, finding 2), through the real ingest and sender
handlers (moto server, the Pinterest stand-in): two shops' order 4242 are two conversions, each
reaching Pinterest with an event_id of its own, and `pinrelay status` tells them apart; a store
sale whose id equals a web order's is not taken for its copy either."""

import copy
import io
import json
import time

import pytest
from pinrelay_cli.main import build_parser
from pinrelay_cli.status import EXIT_DELIVERED

from pinrelay import config
from tests.conftest import load_fixture, shopify_order
from tests.integration.handler_stack import (
    AD_ACCOUNT,
    WOO_SECRET,
    api_event,
    drain,
    post_events,
    post_shopify,
    post_woocommerce,
)

SHOP_C_SECRET = "shop-c-woocommerce-secret, its own, 50 characters."


def settings(monkeypatch, **env: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config.ingest_settings.cache_clear()


def woo_order(site: str, order_id: int = 4242) -> bytes:
    order = load_fixture("woocommerce/woocommerce_order_created_wcrestdocs.json")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    order.update(id=order_id, number=str(order_id), date_created_gmt=stamp, date_paid_gmt=stamp)
    order["_links"] = {"self": [{"href": f"{site}/wp-json/wc/v3/orders/{order_id}"}],
                       "collection": [{"href": f"{site}/wp-json/wc/v3/orders"}]}
    return json.dumps(order).encode()


def shopify_4242(shop: str, order_id: int, now: int) -> dict:
    """Each shop's order number 4242 (#4242): Shopify's order ids differ, names and numbers do not."""
    order = shopify_order(now)
    order.update(id=order_id, name="#4242", order_number=4242)
    order["order_status_url"] = order["order_status_url"].replace("jsmith.myshopify.com", shop)
    return order


def status(stack, *argv: str) -> tuple[int, list[str]]:
    args = build_parser().parse_args(["status", *argv, "--table", stack["table"], "--ad-account", AD_ACCOUNT])
    out = io.StringIO()
    code = args._run(args, dynamodb=stack["aws"]["dynamodb"], sqs=stack["aws"]["sqs"], out=out, err=io.StringIO())
    return code, [line for line in out.getvalue().splitlines() if line.startswith(AD_ACCOUNT)]


def delivered_ids(stack) -> list[str]:
    return sorted(event["event_id"] for event in stack["standin"].delivered_events())


def test_two_woocommerce_shops_order_4242_both_reach_pinterest(stack, monkeypatch):
    settings(monkeypatch, WOOCOMMERCE_SOURCES="https://shop-a.example,https://shop-b.example")
    answers = [post_woocommerce(stack, woo_order(site), **{"x-wc-webhook-source": f"{site}/"})
               for site in ("https://shop-a.example", "https://shop-b.example")]
    assert [(status_code, answer["events"][0]["status"], answer["events"][0]["event_id"]) for status_code, answer in answers] == [
        (200, "accepted", "shop-a.example/4242"), (200, "accepted", "shop-b.example/4242")]
    records, result = drain(stack)
    assert len(records) == 2 and result == {"batchItemFailures": []}
    assert delivered_ids(stack) == ["shop-a.example/4242", "shop-b.example/4242"]
    orders = {event["custom_data"]["order_id"] for event in stack["standin"].delivered_events()}
    assert orders == {"shop-a.example/4242", "shop-b.example/4242"}  # Pinterest may deduplicate on order_id too
    code, lines = status(stack, "4242", "--shop", "https://shop-a.example", "--shop", "https://shop-b.example")
    assert code == EXIT_DELIVERED and len(lines) == 2
    assert lines[0].startswith(f"{AD_ACCOUNT}#checkout#shop-a.example/4242: delivered")
    assert lines[1].startswith(f"{AD_ACCOUNT}#checkout#shop-b.example/4242: delivered")
    # order.updated of shop A's order is the same event: sent once
    post_woocommerce(stack, woo_order("https://shop-a.example"), topic="order.updated",
                     **{"x-wc-webhook-source": "https://shop-a.example/"})
    drain(stack)
    assert delivered_ids(stack) == ["shop-a.example/4242", "shop-b.example/4242"]


@pytest.mark.parametrize("template, expected", [("{name}", "#4242"), ("{order_number}", "4242"),
                                                ("order-{order_number}", "order-4242")])
def test_two_shopify_shops_order_4242_both_reach_pinterest(stack, monkeypatch, now, template, expected):
    settings(monkeypatch, SHOPIFY_SHOP_DOMAINS="shop-a.myshopify.com,shop-b.myshopify.com",
             SHOPIFY_EVENT_ID_TEMPLATE=template)
    stack["ingest"].shopify_options.cache_clear()
    try:
        for shop, order_id in (("shop-a.myshopify.com", 5000000001), ("shop-b.myshopify.com", 5000000002)):
            code, answer = post_shopify(stack, shopify_4242(shop, order_id, now), **{"x-shopify-shop-domain": shop})
            assert code == 200 and answer["events"][0]["status"] == "accepted", answer
            assert answer["events"][0]["event_id"] == f"{shop}/{expected}"
        drain(stack)
    finally:
        stack["ingest"].shopify_options.cache_clear()
    assert delivered_ids(stack) == [f"shop-a.myshopify.com/{expected}", f"shop-b.myshopify.com/{expected}"]
    code, lines = status(stack, expected, "--shop", "shop-a.myshopify.com", "--shop", "shop-b.myshopify.com")
    assert code == EXIT_DELIVERED and [line.split(": ")[0].split("#checkout#", 1)[1] for line in lines] == [
        f"shop-a.myshopify.com/{expected}", f"shop-b.myshopify.com/{expected}"]


def test_with_the_default_template_shopify_ids_stay_the_order_ids_the_pixel_sends(stack, monkeypatch, now):
    """Shopify's order ids are unique across shops: never scoped, so the tag's event_id still matches."""
    settings(monkeypatch, SHOPIFY_SHOP_DOMAINS="shop-a.myshopify.com,shop-b.myshopify.com")
    for shop, order_id in (("shop-a.myshopify.com", 5000000001), ("shop-b.myshopify.com", 5000000002)):
        code, answer = post_shopify(stack, shopify_4242(shop, order_id, now), **{"x-shopify-shop-domain": shop})
        assert answer["events"][0]["event_id"] == str(order_id)
    drain(stack)
    assert delivered_ids(stack) == ["5000000001", "5000000002"]


def test_a_shop_alone_on_its_ad_account_keeps_its_order_ids(stack, monkeypatch):
    settings(monkeypatch, WOOCOMMERCE_SOURCES="https://shop-a.example")
    code, answer = post_woocommerce(stack, woo_order("https://shop-a.example"), **{"x-wc-webhook-source": "https://shop-a.example/"})
    assert code == 200 and answer["events"][0]["event_id"] == "4242"


def test_a_map_entry_on_the_default_ad_account_scopes_both_shops(stack, monkeypatch):
    """The default account's listed shop A and an account map entry's shop C, both on one ad account."""
    entry = {"name": "shop-c", "ad_account_id": AD_ACCOUNT, "woocommerce_sources": ["https://shop-c.example"],
             "woocommerce_webhook_secrets": [SHOP_C_SECRET]}
    settings(monkeypatch, WOOCOMMERCE_SOURCES="https://shop-a.example", ACCOUNT_MAP=json.dumps({"accounts": [entry]}))
    post_woocommerce(stack, woo_order("https://shop-a.example"), **{"x-wc-webhook-source": "https://shop-a.example/"})
    post_woocommerce(stack, woo_order("https://shop-c.example"), secret=SHOP_C_SECRET,
                     **{"x-wc-webhook-source": "https://shop-c.example/"})
    drain(stack)
    assert delivered_ids(stack) == ["shop-a.example/4242", "shop-c.example/4242"]


def test_a_body_replayed_under_another_listed_shops_header_keeps_its_own_ids(stack, monkeypatch):
    """The header is not signed: the shop is the one the signed body names."""
    settings(monkeypatch, WOOCOMMERCE_SOURCES="https://shop-a.example,https://shop-b.example")
    body = woo_order("https://shop-a.example")
    post_woocommerce(stack, body, **{"x-wc-webhook-source": "https://shop-a.example/"})
    code, answer = post_woocommerce(stack, body, **{"x-wc-webhook-source": "https://shop-b.example/"})
    assert code == 200 and answer["events"][0]["event_id"] == "shop-a.example/4242"
    drain(stack)
    assert delivered_ids(stack) == ["shop-a.example/4242"]


def test_a_store_sale_with_a_web_orders_id_is_not_its_copy(stack, now):
    web = api_event(now, "4242")
    offline = copy.deepcopy(web) | {"action_source": "offline"}
    code, answer = post_events(stack, {"data": [web, offline]})
    assert code == 202 and [e["status"] for e in answer["events"]] == ["accepted", "accepted"]
    post_events(stack, offline)  # the same store sale again: its copy
    records, _ = drain(stack)
    assert len(records) == 3
    delivered = stack["standin"].delivered_events()
    assert sorted(e["action_source"] for e in delivered) == ["offline", "web"]
    code, lines = status(stack, "4242")
    assert code == EXIT_DELIVERED and [line.split(": ")[0] for line in lines] == [
        f"{AD_ACCOUNT}#checkout#4242", f"{AD_ACCOUNT}#offline#checkout#4242"]


def test_shops_share_nothing_with_the_default_secret_they_do_not_sign_with(stack, monkeypatch):
    """Scoping is no way around the routing checks: shop C's body under shop A's header and the
    default secret is still refused."""
    entry = {"name": "shop-c", "ad_account_id": AD_ACCOUNT, "woocommerce_sources": ["https://shop-c.example"],
             "woocommerce_webhook_secrets": [SHOP_C_SECRET]}
    settings(monkeypatch, WOOCOMMERCE_SOURCES="https://shop-a.example", ACCOUNT_MAP=json.dumps({"accounts": [entry]}))
    assert post_woocommerce(stack, woo_order("https://shop-c.example"), secret=WOO_SECRET,
                            **{"x-wc-webhook-source": "https://shop-a.example/"})[0] == 401


def test_a_second_shop_signing_with_an_unlisted_secret_is_said_once(stack, capsys, caplog):
    """Without WOOCOMMERCE_SOURCES the deployment's secret counts as one shop (any shop that signs
    with it), so a second shop's order numbers are not scoped: said loudly, with what to do."""
    import logging

    caplog.set_level(logging.INFO, logger="pinrelay")
    stack["ingest"].default_shops_seen.cache_clear()
    for site in ("https://shop-a.example", "https://shop-b.example", "https://shop-b.example"):
        post_woocommerce(stack, woo_order(site, order_id=7000), **{"x-wc-webhook-source": f"{site}/"})
    errors = [r for r in caplog.records if r.getMessage().startswith("two shops reach the default account")]
    assert len(errors) == 1 and "WooCommerceSources" in errors[0].getMessage()
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"UnlistedShops"' in line]
    assert [m["UnlistedShops"] for m in metrics] == [[1.0]] and metrics[0]["source"] == "woocommerce"
