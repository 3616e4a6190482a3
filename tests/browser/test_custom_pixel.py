"""web/shopify-custom-pixel.js in Chromium, in a stand-in of Shopify's custom-pixel sandbox."""

from __future__ import annotations

import json

from tests.browser import shopify_payloads as shopify
from tests.browser.conftest import DENIED, GRANTED, TEST_TAG_ID
from tests.conftest import load_fixture

ORDER = load_fixture("shopify/shopify_orders_create_shopifyappjs-rest-2025-10.json")
GREEN, RED, BLACK = ORDER["line_items"]  # IPod Nano - 8gb: product 632910392, three variants


def green_item(**extra) -> dict:
    item = {"product_id": "632910392", "product_name": "IPod Nano - 8gb", "product_price": 199,
            "product_variant_id": "39072856", "product_variant": "green", "product_category": "Music players"}
    return item | extra


def test_standard_events_become_the_pinterest_tag_calls(open_pixel):
    pixel = open_pixel(GRANTED)
    pixel.publish("page_viewed", {})
    pixel.publish("product_viewed", shopify.product_viewed(GREEN))
    pixel.publish("search_submitted", shopify.search_submitted("ipod nano", [GREEN, RED]))
    pixel.publish("product_added_to_cart", shopify.product_added_to_cart(GREEN, 2))
    pixel.publish("checkout_completed", shopify.checkout_completed(ORDER))

    assert pixel.pintrk_calls() == [
        ["load", TEST_TAG_ID],
        ["page"],
        ["track", "pagevisit", {"currency": "USD", "line_items": [green_item()]}],
        ["track", "search", {"search_query": "ipod nano"}],
        ["track", "addtocart", {"value": 398, "currency": "USD", "order_quantity": 2,
                                "line_items": [green_item(product_quantity=2)]}],
        ["track", "checkout", {
            "event_id": "450789469", "order_id": "450789469", "value": 597, "currency": "USD",
            "order_quantity": 3,
            "line_items": [
                green_item(product_quantity=1),
                green_item(product_quantity=1, product_variant_id="49148385", product_variant="red"),
                green_item(product_quantity=1, product_variant_id="457924702", product_variant="black"),
            ],
        }],
    ]
    assert pixel.network.pinterest_core == ["https://s.pinimg.com/ct/core.js"]


def test_with_consent_denied_nothing_is_loaded_or_sent(open_pixel):
    pixel = open_pixel(DENIED)
    pixel.publish("page_viewed", {})
    pixel.publish("product_viewed", shopify.product_viewed(GREEN))
    pixel.publish("checkout_completed", shopify.checkout_completed(ORDER))

    assert pixel.tag_state() == {"pintrk": "undefined", "scripts": [], "calls": None, "core_js_requests": []}


def test_without_any_consent_state_nothing_is_loaded(open_pixel):
    pixel = open_pixel(None)  # init.customerPrivacy missing: not allowed
    pixel.publish("page_viewed", {})
    assert pixel.tag_state()["core_js_requests"] == []


def test_consent_given_later_sends_the_queued_events_in_order(open_pixel):
    pixel = open_pixel(DENIED)
    pixel.publish("page_viewed", {})
    pixel.publish("product_viewed", shopify.product_viewed(GREEN))
    assert pixel.tag_state()["core_js_requests"] == []

    pixel.collect_consent(GRANTED)  # the visitor accepts the banner on this page
    pixel.publish("product_added_to_cart", shopify.product_added_to_cart(GREEN, 1))

    assert [call[:2] for call in pixel.pintrk_calls()] == [
        ["load", TEST_TAG_ID], ["page"], ["track", "pagevisit"], ["track", "addtocart"]]


def test_a_refusal_drops_the_queue_and_a_later_grant_sends_only_what_came_after(open_pixel):
    pixel = open_pixel(DENIED)
    pixel.publish("page_viewed", {})
    pixel.collect_consent(DENIED)  # an explicit refusal: the waiting page view is dropped
    pixel.publish("product_viewed", shopify.product_viewed(GREEN))
    pixel.collect_consent(GRANTED)

    assert [call[:2] for call in pixel.pintrk_calls()] == [["load", TEST_TAG_ID], ["track", "pagevisit"]]


