"""The real Lambda handlers, invoked with API Gateway v2 and SQS events, against moto server
(SQS, DynamoDB, Secrets Manager) and the Pinterest stand-in (a real HTTP server)."""

import hashlib
import json
import time

import pytest

from pinrelay import config
from pinrelay_local.pinterest_standin import ConversionEventsValidator
from tests.conftest import shopify_order
from tests.integration.handler_stack import AD_ACCOUNT, API_KEY, api_event, call_ingest, drain, post_events, post_shopify, post_woocommerce


def test_api_events_flow_to_pinterest_once(stack, now):
    status, body = post_events(stack, {"data": [api_event(now, "e1"), api_event(now, "e2"), {"event_id": "bad"}]})
    assert status == 202
    assert [e["status"] for e in body["events"]] == ["accepted", "accepted", "rejected"]
    assert body["events"][2]["reason"].startswith("event_name: Field required")
    # the client sends e1 again: queued again, and the sender's claim drops the copy
    status, body = post_events(stack, api_event(now, "e1"))
    assert status == 202 and body["events"][0]["status"] == "accepted"
    records, answer = drain(stack)
    assert len(records) == 3 and answer == {"batchItemFailures": []}
    (request,) = stack["standin"].received
    assert sorted(e["event_id"] for e in request["body"]["data"]) == ["e1", "e2"]
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
    status, body = post_shopify(stack, order)  # Shopify's retry of the same order: queued, dropped by the sender
    assert body["events"][0]["status"] == "accepted"
    assert post_shopify(stack, order, topic="app/uninstalled")[0] == 200
    records, answer = drain(stack)
    assert len(records) == 2 and answer == {"batchItemFailures": []}
    (request,) = stack["standin"].received
    assert [e["custom_data"]["order_id"] for e in request["body"]["data"]] == ["450789469"]


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
    assert answer["events"][0]["status"] == "accepted"  # the same event_id: the sender sends it once
    records, result = drain(stack)
    assert len(records) == 2 and result == {"batchItemFailures": []}
    assert len(stack["standin"].received) == 1


def test_woocommerce_orders_take_their_own_content_id_field(stack, now, monkeypatch):
    from tests.conftest import load_fixture

    monkeypatch.setenv("SHOPIFY_CONTENT_ID_FIELD", "variant_id")
    monkeypatch.setenv("WOOCOMMERCE_CONTENT_ID_FIELD", "sku")
    config.ingest_settings.cache_clear()
    order = load_fixture("woocommerce/woocommerce_order_created_wcrestdocs.json")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    for key in ("date_created_gmt", "date_paid_gmt"):
        order[key] = stamp
    status, answer = post_woocommerce(stack, json.dumps(order).encode())
    assert status == 200 and answer["events"][0]["status"] == "accepted"
    drain(stack)
    (request,) = stack["standin"].received
    assert request["body"]["data"][0]["custom_data"]["content_ids"] == ["Bar3"]  # the sample's one sku


def test_account_map_routes_keys_and_shops_to_their_ad_account(stack, now):
    status, body = post_events(stack, api_event(now, "eu-1"), key="eu-key")
    assert status == 202 and body["accepted"] == 1
    order = shopify_order(now)
    order["order_status_url"] = order["order_status_url"].replace("jsmith.myshopify.com", "eu-shop.myshopify.com")
    # the EU shop must sign with its own secret: the default secret is refused for it
    assert post_shopify(stack, order, **{"x-shopify-shop-domain": "eu-shop.myshopify.com"})[0] == 401
    status, body = post_shopify(stack, order, secret="eu-shop-secret-long-enough-to-resist-guessing", **{"x-shopify-shop-domain": "eu-shop.myshopify.com"})
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


