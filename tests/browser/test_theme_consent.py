"""web/shopify-theme-epik.js recording the shopper's consent choice, in Chromium, on a local storefront with the stand-in of Shopify's
Customer Privacy API (harness/shopify-consent-api.js) and the fake Ajax cart API (GET /cart.js,
POST /cart/update.js, the `cart` cookie) that records every request. What the snippet stores is
then read by pinrelay's own consent code, and compared with the samples in events/consent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pinrelay.consent import CONSENT_ATTRIBUTE, ConsentPolicy, OrderConsent, RecordedConsent, read_recorded_consent

SAMPLES = Path(__file__).resolve().parents[2] / "events" / "consent"
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Storefront</title>
<script>window.__consent = __CONSENT__; window.__choice = __CHOICE__; window.__region = __REGION__;
window.__st = {"cid": 207119551, "pageurl": "shop.example/account"};</script>
__API__
<script src="/web/shopify-theme-epik.js" defer></script>
</head><body><h1>My account</h1><p class="email">bob.norman@mail.example.com</p></body></html>
"""
API = '<script src="/harness/shopify-consent-api.js"></script>'
NO_CHOICE = {"marketing": "", "analytics": "", "preferences": "", "sale_of_data": ""}
ALL_NO = {"marketing": "no", "analytics": "no", "preferences": "no", "sale_of_data": "no"}
ALL_YES = {"marketing": "yes", "analytics": "yes", "preferences": "yes", "sale_of_data": "yes"}
ALLOWED = {"marketing": True, "saleOfData": True, "analytics": True, "preferences": True}
NOTHING_ALLOWED = {"marketing": False, "saleOfData": False, "analytics": False, "preferences": False}
RECORD_KEYS = ["v", "via", "marketing", "sale_of_data", "analytics", "preferences", "allowed", "region"]


def view(page, shop, allowed=ALLOWED, choice=NO_CHOICE, region="", api=True) -> str:
    """One page view of a storefront in this consent state; what the snippet did once it is done."""
    shop.pages["/account"] = (PAGE.replace("__CONSENT__", json.dumps(allowed)).replace("__CHOICE__", json.dumps(choice))
                              .replace("__REGION__", json.dumps(region)).replace("__API__", API if api else ""))
    page.goto(shop.base_url + "/account")
    return page.evaluate("window.pinrelayConsent")


def collect(page, choice, allowed) -> str:
    """The visitor answers the banner on the page (Shopify's visitorConsentCollected)."""
    page.evaluate("([choice, allowed]) => window.__collectConsent(choice, allowed)", [choice, allowed])
    return page.evaluate("window.pinrelayConsent")


def stored_values(shop) -> list[str]:
    return [post["body"]["attributes"][CONSENT_ATTRIBUTE] for post in shop.cart_posts()]


def sample_value(name: str) -> str:
    order = json.loads((SAMPLES / name).read_text())
    (value,) = [a["value"] for a in order["note_attributes"] if a["name"] == CONSENT_ATTRIBUTE]
    return value


def test_a_refused_banner_is_stored_once_as_the_cart_attribute(page, shop):
    assert view(page, shop, NOTHING_ALLOWED, ALL_NO, "DEBE") == "stored"

    (post,) = shop.cart_posts()
    assert post["content_type"] == "application/json" and set(post["body"]) == {"attributes"}
    value = post["body"]["attributes"][CONSENT_ATTRIBUTE]
    assert value == sample_value("shopify_orders_create_eu_banner_refused.json")
    (cart,) = shop.carts.values()
    assert cart["attributes"] == {CONSENT_ATTRIBUTE: value}
    recorded = read_recorded_consent(value)
    assert recorded == RecordedConsent(via="shopify", marketing=False, sale_of_data=False, region="DE")
    assert not ConsentPolicy().decide(OrderConsent(recorded), "shopify").send


def test_a_granted_banner_is_stored_as_the_sample_has_it(page, shop):
    assert view(page, shop, ALLOWED, ALL_YES, "DEBE") == "stored"
    assert stored_values(shop) == [sample_value("shopify_orders_create_eu_banner_accepted.json")]
    assert read_recorded_consent(stored_values(shop)[0]).marketing is True


def test_a_us_opt_out_of_sale_and_the_region_are_stored(page, shop):
    opted_out = {**NO_CHOICE, "sale_of_data": "no"}
    assert view(page, shop, {**ALLOWED, "saleOfData": False}, opted_out, "USCA") == "stored"
    (value,) = stored_values(shop)
    assert value == sample_value("shopify_orders_create_us_sale_opt_out.json")
    decision = ConsentPolicy(mode="strict").decide(OrderConsent(read_recorded_consent(value)), "shopify", ["US"])
    assert (decision.send, decision.ldp) == (True, True)


