"""pinrelay reconcile on Shopify's orders as the Shopify Admin stand-in shapes them
(``pinrelay_local.shopify_admin_standin``): a Shopify order read from the GraphQL Admin API maps as
its webhook did (the real REST sample, served in GraphQL form by the stand-in's converter), and
each kind of order the stand-in serves lands in exactly one class. The parts that need no order:
tests/unit/test_reconcile.py."""

from __future__ import annotations

import copy
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from pinrelay.reconcile import (
    EVENT_LIFETIME_SECONDS,
    OrderClass,
    ShopOrder,
    classify,
    map_as_webhook,
    reconcile,
)
from pinrelay.sources.shopify import OrderPolicy, ShopifyOptions, order_to_event
from pinrelay.sources.shopify_graphql import LineItem, Order
from pinrelay_local.shopify_admin_standin import graphql_line_item, graphql_order, sample_orders

from tests.conftest import load_fixture
from tests.reconcile_samples import EXPECTED, LEDGER_STATES

FIXTURE = "shopify/shopify_orders_create_shopifyappjs-rest-2025-10.json"
AD_ACCOUNT = "549755885175"


def through_graphql(rest: dict[str, Any]) -> dict[str, Any]:
    """The order as pinrelay rebuilds it from the two GraphQL queries."""
    order = Order.model_validate(graphql_order(rest))
    items = [LineItem.model_validate(graphql_line_item(item)) for item in rest["line_items"]]
    return order.webhook_body(items)


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


@pytest.mark.parametrize(("template", "content_id_field"), [
    ("{order_id}", "product_id"), ("{name}", "variant_id"), ("shop-{confirmation_number}", "sku"),
])
def test_the_real_order_through_both_shapes_gives_the_same_event(template, content_id_field):
    rest = load_fixture(FIXTURE)
    rest["confirmation_number"] = "XPAV284CT"  # null in the sample
    rest["note_attributes"].append({"name": "_epik", "value": "dj0yJnU9b2JDcFFHekV4SHJN"})
    now = epoch(rest["created_at"])
    direct = order_to_event(rest, now=now, event_id_template=template, content_id_field=content_id_field)
    rebuilt = order_to_event(through_graphql(rest), now=now, event_id_template=template, content_id_field=content_id_field)
    assert rebuilt.event_id == direct.event_id
    assert rebuilt.event["custom_data"] == direct.event["custom_data"]
    assert rebuilt.event["custom_data"]["value"] == "597.00"  # GraphQL said "597.0"
    assert rebuilt.event["user_data"] == direct.event["user_data"]  # same customer, addresses, click id
    assert rebuilt.event["event_time"] == direct.event["event_time"]
    assert rebuilt.event["user_data"]["click_id"] == "dj0yJnU9b2JDcFFHekV4SHJN"


def test_the_rebuilt_body_keeps_the_ids_and_the_landing_page():
    rest = load_fixture(FIXTURE)
    rest["landing_site"] = "https://shop.example/products/ipod?epik=from-the-landing-page"
    body = through_graphql(rest)
    assert body["id"] == 450789469 and body["admin_graphql_api_id"] == "gid://shopify/Order/450789469"
    assert body["name"] == "#1001" and body["customer"]["id"] == 207119551
    assert [item["variant_id"] for item in body["line_items"]] == [39072856, 49148385, 457924702]
    assert body["financial_status"] == "partially_refunded"
    now = epoch(rest["created_at"])
    assert order_to_event(body, now=now).event["user_data"]["click_id"] == "from-the-landing-page"


# --------------------------------------------------------------------------------------------
# classification
# --------------------------------------------------------------------------------------------

NOW = 1_750_000_000


def shop_order(body: dict[str, Any]) -> ShopOrder:
    return ShopOrder(str(body["id"]), body["name"], epoch(body["created_at"]), body, f"gid://shopify/Order/{body['id']}")


@pytest.fixture
def samples() -> dict[str, ShopOrder]:
    return {sample.kind: shop_order(sample.body) for sample in sample_orders(load_fixture(FIXTURE), NOW)}


SKIP_RULES = ShopifyOptions(policy=OrderPolicy(test_orders="skip", skip_tags=frozenset({"wholesale"})))


def key(order: ShopOrder) -> str:
    """The ledger key ingest gave the order: point-of-sale orders are offline events, keyed apart."""
    offline = "offline#" if order.webhook_body.get("source_name") == "pos" else ""
    return f"{AD_ACCOUNT}#{offline}checkout#{order.order_id}"



