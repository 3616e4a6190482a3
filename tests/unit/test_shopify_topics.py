"""Shopify checkouts/create, carts/create|update and the topic dispatcher, on the real samples."""
import copy
import hashlib

import pytest

from pinrelay.events import EventRejected, PreparedEvent
from pinrelay.sources import shopify
from tests.conftest import shopify_order

CHECKOUT = "shopify_checkouts_create_triggerdev.json"
CART = "shopify_carts_create_triggerdev.json"
ORDER = "shopify_orders_create_shopifyappjs-rest-2025-10.json"


def h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def events(topic, payload, now, **kwargs):
    return shopify.shopify_events(topic, payload, now=now, options=shopify.ShopifyOptions(**kwargs))


def test_checkouts_create_golden(now):
    checkout = shopify_order(now, CHECKOUT)
    prepared = shopify.checkout_to_event(checkout, now=now)
    ipod = {"id": "632910392", "quantity": 1, "item_price": "199.00", "item_name": "IPod Nano - 8GB", "item_brand": "Apple"}
    assert prepared.event == {
        "event_name": "initiate_checkout",
        "action_source": "web",
        "event_id": "checkout-123123123",
        "event_time": now,
        "user_data": {
            # order email, then customer email
            "em": [h("example@email.com"), h("john@example.com")],
            # billing "555-555-BILL" and shipping "555-555-SHIP" (US, vanity letters), default address "123-123-1234" (CA)
            "ph": [h("15555552455"), h("15555557447"), h("11231231234")],
            "fn": [h("john"), h("bob"), h("steve")],
            "ln": [h("smith"), h("biller"), h("shipper")],
            "external_id": [h("603851970716743400")],
            "ct": [h("billtown"), h("shippington"), h("ottawa")],
            "st": [h("ky"), h("on")],
            "zp": [h("k2h7a8")],  # the US addresses' Canadian-looking zips have no 5 digits: dropped
            "country": [h("us"), h("ca")],
        },
        "custom_data": {
            "value": "398.00",
            "currency": "USD",
            "num_items": 2,
            "content_ids": ["632910392"],
            "contents": [ipod, ipod],
        },
    }
    assert prepared.warnings == [
        "user_data.zp: value dropped, US zip code with fewer than 5 digits",
        "user_data.zp: value dropped, US zip code with fewer than 5 digits",
    ]
    assert "order_id" not in prepared.event["custom_data"]  # not an order yet


def test_checkout_event_id_is_stable_across_shopify_retries(now):
    checkout = shopify_order(now, CHECKOUT)
    first = events("checkouts/create", checkout, now)
    retry = events("checkouts/create", copy.deepcopy(checkout), now + 60)
    assert first[0].event_id == retry[0].event_id == "checkout-123123123"
    assert first[0].dedup_key("549755885175") == "549755885175#initiate_checkout#checkout-123123123"


def test_checkout_content_id_field_and_client_data(now):
    checkout = shopify_order(now, CHECKOUT)
    checkout["landing_site"] = "/?epik=dj0yJnU9abc"
    checkout["client_details"] = {"browser_ip": "216.3.128.12", "user_agent": "Mozilla/5.0 (iPhone)"}
    checkout["presentment_currency"] = "cad"
    checkout["customer_locale"] = "en-CA"
    by_sku = shopify.checkout_to_event(checkout, now=now, content_id_field="sku").event
    assert by_sku["custom_data"]["content_ids"] == ["IPOD2008PINK"]
    assert by_sku["custom_data"]["currency"] == "CAD"
    assert by_sku["language"] == "en"
    user = by_sku["user_data"]
    assert (user["client_ip_address"], user["client_user_agent"], user["click_id"]) == (
        "216.3.128.12", "Mozilla/5.0 (iPhone)", "dj0yJnU9abc"
    )
    by_variant = shopify.checkout_to_event(checkout, now=now, content_id_field="variant_id").event
    assert "content_ids" not in by_variant["custom_data"]  # the sample's variant_id is null
    assert all("id" not in item for item in by_variant["custom_data"]["contents"])


def test_checkout_without_identifier_or_stale_is_rejected(now):
    checkout = shopify_order(now, CHECKOUT)
    for key in ("email", "customer"):
        checkout[key] = None
    [rejected] = events("checkouts/create", checkout, now)
    assert isinstance(rejected, EventRejected)
    assert "no identifier Pinterest can match on" in rejected.reason
    assert rejected.event_id == "checkout-123123123" and rejected.event_name == "initiate_checkout"
    [stale] = events("checkouts/create", shopify_order(now - 8 * 86400, CHECKOUT), now)
    assert isinstance(stale, EventRejected) and "more than 7 days in the past" in stale.reason


def test_cart_without_customer_is_rejected_with_reason(now):
    cart = shopify_order(now, CART)
    for topic in ("carts/create", "carts/update"):
        [rejected] = events(topic, cart, now)
        assert isinstance(rejected, EventRejected)
        assert rejected.reason.startswith("user_data: no identifier Pinterest can match on")
        assert "cart webhooks carry no email" in rejected.reason
        assert rejected.event_name == "add_to_cart"
        assert rejected.event_id == f"cart-eeafa272cebfd4b22385bc4b645e762c-{now * 1000}"
    with pytest.raises(EventRejected, match="no identifier Pinterest can match on"):
        shopify.cart_to_event(cart, now=now)


