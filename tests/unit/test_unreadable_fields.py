"""A field that cannot be read costs that field, never the order (issue 18, finding 4).

Each case is a real payload from tests/fixtures altered in one field: the order still becomes its
event, the field's part of it is left out with a warning naming the field (never its value), and
everything else is exactly what the unaltered payload gives."""

import copy
from typing import Any

import pytest

from pinrelay.events import PreparedEvent
from pinrelay.normalise import sha256_hex
from pinrelay.sources import shopify, woocommerce
from tests.conftest import load_fixture, shopify_order

CHECKOUT = "shopify_checkouts_create_triggerdev.json"


def woo_order(now: int) -> dict:
    import time

    order = load_fixture("woocommerce/woocommerce_order_created_wcrestdocs.json")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    order.update(date_created_gmt=stamp, date_paid_gmt=stamp, customer_ip_address="216.3.128.12",
                 customer_user_agent="Mozilla/5.0",
                 meta_data=[*order["meta_data"], {"id": 1, "key": "_epik", "value": "dj0yJnU9abc"}])
    return order


def shopify_event(topic: str, body: Any, now: int) -> PreparedEvent:
    (result,) = shopify.shopify_events(topic, body, now=now)
    assert isinstance(result, PreparedEvent), result  # never the order: a rejection would be
    return result


def woo_event(body: Any, now: int) -> PreparedEvent:
    result = woocommerce.woocommerce_event("order.created", body, now=now)
    assert isinstance(result, PreparedEvent), result
    return result


def without(event: dict, *paths: str) -> dict:
    """The event with the given dotted paths removed (what an altered field may cost)."""
    event = copy.deepcopy(event)
    for path in paths:
        *parents, last = path.split(".")
        node = event
        for part in parents:
            node = node.get(part, {})
        node.pop(last, None)
    return event


def altered(body: dict, path: str, value: Any) -> dict:
    body = copy.deepcopy(body)
    *parents, last = path.split(".")
    node = body
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(last) if isinstance(node, list) else last] = value
    return body


# (field altered, its new value, what the event loses, the warning)
SHOPIFY_ORDER_CASES = [
    ("landing_site", "//[/products/x?epik=abc", ["user_data.click_id"],
     "landing_site: could not be read (ValueError); its epik (click_id) not read"),
    ("customer", "a customer that is not an object", ["user_data"],  # its name, id and default address
     "customer: could not be read; not an object, left out"),
    ("billing_address", ["not", "an", "object"], [],
     "billing_address: could not be read; not an object, left out"),
    ("client_details", "Mozilla/5.0", ["user_data.client_user_agent"],
     "client_details: could not be read; not an object, left out"),
    ("line_items", {"0": {"quantity": 1}}, ["custom_data.contents", "custom_data.content_ids", "custom_data.num_items"],
     "line_items: could not be read; not a list, left out"),
    ("line_items.0", "a line that is not an object", ["custom_data.contents", "custom_data.content_ids",
                                                      "custom_data.num_items"],
     "line_items: could not be read; 1 entries that are not objects left out"),
    ("subtotal_price", {"amount": "597.00"}, ["custom_data.value"],
     "subtotal_price: could not be read; not a number, value not sent"),
    ("subtotal_price", "597,00", ["custom_data.value"], "subtotal_price: could not be read; not a number, value not sent"),
    ("currency", 840, ["custom_data.currency"], "currency: could not be read; not a currency code, left out"),
    ("created_at", 1_700_000_000, ["event_time"],
     "created_at: could not be read; not an ISO-8601 time, the time of receipt used"),
    ("email", ["bob.norman@mail.example.com"], [], "user_data.em: value dropped, not text"),
    ("customer.default_address", "Ottawa", ["user_data"],
     "customer.default_address: could not be read; not an object, left out"),
]


@pytest.mark.parametrize("path, value, lost, warning", SHOPIFY_ORDER_CASES, ids=[c[0] for c in SHOPIFY_ORDER_CASES])
def test_a_shopify_order_with_one_unreadable_field_loses_that_field_only(now, path, value, lost, warning):
    order = shopify_order(now)
    order["landing_site"] = "https://shop.example/products/x?epik=dj0yJnU9abc"  # a click id to lose
    whole = shopify_event("orders/create", order, now)
    assert whole.event["user_data"]["click_id"] == "dj0yJnU9abc" and not whole.warnings
    part = shopify_event("orders/create", altered(order, path, value), now)
    assert warning in part.warnings and str(value) not in " ".join(part.warnings)
    assert without(part.event, *lost, "event_time") == without(whole.event, *lost, "event_time"), path
    if "event_time" in lost:
        assert abs(part.event["event_time"] - now) <= 1
    else:
        assert part.event["event_time"] == whole.event["event_time"]
    for field in lost:
        section, name = field.split(".") if "." in field else (field, None)
        if name and name not in ("contents", "content_ids"):  # the other lines' are still there
            assert name not in part.event[section], field
    assert part.event["user_data"]["em"] == whole.event["user_data"]["em"]  # the order's e-mail is always kept


