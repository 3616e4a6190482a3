"""The real Lambda handlers, invoked with API Gateway v2 and SQS events, against moto server
(SQS, DynamoDB, Secrets Manager) and the Pinterest stand-in (a real HTTP server)."""

import base64
import hashlib
import hmac
import importlib
import json
import time
import uuid

import pytest

from pinrelay import config
from pinrelay_local.http_gateway import LambdaContext, build_http_api_event
from pinrelay_local.pinterest_standin import ConversionEventsValidator, PinterestStandIn
from tests.conftest import shopify_order

AD_ACCOUNT = "549755885175"
API_KEY = "test-ingest-key"
SHOPIFY_SECRET = "test-shopify-secret"
TOKEN = "test-conversion-token"
WOO_SECRET = "test-woo-secret"
EU_ACCOUNT = {"name": "eu", "ad_account_id": "111222333", "conversion_token": "eu-token",
              "api_key_sha256": [hashlib.sha256(b"eu-key").hexdigest()],
              "shopify_shop_domains": ["eu-shop.myshopify.com"], "shopify_webhook_secrets": ["eu-shop-secret"]}


@pytest.fixture
def standin():
    with PinterestStandIn(token=TOKEN) as server:
        yield server


@pytest.fixture
def stack(aws, dedup_table, queue_url, standin, monkeypatch):
    suffix = uuid.uuid4().hex[:6]
    names = {}
    for kind, value in (("ingest", API_KEY), ("shopify", SHOPIFY_SECRET), ("token", TOKEN)):
        names[kind] = f"pinrelay/{kind}-{suffix}"
        aws["secretsmanager"].create_secret(Name=names[kind], SecretString=value)
    env = {
        "PINTEREST_AD_ACCOUNT_ID": AD_ACCOUNT, "QUEUE_URL": queue_url, "DEDUP_TABLE_NAME": dedup_table,
        "INGEST_API_KEY_SECRET_NAME": names["ingest"], "SHOPIFY_WEBHOOK_SECRET_NAME": names["shopify"],
        "PINTEREST_CONVERSION_TOKEN_SECRET_NAME": names["token"], "PINTEREST_API_URL": standin.base_url,
        "PINTEREST_TEST_MODE": "false", "POWERTOOLS_SERVICE_NAME": "pinrelay", "POWERTOOLS_METRICS_NAMESPACE": "Pinrelay",
        "SENDER_BACKOFF_BASE_SECONDS": "0", "SENDER_MAX_ATTEMPTS": "2",
        "WOOCOMMERCE_WEBHOOK_SECRET": WOO_SECRET, "ACCOUNT_MAP": json.dumps({"accounts": [EU_ACCOUNT]}),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config.ingest_settings.cache_clear()
    config.sender_settings.cache_clear()
    ingest = importlib.import_module("ingest_handler")
    sender = importlib.import_module("sender_handler")
    ingest.service.cache_clear()
    sender.service.cache_clear()
    yield {"ingest": ingest, "sender": sender, "aws": aws, "queue_url": queue_url, "table": dedup_table, "standin": standin}
    config.ingest_settings.cache_clear()
    config.sender_settings.cache_clear()


def call_ingest(stack, path, body: bytes, headers: dict[str, str]):
    event = build_http_api_event(method="POST", raw_path=path, raw_query="", header_pairs=list(headers.items()), body=body,
                                 source_ip="127.0.0.1", route_key=f"POST {path}")
    answer = stack["ingest"].lambda_handler(event, LambdaContext("IngestFunction"))
    return answer["statusCode"], json.loads(answer["body"])


def post_events(stack, payload, key=API_KEY):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return call_ingest(stack, "/events", body, {"x-api-key": key, "content-type": "application/json"})


def sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def post_shopify(stack, order, topic="orders/create", secret=SHOPIFY_SECRET, **headers):
    body = json.dumps(order).encode()
    return call_ingest(stack, "/webhooks/shopify", body, {"x-shopify-hmac-sha256": sign(body, secret), "x-shopify-topic": topic,
                                                          "x-shopify-webhook-id": str(uuid.uuid4()), **headers})


def post_woocommerce(stack, body: bytes, topic="order.created", secret=WOO_SECRET, content_type="application/json", **headers):
    return call_ingest(stack, "/webhooks/woocommerce", body, {"x-wc-webhook-signature": sign(body, secret), "x-wc-webhook-topic": topic,
                                                              "content-type": content_type, **headers})


def drain(stack):
    """Receive what is queued and hand it to the sender as Lambda's SQS event source would."""
    sqs = stack["aws"]["sqs"]
    records = []
    while True:
        batch = sqs.receive_message(QueueUrl=stack["queue_url"], MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])
        if not batch:
            break
        records += batch
    event = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                          "attributes": m["Attributes"], "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
                          "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"}
                         for m in records]}
    return records, stack["sender"].lambda_handler(event, LambdaContext("SenderFunction", timeout_s=120))