class FakeLedger:
    def __init__(self, items: dict[str, dict[str, Any]]):
        self.items = items
        self.reads: list[list[str]] = []

    def states(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        self.reads.append(keys)
        return {k: self.items[k] for k in keys if k in self.items}


class FakeDeadLetters:
    def __init__(self, keys: set[str]):
        self.keys = keys

    def dedup_keys(self) -> set[str]:
        return set(self.keys)


class FakeShop:
    def __init__(self, orders: list[ShopOrder]):
        self._orders = orders

    def orders(self, since, until):
        return iter(sorted((o for o in self._orders if since.timestamp() <= o.created_at < until.timestamp()),
                           key=lambda o: o.created_at))


def run(samples: dict[str, ShopOrder], rules: ShopifyOptions = SKIP_RULES):
    items = {key(samples[kind]): {"pk": key(samples[kind]), "state": state,
                                  **({"error_message": "Invalid event_timestamp parameter."} if state == "rejected" else {})}
             for kind, state in LEDGER_STATES.items()}
    ledger = FakeLedger(items)
    since = datetime.fromtimestamp(NOW - 10 * 86400, UTC).replace(hour=0, minute=0, second=0)
    report = reconcile(FakeShop(list(samples.values())), ledger, FakeDeadLetters({key(samples["dead_letter"])}),
                       shop="pinrelay-dev.myshopify.com", since=since, until=datetime.fromtimestamp(NOW, UTC),
                       ad_account_id=AD_ACCOUNT, rules=rules, clock=lambda: NOW, batch_size=4)
    return report, ledger


def test_every_order_lands_in_its_class(samples):
    report, ledger = run(samples)
    by_name = {verdict.name: verdict for verdict in report.verdicts}
    assert {kind: by_name[order.name].order_class for kind, order in samples.items()} == EXPECTED
    assert by_name[samples["rejected_by_pinterest"].name].detail == "Invalid event_timestamp parameter."
    assert "cancelled" in by_name[samples["cancelled"].name].detail
    assert "SHOPIFY_TEST_ORDERS=skip" in by_name[samples["test"].name].detail
    assert "wholesale" in by_name[samples["tagged"].name].detail
    assert "no identifier" in by_name[samples["no_identifier"].name].detail
    assert "older than the ledger remembers" in by_name[samples["too_old"].name].detail
    assert by_name[samples["missing"].name].detail == ""
    assert all(len(read) <= 4 for read in ledger.reads)  # batched like BatchGetItem's 100
    # a missing order of the last 7 days is sent again; the one of 9 days ago is not
    assert [o.name for o in report.to_backfill(NOW)] == [samples["missing_days_ago"].name, samples["missing"].name]


def test_default_policy_sends_test_orders_and_counts_per_day(samples):
    report, _ = run(samples, ShopifyOptions())
    by_name = {verdict.name: verdict.order_class for verdict in report.verdicts}
    assert by_name[samples["test"].name] is OrderClass.MISSING  # a test order is a conversion (sent with test=true)
    assert by_name[samples["tagged"].name] is OrderClass.MISSING
    days = report.counts_by_day()
    assert len(days) == 11 and list(days) == sorted(days)  # every day of the window, even the empty ones
    assert sum(sum(c.values()) for c in days.values()) == len(samples)
    assert sum(report.totals().values()) == len(samples)


def test_a_ledger_item_outranks_the_mapper_and_the_dead_letter_queue_outranks_in_flight(samples):
    cancelled = samples["cancelled"]
    mapped = map_as_webhook(cancelled, ShopifyOptions())
    assert mapped.filtered and mapped.event_id == cancelled.order_id
    delivered = classify(cancelled, mapped, {"state": "delivered"}, False, NOW)
    assert delivered.order_class is OrderClass.DELIVERED  # delivered, then cancelled: Pinterest has it
    given_back = classify(samples["missing"], map_as_webhook(samples["missing"], ShopifyOptions()), {"state": "claimed"}, True, NOW)
    assert given_back.order_class is OrderClass.IN_DEAD_LETTER_QUEUE
    for age, expected in ((14 * 60, OrderClass.QUEUED), (16 * 60, OrderClass.MISSING)):
        order = aged(samples["missing"], age)
        assert classify(order, map_as_webhook(order, ShopifyOptions()), None, False, NOW).order_class is expected
    old = aged(samples["missing"], EVENT_LIFETIME_SECONDS + 1)
    assert "older than the ledger" in classify(old, map_as_webhook(old, ShopifyOptions()), None, False, NOW).detail
    week_old = aged(samples["missing"], 7 * 86400 - 60)  # Pinterest would refuse it by the time it arrived
    assert "too old to send again" in classify(week_old, map_as_webhook(week_old, ShopifyOptions()), None, False, NOW).detail


def aged(order: ShopOrder, age: int) -> ShopOrder:
    body = copy.deepcopy(order.webhook_body)
    body["created_at"] = datetime.fromtimestamp(NOW - age, UTC).isoformat()
    return shop_order(body)


def test_an_order_is_mapped_at_its_own_time_not_now(samples):
    """A 3-day-old order was fine when its webhook came: reconciling it today must not call it too old."""
    order = samples["missing_days_ago"]
    assert map_as_webhook(order, ShopifyOptions()).rejected is None
    assert time.time() > order.created_at


def test_an_order_the_sender_recorded_not_sent_is_not_sent_with_its_reason_never_missing(samples):
    order = samples["missing_days_ago"]
    ledger = FakeLedger({key(order): {"pk": key(order), "state": "not_sent", "reason": "too_old",
                                      "error_message": "its event_time was more than 7 days old"}})
    since = datetime.fromtimestamp(NOW - 10 * 86400, UTC).replace(hour=0, minute=0, second=0)
    report = reconcile(FakeShop([order]), ledger, FakeDeadLetters(set()), shop="pinrelay-dev.myshopify.com", since=since,
                       until=datetime.fromtimestamp(NOW, UTC), ad_account_id=AD_ACCOUNT, rules=SKIP_RULES,
                       clock=lambda: NOW, batch_size=4)
    (verdict,) = report.verdicts
    assert verdict.order_class is OrderClass.NOT_SENT and verdict.order_class.metric_name == "OrdersNotSent"
    assert verdict.detail == "its event_time was more than 7 days old"
    assert verdict.order_class.is_conversion_not_delivered
