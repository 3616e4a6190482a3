"""pinrelay reconcile on orders the consent policy withholds: the consent samples of events/consent,
read back from the GraphQL Admin API's shape (the Shopify Admin stand-in's converter; the cart
attribute is a customAttribute there), are "not sent: consent", not missing, whether the ledger
already says so (the sender's ``not_sent``) or not yet; and they stay out of the not-delivered
figure and the backfill."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pinrelay.consent import ConsentPolicy
from pinrelay.reconcile import OrderClass, ReconcileReport, ShopOrder, classify, map_as_webhook
from pinrelay.sources.shopify import ShopifyOptions
from pinrelay.sources.shopify_graphql import LineItem, Order
from pinrelay_cli.reconcile import print_report
from pinrelay_local.shopify_admin_standin import graphql_line_item, graphql_order

SAMPLES = Path(__file__).resolve().parents[2] / "events" / "consent"
NOW = 1_750_000_000


def shop_order(name: str, age: int = 3600) -> ShopOrder:
    """A consent sample as reconcile reads it: through GraphQL, created ``age`` seconds ago."""
    rest: dict[str, Any] = json.loads((SAMPLES / name).read_text())
    rest["created_at"] = datetime.fromtimestamp(NOW - age, UTC).isoformat()
    order = Order.model_validate(graphql_order(rest))
    body = order.webhook_body([LineItem.model_validate(graphql_line_item(item)) for item in rest["line_items"]])
    return ShopOrder(str(body["id"]), body["name"], NOW - age, body, f"gid://shopify/Order/{body['id']}")


def verdict(name: str, policy: str, ledger_item: dict[str, Any] | None = None):
    order = shop_order(name)
    return classify(order, map_as_webhook(order, ShopifyOptions(consent=ConsentPolicy.parse(policy))), ledger_item,
                    False, NOW)


@pytest.mark.parametrize(("name", "policy", "expected"), [
    ("shopify_orders_create_eu_banner_refused.json", "respect", OrderClass.NOT_SENT_CONSENT),
    ("shopify_orders_create_eu_banner_refused.json", "strict", OrderClass.NOT_SENT_CONSENT),
    ("shopify_orders_create_eu_banner_refused.json", "off", OrderClass.MISSING),
    ("shopify_orders_create_eu_no_choice_recorded.json", "strict", OrderClass.NOT_SENT_CONSENT),
    ("shopify_orders_create_eu_no_choice_recorded.json", "respect", OrderClass.MISSING),
    ("shopify_orders_create_us_sale_opt_out.json", "strict", OrderClass.MISSING),  # sent with LDP: missing if absent
    ("shopify_orders_create_eu_banner_accepted.json", "strict", OrderClass.MISSING),
])
def test_an_order_the_policy_withholds_is_not_sent_consent_rather_than_missing(name, policy, expected):
    assert verdict(name, policy).order_class is expected


def test_the_detail_says_why_and_the_ledger_outranks_the_mapper():
    refused = verdict("shopify_orders_create_eu_banner_refused.json", "respect")
    assert refused.detail == "the shopper refused marketing (Shopify Customer Privacy API)"
    assert refused.order_class.label == "not sent: consent"
    # the sender recorded the marker: not sent, whatever the policy says today
    recorded = verdict("shopify_orders_create_eu_banner_refused.json", "off", {"state": "not_sent", "reason": "consent"})
    assert recorded.order_class is OrderClass.NOT_SENT_CONSENT
    # not sent for another reason (too old when it left the queue): not the shopper's choice
    too_old = verdict("shopify_orders_create_eu_banner_refused.json", "respect", {"state": "not_sent", "reason": "too_old"})
    assert too_old.order_class is OrderClass.NOT_SENT
    # delivered before the policy changed: Pinterest has it
    assert verdict("shopify_orders_create_eu_banner_refused.json", "strict",
                   {"state": "delivered"}).order_class is OrderClass.DELIVERED


def test_not_sent_for_consent_is_neither_a_loss_nor_backfilled():
    assert not OrderClass.NOT_SENT_CONSENT.is_conversion_not_delivered
    assert OrderClass.NOT_SENT_CONSENT.metric_name == "OrdersNotSentConsent"
    orders = {name: shop_order(name) for name in ("shopify_orders_create_eu_banner_refused.json",
                                                  "shopify_orders_create_eu_no_choice_recorded.json")}
    rules = ShopifyOptions(consent=ConsentPolicy(mode="strict"))
    report = ReconcileReport(shop="pinrelay-dev.myshopify.com", since=datetime.fromtimestamp(NOW - 86400, UTC),
                             until=datetime.fromtimestamp(NOW, UTC), generated_at=NOW, ad_account_id="549755885175")
    for order in orders.values():
        report.verdicts.append(classify(order, map_as_webhook(order, rules), None, False, NOW))
        report.orders[order.order_id] = order
    assert report.totals()[OrderClass.NOT_SENT_CONSENT] == 2 and report.to_backfill(NOW) == []
    out = io.StringIO()
    print_report(report, out)
    text = out.getvalue()
    assert "not sent: consent 2" in text
    assert "not sent: consent: #1001: the shopper refused marketing (Shopify Customer Privacy API)" in text
    assert "missing 0" in text
