"""Sender Lambda: SQS batch -> claims in the delivery ledger -> Pinterest requests of up to 1000
events -> outcomes -> partial batch response (pinrelay.sender has the policy).

The batch response, the metrics and the log line are all read from the report's one fate per
event. A message that cannot be parsed is reported as a batch item failure at once, so it
reaches the DLQ after maxReceiveCount receives without holding back the others.
"""

from __future__ import annotations

import time
from functools import cache

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import SQSEvent
from pydantic import ValidationError

from pinrelay.accounts import InvalidAccountTokens, MissingConversionToken, parse_account_tokens
from pinrelay.adapters.aws import client, seconds_left, worst_call_seconds
from pinrelay.adapters.dynamodb import DynamoDeliveryLedger
from pinrelay.adapters.metrics import emit_delivery_metrics, emit_not_sent_metrics
from pinrelay.adapters.pinterest_http import RequestsPinterestApi
from pinrelay.adapters.secrets import secret_value
from pinrelay.config import sender_settings
from pinrelay.models import QueuedEvent
from pinrelay.sender import QueuedMessage, SenderService

logger = Logger()
metrics = Metrics()
tracer = Tracer()
# the token's worst case before a request: the tokens map read, then read again when it lacks the
# ad account (it may have been added since it was cached)
TOKEN_READS = 2


def conversion_token(ad_account_id: str, fresh: bool = False) -> str:
    """The deployment's token for its own ad account; any other ad account's token from the
    tokens map, never the deployment's. ``fresh`` reads the secret again (Pinterest refused the
    cached token: it may have been rotated). An ad account without a token raises: its events go
    back to SQS (then the DLQ) with a log line naming it and the metric ConversionTokenMissing."""
    settings = sender_settings()
    if ad_account_id == settings.pinterest_ad_account_id:
        return secret_value(settings.token_ref, settings.secrets_max_age_seconds, fresh)

    def from_tokens_map(read_again: bool) -> str | None:
        if not settings.account_tokens_ref:
            return None
        raw = secret_value(settings.account_tokens_ref, settings.secrets_max_age_seconds, read_again)
        return parse_account_tokens(raw).token_for(ad_account_id)

    try:
        token = from_tokens_map(fresh)
        if token is None and not fresh:  # it may have been added since the secret was cached
            token = from_tokens_map(True)
    except InvalidAccountTokens as problem:
        logger.error("tokens map invalid: events of ad accounts other than the deployment's go back to the queue",
                     extra={"error": str(problem), "ad_account_id": ad_account_id})
        raise
    if token is None:
        logger.error("no conversion token for ad account %s: add it to the tokens map (AccountTokensSecretName); "
                     "its events go back to the queue", ad_account_id, extra={"ad_account_id": ad_account_id})
        metrics.add_metric(name="ConversionTokenMissing", unit=MetricUnit.Count, value=1)
        raise MissingConversionToken(f"no conversion token for ad account {ad_account_id} in the tokens map")
    return token


@cache
def service() -> SenderService:
    settings = sender_settings()
    api = RequestsPinterestApi(
        settings.pinterest_api_url,
        token=conversion_token,
        timeout_seconds=settings.pinterest_timeout_seconds,
    )
    # a subsegment per Pinterest call, without the answer: 1000 per-event statuses would pass
    # X-Ray's 64 KB segment limit
    api.post_events = tracer.capture_method(api.post_events, capture_response=False)
    return SenderService(
        api=api,
        ledger=DynamoDeliveryLedger(settings.dedup_table_name, client("dynamodb"), worst_call_seconds("dynamodb")),
        test_mode=settings.pinterest_test_mode,
        max_attempts=settings.sender_max_attempts,
        backoff_base_seconds=settings.sender_backoff_base_seconds,
        backoff_max_seconds=settings.sender_backoff_max_seconds,
        clock=time.time,
        sleep=time.sleep,
        request_timeout_seconds=settings.pinterest_timeout_seconds,
        ledger_call_seconds=worst_call_seconds("dynamodb"),
        prepare_seconds=TOKEN_READS * worst_call_seconds("secretsmanager"),
        dedup_window_seconds=settings.dedup_window_seconds,
        offline_dedup_window_seconds=settings.offline_dedup_window_seconds,
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
        messages.append(QueuedMessage(message_id=record.message_id, receive_count=receive_count, event=queued))
    report = service().deliver(messages, time_left=seconds_left(context),
                               claim_id=context.aws_request_id)
    failures.extend(report.failed_message_ids)
    emit_delivery_metrics(report.outcomes())  # per source and event_name, with match keys
    emit_not_sent_metrics(report.not_sent_reasons())  # per reason (too_old is alarmed)
    # totals for the alarms (dimension service only): delivered and rejected always, the rest only
    # when they happened, so a clean batch costs two short metrics lines and no log line
    for name, value in report.totals(unreadable).items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    log = logger.info if report.notable or unreadable else logger.debug
    log("batch delivered", extra={"records": len(event.get("Records", [])), "unreadable": unreadable,
                                  **report.log_fields(), "failed": len(failures)})
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failures]}
