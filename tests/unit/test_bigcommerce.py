"""BigCommerce webhooks -> fetch jobs, and fetched orders -> checkout events
(pinrelay.sources.bigcommerce), on BigCommerce's own examples (webhooks of events/webhooks, orders
of reference/orders.v2.oas2.yml as local/pinrelay_local/bigcommerce keeps them)."""

from __future__ import annotations

import copy
import json
from email.utils import format_datetime
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pinrelay.events import EventFiltered, EventRejected
from pinrelay.normalise import sha256_hex
from pinrelay.sources import bigcommerce
from pinrelay.sources.bigcommerce import (
    BigCommerceOptions,
    FetchJob,
    bigcommerce_event,
    fetch_job_body,
    read_webhook,
)

REPO = Path(__file__).resolve().parents[2]
WEBHOOKS = REPO / "events" / "webhooks"
EXAMPLES = json.loads((REPO / "local" / "pinrelay_local" / "bigcommerce" / "orders.v2-examples.json").read_text())
STORE = "abc123"


def webhook(name: str = "bigcommerce_store_order_created_bcdocs.json", store: str = STORE) -> dict:
    payload = json.loads((WEBHOOKS / name).read_text())
    payload["producer"] = f"stores/{store}"
    return payload


def rfc2822(epoch: int) -> str:
    return format_datetime(datetime.fromtimestamp(epoch, UTC))


def order(now: int, example: str = "Multiple Items", **fields) -> dict:
    found = copy.deepcopy(EXAMPLES["order_Resp"][example])
    found["date_created"] = rfc2822(now)
    return found | fields


PRODUCTS = EXAMPLES["orderProductsCollection_Resp"]
ADDRESSES = EXAMPLES["orderShippingAddressCollection_Resp"]


# -- the webhook --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bigcommerce_store_order_created_bcdocs.json",
                                  "bigcommerce_store_order_statusUpdated_bcdocs.json"])
def test_the_documented_order_webhooks_name_the_store_and_the_order(name):
    notice = read_webhook(webhook(name))
    assert (notice.store_hash, notice.order_id) == (STORE, 250)
    assert notice.scope in bigcommerce.ORDER_SCOPES and len(notice.webhook_hash) == 40


@pytest.mark.parametrize("scope", ["store/order/archived", "store/order/message/created", "store/product/updated",
                                   "store/cart/created", None])
def test_other_scopes_are_not_forwarded(scope):
    assert read_webhook({**webhook(), "scope": scope}) is None


@pytest.mark.parametrize("change", [{"data": {"type": "product", "id": 1}}, {"data": {"type": "order", "id": "250"}},
                                    {"data": {"type": "order", "id": 0}}, {"data": {"type": "order", "id": 2**60}},
                                    {"data": {"type": "order", "id": True}}, {"data": None},
                                    {"producer": "stores/"}, {"producer": "stores/a/b"}, {"producer": 12}])
def test_a_malformed_order_webhook_is_rejected_with_a_reason(change):
    assert isinstance(read_webhook({**webhook(), **change}), EventRejected)


def test_the_fetch_job_names_the_order_and_where_it_goes_and_nothing_personal():
    body = fetch_job_body(read_webhook(webhook()), "549755885175", 1700000000)
    assert json.loads(body) == {"v": 1, "store_hash": STORE, "order_id": 250, "scope": "store/order/created",
                                "ad_account_id": "549755885175", "received_at": 1700000000}
    assert FetchJob.model_validate_json(body).order_id == 250
    with pytest.raises(ValueError):
        FetchJob.model_validate_json(body.replace('"ad_account_id"', '"email":"x","ad_account_id"'))


@pytest.mark.parametrize("value", ["abc123", "Z9"])
def test_store_hashes_are_letters_and_digits(value):
    assert bigcommerce.store_hash(f" {value} ") == value


@pytest.mark.parametrize("value", ["", "abc-123", "stores/abc", "https://api.bigcommerce.com/stores/abc"])
def test_anything_else_is_not_a_store_hash(value):
    with pytest.raises(ValueError):
        bigcommerce.store_hash(value)


# -- the paid-status rule -----------------------------------------------------------------------


@pytest.mark.parametrize("status_id", bigcommerce.DEFAULT_PAID_STATUS_IDS)
def test_orders_in_a_paid_status_are_conversions(now, status_id):
    event = bigcommerce_event(order(now, status_id=status_id), PRODUCTS, ADDRESSES, store=STORE, now=now)
    assert event.event["event_name"] == "checkout"


@pytest.mark.parametrize("status_id", [0, 1, 4, 5, 6, 7, 12, 13, 14, None, "11", True])
def test_incomplete_pending_unpaid_refunded_and_cancelled_orders_are_filtered(now, status_id):
    found = bigcommerce_event(order(now, status_id=status_id), PRODUCTS, ADDRESSES, store=STORE, now=now)
    assert isinstance(found, EventFiltered) and found.code == "unpaid"
    assert found.event_id == f"{STORE}-247"


def test_the_paid_statuses_are_the_merchants_to_choose(now):
    options = BigCommerceOptions(paid_status_ids=frozenset({10}))
    assert isinstance(bigcommerce_event(order(now, status_id=11), [], [], store=STORE, now=now, options=options), EventFiltered)
    assert not isinstance(bigcommerce_event(order(now, status_id=10), [], [], store=STORE, now=now, options=options), EventFiltered)