def test_cart_with_known_customer_becomes_add_to_cart(now):
    cart = shopify_order(now, CART)
    cart["customer"] = {"id": 207119551, "email": "Bob.Norman@mail.example.com"}
    prepared = shopify.cart_to_event(cart, now=now)
    assert isinstance(prepared, PreparedEvent)
    assert prepared.event == {
        "event_name": "add_to_cart",
        "action_source": "web",
        "event_id": f"cart-eeafa272cebfd4b22385bc4b645e762c-{now * 1000}",
        "event_time": now,
        "user_data": {"em": [h("bob.norman@mail.example.com")], "external_id": [h("207119551")]},
        "custom_data": {
            "value": "59.97",
            "currency": "USD",
            "num_items": 3,
            "content_ids": ["788032119674292900"],
            "contents": [{"id": "788032119674292900", "quantity": 3, "item_price": "19.99",
                          "item_name": "Example T-Shirt", "item_brand": "Acme"}],
        },
    }


def test_cart_retries_are_duplicates_and_updates_are_new_events(now):
    cart = shopify_order(now, CART)
    cart["email"] = "jane@example.com"
    first = events("carts/update", cart, now)[0]
    retry = events("carts/update", copy.deepcopy(cart), now + 600)[0]  # original payload
    assert first.event_id == retry.event_id
    changed = copy.deepcopy(cart)
    changed["updated_at"] = shopify_order(now + 5, CART)["updated_at"]
    assert events("carts/update", changed, now + 5)[0].event_id != first.event_id


def test_a_cart_without_updated_at_is_rejected_rather_than_identified_by_the_unsigned_webhook_id(now):
    cart = shopify_order(now, CART)
    cart["email"] = "jane@example.com"
    del cart["updated_at"], cart["created_at"]
    with pytest.raises(EventRejected, match="no usable updated_at"):
        shopify.cart_to_event(cart, now=now)


@pytest.mark.parametrize(("fixture", "topic"), [(ORDER, "orders/create"), (CHECKOUT, "checkouts/create"), (CART, "carts/update")])
def test_a_signed_body_is_accepted_only_under_its_own_topic(now, fixture, topic):
    """The HMAC covers the body, not X-Shopify-Topic: a captured order must not come back as a new
    initiate_checkout or add_to_cart."""
    payload = shopify_order(now, fixture)
    payload.setdefault("email", "jane@example.com")
    for other in ("orders/create", "checkouts/create", "carts/create", "carts/update"):
        results = events(other, copy.deepcopy(payload), now)
        if other.split("/")[0] == topic.split("/")[0]:
            assert not any("shape of this topic" in getattr(r, "reason", "") for r in results), (other, results)
        else:
            assert [r.reason for r in results] == [f"{other}: the body does not have the shape of this topic "
                                                   "(the topic header is not signed)"]


def test_orders_create_through_the_dispatcher_is_order_to_event(now):
    order = shopify_order(now)
    [prepared] = events("orders/create", order, now, event_id_template="shopify-{order_number}", content_id_field="variant_id")
    direct = shopify.order_to_event(order, now=now, event_id_template="shopify-{order_number}", content_id_field="variant_id")
    assert prepared.event == direct.event
    assert prepared.event_id == "shopify-1001"


@pytest.mark.parametrize("topic", ["orders/paid", "orders/updated", "checkouts/update", "products/update", "app/uninstalled", ""])
def test_topics_not_forwarded_give_nothing(now, topic):
    assert events(topic, shopify_order(now), now) == []


def test_topic_table():
    assert set(shopify.SHOPIFY_TOPICS) == {"orders/create", "checkouts/create", "carts/create", "carts/update"}
    assert shopify.ORDER_TOPICS == frozenset({"orders/create"})


@pytest.mark.parametrize("topic", ["orders/create", "checkouts/create", "carts/update"])
def test_bodies_that_are_not_the_resource_are_rejected_not_raised(now, topic):
    [rejected] = events(topic, [1, 2], now)
    assert isinstance(rejected, EventRejected)


@pytest.mark.parametrize("topic, sample", [("orders/create", ORDER), ("checkouts/create", CHECKOUT)])
@pytest.mark.parametrize("unreadable", [float("inf"), "two", [1]])  # inf: json.loads("1e309")
def test_a_quantity_that_cannot_be_read_costs_num_items_not_the_event(now, topic, sample, unreadable):
    body = shopify_order(now, sample)
    body["line_items"][0]["quantity"] = unreadable
    [prepared] = events(topic, body, now)
    assert isinstance(prepared, PreparedEvent), prepared
    assert "num_items" not in prepared.event["custom_data"] and "quantity" not in prepared.event["custom_data"]["contents"][0]
    assert prepared.event["custom_data"]["contents"][1]["quantity"] >= 1
    assert "line_items[].quantity: could not be read; num_items not sent" in prepared.warnings
