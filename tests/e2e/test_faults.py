"""The fault matrix ("nothing lost, nothing sent twice"): the whole local stack, in-process, with
the Pinterest stand-in (or AWS, at ingest) misbehaving.

Times are scaled down from production so that each test takes a few seconds:

=============================  ==========  =================================================
setting                        here        in AWS
=============================  ==========  =================================================
SQS visibility timeout         1 s         780 s
maxReceiveCount                6           5
PINTEREST_TIMEOUT_SECONDS      0.5 s       10 s
SENDER_MAX_ATTEMPTS            3           4
backoff base / max             0.05/0.5 s  0.5/8 s
"503 for 60 s"                 503 for 3.5 s (longer than one invocation's 3 attempts, 0.15 s,
                                            so the messages go back to the queue and come again)
=============================  ==========  =================================================

Every count is made at the stand-in by event_id, over the events Pinterest processed (see
pinrelay_local.pinterest_standin.tally_standin): "delivered once" means processed exactly once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from pinrelay_local.pinterest_standin import StandInTally, tally_standin
from pinrelay_local.stack import LocalStack
from tests.conftest import shopify_order

pytestmark = pytest.mark.e2e

CLIENT_TIMEOUT = 0.5
MAX_ATTEMPTS = 3
OUTAGE_SECONDS = 3.5
HANDLER_ENV = {
    "PINTEREST_TIMEOUT_SECONDS": str(CLIENT_TIMEOUT),
    "SENDER_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
    "SENDER_BACKOFF_BASE_SECONDS": "0.05",
    "SENDER_BACKOFF_MAX_SECONDS": "0.5",
    "LOG_LEVEL": "ERROR",
}


@pytest.fixture(scope="module")
def stack():
    with LocalStack(port=0, test_mode=False, visibility_timeout_s=1, max_receive_count=6, sender_batch_size=100,
                    sender_window_s=0.2, handler_env=HANDLER_ENV) as running:
        yield running


@pytest.fixture
def pipeline(stack):
    """The shared stack, with an empty queue and no fault, and put back that way afterwards."""
    assert stack.wait_until_drained(timeout=20), "a previous test left messages behind"
    stack.standin.clear_fault()
    yield stack
    stack.standin.clear_fault()
    if not stack.standin.running:
        stack.standin.start()
    assert stack.wait_until_drained(timeout=20), f"queue not drained: {stack.queue_depth()}"


# -- helpers ----------------------------------------------------------------------------------


def new_prefix() -> str:
    return f"f-{uuid.uuid4().hex[:8]}-"


def api_event(event_id: str, event_time: int | None = None) -> dict[str, Any]:
    return {
        "event_name": "checkout", "action_source": "web", "event_id": event_id,
        "event_time": event_time or int(time.time()),
        "user_data": {"em": f"{event_id}@example.com", "client_ip_address": "203.0.113.9", "client_user_agent": "Mozilla/5.0"},
        "custom_data": {"value": "19.99", "currency": "USD"},
    }


def post_events(stack: LocalStack, events: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    payload: Any = events[0] if len(events) == 1 else {"data": events}
    response = requests.post(f"{stack.url}/events", json=payload, timeout=15,
                             headers={"x-api-key": stack.ingest_api_key, "Connection": "close"})
    return response.status_code, response.json()


def post_order(stack: LocalStack, order: dict[str, Any], webhook_id: str) -> tuple[int, dict[str, Any]]:
    body = json.dumps(order).encode()
    signature = base64.b64encode(hmac.new(stack.shopify_webhook_secret.encode(), body, hashlib.sha256).digest()).decode()
    response = requests.post(f"{stack.url}/webhooks/shopify", data=body, timeout=15, headers={
        "Content-Type": "application/json", "X-Shopify-Topic": "orders/create", "X-Shopify-Hmac-Sha256": signature,
        "X-Shopify-Webhook-Id": webhook_id, "X-Shopify-Triggered-At": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "Connection": "close"})
    return response.status_code, response.json()


def key(stack: LocalStack, event_id: str, event_name: str = "checkout", account: str | None = None) -> str:
    return f"{account or stack.ad_account_id}#{event_name}#{event_id}"


def tally(stack: LocalStack) -> StandInTally:
    return tally_standin(stack.standin.received, CLIENT_TIMEOUT)


def processed(stack: LocalStack, keys: list[str]) -> dict[str, int]:
    counts = tally(stack).processed
    return {k: counts[k] for k in keys}


def item(stack: LocalStack, dedup_key: str) -> dict[str, Any] | None:
    found = stack.dynamodb.get_item(TableName=stack.table_name, Key={"pk": {"S": dedup_key}}, ConsistentRead=True)
    if "Item" not in found:
        return None
    raw = found["Item"]
    return {"state": raw["state"]["S"], "attempts": int(raw["attempts"]["N"]),
            "error_message": raw.get("error_message", {}).get("S")}


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def wait_delivered(stack: LocalStack, keys: list[str], timeout: float = 15.0, times: int = 1) -> None:
    wait_for(lambda: all(n >= times for n in processed(stack, keys).values())
             and all((item(stack, k) or {}).get("state") == "delivered" for k in keys),
             timeout, f"{len(keys)} events delivered")


def settle(stack: LocalStack) -> None:
    """Wait until nothing is queued, plus a batching window and a visibility timeout: a second
    delivery would have happened by then."""
    assert stack.wait_until_drained(timeout=20)
    time.sleep(1.5)


def requests_with(stack: LocalStack, keys: set[str]) -> list[dict[str, Any]]:
    return [r for r in stack.standin.received
            if r["body"] and any(key(stack, e.get("event_id"), e.get("event_name"), r["ad_account_id"]) in keys
                                 for e in r["body"].get("data", []))]


def client_of_the_handlers(service: str) -> Any:
    """The cached boto3 client the handlers use (pinrelay.adapters.aws.client) in the stack."""
    return importlib.import_module("pinrelay.adapters.aws").client(service)


def aws_error(operation: str, code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "Rate exceeded (injected)"},
                        "ResponseMetadata": {"HTTPStatusCode": 400}}, operation)


# -- Pinterest misbehaves -----------------------------------------------------------------------


def test_a_503_outage_longer_than_an_invocation_then_recovery_delivers_each_event_once(pipeline):
    prefix = new_prefix()
    ids = [f"{prefix}{i}" for i in range(30)]
    keys = [key(pipeline, i) for i in ids]
    batches_before = len(pipeline.batches)
    # longer than an invocation by count, not by the clock (a loaded machine makes fewer requests
    # in a given time): more failed requests than two invocations make, whichever invocations make them
    pipeline.standin.set_fault("status", status=503, count=2 * MAX_ATTEMPTS + 1)
    for start in range(0, 30, 10):
        status, body = post_events(pipeline, [api_event(i) for i in ids[start:start + 10]])
        assert status == 202 and body["accepted"] == 10

    wait_delivered(pipeline, keys, timeout=20)
    settle(pipeline)

    assert processed(pipeline, keys) == dict.fromkeys(keys, 1)
    outage = [r for r in requests_with(pipeline, set(keys)) if r["status"] == 503]
    assert len(outage) > MAX_ATTEMPTS  # more than one invocation's worth: the messages came back
    assert any(b.failed for b in pipeline.batches[batches_before:])
    assert max(item(pipeline, k)["attempts"] for k in keys) >= 2  # received more than once


def test_429_with_retry_after_is_honoured(pipeline):
    prefix = new_prefix()
    keys = [key(pipeline, f"{prefix}{i}") for i in range(3)]
    pipeline.standin.set_fault("status", status=429, retry_after="1", count=2)
    assert post_events(pipeline, [api_event(f"{prefix}{i}") for i in range(3)])[0] == 202

    wait_delivered(pipeline, keys)
    settle(pipeline)

    assert processed(pipeline, keys) == dict.fromkeys(keys, 1)
    sent = requests_with(pipeline, set(keys))
    assert [r["status"] for r in sent] == [429, 429, 200]
    gaps = [later["at"] - earlier["at"] for earlier, later in zip(sent, sent[1:])]
    assert all(gap >= 0.95 for gap in gaps), gaps  # backoff alone would be 0.05 s and 0.1 s


def test_answers_slower_than_the_timeout_are_sent_again_and_are_the_only_repeats(pipeline):
    """Pinterest may process a request pinrelay gave up on: pinrelay cannot know, sends the events
    again, and Pinterest drops the repeat by event_id. The ledger counts such a repeat as
    explained (every processing but one was in an abandoned request); anything else is not."""
    prefix = new_prefix()
    slow_keys = [key(pipeline, f"{prefix}slow-{i}") for i in range(4)]
    pipeline.standin.set_fault("slow", seconds=2 * CLIENT_TIMEOUT, count=1)
    assert post_events(pipeline, [api_event(f"{prefix}slow-{i}") for i in range(4)])[0] == 202
    wait_delivered(pipeline, slow_keys, times=2)  # the abandoned request is processed too, later

    in_time_keys = [key(pipeline, f"{prefix}in-time-{i}") for i in range(4)]
    pipeline.standin.set_fault("slow", seconds=CLIENT_TIMEOUT / 3, count=1)
    assert post_events(pipeline, [api_event(f"{prefix}in-time-{i}") for i in range(4)])[0] == 202
    wait_delivered(pipeline, in_time_keys)
    settle(pipeline)

    counts = tally(pipeline)
    assert {k: counts.processed[k] for k in slow_keys} == dict.fromkeys(slow_keys, 2)
    assert {k: counts.abandoned[k] for k in slow_keys} == dict.fromkeys(slow_keys, 1)
    assert {k: counts.processed[k] for k in in_time_keys} == dict.fromkeys(in_time_keys, 1)
    explained, unexplained = counts.twice()
    assert set(slow_keys) <= explained and not unexplained & set(slow_keys + in_time_keys)


def test_dropped_and_refused_connections_are_retried_until_pinterest_is_back(pipeline):
    prefix = new_prefix()
    dropped = [key(pipeline, f"{prefix}drop-{i}") for i in range(5)]
    pipeline.standin.set_fault("close", duration=OUTAGE_SECONDS)
    assert post_events(pipeline, [api_event(f"{prefix}drop-{i}") for i in range(5)])[0] == 202
    wait_delivered(pipeline, dropped, timeout=20)

    refused = [key(pipeline, f"{prefix}refused-{i}") for i in range(5)]
    pipeline.standin.stop()  # nothing listens on the port: connection refused
    assert post_events(pipeline, [api_event(f"{prefix}refused-{i}") for i in range(5)])[0] == 202
    time.sleep(OUTAGE_SECONDS)
    assert processed(pipeline, refused) == dict.fromkeys(refused, 0)
    pipeline.standin.start()  # the same port again
    wait_delivered(pipeline, refused, timeout=20)
    settle(pipeline)

    assert processed(pipeline, dropped + refused) == dict.fromkeys(dropped + refused, 1)
    assert any(r["status"] == 0 for r in requests_with(pipeline, set(dropped)))  # some were dropped


def test_a_200_whose_body_is_not_json_is_retried(pipeline):
    prefix = new_prefix()
    keys = [key(pipeline, f"{prefix}{i}") for i in range(3)]
    pipeline.standin.set_fault("not_json", count=2)
    assert post_events(pipeline, [api_event(f"{prefix}{i}") for i in range(3)])[0] == 202
    wait_delivered(pipeline, keys)
    settle(pipeline)

    assert processed(pipeline, keys) == dict.fromkeys(keys, 1)
    assert [r["fault"] for r in requests_with(pipeline, set(keys))] == ["not_json", "not_json", None]


def test_a_422_records_the_failed_events_as_rejected_and_delivers_the_rest_without_retrying(pipeline):
    """The stand-in is told to take events up to one hour old: two events two hours old pass
    pinrelay's own check (7 days) and are failed by "Pinterest" in an otherwise good batch."""
    prefix = new_prefix()
    now = int(time.time())
    stale = [key(pipeline, f"{prefix}stale-{i}") for i in range(2)]
    fresh = [key(pipeline, f"{prefix}fresh-{i}") for i in range(4)]
    events = [api_event(f"{prefix}fresh-0"), api_event(f"{prefix}stale-0", now - 7200), api_event(f"{prefix}fresh-1"),
              api_event(f"{prefix}fresh-2"), api_event(f"{prefix}stale-1", now - 7200), api_event(f"{prefix}fresh-3")]
    saved = pipeline.standin.max_event_age_seconds
    pipeline.standin.max_event_age_seconds = 3600
    try:
        status, body = post_events(pipeline, events)
        assert status == 202 and body["accepted"] == 6
        wait_delivered(pipeline, fresh)
        wait_for(lambda: all((item(pipeline, k) or {}).get("state") == "rejected" for k in stale), 10, "rejections")
        settle(pipeline)
    finally:
        pipeline.standin.max_event_age_seconds = saved

    assert processed(pipeline, fresh + stale) == {**dict.fromkeys(fresh, 1), **dict.fromkeys(stale, 0)}
    for k in stale:
        record = item(pipeline, k)
        assert record["state"] == "rejected" and "Invalid event_timestamp parameter" in record["error_message"]
    (request,) = requests_with(pipeline, set(stale))  # sent once, never retried
    assert request["status"] == 422


