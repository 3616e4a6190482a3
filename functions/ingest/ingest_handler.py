"""Ingest Lambda: HTTP API (payload 2.0) -> validate, normalise + hash -> dedup -> SQS.

Routes: POST /events (x-api-key), POST /webhooks/shopify (X-Shopify-Hmac-Sha256).
The handler only speaks HTTP; the work is in pinrelay.ingest and pinrelay.sources.
"""

from __future__ import annotations

import base64
import hmac
import json
import time
from functools import cache

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from pinrelay.adapters.aws import client
from pinrelay.adapters.dynamodb import DynamoDedupStore
from pinrelay.adapters.secrets import secret_values
from pinrelay.adapters.sqs import SqsEventQueue
from pinrelay.config import IngestSettings, ingest_settings
from pinrelay.events import EventRejected
from pinrelay.ingest import MAX_EVENTS_PER_REQUEST, IngestOutcome, IngestService, IngestUnavailable
from pinrelay.sources import shopify
from pinrelay.sources.signatures import verify_base64_hmac

MAX_BODY_BYTES = 1_048_576

logger = Logger()
metrics = Metrics()
app = APIGatewayHttpResolver()


@cache
def service() -> IngestService:
    settings = ingest_settings()
    shopify.validate_event_id_template(settings.shopify_event_id_template)
    return IngestService(
        ad_account_id=settings.pinterest_ad_account_id,
        dedup_window_seconds=settings.dedup_window_seconds,
        store=DynamoDedupStore(settings.dedup_table_name, client("dynamodb")),
        queue=SqsEventQueue(settings.queue_url, client("sqs")),
        clock=time.time,
    )


def settings() -> IngestSettings:
    return ingest_settings()


def _json(status: int, body: dict) -> Response:
    return Response(status_code=status, content_type="application/json", body=json.dumps(body, separators=(",", ":")))


def _raw_body() -> bytes:
    event = app.current_event
    body = event.body or ""
    return base64.b64decode(body) if event.is_base64_encoded else body.encode("utf-8")


def _header(name: str) -> str | None:
    headers = app.current_event.headers or {}
    return headers.get(name) or headers.get(name.lower())


def _answer(outcome: IngestOutcome, source: str, webhook: bool = False) -> Response:
    for status in ("accepted", "duplicate", "rejected", "error"):
        count = outcome.count(status)
        if count:
            metrics.add_metric(name=f"Events{status.capitalize()}", unit=MetricUnit.Count, value=count)
    logger.info(
        "ingested",
        extra={
            "source": source,
            "accepted": outcome.count("accepted"),
            "duplicates": outcome.count("duplicate"),
            "rejected": outcome.count("rejected"),
            "errors": outcome.count("error"),
            "rejections": [r.reason for r in outcome.results if r.status == "rejected"][:10],
        },
    )
    if outcome.failed:
        return _json(503, {"message": "some events could not be queued; retry the request", **outcome.as_json()})
    if not outcome.any_valid and not webhook:
        return _json(422, {"message": "no event is valid", **outcome.as_json()})
    return _json(202 if not webhook else 200, outcome.as_json())


@app.post("/events")
def post_events() -> Response:
    given = _header("x-api-key") or ""
    keys = secret_values(settings().ingest_api_key_ref, settings().secrets_max_age_seconds)
    if not any(hmac.compare_digest(given.encode(), key.encode()) for key in keys):
        return _json(401, {"message": "unauthorized"})
    raw = _raw_body()
    if len(raw) > MAX_BODY_BYTES:
        return _json(413, {"message": f"body over {MAX_BODY_BYTES} bytes; split it into several requests"})
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return _json(400, {"message": "body is not JSON"})
    if isinstance(payload, dict) and "data" in payload:
        events = payload["data"]
        if not isinstance(events, list) or not events:
            return _json(400, {"message": "data: must be a non-empty list of events"})
        if len(events) > MAX_EVENTS_PER_REQUEST:
            return _json(413, {"message": f"data: {len(events)} events; at most {MAX_EVENTS_PER_REQUEST} per request"})
        if set(payload) != {"data"}:
            return _json(400, {"message": f"unknown top-level field(s): {', '.join(sorted(set(payload) - {'data'}))}"})
    elif isinstance(payload, dict):
        events = [payload]
    else:
        return _json(400, {"message": 'body must be one event object or {"data": [events]}'})
    try:
        outcome = service().ingest_api_events(events, source="api")
    except IngestUnavailable as exc:
        logger.error("ingest unavailable", extra={"error": str(exc)})
        return _json(503, {"message": "temporarily unavailable; retry the request"})
    return _answer(outcome, "api")


@app.post("/webhooks/shopify")
def post_shopify_webhook() -> Response:
    raw = _raw_body()
    secrets = secret_values(settings().shopify_secret_ref, settings().secrets_max_age_seconds) if (
        settings().shopify_webhook_secret_name or settings().shopify_webhook_secret
    ) else []
    if not verify_base64_hmac(raw, _header("x-shopify-hmac-sha256"), secrets):
        return _json(401, {"message": "unauthorized"})
    topic = _header("x-shopify-topic") or ""
    if topic not in shopify.ORDER_TOPICS:
        return _json(200, {"message": f"topic {topic!r} is not forwarded", "ignored": True})
    if len(raw) > MAX_BODY_BYTES:
        return _json(413, {"message": f"body over {MAX_BODY_BYTES} bytes"})
    try:
        order = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return _json(400, {"message": "body is not JSON"})
    svc = service()
    now = svc.now()
    try:
        prepared = shopify.order_to_event(
            order,
            now=now,
            event_id_template=settings().shopify_event_id_template,
            content_id_field=settings().shopify_content_id_field,
            webhook_id=_header("x-shopify-webhook-id"),
        )
    except EventRejected as rejected:
        prepared = rejected
    try:
        outcome = svc.accept([prepared], source="shopify", now=now)
    except IngestUnavailable as exc:
        logger.error("ingest unavailable", extra={"error": str(exc)})
        return _json(503, {"message": "temporarily unavailable; retry the request"})
    return _answer(outcome, "shopify", webhook=True)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    return app.resolve(event, context)
