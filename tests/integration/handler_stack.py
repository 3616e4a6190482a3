"""The real handlers' wiring for integration tests: constants, and calls that speak API Gateway v2
and SQS events to them (the ``stack`` fixture, in conftest.py, builds the wiring)."""

import base64
import hashlib
import hmac
import json
import time
import uuid

from pinrelay_local.http_gateway import LambdaContext, build_http_api_event
from pinrelay_local.sqs_event_source import message_attributes_to_lambda

AD_ACCOUNT = "549755885175"
API_KEY = "test-ingest-key-long-enough-to-resist-guessing"
SHOPIFY_SECRET = "test-shopify-secret-long-enough-to-resist-guessing"
TOKEN = "test-conversion-token"
WOO_SECRET = 'i<sYil@HSB9ijUtRQb3SzeKAEx}tS>zc[eq)PthE,uRM:(P P%'
# an account map entry (ingest's secret: no token) and its token (the sender's tokens map)
EU_ACCOUNT = {"name": "eu", "ad_account_id": "111222333",
              "api_key_sha256": [hashlib.sha256(b"eu-key").hexdigest()],
              "shopify_shop_domains": ["eu-shop.myshopify.com"], "shopify_webhook_secrets": ["eu-shop-secret-long-enough-to-resist-guessing"]}
EU_TOKEN = "eu-token"
ACCOUNT_TOKENS = {EU_ACCOUNT["ad_account_id"]: EU_TOKEN}



def call_ingest(stack, path, body: bytes, headers: dict[str, str]):
    event = build_http_api_event(method="POST", raw_path=path, raw_query="", header_pairs=list(headers.items()), body=body,
                                 source_ip="127.0.0.1", route_key=f"POST {path}")
    answer = stack["ingest"].lambda_handler(event, LambdaContext("IngestFunction"))
    return answer["statusCode"], json.loads(answer["body"])


def post_events(stack, payload, key=API_KEY):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return call_ingest(stack, "/events", body, {"x-api-key": key, "content-type": "application/json"})


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def post_shopify(stack, order, topic="orders/create", secret=SHOPIFY_SECRET, **headers):
    body = json.dumps(order).encode()
    return call_ingest(stack, "/webhooks/shopify", body, {"x-shopify-hmac-sha256": sign(body, secret), "x-shopify-topic": topic,
                                                          "x-shopify-webhook-id": str(uuid.uuid4()),
                                                          "x-shopify-triggered-at": now_iso(), **headers})


def post_woocommerce(stack, body: bytes, topic="order.created", secret=WOO_SECRET, content_type="application/json", **headers):
    return call_ingest(stack, "/webhooks/woocommerce", body, {"x-wc-webhook-signature": sign(body, secret), "x-wc-webhook-topic": topic,
                                                              "content-type": content_type, **headers})


def drain(stack):
    """Receive what is queued and hand it to the sender as Lambda's SQS event source would."""
    sqs = stack["aws"]["sqs"]
    records = []
    while True:
        batch = sqs.receive_message(QueueUrl=stack["queue_url"], MaxNumberOfMessages=10, AttributeNames=["All"],
                                    MessageAttributeNames=["All"]).get("Messages", [])
        if not batch:
            break
        records += batch
    event = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                          "attributes": m["Attributes"], "messageAttributes": message_attributes_to_lambda(m.get("MessageAttributes")), "md5OfBody": m["MD5OfBody"],
                          "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"}
                         for m in records]}
    return records, stack["sender"].lambda_handler(event, LambdaContext("SenderFunction", timeout_s=120))


def api_event(now, event_id="e1", **extra):
    return {"event_name": "checkout", "action_source": "web", "event_id": event_id, "event_time": now,
            "user_data": {"em": ["Bob@Example.com"], "ph": "+1 (502) 459-2181", "client_ip_address": "216.3.128.12",
                          "client_user_agent": "Mozilla/5.0"},
            "custom_data": {"value": 19.99, "currency": "USD"}, **extra}
