"""One real Shopify order, two paths: the pixel's checkout_completed in Chromium, and pinrelay's
own mapping of the order's orders/create webhook. Pinterest deduplicates the two when event_name
and event_id are equal; the content ids must agree too, or the same order shows two products."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pinrelay.events import PreparedEvent
from pinrelay.sources.shopify import ShopifyOptions, shopify_events
from tests.browser import shopify_payloads as shopify
from tests.browser.conftest import GRANTED
from tests.conftest import shopify_order


def server_checkout(order: dict, now: int, template: str, content_id_field: str) -> dict:
    (result,) = shopify_events("orders/create", order, now=now,
                               options=ShopifyOptions(event_id_template=template, content_id_field=content_id_field))
    assert isinstance(result, PreparedEvent), result
    return result.event


def browser_checkout(open_pixel, order: dict, template: str, content_id_field: str) -> list:
    pixel = open_pixel(GRANTED, event_id_template=template, content_id_field=content_id_field)
    pixel.publish("checkout_completed", shopify.checkout_completed(order))
    (call,) = [call for call in pixel.pintrk_calls() if call[:1] == ["track"]]
    return call


@pytest.mark.parametrize("template", ["{order_id}", "order-{order_id}", "{checkout_token}", "{{shopify}}-{order_id}"])
def test_the_tag_and_pinrelay_give_the_order_the_same_event_id(open_pixel, now, template):
    order = shopify_order(now)  # created_at moved to now: pinrelay refuses events older than 7 days
    server = server_checkout(order, now, template, "product_id")
    _, event_name, fields = browser_checkout(open_pixel, order, template, "product_id")

    assert event_name == server["event_name"] == "checkout"
    assert fields["event_id"] == server["event_id"]
    assert server["event_id"] == template.format(
        order_id="450789469", checkout_token="bd5a8aa1ecd019dd3520ff791ee3a24c")


@pytest.mark.parametrize("content_id_field", ["product_id", "variant_id", "sku"])
def test_the_tag_and_pinrelay_name_the_same_products(open_pixel, now, content_id_field):
    order = shopify_order(now)
    server = server_checkout(order, now, "{order_id}", content_id_field)
    _, _, fields = browser_checkout(open_pixel, order, "{order_id}", content_id_field)

    browser_ids = list(dict.fromkeys(item["product_id"] for item in fields["line_items"]))
    assert browser_ids == server["custom_data"]["content_ids"]


def test_the_tag_and_pinrelay_agree_on_order_value_currency_and_quantity(open_pixel, now):
    order = shopify_order(now)
    server = server_checkout(order, now, "{order_id}", "product_id")["custom_data"]
    _, _, fields = browser_checkout(open_pixel, order, "{order_id}", "product_id")

    assert Decimal(str(fields["value"])) == Decimal(server["value"]) == Decimal("597.00")
    assert fields["currency"] == server["currency"] == "USD"
    assert fields["order_quantity"] == server["num_items"] == 3
    assert fields["order_id"] == server["order_id"] == "450789469"


@pytest.mark.parametrize("template", ["{order_id}", "order-{order_id}", "{checkout_token}"])
def test_with_several_shops_on_one_ad_account_the_ids_still_match(open_pixel, now, template):
    """Issue 18: when several shops share the ad account, pinrelay scopes the event ids a template
    could give two shops (order numbers, names) by the shop; the ids the pixel can build, of
    {order_id} and {checkout_token}, are unique across Shopify and never scoped, so each shop's
    tag still gives its order pinrelay's id."""
    for shop, order_id in (("shop-a.myshopify.com", 5000000001), ("shop-b.myshopify.com", 5000000002)):
        order = shopify_order(now)
        order.update(id=order_id, name="#4242", order_number=4242, checkout_token=f"{order_id:x}aa")
        (result,) = shopify_events("orders/create", order, now=now, options=ShopifyOptions(
            event_id_template=template, shop_scope=shop))  # ingest's options when the ad account is shared
        _, _, fields = browser_checkout(open_pixel, order, template, "product_id")
        assert fields["event_id"] == result.event["event_id"] == template.format(
            order_id=order_id, checkout_token=f"{order_id:x}aa")


@pytest.mark.parametrize("template", ["{order_number}", "{name}"])
def test_a_shop_scoped_template_is_one_the_pixel_never_sends(open_pixel, now, template):
    order = shopify_order(now)
    (result,) = shopify_events("orders/create", order, now=now, options=ShopifyOptions(
        event_id_template=template, shop_scope="shop-a.myshopify.com"))
    assert result.event["event_id"].startswith("shop-a.myshopify.com/")
    pixel = open_pixel(GRANTED, event_id_template=template)
    pixel.publish("checkout_completed", shopify.checkout_completed(order))
    pixel.publish("page_viewed", {})
    assert [call for call in pixel.pintrk_calls() if call[:2] == ["track", "checkout"]] == []