def test_a_choice_changed_on_the_page_is_stored_again_and_the_cart_ends_with_it(page, shop):
    # an EU visitor lands: no choice yet, Shopify allows no marketing (nor analytics) until they answer
    assert view(page, shop, {**NOTHING_ALLOWED, "saleOfData": True}, NO_CHOICE, "FR") == "stored"
    first = read_recorded_consent(stored_values(shop)[0])
    assert first == RecordedConsent(via="shopify", opt_in_asked=True, region="FR")

    assert collect(page, ALL_YES, ALLOWED) == "stored"  # they accept the banner
    assert collect(page, {**ALL_YES, "marketing": "no"}, {**ALLOWED, "marketing": False}) == "stored"  # then withdraw

    values = stored_values(shop)
    assert len(values) == 3
    assert [read_recorded_consent(v).marketing for v in values] == [None, True, False]
    (cart,) = shop.carts.values()
    assert cart["attributes"][CONSENT_ATTRIBUTE] == values[-1]


def test_no_cart_write_without_a_change(page, shop):
    assert view(page, shop, ALLOWED, ALL_YES, "NL") == "stored"
    requests = len(shop.cart_requests)

    assert view(page, shop, ALLOWED, ALL_YES, "NL") == "already-stored"  # next page view, same choice
    assert collect(page, ALL_YES, ALLOWED) == "already-stored"  # the banner answered again, the same way
    assert len(shop.cart_requests) == requests  # not even a GET /cart.js
    assert len(shop.cart_posts()) == 1

    assert view(page, shop, ALLOWED, {**ALL_YES, "analytics": "no"}, "NL") == "stored"  # a change: stored
    assert len(shop.cart_posts()) == 2


def test_a_cart_that_already_has_the_choice_gets_no_post(page, shop):
    assert view(page, shop, ALLOWED, ALL_YES) == "stored"
    page.evaluate("localStorage.clear()")  # another tab, or storage cleared: the cart still has it

    assert view(page, shop, ALLOWED, ALL_YES) == "already-stored"
    assert len(shop.cart_posts()) == 1
    assert [r["method"] for r in shop.cart_requests][-1] == "GET"


def test_a_new_cart_after_an_order_gets_the_choice_again(page, shop, browser_context):
    assert view(page, shop, ALLOWED, ALL_YES) == "stored"
    browser_context.add_cookies([{"name": "cart", "value": "c1-newcart0000000002", "url": shop.base_url}])

    assert view(page, shop, ALLOWED, ALL_YES) == "stored"
    first, second = shop.cart_posts()
    assert second["cart"] == "c1-newcart0000000002" != first["cart"]


def test_a_failed_post_is_retried_on_the_next_page_view(page, shop):
    shop.failing_posts = 1
    assert view(page, shop, NOTHING_ALLOWED, ALL_NO) == "failed"
    assert view(page, shop, NOTHING_ALLOWED, ALL_NO) == "stored"
    (cart,) = shop.carts.values()
    assert read_recorded_consent(cart["attributes"][CONSENT_ATTRIBUTE]).marketing is False


def test_without_the_customer_privacy_api_nothing_is_requested(page, shop):
    assert view(page, shop, api=False) == "no-api"
    assert shop.cart_requests == []


@pytest.mark.parametrize(("region", "stored"), [("CAON", "CAON"), ("gbeng", "GBENG"), ("", ""),
                                                ("<img src=x>", ""), ("US-CA", ""), ("a" * 40, "")])
def test_only_a_region_code_is_stored(page, shop, region, stored):
    view(page, shop, ALLOWED, NO_CHOICE, region)
    assert json.loads(stored_values(shop)[0])["region"] == stored


def test_nothing_personal_is_stored(page, shop, browser_context):
    browser_context.add_cookies([{"name": "_shopify_y", "value": "8f1a2b3c-visitor", "url": shop.base_url}])
    view(page, shop, ALLOWED, {**ALL_YES, "marketing": "bob.norman@mail.example.com"}, "DEBE")
    (value,) = stored_values(shop)
    record = json.loads(value)
    assert list(record) == RECORD_KEYS
    assert record["marketing"] == ""  # only "yes", "no" or "" is ever copied from the API
    assert set(record["allowed"]) == {"marketing", "sale_of_data", "analytics", "preferences"}
    assert all(isinstance(flag, bool) for flag in record["allowed"].values())
    everything = json.dumps(shop.cart_requests) + page.evaluate("JSON.stringify(localStorage)")
    for personal in ("bob.norman", "207119551", "8f1a2b3c"):
        assert personal not in everything
    assert json.loads(page.evaluate("localStorage.getItem('pinrelay:consent')")) == {
        "value": value, "cart": shop.cart_requests[-1]["cart"]}


def test_a_new_visitors_click_id_and_choice_go_to_one_cart_one_write_after_the_other(page, shop):
    """Two writes at once, neither with a cart cookie yet, would each create a cart."""
    shop.pages["/landing"] = (PAGE.replace("__CONSENT__", json.dumps(ALLOWED)).replace("__CHOICE__", json.dumps(ALL_YES))
                              .replace("__REGION__", json.dumps("FR")).replace("__API__", API))
    page.goto(shop.base_url + "/landing?epik=dj0yJnU9b2JDcFFHekV4SHJN")
    assert page.evaluate("Promise.all([window.pinrelayEpik, window.pinrelayConsent])") == ["stored", "stored"]
    (cart,) = shop.carts.values()
    assert set(cart["attributes"]) == {"_epik", CONSENT_ATTRIBUTE}
    assert [r["method"] for r in shop.cart_requests] == ["GET", "POST", "GET", "POST"]