# -- AWS misbehaves ---------------------------------------------------------------------------------
# (Processes killed at an AWS call, answers lost, SQS handing a message out twice: tests/crash.)


def test_sqs_throttling_at_ingest_answers_503_and_the_retry_is_delivered_once(pipeline):
    prefix = new_prefix()
    events = [api_event(f"{prefix}{i}") for i in range(12)]
    order = shopify_order()
    order["id"] = int(time.time() * 1000)
    keys = [key(pipeline, e["event_id"]) for e in events] + [key(pipeline, str(order["id"]))]
    sqs = client_of_the_handlers("sqs")

    def throttled(**_: Any) -> None:
        raise aws_error("SendMessageBatch", "ThrottlingException")

    sqs.meta.events.register("before-call.sqs.SendMessageBatch", throttled)
    try:
        api_status, api_body = post_events(pipeline, events)
        webhook_status, _ = post_order(pipeline, order, webhook_id="w-1")
    finally:
        sqs.meta.events.unregister("before-call.sqs.SendMessageBatch", throttled)
    assert api_status == 503 and {e["status"] for e in api_body["events"]} == {"error"}
    assert webhook_status == 503
    assert pipeline.queue_depth() == (0, 0) and {k: item(pipeline, k) for k in keys} == dict.fromkeys(keys)

    status, body = post_events(pipeline, events)  # the caller's retry
    assert status == 202 and body["accepted"] == 12
    assert post_order(pipeline, order, webhook_id="w-1")[1]["events"][0]["status"] == "accepted"  # Shopify's retry
    wait_delivered(pipeline, keys)
    settle(pipeline)
    assert processed(pipeline, keys) == dict.fromkeys(keys, 1)