def test_metrics_ingest_counts_what_it_did_not_queue_and_the_sender_counts_deliveries_and_match_keys(stack, now, capsys):
    capsys.readouterr()
    post_events(stack, {"data": [api_event(now, "m1"), api_event(now, "m2")]})
    assert _stdout_documents(capsys.readouterr().out) == []  # a clean request writes no metrics and no log line
    post_events(stack, {"data": [api_event(now, "m3"), {"event_name": "checkout"}, api_event(now, "m3")]})
    ingest_docs = [d for d in _stdout_documents(capsys.readouterr().out) if "_aws" in d]
    assert [(d["event_name"], d.get("EventsRejected"), d.get("EventsDuplicate"), d.get("EventsAccepted")) for d in ingest_docs] == [
        ("checkout", [1.0], [1.0], None)]
    drain(stack)
    sender_lines = _stdout_documents(capsys.readouterr().out)
    per_source = [d for d in sender_lines if d.get("source") == "api"]
    assert len(per_source) == 1
    assert per_source[0]["EventsDelivered"] == [3.0]
    assert per_source[0]["MatchKey_em"] == [3.0] and per_source[0]["MatchKey_ph"] == [3.0] and per_source[0]["MatchKey_ip_ua"] == [3.0]
    totals = [d for d in sender_lines if "_aws" in d and "source" not in d]
    assert len(totals) == 1 and totals[0]["EventsDelivered"] == [3.0] and totals[0]["EventsRejectedByPinterest"] == [0.0]
    assert totals[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert "PinterestRetries" not in totals[0]  # zero counts are not written
    assert not [d for d in sender_lines if d.get("message") == "batch delivered"]  # a clean batch logs nothing


def test_the_sender_counts_events_not_sent_per_reason_on_the_dimensions_the_alarm_reads(stack, now, capsys):
    stale = api_event(now - 7 * 86400 - 60, "stale-1")
    body = {"v": 2, "ad_account_id": AD_ACCOUNT, "source": "api", "dedup_key": f"{AD_ACCOUNT}#checkout#stale-1",
            "accepted_at": now - 7 * 86400, "event": {**stale, "user_data": {"em": ["0" * 64]}}}
    stack["aws"]["sqs"].send_message(QueueUrl=stack["queue_url"], MessageBody=json.dumps(body))
    capsys.readouterr()
    records, answer = drain(stack)
    assert answer == {"batchItemFailures": []} and not stack["standin"].received
    documents = _stdout_documents(capsys.readouterr().out)
    (not_sent,) = [d for d in documents if "EventsNotSent" in d and "reason" in d]
    assert (not_sent["reason"], not_sent["service"], not_sent["EventsNotSent"]) == ("too_old", "pinrelay", [1.0])
    assert not_sent["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["reason", "service"]]  # EventsTooOldAlarm's


def test_an_event_delivered_before_is_not_sent_again_after_a_dlq_redrive(stack, now):
    from pinrelay_cli.ops import redrive

    sqs = stack["aws"]["sqs"]
    dlq = sqs.create_queue(QueueName=f"dlq-{time.time_ns()}")["QueueUrl"]
    post_events(stack, api_event(now, "r1"))
    body = sqs.receive_message(QueueUrl=stack["queue_url"], VisibilityTimeout=0)["Messages"][0]["Body"]
    drain(stack)  # delivered and recorded
    assert len(stack["standin"].received) == 1
    # the same message ends up in the DLQ (say the invocation died before SQS deleted it) and is redriven
    sqs.send_message(QueueUrl=dlq, MessageBody=body)
    assert redrive(sqs, dlq, stack["queue_url"], wait_seconds=0) == 1
    records, answer = drain(stack)
    assert len(records) == 1 and records[0]["Attributes"]["ApproximateReceiveCount"] == "1"
    assert answer == {"batchItemFailures": []}
    assert len(stack["standin"].received) == 1  # its claim found it delivered: dropped, not sent again


def test_the_traced_pinterest_call_does_not_record_the_answer(stack, monkeypatch):
    """1000 per-event statuses in the subsegment would pass X-Ray's 64 KB segment limit."""
    sender = stack["sender"]
    captured = []
    monkeypatch.setattr(sender.tracer, "capture_method",
                        lambda method, **options: captured.append((method.__name__, options)) or method)
    sender.service.cache_clear()
    sender.service()
    assert captured == [("post_events", {"capture_response": False})]
    sender.service.cache_clear()


def test_powertools_dev_mode_does_not_print_requests(stack, now, monkeypatch, capsys):
    """POWERTOOLS_DEV=true puts Powertools' event handler in debug mode, which prints every
    request, API keys and personal data included: pinrelay's resolver stays out of it."""
    from pinrelay_local.http_gateway import LambdaContext, build_http_api_event
    from pinrelay_local.stack import REPO_ROOT, import_module_from_path

    monkeypatch.setenv("POWERTOOLS_DEV", "true")
    module = import_module_from_path("ingest_handler_dev_mode", REPO_ROOT / "functions/ingest/ingest_handler.py")
    body = json.dumps(api_event(now, "dev-1", user_data={"em": "maria.garcia@example.com"})).encode()
    event = build_http_api_event(method="POST", raw_path="/events", raw_query="", body=body, source_ip="127.0.0.1",
                                 header_pairs=[("x-api-key", API_KEY), ("content-type", "application/json")],
                                 route_key="POST /events")
    capsys.readouterr()
    answer = module.lambda_handler(event, LambdaContext("IngestFunction"))
    printed = capsys.readouterr()
    assert answer["statusCode"] == 202
    assert "maria.garcia" not in printed.out + printed.err and API_KEY not in printed.out + printed.err
