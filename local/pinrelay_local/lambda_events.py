"""Write Lambda test events into events/lambda/ for `sam local invoke -e` (where Docker exists)
and for reading: an HTTP API (payload 2.0) POST /events, a signed Shopify orders/create webhook
(through the HTTP API, and through the optional Function URL: routeKey and stage "$default", a
lambda-url domain), and the SQS batch the sender would receive for them. Timestamps are set to now
(Pinterest refuses events older than 7 days), so run `python -m pinrelay_local lambda-events` again later."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from pinrelay_local.http_gateway import build_function_url_event, build_http_api_event
from pinrelay_local.stack import LOCAL_DEFAULTS, REPO_ROOT, refresh_event_times, refresh_shopify_timestamps, shopify_signature


def _queued_bodies(api_payload: dict) -> list[str]:
    from pinrelay.events import prepare_api_event
    from pinrelay.ingest import queued_message_body

    now = int(time.time())
    account = LOCAL_DEFAULTS["PINTEREST_AD_ACCOUNT_ID"]
    bodies = []
    for raw in api_payload["data"]:
        prepared = prepare_api_event(raw, now)
        bodies.append(queued_message_body(account, "api", now, prepared))
    return bodies


def write_lambda_events(events_dir: Path = REPO_ROOT / "events") -> list[Path]:
    out = events_dir / "lambda"
    out.mkdir(parents=True, exist_ok=True)
    api_payload = refresh_event_times(json.loads((events_dir / "api/web_checkout_raw_pii.json").read_text()))
    api_body = json.dumps(api_payload).encode()
    order = refresh_shopify_timestamps(json.loads((events_dir / "webhooks/shopify_orders_create_shopifyappjs-rest-2025-10.json").read_text()))
    order_body = json.dumps(order).encode()
    common = {"source_ip": "203.0.113.10", "raw_query": "", "host": "abc123.execute-api.us-east-1.amazonaws.com"}
    shopify_headers = [("content-type", "application/json"), ("x-shopify-topic", "orders/create"),
                       ("x-shopify-hmac-sha256", shopify_signature(LOCAL_DEFAULTS["SHOPIFY_WEBHOOK_SECRET"], order_body)),
                       ("x-shopify-shop-domain", "pinrelay-dev.myshopify.com"),
                       ("x-shopify-triggered-at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))]
    written = {
        "ingest_post_events.json": build_http_api_event(
            method="POST", raw_path="/events", route_key="POST /events", body=api_body,
            header_pairs=[("content-type", "application/json"), ("x-api-key", LOCAL_DEFAULTS["INGEST_API_KEY"])], **common),
        "ingest_shopify_orders_create.json": build_http_api_event(
            method="POST", raw_path="/webhooks/shopify", route_key="POST /webhooks/shopify", body=order_body,
            header_pairs=[*shopify_headers, ("x-shopify-webhook-id", str(uuid.uuid4()))], **common),
        # the same webhook through the optional Function URL (template parameter IngestFunctionUrl)
        "ingest_function_url_shopify_orders_create.json": build_function_url_event(
            method="POST", raw_path="/webhooks/shopify", raw_query="", body=order_body, source_ip="203.0.113.10",
            header_pairs=[*shopify_headers, ("x-shopify-webhook-id", str(uuid.uuid4()))]),
        "sender_sqs_batch.json": {"Records": [
            {"messageId": str(uuid.uuid4()), "receiptHandle": "sample-receipt-handle", "body": body,
             "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000)),
                            "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000))},
             "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
             "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:pinrelay-events", "awsRegion": "us-east-1"}
            for body in _queued_bodies(api_payload)]},
    }
    paths = []
    for name, event in written.items():
        path = out / name
        path.write_text(json.dumps(event, indent=2, ensure_ascii=False) + "\n")
        paths.append(path)
    return paths