def api_event(now, event_id="e1", **extra):
    return {"event_name": "checkout", "action_source": "web", "event_id": event_id, "event_time": now,
            "user_data": {"em": ["Bob@Example.com"], "ph": "+1 (502) 459-2181", "client_ip_address": "216.3.128.12",
                          "client_user_agent": "Mozilla/5.0"},
            "custom_data": {"value": 19.99, "currency": "USD"}, **extra}


def test_api_events_flow_to_pinterest_once(stack, now):
    status, body = post_events(stack, {"data": [api_event(now, "e1"), api_event(now, "e2"), {"event_id": "bad"}]})
    assert status == 202
    assert [e["status"] for e in body["events"]] == ["accepted", "accepted", "rejected"]
    assert body["events"][2]["reason"].startswith("event_name: Field required")
    status, body = post_events(stack, api_event(now, "e1"))
    assert status == 202 and body["events"][0]["status"] == "duplicate"
    records, answer = drain(stack)
    assert len(records) == 2 and answer == {"batchItemFailures": []}
    (request,) = stack["standin"].received
    assert request["status"] == 200 and request["ad_account_id"] == AD_ACCOUNT and request["test"] is False
    assert ConversionEventsValidator().errors(request["body"]) == []
    sent = request["body"]["data"][0]
    assert sent["user_data"]["em"] == [hashlib.sha256(b"bob@example.com").hexdigest()]
    assert sent["user_data"]["ph"] == [hashlib.sha256(b"15024592181").hexdigest()]
    assert sent["custom_data"]["value"] == "19.99"
    item = stack["aws"]["dynamodb"].get_item(TableName=stack["table"], Key={"pk": {"S": f"{AD_ACCOUNT}#checkout#e1"}})["Item"]
    assert item["state"]["S"] == "delivered" and item["attempts"]["N"] == "1"


def test_no_raw_pii_in_the_queue(stack, now):
    post_events(stack, api_event(now))
    message = stack["aws"]["sqs"].receive_message(QueueUrl=stack["queue_url"])["Messages"][0]["Body"]
    for raw in ("Bob@Example.com", "bob@example.com", "459-2181", "15024592181"):
        assert raw not in message


@pytest.mark.parametrize(
    ("body", "key", "status", "message"),
    [
        (b"{not json", API_KEY, 400, "body is not JSON"),
        (b"{}", "wrong-key", 401, "unauthorized"),
        (b"[1, 2]", API_KEY, 400, 'body must be one event object or {"data": [events]}'),
        (json.dumps({"data": [{}] * 1001}).encode(), API_KEY, 413, "data: 1001 events; at most 1000 per request"),
        (b"{" + b" " * 1_048_577 + b"}", API_KEY, 413, "body over 1048576 bytes; split it into several requests"),
    ],
)
def test_bad_requests_get_clear_errors(stack, body, key, status, message):
    assert post_events(stack, body, key=key) == (status, {"message": message})


def test_422_when_no_event_is_valid_and_nothing_is_queued(stack, now):
    status, body = post_events(stack, {"data": [api_event(now - 8 * 86400), {"event_name": "checkout"}]})
    assert status == 422 and body["rejected"] == 2
    assert "Messages" not in stack["aws"]["sqs"].receive_message(QueueUrl=stack["queue_url"])


def test_shopify_order_is_verified_mapped_and_deduplicated(stack, now):
    order = shopify_order(now)
    assert post_shopify(stack, order, secret="not-the-secret") == (401, {"message": "unauthorized"})
    status, body = post_shopify(stack, order)
    assert status == 200 and body["events"][0] == {"index": 0, "status": "accepted", "event_id": "450789469", "event_name": "checkout",
                                                   "match_keys": ["em", "ph", "external_id", "address"]}
    status, body = post_shopify(stack, order)  # Shopify's retry of the same order
    assert body["events"][0]["status"] == "duplicate"
    assert post_shopify(stack, order, topic="app/uninstalled")[0] == 200
    records, answer = drain(stack)
    assert len(records) == 1 and answer == {"batchItemFailures": []}
    assert stack["standin"].received[0]["body"]["data"][0]["custom_data"]["order_id"] == "450789469"


def test_sender_returns_unreadable_messages_and_pinterest_outages_as_batch_failures(stack, now):
    post_events(stack, api_event(now))
    stack["aws"]["sqs"].send_message(QueueUrl=stack["queue_url"], MessageBody="not json at all")
    stack["standin"].set_fault("status", status=503)
    records, answer = drain(stack)
    assert len(records) == 2
    assert sorted(f["itemIdentifier"] for f in answer["batchItemFailures"]) == sorted(m["MessageId"] for m in records)
    assert len(stack["standin"].received) == 2  # SENDER_MAX_ATTEMPTS


