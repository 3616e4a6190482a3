"""Stripe line-items fetcher Lambda: run once a minute (EventBridge schedule), it drains the
line-items queue itself (pinrelay.job_drain), ten jobs a round: each session's line items read
from Stripe, its event on the events queue (pinrelay.stripe_fetch has the work), the done jobs
deleted. Drained once a minute, one ReceiveMessage takes ten jobs; Lambda's event source would
take one a receive at webhook rates (docs/cost-and-speed.md).

A job whose line items Stripe did not give in time, whose key could not be read, or whose event
the events queue did not take is left on the queue: SQS hands it out again after the visibility
timeout. From the CONTENTS_TRIES-th receive (ApproximateReceiveCount) line items that still
cannot be read cost the contents, not the conversion: the event goes without them. A job the
events queue keeps refusing reaches the queue's maxReceiveCount and the line-items dead-letter
queue (alarmed). Line items Stripe refuses (the key, the session) are not retried: the event goes
without contents.
"""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from pinrelay.accounts import PLACEHOLDER, InvalidAccountMap, parse_account_map
from pinrelay.adapters.aws import client, seconds_left, worst_call_seconds
from pinrelay.adapters.secrets import SecretUnavailable, secret_value
from pinrelay.adapters.sqs import SqsJobQueue
from pinrelay.adapters.stripe_api import StripeLineItems, worst_drain_round_seconds, worst_line_items_seconds
from pinrelay.adapters.wiring import aws_ingest_service
from pinrelay.config import stripe_line_items_settings
from pinrelay.job_drain import drain
from pinrelay.ports import LineItemsUnavailable
from pinrelay.stripe_fetch import KeyOwner, StripeLineItemsService, mapped_key

logger = Logger()
metrics = Metrics()


def api_key(owner: KeyOwner) -> str | None:
    """The restricted key a job names: the deployment's (STRIPE_API_KEY_SECRET_NAME), or its
    account map entry's; None when there is none now."""
    settings = stripe_line_items_settings()
    kind, ad_account_id, route_name = owner
    if kind == "deployment":
        key = secret_value(settings.stripe_api_key_ref, settings.secrets_max_age_seconds) \
            if settings.stripe_api_key_ref else ""
    else:
        raw = secret_value(settings.account_map_ref, settings.secrets_max_age_seconds) if settings.account_map_ref else ""
        key = mapped_key(parse_account_map(raw), ad_account_id or "", route_name) or ""
    return key if key.strip() and key.strip() != PLACEHOLDER else None


@cache
def _reader(key: str, api_url: str) -> StripeLineItems:
    return StripeLineItems(key, api_url)  # one per key: its connection pool stays warm between invocations


def reader_for(owner: KeyOwner) -> StripeLineItems | None:
    try:
        key = api_key(owner)
    except SecretUnavailable as problem:  # Secrets Manager down and no earlier value: try the job later
        raise LineItemsUnavailable(str(problem)) from None
    except InvalidAccountMap as problem:  # fixed by the merchant, then the job's retry reads it
        raise LineItemsUnavailable(str(problem)) from None
    return _reader(key, stripe_line_items_settings().stripe_api_url) if key else None


@cache
def service() -> StripeLineItemsService:
    settings = stripe_line_items_settings()
    return StripeLineItemsService(readers=reader_for, ingest=aws_ingest_service(settings),
                                  content_id_field=settings.stripe_content_id_field,
                                  fetch_worst_seconds=worst_line_items_seconds(),
                                  queue_worst_seconds=worst_call_seconds("sqs"))


@cache
def job_queue() -> SqsJobQueue:
    return SqsJobQueue(stripe_line_items_settings().stripe_line_items_queue_url, client("sqs"))


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    report = drain(job_queue(), service().process, time_left=seconds_left(context),
                   round_worst_seconds=worst_drain_round_seconds())
    outcomes = report.outcomes
    counts = {status: sum(1 for o in outcomes if o.status == status) for status in ("queued", "rejected", "retry")}
    without = sum(1 for o in outcomes if o.status == "queued" and o.code == "without_contents")
    for name, value in (("LineItemsQueued", counts["queued"]), ("LineItemsWithoutContents", without),
                        ("LineItemsRejected", counts["rejected"]), ("LineItemsRetried", counts["retry"])):
        if value:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    # session ids, event ids and reasons only: never the event's data
    summary = {"received": report.received, **counts, "without_contents": without, "rounds": report.rounds,
               "stopped": report.stopped, "problem": report.problem, "not_deleted": len(report.not_deleted)}
    troubled = counts["retry"] or counts["rejected"] or without or report.problem or report.not_deleted
    (logger.info if troubled else logger.debug)("line-items jobs done", extra={**summary, "jobs": [
        {"session_id": o.session_id, "status": o.status, "event_id": o.event_id, "code": o.code, "reason": o.reason}
        for o in outcomes if o.status != "queued" or o.code][:20]})
    return summary