def test_the_issues_landing_site_still_yields_the_cart_attributes_click_id(now):
    order = shopify_order(now)
    order["landing_site"] = "//[/products/x?epik=abc"  # urlsplit raises ValueError: Invalid IPv6 URL
    order["note_attributes"] = ["not an attribute", {"name": "_epik", "value": "from-the-cart"}]
    prepared = shopify_event("orders/create", order, now)
    assert prepared.event["user_data"]["click_id"] == "from-the-cart"
    assert "note_attributes: could not be read; 1 entries that are not objects left out" in prepared.warnings
    order["note_attributes"] = "_epik=from-the-cart"
    prepared = shopify_event("orders/create", order, now)
    assert "click_id" not in prepared.event["user_data"]
    assert "note_attributes: could not be read; not a list, left out" in prepared.warnings


def test_a_checkout_and_a_cart_with_an_unreadable_field_lose_that_field_only(now):
    checkout = shopify_order(now, CHECKOUT)
    whole = shopify_event("checkouts/create", checkout, now)
    part = shopify_event("checkouts/create", altered(checkout, "presentment_currency", ["USD"]), now)
    assert without(part.event, "custom_data.currency") == without(whole.event, "custom_data.currency")
    assert "presentment_currency: could not be read; not a currency code, left out" in part.warnings
    part = shopify_event("checkouts/create", altered(checkout, "line_items.0.quantity", "two"), now)
    assert without(part.event, "custom_data.num_items", "custom_data.contents") == without(
        whole.event, "custom_data.num_items", "custom_data.contents")
    cart = shopify_order(now, "shopify_carts_create_triggerdev.json")
    cart["email"] = "known.customer@example.com"  # a cart is sent only for a known customer
    whole = shopify_event("carts/update", cart, now)
    for line in cart["line_items"]:
        line["price_set"] = "not an object"
    part = shopify_event("carts/update", cart, now)
    assert part.event["custom_data"].get("value") == whole.event["custom_data"].get("value")


WOO_CASES = [
    ("billing", "John Doe, 969 Market", ["user_data.fn", "user_data.ln", "user_data.em", "user_data.ph", "user_data.ct",
                                         "user_data.st", "user_data.zp", "user_data.country"],
     "billing: could not be read; not an object, left out"),
    ("meta_data", {"key": "_epik"}, ["user_data.click_id"], "meta_data: could not be read; not a list, left out"),
    ("line_items.0", "Woo Single #1", ["custom_data.contents", "custom_data.content_ids", "custom_data.num_items",
                                       "custom_data.value"],
     "line_items: could not be read; 1 entries that are not objects left out"),
    ("line_items.0.quantity", "2 pcs", ["custom_data.num_items", "custom_data.contents"],
     "line_items[].quantity: could not be read; num_items not sent"),
    ("currency", 840, ["custom_data.currency"], "currency: could not be read; not a currency code, left out"),
    ("date_created_gmt", ["2017-03-22"], ["event_time"],
     "date_created_gmt: could not be read; not an ISO-8601 time, the time of receipt used"),
    ("customer_ip_address", 3640885260, ["user_data.client_ip_address"], ""),
    ("customer_user_agent", {"ua": "Mozilla"}, ["user_data.client_user_agent"],
     "user_data.client_user_agent: value dropped, not text"),
]


@pytest.mark.parametrize("path, value, lost, warning", WOO_CASES, ids=[c[0] for c in WOO_CASES])
def test_a_woocommerce_order_with_one_unreadable_field_loses_that_field_only(now, path, value, lost, warning):
    order = woo_order(now)
    whole = woo_event(order, now)
    assert whole.event["user_data"]["click_id"] == "dj0yJnU9abc" and whole.event["user_data"]["client_ip_address"]
    part = woo_event(altered(order, path, value), now)
    if warning:
        assert warning in part.warnings
    assert without(part.event, *lost) == without(whole.event, *lost), path
    if path == "billing":  # the shipping address still gives what it has
        assert part.event["user_data"]["fn"] == [sha256_hex("john")]


def test_a_woocommerce_phone_sent_as_a_number_is_read_as_its_digits(now):
    order = altered(woo_order(now), "billing.phone", 5555555555)
    assert woo_event(order, now).event == woo_event(woo_order(now), now).event