def test_woocommerce_ping_and_paid_order(stack, now):
    from tests.conftest import load_fixture

    assert call_ingest(stack, "/webhooks/woocommerce", b"webhook_id=12", {"content-type": "application/x-www-form-urlencoded"})[0] == 200
    order = load_fixture("woocommerce/woocommerce_order_updated_wcrestdocs.json")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    for key in ("date_created_gmt", "date_modified_gmt", "date_paid_gmt", "date_completed_gmt"):
        order[key] = stamp
    body = json.dumps(order).encode()
    assert post_woocommerce(stack, body, secret="wrong")[0] == 401
    status, answer = post_woocommerce(stack, body)
    assert status == 200 and answer["events"][0]["status"] == "accepted" and answer["events"][0]["event_name"] == "checkout"
    status, answer = post_woocommerce(stack, body, topic="order.updated")
    assert answer["events"][0]["status"] == "duplicate"  # created then updated: one checkout
    records, result = drain(stack)
    assert len(records) == 1 and result == {"batchItemFailures": []}


def test_account_map_routes_keys_and_shops_to_their_ad_account(stack, now):
    status, body = post_events(stack, api_event(now, "eu-1"), key="eu-key")
    assert status == 202 and body["accepted"] == 1
    order = shopify_order(now)
    # the EU shop must sign with its own secret: the default secret is refused for it
    assert post_shopify(stack, order, **{"x-shopify-shop-domain": "eu-shop.myshopify.com"})[0] == 401
    status, body = post_shopify(stack, order, secret="eu-shop-secret", **{"x-shopify-shop-domain": "eu-shop.myshopify.com"})
    assert status == 200 and body["accepted"] == 1
    stack["standin"].account_tokens["111222333"] = "eu-token"  # the EU account's own token is required
    records, answer = drain(stack)
    assert {json.loads(m["Body"])["ad_account_id"] for m in records} == {"111222333"}
    assert answer == {"batchItemFailures": []}
    (request,) = stack["standin"].received
    assert request["ad_account_id"] == "111222333" and request["status"] == 200


def test_replayed_shopify_webhook_outside_the_window_is_refused(stack, now):
    order = shopify_order(now)
    old = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now - 6 * 3600))
    fresh = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now - 60))
    assert post_shopify(stack, order, **{"x-shopify-triggered-at": old}) == (401, {"message": "unauthorized"})
    assert post_shopify(stack, order, **{"x-shopify-triggered-at": fresh})[0] == 200


def test_a_secret_left_at_its_placeholder_lets_nobody_in(stack, monkeypatch):
    monkeypatch.setenv("INGEST_API_KEY_SECRET_NAME", "")
    monkeypatch.setenv("INGEST_API_KEY", "REPLACE_ME")
    config.ingest_settings.cache_clear()
    assert post_events(stack, {"data": []}, key="REPLACE_ME") == (401, {"message": "unauthorized"})


def _stdout_documents(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_metrics_ingest_counts_answers_and_the_sender_counts_deliveries_and_match_keys(stack, now, capsys):
    capsys.readouterr()
    post_events(stack, {"data": [api_event(now, "m1"), api_event(now, "m2")]})
    ingest_docs = [d for d in _stdout_documents(capsys.readouterr().out) if "_aws" in d]
    # one short document for a clean request: the accepted count, no per-request match keys, no log line
    assert [(d["source"], d["event_name"], d["EventsAccepted"]) for d in ingest_docs] == [("api", "checkout", [2.0])]
    assert not any(name.startswith("MatchKey_") for d in ingest_docs for name in d)
    drain(stack)
    sender_lines = _stdout_documents(capsys.readouterr().out)
    per_source = [d for d in sender_lines if d.get("source") == "api"]
    assert len(per_source) == 1
    assert per_source[0]["EventsDelivered"] == [2.0]
    assert per_source[0]["MatchKey_em"] == [2.0] and per_source[0]["MatchKey_ph"] == [2.0] and per_source[0]["MatchKey_ip_ua"] == [2.0]
    totals = [d for d in sender_lines if "_aws" in d and "source" not in d]
    assert len(totals) == 1 and totals[0]["EventsDelivered"] == [2.0] and totals[0]["EventsRejectedByPinterest"] == [0.0]
    assert totals[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert "PinterestRetries" not in totals[0]  # zero counts are not written
    assert not [d for d in sender_lines if d.get("message") == "batch delivered"]  # a clean batch logs nothing