def test_skipped_order_sources_deleted_orders_and_orders_older_than_the_dedup_window(now):
    options = BigCommerceOptions(skip_order_sources=frozenset({"manual"}), max_paid_age_seconds=3600)
    manual = bigcommerce_event(order(now), PRODUCTS, ADDRESSES, store=STORE, now=now, options=options)
    assert manual.code == "source_name"  # the example was typed in the control panel
    deleted = bigcommerce_event(order(now, is_deleted=True), PRODUCTS, ADDRESSES, store=STORE, now=now)
    assert deleted.code == "deleted"
    old = bigcommerce_event(order(now - 7200), PRODUCTS, ADDRESSES, store=STORE, now=now,
                            options=BigCommerceOptions(max_paid_age_seconds=3600))
    assert old.code == "paid_long_ago"


# -- the event ----------------------------------------------------------------------------------


def test_the_documented_order_becomes_a_checkout_with_its_value_products_and_addresses(now):
    event = bigcommerce_event(order(now), PRODUCTS, ADDRESSES, store=STORE, now=now).event
    assert event["event_id"] == f"{STORE}-247" and event["event_time"] == now and event["language"] == "en"
    custom = event["custom_data"]
    assert custom["value"] == "924.47" and custom["currency"] == "USD" and custom["order_id"] == "247"
    # the second product is a part of the first (a bundle): one line
    assert custom["content_ids"] == ["77"] and custom["num_items"] == 1
    assert custom["contents"] == [{"quantity": 1, "id": "77", "item_price": "55.9900",
                                   "item_name": "Fog Linen Chambray Towel - Beige Stripe", "item_brand": "BigCommerce"}]
    user = event["user_data"]
    assert set(user["em"]) == {sha256_hex("janedoe@email.com"), sha256_hex("janedoe@example.com")}
    assert user["ph"] == [sha256_hex("11234567890")]
    assert set(user["ln"]) == {sha256_hex("doe"), sha256_hex("smith")}
    assert set(user["zp"]) == {sha256_hex("78108"), sha256_hex("78251"), sha256_hex("78751")}
    assert user["external_id"] == [sha256_hex("11")]
    assert user["client_ip_address"] == "70.112.53.67"


def test_value_subtracts_the_order_discounts_and_reads_the_transactional_currency(now):
    first = order(now, "Response", status_id=11)
    event = bigcommerce_event(first, [], [], store=STORE, now=now).event
    assert event["custom_data"]["value"] == "57.6793"  # 62.6793 - 5.0000
    euros = bigcommerce_event(order(now, default_currency_code="EUR", currency_code="USD"), [], [], store=STORE, now=now)
    assert euros.event["custom_data"]["currency"] == "EUR"


@pytest.mark.parametrize("fields", [{"subtotal_ex_tax": "n/a"}, {"discount_amount": "lots"}, {"subtotal_ex_tax": None}])
def test_an_unreadable_amount_costs_the_value_never_the_order(now, fields):
    event = bigcommerce_event(order(now, **fields), PRODUCTS, ADDRESSES, store=STORE, now=now).event
    assert "value" not in event["custom_data"] and event["custom_data"]["currency"] == "USD"


def test_a_digital_order_without_shipping_addresses_or_products_still_counts(now):
    event = bigcommerce_event(order(now), [], [], store=STORE, now=now).event
    assert "contents" not in event["custom_data"] and event["user_data"]["em"] == [sha256_hex("janedoe@email.com")]


@pytest.mark.parametrize(("field", "ids"), [("product_id", ["77"]), ("sku", ["S-ORAN"]), ("variant_id", [])])
def test_content_ids_are_the_field_the_catalog_uses(now, field, ids):
    options = BigCommerceOptions(content_id_field=field)
    event = bigcommerce_event(order(now), PRODUCTS, ADDRESSES, store=STORE, now=now, options=options).event
    assert event["custom_data"].get("content_ids", []) == ids


def test_the_event_id_template_names_the_store_so_stores_sharing_an_ad_account_never_collide(now):
    assert bigcommerce_event(order(now), [], [], store="other1", now=now).event_id == "other1-247"
    plain = BigCommerceOptions(event_id_template="{order_id}")
    assert bigcommerce_event(order(now), [], [], store=STORE, now=now, options=plain).event_id == "247"
    with pytest.raises(ValueError, match="BIGCOMMERCE_EVENT_ID_TEMPLATE"):
        bigcommerce.validate_event_id_template("{store_hash}")
    with pytest.raises(ValueError, match="BIGCOMMERCE_EVENT_ID_TEMPLATE"):
        bigcommerce.validate_event_id_template("{order_number}")


@pytest.mark.parametrize("broken", [{"billing_address": "x"}, {"customer_id": True}, {"date_created": "yesterday"},
                                    {"ip_address": "not an ip"}, {"customer_locale": 5}, {"products": 9}])
def test_malformed_fields_of_a_fetched_order_cost_those_fields(now, broken):
    found = bigcommerce_event(order(now, **broken), PRODUCTS, ADDRESSES, store=STORE, now=now)
    assert not isinstance(found, Exception) or isinstance(found, EventRejected)


def test_an_answer_that_is_not_an_order_is_rejected():
    assert isinstance(bigcommerce_event([], [], [], store=STORE, now=1), EventRejected)
    assert isinstance(bigcommerce_event({"id": "x"}, [], [], store=STORE, now=1), EventRejected)


def test_orders_v2_dates_are_rfc_2822():
    assert bigcommerce.order_time("Tue, 05 Mar 2019 21:40:11 +0000") == 1551822011
    assert bigcommerce.order_time("2019-03-05") is None and bigcommerce.order_time(None) is None