def test_withdrawn_consent_stops_sending(open_pixel):
    pixel = open_pixel(GRANTED)
    pixel.publish("page_viewed", {})
    pixel.collect_consent(DENIED)
    pixel.publish("product_viewed", shopify.product_viewed(GREEN))
    pixel.publish("checkout_completed", shopify.checkout_completed(ORDER))

    assert pixel.pintrk_calls() == [["load", TEST_TAG_ID], ["page"]]


def test_analytics_consent_alone_does_not_load_the_tag(open_pixel):
    pixel = open_pixel(DENIED | {"analyticsProcessingAllowed": True, "preferencesProcessingAllowed": True})
    pixel.publish("page_viewed", {})
    assert pixel.tag_state()["core_js_requests"] == []


def test_a_data_sale_opt_out_does_not_load_the_tag(open_pixel):
    pixel = open_pixel(GRANTED | {"saleOfDataAllowed": False})
    pixel.publish("page_viewed", {})
    assert pixel.tag_state()["core_js_requests"] == []


def test_no_personal_data_reaches_the_tag(open_pixel):
    pixel = open_pixel(GRANTED)
    pixel.publish("checkout_completed", shopify.checkout_completed(ORDER))
    pixel.publish("search_submitted", shopify.search_submitted("bob.norman@mail.example.com", []))
    pixel.publish("search_submitted", shopify.search_submitted("call +1 (502) 459-2181", []))

    calls = pixel.pintrk_calls()
    sent = json.dumps(calls).lower()
    for personal in ("bob", "norman", "mail.example.com", "459-2181", "4592181", "chestnut", "louisville",
                     "40202", "kentucky", "207119551"):
        assert personal not in sent, personal
    assert calls[-2:] == [["track", "search", {}], ["track", "search", {}]]  # the queries were withheld
    assert pixel.network.outside == []


def test_an_event_id_template_the_browser_cannot_fill_sends_no_checkout(open_pixel):
    pixel = open_pixel(GRANTED, event_id_template="{order_number}")
    pixel.publish("page_viewed", {})
    pixel.publish("checkout_completed", shopify.checkout_completed(ORDER))

    assert pixel.pintrk_calls() == [["load", TEST_TAG_ID], ["page"]]
    assert any("{order_number}" in message and "cannot know" in message for message in pixel.console)


def test_order_ids_above_2_to_the_53_keep_every_digit(open_pixel):
    order = ORDER | {"id": 820982911946154508}
    pixel = open_pixel(GRANTED, event_id_template="order-{order_id}")
    pixel.publish("checkout_completed", shopify.checkout_completed(order))

    checkout = pixel.pintrk_calls()[-1][2]
    assert checkout["event_id"] == "order-820982911946154508"
    assert checkout["order_id"] == "820982911946154508"


def test_the_unconfigured_pixel_loads_nothing_and_says_why(open_pixel):
    pixel = open_pixel(GRANTED, tag_id="YOUR_PINTEREST_TAG_ID")
    pixel.publish("page_viewed", {})
    assert pixel.tag_state()["core_js_requests"] == []
    assert any("PINTEREST_TAG_ID is not set" in message for message in pixel.console)


def test_a_malformed_event_is_skipped_without_breaking_the_next(open_pixel):
    pixel = open_pixel(GRANTED)
    pixel.publish("product_added_to_cart", {"cartLine": {"merchandise": None, "quantity": 1}})
    pixel.publish("product_viewed", {"productVariant": {"id": "1", "product": None, "price": None}})
    pixel.publish("page_viewed", {})

    assert pixel.pintrk_calls() == [
        ["load", TEST_TAG_ID], ["track", "pagevisit", {"line_items": [{"product_variant_id": "1"}]}], ["page"]]
    assert not [message for message in pixel.console if message.startswith("pageerror")]
