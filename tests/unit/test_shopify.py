import base64
import hashlib
import hmac
import json

import pytest

from pinrelay.events import EventFiltered, EventRejected
from pinrelay.sources import shopify
from pinrelay.sources.signatures import sign_body, verify_base64_hmac
from tests.conftest import shopify_order


def h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_orders_create_becomes_a_checkout_event(now):
    order = shopify_order(now)
    order["landing_site"] = "/products/ipod?utm_source=pinterest&epik=dj0yJnU9b2JDcFFHekV4SHJN"
    order["client_details"]["browser_ip"] = "216.3.128.12"
    order["client_details"]["user_agent"] = "Mozilla/5.0 (iPhone)"
    event = shopify.order_to_event(order, now=now).event
    assert event["event_name"] == "checkout"
    assert event["action_source"] == "web"
    assert event["event_id"] == "450789469"
    assert event["event_time"] == now
    custom = event["custom_data"]
    assert custom["order_id"] == "450789469"
    assert custom["value"] == "597.00"
    assert custom["currency"] == "USD"
    assert custom["num_items"] == 3
    assert custom["content_ids"] == ["632910392"]
    assert custom["contents"][0] == {"id": "632910392", "item_price": "199.00", "quantity": 1, "item_name": "IPod Nano - 8gb"}
    user = event["user_data"]
    assert user["em"] == [h("bob.norman@mail.example.com")]
    assert user["ph"] == [h("557734881234"), h("16136120707"), h("15024592181"), h("15556251199")]
    assert user["fn"] == [h("bob")] and user["ln"] == [h("norman")]
    assert user["ct"] == [h("louisville")]
    assert user["st"] == [h("ky")]
    assert user["zp"] == [h("40202")]
    assert user["country"] == [h("us")]
    assert user["external_id"] == [h("207119551")]
    assert user["client_ip_address"] == "216.3.128.12"
    assert user["client_user_agent"] == "Mozilla/5.0 (iPhone)"
    assert user["click_id"] == "dj0yJnU9b2JDcFFHekV4SHJN"


def test_sample_without_client_details_and_with_big_ids(now):
    order = shopify_order(now, "shopify_orders_create_triggerdev.json")
    order.update(cancelled_at=None, financial_status="paid", test=False)  # Shopify's sample is a cancelled test order
    event = shopify.order_to_event(order, now=now).event
    assert event["event_id"] == "820982911946154500"  # a Python int keeps every digit of the JSON
    assert "client_ip_address" not in event["user_data"]
    assert event["user_data"]["em"][0] == h("jon@example.com")


def test_unspecified_ip_placeholder_is_not_sent(now):
    order = shopify_order(now)  # the sample's browser_ip is 0.0.0.0
    assert "client_ip_address" not in shopify.order_to_event(order, now=now).event["user_data"]


def test_event_id_template_and_content_id_field(now):
    order = shopify_order(now)
    event = shopify.order_to_event(order, now=now, event_id_template="shopify-{order_number}", content_id_field="variant_id").event
    assert event["event_id"] == "shopify-1001"
    assert event["custom_data"]["content_ids"][0] == str(order["line_items"][0]["variant_id"])


def test_bad_event_id_template_is_refused_at_start():
    with pytest.raises(ValueError, match=r"\{order_uuid\} is not one of"):
        shopify.validate_event_id_template("{order_uuid}")
    # the webhook id is not signed: every new header value would make a new conversion
    with pytest.raises(ValueError, match=r"\{webhook_id\} is not one of"):
        shopify.validate_event_id_template("{webhook_id}")


@pytest.mark.parametrize("template", ["order", "", "{{order_id}}"])
def test_a_template_naming_no_field_is_refused_at_start(template):
    """Every order would get the same event_id and the sender would drop all but the first."""
    with pytest.raises(ValueError, match="names no field, so every order would get the same event_id"):
        shopify.validate_event_id_template(template)


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{order_uuid}", r"\{order_uuid\} is not one of \{order_id\}, \{order_number\}"),
        ("{order_id", r"is not a template pinrelay can fill \(expected '\}' before end of string\)"),
        ("order-}{order_id}", r"Single '\}' encountered"),
        ("{}", r"positional"),
        ("{order_id:d}", r"is not a template pinrelay can fill"),
    ],
)
def test_a_bad_event_id_template_stops_the_settings_load(template, reason):
    from pydantic import ValidationError

    from pinrelay.config import IngestSettings, ReconcileSettings

    environ = {"PINTEREST_AD_ACCOUNT_ID": "1", "QUEUE_URL": "q", "INGEST_API_KEY": "k", "DEDUP_TABLE_NAME": "t",
               "DEAD_LETTER_QUEUE_URL": "d", "SHOPIFY_SHOP_DOMAIN": "s.myshopify.com", "SHOPIFY_ADMIN_TOKEN": "a",
               "SHOPIFY_EVENT_ID_TEMPLATE": template}
    for settings in (IngestSettings, ReconcileSettings):  # the ingest and the reconcile read the same variable
        with pytest.raises(ValidationError, match="SHOPIFY_EVENT_ID_TEMPLATE: .*" + reason):
            settings.from_env(environ)


