"""Sender Lambda: SQS batch -> Pinterest requests of up to 1000 events -> partial batch response.

A message that cannot be parsed is reported as a batch item failure at once, so it reaches the
DLQ after maxReceiveCount receives without holding back the others.
"""

from __future__ import annotations

import time
from functools import cache

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import SQSEvent
from pydantic import ValidationError

from pinrelay.accounts import parse_account_map
from pinrelay.adapters.aws import client
from pinrelay.adapters.dynamodb import DynamoDedupStore
from pinrelay.adapters.metrics import emit_delivery_metrics
from pinrelay.adapters.pinterest_http import RequestsPinterestApi
from pinrelay.adapters.secrets import secret_value
from pinrelay.config import sender_settings
from pinrelay.models import QueuedEvent
from pinrelay.sender import REDRIVEN_ATTRIBUTE, QueuedMessage, SenderService

logger = Logger()
metrics = Metrics()
tracer = Tracer()


def conversion_token(ad_account_id: str) -> str:
    """The ad account's own token from the account map, else the deployment's token."""
    settings = sender_settings()
    if settings.account_map_ref:
        token = parse_account_map(secret_value(settings.account_map_ref, settings.secrets_max_age_seconds)).token_for(ad_account_id)
        if token:
            return token
    return secret_value(settings.token_ref, settings.secrets_max_age_seconds)


@cache
def service() -> SenderService:
    settings = sender_settings()
    api = RequestsPinterestApi(
        settings.pinterest_api_url,
        token=conversion_token,
        timeout_seconds=settings.pinterest_timeout_seconds,
    )
    api.post_events = tracer.capture_method(api.post_events)  # a subsegment per Pinterest call
    return SenderService(
        api=api,
        store=DynamoDedupStore(settings.dedup_table_name, client("dynamodb")),
        test_mode=settings.pinterest_test_mode,
        max_attempts=settings.sender_max_attempts,
        backoff_base_seconds=settings.sender_backoff_base_seconds,
        backoff_max_seconds=settings.sender_backoff_max_seconds,
        clock=time.time,
        sleep=time.sleep,
        request_timeout_seconds=settings.pinterest_timeout_seconds,
    )


@tracer.capture_lambda_handler(capture_response=False)
@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    failures: list[str] = []
    messages: list[QueuedMessage] = []
    unreadable = 0
    for record in SQSEvent(event).records:
        try:
            queued = QueuedEvent.model_validate_json(record.body)
        except ValidationError:
            logger.error("unreadable message", extra={"message_id": record.message_id})
            failures.append(record.message_id)
            unreadable += 1
            continue
        receive_count = int(record.attributes.approximate_receive_count or 1)
        redriven = REDRIVEN_ATTRIBUTE in (record.get("messageAttributes") or {})
        messages.append(QueuedMessage(message_id=record.message_id, receive_count=receive_count, event=queued, redriven=redriven))
    report = service().deliver(messages, remaining_seconds=lambda: context.get_remaining_time_in_millis() / 1000)
    failures.extend(report.failed_message_ids)
    emit_delivery_metrics(report.outcomes)  # per source and event_name, with match keys
    # totals for the alarms (dimension service only); the rest only when they happened, so a
    # clean batch costs two short metrics lines and no log line
    metrics.add_metric(name="EventsDelivered", unit=MetricUnit.Count, value=report.delivered)
    metrics.add_metric(name="EventsRejectedByPinterest", unit=MetricUnit.Count, value=report.rejected)
    for name, value in (
        ("EventsRetryLater", len(failures)),
        ("PinterestRequests", report.requests),
        ("PinterestRetries", report.retries),
        ("UnreadableMessages", unreadable),
        # upper bounds of what Pinterest may have seen twice (it drops repeats by event_id)
        ("EventsResentAfterRedelivery", report.resent_after_redelivery),
        ("EventsUncertainSends", report.uncertain_sends),
        ("DeliveryRecordFailures", report.record_failures),
    ):
        if value:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    log = logger.info if report.notable or unreadable else logger.debug
    log(
        "batch delivered",
        extra={
            "records": len(event.get("Records", [])),
            "delivered": report.delivered,
            "rejected": report.rejected,
            "skipped_already_done": report.skipped_already_done,
            "state_reads": report.state_reads,
            "requests": report.requests,
            "request_sizes": report.request_sizes,
            "retries": report.retries,
            "failed": len(failures),
            "unreadable": unreadable,
            "resent_after_redelivery": report.resent_after_redelivery,
            "uncertain_sends": report.uncertain_sends,
            "record_failures": report.record_failures,
            "rejections": [{"key": key, "error": error} for key, error in report.rejections[:20]],
        },
    )
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failures]}
