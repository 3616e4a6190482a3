"""Reconcile Lambda (daily, an EventBridge schedule rule at 00:30 UTC): the shop's orders of the previous day and of
today so far against the delivery ledger and the dead-letter queue (pinrelay.reconcile), published
as metrics: ``OrdersMissing`` (alarmed when not zero) and one metric per class.

Deployed only when ``ShopifyAdminTokenSecretName`` and ``ShopifyShopDomain`` are set. The log line
carries counts and order names (``#1042``), never personal data.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from pinrelay.adapters.aws import client, seconds_left
from pinrelay.adapters.reconcile_wiring import mapping_rules, reconcile_shop
from pinrelay.adapters.secrets import secret_value
from pinrelay.adapters.shopify_admin import ShopifyAdminClient
from pinrelay.config import reconcile_settings
from pinrelay.reconcile import OrderClass

logger = Logger()
metrics = Metrics()
LISTED_ORDERS = 50  # order names per class in the log line
# Shopify is read only while this much of the invocation is left: the ledger reads (100 keys a
# BatchGetItem), the dead-letter queue and the metrics come after it (template.yaml: Timeout 900)
AFTER_SHOPIFY_SECONDS = 120.0


def window(now: datetime) -> tuple[datetime, datetime]:
    """The previous UTC day and today so far."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=1), now


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict, context) -> dict:
    settings = reconcile_settings()
    token = secret_value(settings.admin_token_ref, settings.secrets_max_age_seconds)
    invocation_left = seconds_left(context)
    admin = ShopifyAdminClient(settings.shopify_shop_domain, token, api_version=settings.shopify_admin_api_version,
                               base_url=settings.shopify_admin_api_url,
                               allow_loopback_http=settings.allow_loopback_http,
                               time_left=lambda: invocation_left() - AFTER_SHOPIFY_SECONDS)
    rules = mapping_rules(settings)
    since, until = window(datetime.now(UTC))
    report = reconcile_shop(admin, dynamodb=client("dynamodb"), table_name=settings.dedup_table_name, sqs=client("sqs"),
                            dead_letter_queue_url=settings.dead_letter_queue_url, since=since, until=until,
                            ad_account_id=settings.pinterest_ad_account_id, rules=rules, clock=time.time)
    totals = report.totals()
    for order_class in OrderClass:
        metrics.add_metric(name=order_class.metric_name, unit=MetricUnit.Count, value=totals[order_class])
    summary = {
        "shop": settings.shopify_shop_domain,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "orders": len(report.verdicts),
        "counts": {order_class.value: totals[order_class] for order_class in OrderClass},
        "missing": [v.name for v in report.of_class(OrderClass.MISSING)][:LISTED_ORDERS],
        "rejected": [v.name for v in report.of_class(OrderClass.REJECTED_BY_PINTEREST,
                                                     OrderClass.REJECTED_AT_INGEST)][:LISTED_ORDERS],
        "in_dead_letter_queue": [v.name for v in report.of_class(OrderClass.IN_DEAD_LETTER_QUEUE)][:LISTED_ORDERS],
        "shopify_requests": admin.requests,
        "shopify_throttled": admin.throttled,
    }
    log = logger.warning if totals[OrderClass.MISSING] else logger.info
    log("reconciled", extra=summary)
    return {"orders": len(report.verdicts), "counts": summary["counts"]}