def test_event_id_templates_that_are_filled(now):
    from pinrelay.config import ShopifyMapping
    from pinrelay.sources.shopify_graphql import unsupported_template_fields

    for template in ("{order_id}", "shop-{name}-{confirmation_number}", "{{{order_number}}}", "{order_id:>12}"):
        assert ShopifyMapping(shopify_event_id_template=template).shopify_event_id_template == template
    assert shopify.order_to_event(shopify_order(now), now=now, event_id_template="{{{order_number}}}").event_id == "{1001}"
    # reconcile reads the template's fields as the mapping does: a literal {{name}} names nothing
    assert unsupported_template_fields("{{order_number}}-{order_id}") == []
    assert unsupported_template_fields("{cart_token}-{order_number:>8}") == ["cart_token", "order_number"]


def test_stale_order_is_rejected_with_reason(now):
    order = shopify_order(now - 8 * 86400)
    with pytest.raises(EventRejected, match="more than 7 days in the past"):
        shopify.order_to_event(order, now=now)


def test_not_an_order(now):
    with pytest.raises(EventRejected, match="not a Shopify order"):
        shopify.order_to_event({"hello": 1}, now=now)


def test_hmac_is_checked_on_the_raw_bytes():
    body = json.dumps({"id": 1, "note": "a/b"}).encode()
    secret = "shpss_secret"
    signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    assert sign_body(body, secret) == signature
    assert verify_base64_hmac(body, signature, [secret])
    assert verify_base64_hmac(body, signature, ["old-secret", secret])  # rotation: either key
    assert not verify_base64_hmac(body.replace(b"a/b", b"a\\/b"), signature, [secret])  # re-serialised
    assert not verify_base64_hmac(body[:-1], signature, [secret])
    assert not verify_base64_hmac(body, signature, ["another-shop"])
    assert not verify_base64_hmac(body, None, [secret])
    assert not verify_base64_hmac(body, "not base64!!", [secret])
    assert not verify_base64_hmac(body, signature, [])


def redacted_as_without_protected_customer_data(order):
    """What Shopify sends an app without access to protected customer data (level 2): no e-mail,
    name, phone or address anywhere; the customer's id, the order's IP and user agent stay."""
    for field in ("email", "contact_email", "phone"):
        order[field] = None
    order["billing_address"] = order["shipping_address"] = None
    customer = order.get("customer") or {}
    for field in ("email", "first_name", "last_name", "phone", "default_address"):
        customer[field] = None
    return order


def test_an_order_without_protected_customer_data_still_sends_ip_user_agent_customer_id_and_click_id(now):
    from pinrelay.privacy import match_keys

    order = redacted_as_without_protected_customer_data(shopify_order(now))
    order["client_details"] = {**(order.get("client_details") or {}), "browser_ip": "216.3.128.12",
                               "user_agent": "Mozilla/5.0 (iPhone)"}
    order["landing_site"] = "/products/x?epik=dj0yJnU9b2JD"
    event = shopify.order_to_event(order, now=now).event
    assert set(event["user_data"]) == {"external_id", "client_ip_address", "client_user_agent", "click_id"}
    assert match_keys(event["user_data"]) == ["external_id", "click_id", "ip_ua"]


def test_an_order_without_protected_customer_data_or_browser_details_is_not_matchable(now):
    order = redacted_as_without_protected_customer_data(shopify_order(now))
    order["browser_ip"] = None
    order["client_details"] = None
    with pytest.raises(EventRejected, match="no identifier Pinterest can match on"):
        shopify.order_to_event(order, now=now)


@pytest.mark.parametrize(("change", "code"), [
    ({"cancelled_at": "2026-11-30T10:00:00-05:00"}, "cancelled"),
    ({"financial_status": "voided"}, "voided"),
    ({"source_name": "shopify_draft_order"}, "source_name"),
    ({"tags": "VIP, Wholesale"}, "tag"),
])
def test_orders_that_are_not_sales_are_filtered_with_their_reason(now, change, code):
    order = {**shopify_order(now), **change}
    policy = shopify.OrderPolicy(skip_tags=frozenset({"wholesale"}))
    with pytest.raises(EventFiltered) as filtered:
        shopify.order_to_event(order, now=now, policy=policy)
    assert filtered.value.code == code and filtered.value.event_id == str(order["id"])


def test_test_orders_are_sent_as_tests_or_skipped():
    now = int(__import__("time").time())
    order = {**shopify_order(now), "test": True}
    assert shopify.order_to_event(order, now=now).test is True
    with pytest.raises(EventFiltered) as filtered:
        shopify.order_to_event(order, now=now, policy=shopify.OrderPolicy(test_orders="skip"))
    assert filtered.value.code == "test_order"
    assert shopify.order_to_event({**order, "test": False}, now=now).test is False


def test_an_order_of_more_than_1000_lines_sends_the_first_1000_and_counts_them_all(now):
    order = shopify_order(now)
    line = order["line_items"][0]
    order["line_items"] = [{**line, "product_id": i, "quantity": 2} for i in range(1500)]
    prepared = shopify.order_to_event(order, now=now)
    custom = prepared.event["custom_data"]
    assert custom["num_items"] == 3000 and len(custom["contents"]) == len(custom["content_ids"]) == 1000
    assert custom["value"] == order["subtotal_price"]
    assert prepared.warnings == ["custom_data.contents: the order has 1500 line items; the first 1000 are sent "
                                 "(num_items and value count them all)"]