def test_entries_sqs_fails_answer_503_and_the_retry_of_the_whole_request_sends_each_event_once(pipeline):
    prefix = new_prefix()
    events = [api_event(f"{prefix}{i}") for i in range(12)]
    keys = [key(pipeline, e["event_id"]) for e in events]
    sqs = client_of_the_handlers("sqs")
    refused_ids = {"3", "10"}  # the entry Ids SendMessageBatch reports as Failed

    def drop(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["refused"] = [e for e in params["Entries"] if e["Id"] in refused_ids]
        params["Entries"] = [e for e in params["Entries"] if e["Id"] not in refused_ids]

    def report(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        parsed.setdefault("Failed", []).extend(
            {"Id": e["Id"], "SenderFault": False, "Code": "InternalError", "Message": "injected"}
            for e in context.get("refused", []))

    sqs.meta.events.register("before-parameter-build.sqs.SendMessageBatch", drop)
    sqs.meta.events.register("after-call.sqs.SendMessageBatch", report)
    try:
        status, body = post_events(pipeline, events)
    finally:
        sqs.meta.events.unregister("before-parameter-build.sqs.SendMessageBatch", drop)
        sqs.meta.events.unregister("after-call.sqs.SendMessageBatch", report)
    assert status == 503
    statuses = [e["status"] for e in body["events"]]
    assert statuses == ["error" if str(i) in refused_ids else "accepted" for i in range(12)]

    status, body = post_events(pipeline, events)  # the caller's retry: all twelve queued again
    assert status == 202 and body["accepted"] == 12
    wait_delivered(pipeline, keys)
    settle(pipeline)
    assert processed(pipeline, keys) == dict.fromkeys(keys, 1)  # the ten queued twice were sent once


def test_dynamodb_throttling_at_the_senders_claim_delays_delivery_and_loses_nothing(pipeline):
    prefix = new_prefix()
    events = [api_event(f"{prefix}{i}") for i in range(8)]
    keys = [key(pipeline, e["event_id"]) for e in events]
    dynamodb = client_of_the_handlers("dynamodb")
    calls = []

    def throttle_the_first_claims(**_: Any) -> None:
        calls.append(1)
        if len(calls) <= 8 * 3:  # every attempt botocore makes for the first invocation's claims
            raise aws_error("UpdateItem", "ProvisionedThroughputExceededException")

    dynamodb.meta.events.register("before-call.dynamodb.UpdateItem", throttle_the_first_claims)
    try:
        status, body = post_events(pipeline, events)
        assert status == 202 and body["accepted"] == 8  # ingest does not need DynamoDB
        wait_delivered(pipeline, keys, timeout=20)
        settle(pipeline)
    finally:
        dynamodb.meta.events.unregister("before-call.dynamodb.UpdateItem", throttle_the_first_claims)
    assert processed(pipeline, keys) == dict.fromkeys(keys, 1)
    assert any(b.failed for b in pipeline.batches)  # the first invocation returned them to SQS


# -- a poison message ---------------------------------------------------------------------------


def test_a_poison_message_goes_to_the_dlq_without_holding_back_the_others(pipeline):
    prefix = new_prefix()
    keys = [key(pipeline, f"{prefix}{i}") for i in range(5)]
    pipeline.sqs.send_message(QueueUrl=pipeline.queue_url, MessageBody='{"v": 1, "event": "not a queued event"')
    started = time.monotonic()
    assert post_events(pipeline, [api_event(f"{prefix}{i}") for i in range(5)])[0] == 202
    wait_delivered(pipeline, keys, timeout=5)
    assert time.monotonic() - started < 5  # not held back behind the poison message

    wait_for(lambda: pipeline.queue_depth(pipeline.dlq_url)[0] == 1, 20, "the poison message in the DLQ")
    (message,) = pipeline.sqs.receive_message(QueueUrl=pipeline.dlq_url, VisibilityTimeout=0)["Messages"]
    assert message["Body"] == '{"v": 1, "event": "not a queued event"'
    pipeline.sqs.delete_message(QueueUrl=pipeline.dlq_url, ReceiptHandle=message["ReceiptHandle"])
    assert processed(pipeline, keys) == dict.fromkeys(keys, 1)
