"""The reconcile core wired to its adapters: Shopify's GraphQL Admin API, the DynamoDB ledger, the
SQS dead-letter queue. One recipe, used by ``pinrelay reconcile`` (clients from the operator's
credentials) and by the daily reconcile function (pinrelay's own clients, with Lambda's timeouts)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pinrelay.adapters.aws import worst_call_seconds
from pinrelay.adapters.dead_letters import SqsDeadLetters
from pinrelay.adapters.dynamodb import DynamoDeliveryLedger
from pinrelay.adapters.shopify_admin import ShopifyAdminClient
from pinrelay.config import ShopifyMapping
from pinrelay.reconcile import ReconcileReport, reconcile
from pinrelay.sources.shopify import ShopifyOptions
from pinrelay.sources.shopify_graphql import unsupported_template_fields


class TemplateNotReconcilable(ValueError):
    """The event_id template names a field the GraphQL Admin API does not give."""


def mapping_rules(mapping: ShopifyMapping) -> ShopifyOptions:
    """The ingest's mapping settings, refused when the template cannot be filled from GraphQL."""
    unsupported = unsupported_template_fields(mapping.shopify_event_id_template)
    if unsupported:
        fields = ", ".join("{" + name + "}" for name in unsupported)
        raise TemplateNotReconcilable(f"SHOPIFY_EVENT_ID_TEMPLATE uses {fields}, which Shopify's GraphQL Admin API "
                                      "does not give: reconcile works with {order_id}, {name}, {confirmation_number}")
    return mapping.shopify_options()


def reconcile_shop(
    admin: ShopifyAdminClient,
    *,
    dynamodb: Any,
    table_name: str,
    sqs: Any,
    dead_letter_queue_url: str,
    since: datetime,
    until: datetime,
    ad_account_id: str,
    rules: ShopifyOptions,
    clock: Callable[[], float] = time.time,
) -> ReconcileReport:
    ledger = DynamoDeliveryLedger(table_name, dynamodb, worst_call_seconds=worst_call_seconds("dynamodb"))
    dead_letters = SqsDeadLetters(sqs, dead_letter_queue_url)
    return reconcile(admin, ledger, dead_letters, shop=admin.shop_domain, since=since, until=until,
                     ad_account_id=ad_account_id, rules=rules, clock=clock)
