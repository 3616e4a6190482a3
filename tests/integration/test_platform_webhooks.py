"""POST /webhooks/stripe and /webhooks/bigcommerce through the real ingest handler, the real
Stripe line-items and BigCommerce fetchers and the real sender, against moto server, the Stripe
and BigCommerce stand-ins and the Pinterest stand-in: signatures, the paid-only rules, one
conversion per session or order whatever arrives, line items and their failures, the fetch and
its failures, the account map. The line-items fetcher is run as its schedule runs it: it drains
its queue itself, and the tests read its summary and what it left on the queue."""

from __future__ import annotations

import base64
import re
import importlib
import json
import time
import uuid

import pytest

from pinrelay import config
from pinrelay.adapters.stripe_api import worst_drain_round_seconds
from pinrelay.sources.signatures import standard_webhook_signature, stripe_signature_header
from pinrelay.stripe_fetch import CONTENTS_TRIES
from pinrelay_local.http_gateway import LambdaContext, build_http_api_event
from pinrelay_local.platform_standins import (
    BigCommerceStandIn,
    StripeStandIn,
    example_orders,
    stripe_line_item,
)
from pinrelay_local.schedule import scheduled_event
from pinrelay_local.sqs_event_source import message_attributes_to_lambda
from pinrelay_local.stack import REPO_ROOT, function_timeouts

from tests.integration.handler_stack import AD_ACCOUNT, EU_ACCOUNT, call_ingest, drain

STRIPE_SECRET = "whsec_integration_stripe_secret_00000001"
STRIPE_KEY = "rk_test_integration_key_0001"
EU_STRIPE_SECRET = "whsec_integration_eu_stripe_secret_0002"
EU_STRIPE_KEY = "rk_test_integration_eu_key_0002"
STORE = "intstore1"
EU_STORE = "eustore7"
STORE_TOKEN = "bigcommerce-integration-token-0001"
EU_STORE_TOKEN = "bigcommerce-integration-eu-token-0002"
HEADER_SECRET = "bigcommerce-integration-header-secret-0001"
EU_HEADER_SECRET = "bigcommerce-integration-eu-header-secret-02"
CLIENT_SECRET = "bigcommerce-integration-client-secret-0001"
SAMPLE = REPO_ROOT / "events" / "webhooks" / "stripe_checkout_session_completed_stripe-ruby-mock.json"
EU_ENTRY = {**EU_ACCOUNT, "stripe_webhook_secrets": [EU_STRIPE_SECRET], "stripe_api_key": EU_STRIPE_KEY,
            "bigcommerce_store_hashes": [EU_STORE], "bigcommerce_webhook_secrets": [EU_HEADER_SECRET]}


@pytest.fixture
def platforms(stack, aws, monkeypatch):
    """The handler stack with Stripe and BigCommerce set up as the template sets them."""
    with StripeStandIn(key=STRIPE_KEY) as stripe, BigCommerceStandIn({STORE: STORE_TOKEN, EU_STORE: EU_STORE_TOKEN}) as store:
        stripe_eu = StripeStandIn(key=EU_STRIPE_KEY).start()
        fetch_queue = aws["sqs"].create_queue(QueueName=f"fetch-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        line_items_queue = aws["sqs"].create_queue(QueueName=f"line-items-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        env = {
            "STRIPE_LINE_ITEMS_QUEUE_URL": line_items_queue,
            "STRIPE_WEBHOOK_SECRET": STRIPE_SECRET, "STRIPE_API_KEY": STRIPE_KEY, "STRIPE_API_URL": stripe.base_url, "ALLOW_LOOPBACK_HTTP": "true",
            "BIGCOMMERCE_STORE_HASH": STORE, "BIGCOMMERCE_WEBHOOK_SECRET": HEADER_SECRET,
            "BIGCOMMERCE_FETCH_QUEUE_URL": fetch_queue, "BIGCOMMERCE_API_URL": store.base_url,
            "BIGCOMMERCE_API_TOKEN": STORE_TOKEN, "BIGCOMMERCE_STORE_TOKENS": json.dumps({EU_STORE: EU_STORE_TOKEN}),
            "ACCOUNT_MAP": json.dumps({"accounts": [EU_ENTRY]}),
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        for cached in (config.ingest_settings, config.bigcommerce_fetch_settings, config.stripe_line_items_settings,
                       stack["ingest"].service, stack["ingest"].shopify_options):
            cached.cache_clear()
        fetcher = importlib.import_module("bigcommerce_fetch_handler")
        fetcher.service.cache_clear()
        line_items = importlib.import_module("stripe_line_items_handler")
        line_items.service.cache_clear()
        line_items.job_queue.cache_clear()  # it drains this test's line-items queue
        receives = LineItemsReceives(line_items.job_queue().client)
        for bundle in example_orders().values():
            store.put_order(STORE, bundle)
            store.put_order(EU_STORE, bundle)
        yield {**stack, "stripe": stripe, "stripe_eu": stripe_eu, "store": store, "fetch_queue": fetch_queue,
               "fetcher": fetcher, "line_items_queue": line_items_queue, "line_items": line_items,
               "line_items_receives": receives}
        receives.close()
        stripe_eu.stop()
    config.bigcommerce_fetch_settings.cache_clear()
    config.stripe_line_items_settings.cache_clear()


# -- Stripe -------------------------------------------------------------------------------------


def stripe_event(event_type: str = "checkout.session.completed", created: int | None = None, event_id: str = "evt_1",
                 **session) -> dict:
    """The real sample as a live-mode event of ``event_type``, its session changed by ``session``."""
    event = json.loads(SAMPLE.read_text())
    event.update(id=event_id, type=event_type, created=int(time.time()) if created is None else created, livemode=True)
    event["data"]["object"].update({"livemode": True, **session})
    return event


def post_stripe(stack, event: dict, secret: str = STRIPE_SECRET, signed_at: int | None = None, base64_body=False):
    raw = json.dumps(event, indent=2).encode()
    header = stripe_signature_header(raw, secret, int(time.time()) if signed_at is None else signed_at)
    if not base64_body:
        return call_ingest(stack, "/webhooks/stripe", raw, {"stripe-signature": header, "content-type": "application/json"})
    request = build_http_api_event(method="POST", raw_path="/webhooks/stripe", raw_query="", body=raw,
                                   header_pairs=[("stripe-signature", header), ("content-type", "application/json")],
                                   source_ip="127.0.0.1", route_key="POST /webhooks/stripe")
    request["body"], request["isBase64Encoded"] = base64.b64encode(raw).decode(), True
    answer = stack["ingest"].lambda_handler(request, LambdaContext("IngestFunction"))
    return answer["statusCode"], json.loads(answer["body"])


def run_jobs(stack, queue_url: str, handler, function: str, timeout_s: float) -> tuple[list[dict], dict | None]:
    """Receive a job queue and, with ``handler``, run its fetcher on it as the event source would:
    the jobs it did not return as failures are deleted."""
    sqs = stack["aws"]["sqs"]
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                   MessageAttributeNames=["All"]).get("Messages", [])
    if handler is None or not messages:
        return messages, None
    event = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                          "attributes": m["Attributes"], "messageAttributes": message_attributes_to_lambda(m.get("MessageAttributes")),
                          "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:1:f",
                          "awsRegion": "us-east-1"} for m in messages]}
    answer = handler.lambda_handler(event, LambdaContext(function, timeout_s=timeout_s))
    failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
    for message in messages:
        if message["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return messages, answer


LINE_ITEMS_TIMEOUT_S = function_timeouts()["StripeLineItemsFunction"]  # template.yaml's Timeout (120 s)
LINE_ITEMS_RULE = "arn:aws:events:us-east-1:123456789012:rule/pinrelay-stripe-line-items-schedule"


class LineItemsReceives:
    """What each ReceiveMessage of the line-items fetcher brought, recorded by a botocore hook on
    the client it drains its queue with: the messages with their receipt handles (a test makes a
    job visible again with one, as the visibility timeout passing would) and their
    ApproximateReceiveCount."""

    def __init__(self, client) -> None:
        self.client = client
        self.answers: list[list[dict]] = []
        self._id = f"line-items-receives-{uuid.uuid4().hex}"
        client.meta.events.register("after-call.sqs.ReceiveMessage", self._record, unique_id=self._id)

    def _record(self, parsed, **_) -> None:
        self.answers.append(parsed.get("Messages", []))

    def close(self) -> None:
        self.client.meta.events.unregister("after-call.sqs.ReceiveMessage", unique_id=self._id)

    def received(self) -> list[dict]:
        """Every message received, in order."""
        return [message for answer in self.answers for message in answer]


def run_line_items(stack, timeout_s: float = LINE_ITEMS_TIMEOUT_S) -> dict:
    """One run of the line-items fetcher as its schedule starts it (EventBridge's event, a context
    with the function's Timeout): it drains the line-items queue itself and answers a summary."""
    return stack["line_items"].lambda_handler(scheduled_event(LINE_ITEMS_RULE),
                                              LambdaContext("StripeLineItemsFunction", timeout_s=timeout_s))


def summary(**counts) -> dict:
    """The fetcher's answer for a run that drained its queue: zeros, but for ``counts``."""
    return {"received": 0, "queued": 0, "rejected": 0, "retry": 0, "without_contents": 0, "rounds": 0,
            "stopped": "drained", "problem": None, "not_deleted": 0, **counts}


def on_queue(stack, queue_url: str) -> tuple[int, int]:
    """(visible, in flight) on a queue, as SQS counts them; nothing is received."""
    attributes = stack["aws"]["sqs"].get_queue_attributes(QueueUrl=queue_url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def visible_again(stack, messages: list[dict]) -> None:
    """The visibility timeout passes for ``messages`` (received from the line-items queue)."""
    for message in messages:
        stack["aws"]["sqs"].change_message_visibility(QueueUrl=stack["line_items_queue"],
                                                      ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)


def drain_stripe(stack) -> tuple[dict, list[dict]]:
    """One scheduled run of the line-items fetcher, then the sender on the events queue: the run's
    summary and the events it queued."""
    answer = run_line_items(stack)
    return answer, drain(stack)[0]


def delivered(stack) -> list[dict]:
    return [event for request in stack["standin"].received if request.get("body") and request.get("status") == 200
            for event in request["body"].get("data", [])]


def test_a_paid_session_is_delivered_once_with_its_line_items_whatever_stripe_sends_again(platforms):
    session_id = "cs_live_once"
    platforms["stripe"].add_session({"id": session_id}, [stripe_line_item(1, 3, 1000, "usd", "prod_tee", "T-shirt")])
    event = stripe_event(id=session_id)
    for _ in range(2):  # Stripe delivers the same event twice
        status, answer = post_stripe(platforms, event)
        assert status == 200 and answer["accepted"] == 1
    assert platforms["stripe"].requests == []  # nothing read from Stripe while Stripe waits for the answer
    assert on_queue(platforms, platforms["line_items_queue"]) == (2, 0)  # a job for each delivery
    answer, _ = drain_stripe(platforms)
    assert answer == summary(received=2, queued=2, rounds=1)  # both jobs done in one round, and deleted
    assert on_queue(platforms, platforms["line_items_queue"]) == (0, 0)
    (sent,) = [e for e in delivered(platforms) if e["event_id"] == session_id]
    assert sent["custom_data"]["value"] == "30.00" and sent["custom_data"]["content_ids"] == ["prod_tee"]
    assert sent["custom_data"]["contents"] == [{"quantity": 3, "id": "prod_tee", "item_price": "10.00", "item_name": "T-shirt"}]
    assert platforms["stripe"].paths() == [f"/v1/checkout/sessions/{session_id}/line_items"] * 2


def test_a_delayed_payment_counts_once_when_it_arrives_whatever_the_order_of_events(platforms):
    session = {"id": "cs_live_delayed"}
    status, unpaid = post_stripe(platforms, stripe_event(**session, payment_status="unpaid"))
    assert status == 200 and unpaid["filtered"] == "unpaid" and unpaid["event_id"] == "cs_live_delayed"
    paid = stripe_event("checkout.session.async_payment_succeeded", **session, payment_status="paid")
    assert post_stripe(platforms, paid)[1]["accepted"] == 1
    # out of order and again: the completed event arrives once more, now saying paid
    assert post_stripe(platforms, stripe_event(**session, payment_status="paid"))[1]["accepted"] == 1
    drain_stripe(platforms)
    assert [e["event_id"] for e in delivered(platforms)].count("cs_live_delayed") == 1


def test_the_body_is_verified_as_received_when_api_gateway_hands_it_base64_encoded(platforms):
    status, answer = post_stripe(platforms, stripe_event(id="cs_live_b64"), base64_body=True)
    assert status == 200 and answer["accepted"] == 1


@pytest.mark.parametrize("change", ["secret", "stale", "body"])
def test_a_wrong_secret_a_stale_timestamp_or_a_changed_body_gets_401(platforms, change):
    event = stripe_event(id="cs_live_refused")
    if change == "body":
        raw = json.dumps(event).encode()
        header = stripe_signature_header(raw, STRIPE_SECRET, int(time.time()))
        status, answer = call_ingest(platforms, "/webhooks/stripe", raw.replace(b"3000", b"9000"), {"stripe-signature": header})
    else:
        kwargs = {"secret": "whsec_" + "z" * 40} if change == "secret" else {"signed_at": int(time.time()) - 301}
        status, answer = post_stripe(platforms, event, **kwargs)
    assert (status, answer) == (401, {"message": "unauthorized"})


def test_an_account_map_entry_is_known_by_its_secret_and_reads_line_items_with_its_own_key(platforms):
    platforms["stripe"].add_session({"id": "cs_live_eu"}, [stripe_line_item(1, 1, 3000, "usd", "prod_default", "x")])
    platforms["stripe_eu"].add_session({"id": "cs_live_eu"}, [stripe_line_item(1, 1, 3000, "usd", "prod_eu", "x")])
    status, answer = post_stripe(platforms, stripe_event(id="cs_live_eu"), secret=EU_STRIPE_SECRET)
    assert status == 200 and answer["accepted"] == 1
    sqs = platforms["aws"]["sqs"]
    (job,) = sqs.receive_message(QueueUrl=platforms["line_items_queue"]).get("Messages", [])
    assert EU_STRIPE_KEY not in job["Body"] and STRIPE_KEY not in job["Body"]  # whose key, never the key
    assert {k: json.loads(job["Body"])[k] for k in ("key", "route_name", "ad_account_id")} == {
        "key": "account_map", "route_name": "eu", "ad_account_id": EU_ACCOUNT["ad_account_id"]}
    # the entry's key works only at its own Stripe account (a stand-in of its own)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STRIPE_API_URL", platforms["stripe_eu"].base_url)
        config.stripe_line_items_settings.cache_clear()
        visible_again(platforms, [job])
        assert run_line_items(platforms) == summary(received=1, queued=1, rounds=1)
    config.stripe_line_items_settings.cache_clear()
    assert on_queue(platforms, platforms["line_items_queue"]) == (0, 0)
    (message,) = sqs.receive_message(QueueUrl=platforms["queue_url"]).get("Messages", [])
    queued = json.loads(message["Body"])
    assert queued["ad_account_id"] == EU_ACCOUNT["ad_account_id"]
    assert queued["event"]["custom_data"]["content_ids"] == ["prod_eu"]
    assert platforms["stripe_eu"].paths() == ["/v1/checkout/sessions/cs_live_eu/line_items"]
    assert platforms["stripe"].requests == []  # never the deployment's key for another account


def test_stripe_slow_or_down_gets_the_job_back_until_it_answers(platforms):
    platforms["stripe"].add_session({"id": "cs_live_later"}, [stripe_line_item(1, 1, 3000, "usd", "prod_tee", "T")])
    platforms["stripe"].set_fault("status", status=503, count=2)  # both attempts of the first read
    status, answer = post_stripe(platforms, stripe_event(id="cs_live_later"))
    assert status == 200 and answer["accepted"] == 1  # answered at once: Stripe's API is the fetcher's
    assert run_line_items(platforms) == summary(received=1, retry=1, rounds=1)
    assert on_queue(platforms, platforms["line_items_queue"]) == (0, 1)  # left on its queue, invisible for now
    assert drain(platforms)[0] == []  # nothing queued yet: the event waits for its line items
    receives = platforms["line_items_receives"]
    visible_again(platforms, receives.answers[-1])
    assert run_line_items(platforms) == summary(received=1, queued=1, rounds=1)
    assert [m["Attributes"]["ApproximateReceiveCount"] for m in receives.received()] == ["1", "2"]  # the same job
    assert on_queue(platforms, platforms["line_items_queue"]) == (0, 0)
    drain(platforms)
    (sent,) = [e for e in delivered(platforms) if e["event_id"] == "cs_live_later"]
    assert sent["custom_data"]["content_ids"] == ["prod_tee"]


def test_stripe_silent_until_the_fourth_receive_costs_the_contents_not_the_conversion(platforms):
    sqs = platforms["aws"]["sqs"]
    dlq = sqs.create_queue(QueueName=f"line-items-dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.set_queue_attributes(QueueUrl=platforms["line_items_queue"], Attributes={  # template.yaml's
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})})
    platforms["stripe"].set_fault("status", status=503)
    platforms["stripe"].add_session({"id": "cs_live_silent"}, [stripe_line_item(1, 1, 3000, "usd", "prod_tee", "T")])
    post_stripe(platforms, stripe_event(id="cs_live_silent"))
    receives = platforms["line_items_receives"]
    for receive in range(1, CONTENTS_TRIES):  # SQS's ApproximateReceiveCount 1, 2, 3: tried again later
        assert run_line_items(platforms) == summary(received=1, retry=1, rounds=1)
        (message,) = receives.answers[-1]
        assert message["Attributes"]["ApproximateReceiveCount"] == str(receive)
        assert on_queue(platforms, platforms["line_items_queue"]) == (0, 1)
        assert drain(platforms)[0] == []
        visible_again(platforms, [message])
    # the 4th: sent without its contents, and the job deleted
    assert run_line_items(platforms) == summary(received=1, queued=1, without_contents=1, rounds=1)
    assert receives.answers[-1][0]["Attributes"]["ApproximateReceiveCount"] == str(CONTENTS_TRIES)
    assert on_queue(platforms, platforms["line_items_queue"]) == (0, 0)
    drain(platforms)
    (sent,) = [e for e in delivered(platforms) if e["event_id"] == "cs_live_silent"]
    assert sent["custom_data"]["value"] == "30.00" and "contents" not in sent["custom_data"]
    assert sqs.receive_message(QueueUrl=dlq).get("Messages", []) == []


def test_a_job_in_the_line_items_dead_letter_queue_is_found_by_status_and_delivered_after_a_redrive(platforms):
    sqs = platforms["aws"]["sqs"]
    dlq = sqs.create_queue(QueueName=f"line-items-dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.set_queue_attributes(QueueUrl=platforms["line_items_queue"], Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})})
    platforms["stripe"].set_fault("status", status=503)
    post_stripe(platforms, stripe_event(id="cs_live_dead"))
    receives = platforms["line_items_receives"]
    for _ in range(2):  # maxReceiveCount 2 here (5 deployed, past CONTENTS_TRIES): both reads fail, on to the DLQ
        assert run_line_items(platforms) == summary(received=1, retry=1, rounds=1)
        visible_again(platforms, receives.answers[-1])
    assert run_line_items(platforms) == summary()  # SQS moved it to the DLQ instead of a 3rd receive
    assert on_queue(platforms, platforms["line_items_queue"]) == (0, 0)
    assert on_queue(platforms, dlq) == (1, 0)
    assert drain(platforms)[0] == []
    # pinrelay status finds the session there (and leaves the job for the redrive)
    import io

    from pinrelay_cli.main import build_parser

    args = build_parser().parse_args(["status", "cs_live_dead", "--table", platforms["table"], "--ad-account", AD_ACCOUNT,
                                      "--line-items-dlq-url", dlq])
    out = io.StringIO()
    args._run(args, dynamodb=platforms["aws"]["dynamodb"], sqs=sqs, out=out, err=out)
    assert f"{AD_ACCOUNT}#checkout#cs_live_dead: its Stripe line-items job is in the line-items dead-letter queue" \
        in out.getvalue(), out.getvalue()
    (kept,) = sqs.receive_message(QueueUrl=dlq).get("Messages", [])
    assert json.loads(kept["Body"])["session_id"] == "cs_live_dead"
    # the redrive: Stripe answers again, the job is read and its event delivered with its contents
    platforms["stripe"].set_fault(None)
    platforms["stripe"].add_session({"id": "cs_live_dead"}, [stripe_line_item(1, 1, 3000, "usd", "prod_tee", "T")])
    sqs.send_message(QueueUrl=platforms["line_items_queue"], MessageBody=kept["Body"])
    sqs.delete_message(QueueUrl=dlq, ReceiptHandle=kept["ReceiptHandle"])
    answer, _ = drain_stripe(platforms)
    assert answer == summary(received=1, queued=1, rounds=1)
    (sent,) = [e for e in delivered(platforms) if e["event_id"] == "cs_live_dead"]
    assert sent["custom_data"]["content_ids"] == ["prod_tee"]


def test_one_run_takes_a_backlog_of_25_jobs_in_receives_of_10_10_and_5_and_queues_every_event(platforms):
    sessions = [f"cs_live_backlog_{n:02d}" for n in range(25)]
    for session_id in sessions:
        platforms["stripe"].add_session({"id": session_id}, [stripe_line_item(1, 1, 3000, "usd", "prod_tee", "T")])
        assert post_stripe(platforms, stripe_event(id=session_id))[1]["accepted"] == 1
    assert on_queue(platforms, platforms["line_items_queue"]) == (25, 0)
    answer, records = drain_stripe(platforms)
    # three ReceiveMessage calls: the third brought fewer than ten, so the queue was drained
    assert [len(messages) for messages in platforms["line_items_receives"].answers] == [10, 10, 5]
    assert answer == summary(received=25, queued=25, rounds=3)
    assert on_queue(platforms, platforms["line_items_queue"]) == (0, 0)
    assert sorted(json.loads(record["Body"])["event"]["event_id"] for record in records) == sessions
    assert sorted(e["event_id"] for e in delivered(platforms)) == sessions


def test_a_run_without_time_for_a_worst_case_round_receives_nothing(platforms):
    for session_id in ("cs_live_late_1", "cs_live_late_2", "cs_live_late_3"):
        platforms["stripe"].add_session({"id": session_id}, [stripe_line_item(1, 1, 3000, "usd", "prod_tee", "T")])
        assert post_stripe(platforms, stripe_event(id=session_id))[1]["accepted"] == 1
    worst = worst_drain_round_seconds()
    assert run_line_items(platforms, timeout_s=worst - 1) == summary(stopped="no time left")
    receives = platforms["line_items_receives"]
    assert receives.answers == []  # no ReceiveMessage: a job received now could be killed with the run
    assert on_queue(platforms, platforms["line_items_queue"]) == (3, 0)  # still visible, for the next run
    assert platforms["stripe"].requests == [] and drain(platforms)[0] == []
    # the next run, with the template's Timeout, is the first to receive them
    assert run_line_items(platforms) == summary(received=3, queued=3, rounds=1)
    assert [m["Attributes"]["ApproximateReceiveCount"] for m in receives.received()] == ["1", "1", "1"]


def test_a_refused_key_or_an_unknown_session_sends_the_conversion_without_contents(platforms, monkeypatch):
    monkeypatch.setenv("STRIPE_API_KEY", "rk_test_wrong_key")
    config.stripe_line_items_settings.cache_clear()
    status, answer = post_stripe(platforms, stripe_event(id="cs_live_nokey"))
    assert status == 200 and answer["accepted"] == 1
    # not retried: asking again would not help; the job is deleted
    assert run_line_items(platforms) == summary(received=1, queued=1, without_contents=1, rounds=1)
    assert on_queue(platforms, platforms["line_items_queue"]) == (0, 0)
    drain(platforms)
    (sent,) = [e for e in delivered(platforms) if e["event_id"] == "cs_live_nokey"]
    assert "contents" not in sent["custom_data"] and sent["custom_data"]["value"] == "30.00"


def test_without_a_key_no_call_is_made_and_no_job_queued(platforms, monkeypatch):
    monkeypatch.delenv("STRIPE_API_KEY")
    config.ingest_settings.cache_clear()
    assert post_stripe(platforms, stripe_event(id="cs_live_plain"))[1]["accepted"] == 1
    assert on_queue(platforms, platforms["line_items_queue"]) == (0, 0)  # no job
    assert [json.loads(m["Body"])["event"]["event_id"] for m in drain(platforms)[0]] == ["cs_live_plain"]
    assert platforms["stripe"].requests == []


def test_when_the_line_items_queue_does_not_take_the_job_stripe_is_told_to_deliver_again(platforms, monkeypatch):
    monkeypatch.setenv("STRIPE_LINE_ITEMS_QUEUE_URL", platforms["line_items_queue"] + "-missing")
    config.ingest_settings.cache_clear()
    status, answer = post_stripe(platforms, stripe_event(id="cs_live_noqueue"))
    assert status == 503 and "again" in answer["message"]
    assert drain(platforms)[0] == []


def test_a_signing_secret_under_32_characters_is_refused_and_named(platforms, monkeypatch, caplog):
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_short_secret")
    config.ingest_settings.cache_clear()
    status, _ = post_stripe(platforms, stripe_event(), secret="whsec_short_secret")
    logged = " ".join(str(record.__dict__) for record in caplog.records)
    assert status == 503 and "STRIPE_WEBHOOK_SECRET: shorter than 32 characters" in logged
    assert "whsec_short_secret" not in logged


def test_a_rotation_given_as_a_json_array_accepts_both_secrets(platforms, monkeypatch):
    old, new = "whsec_rotation_old_secret_00000000001", "whsec_rotation_new_secret_00000000002"
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", json.dumps([old, new]))
    config.ingest_settings.cache_clear()
    for secret in (old, new):
        assert post_stripe(platforms, stripe_event(), secret=secret)[0] == 200


def test_during_an_endpoint_secret_roll_stripe_signs_with_both_and_either_verifies(platforms):
    event = stripe_event(id="cs_live_roll")
    raw = json.dumps(event).encode()
    now = int(time.time())
    old = stripe_signature_header(raw, "whsec_" + "o" * 40, now)
    new = stripe_signature_header(raw, STRIPE_SECRET, now).split(",")[1]
    status, answer = call_ingest(platforms, "/webhooks/stripe", raw, {"stripe-signature": f"{old},{new}"})
    assert status == 200 and answer["accepted"] == 1


@pytest.mark.parametrize("event_type", ["checkout.session.expired", "invoice.paid"])
def test_other_event_types_are_answered_200_and_ignored(platforms, event_type):
    assert post_stripe(platforms, stripe_event(event_type)) == (200, {"message": f"event type '{event_type}' is not forwarded",
                                                                     "ignored": True})


# -- BigCommerce ----------------------------------------------------------------------------------


def bigcommerce_webhook(order_id: int = 250, scope: str = "store/order/created", store: str = STORE) -> dict:
    return {"scope": scope, "store_id": "1025646", "data": {"type": "order", "id": order_id},
            "hash": uuid.uuid4().hex[:40], "created_at": int(time.time()), "producer": f"stores/{store}"}


def post_bigcommerce(stack, payload: dict, secret: str | None = HEADER_SECRET, **headers):
    raw = json.dumps(payload).encode()
    sent = {"content-type": "application/json", **headers}
    if secret is not None:
        sent["x-pinrelay-secret"] = secret
    return call_ingest(stack, "/webhooks/bigcommerce", raw, sent)


def fetch_jobs(stack, handler: bool = True) -> tuple[list[dict], dict | None]:
    """Receive the fetch queue and, with ``handler``, run the fetcher on it as the event source would."""
    return run_jobs(stack, stack["fetch_queue"], stack["fetcher"] if handler else None, "BigCommerceFetchFunction", 90)


def test_a_webhook_is_answered_at_once_with_a_fetch_job_that_carries_no_personal_data(platforms):
    status, answer = post_bigcommerce(platforms, bigcommerce_webhook())
    assert status == 200 and (answer["store_hash"], answer["order_id"]) == (STORE, 250)
    assert platforms["store"].requests == []  # nothing read from the store while BigCommerce waits
    (message,), _ = fetch_jobs(platforms, handler=False)
    assert json.loads(message["Body"]) == {"v": 1, "store_hash": STORE, "order_id": 250, "scope": "store/order/created",
                                           "ad_account_id": AD_ACCOUNT, "received_at": json.loads(message["Body"])["received_at"]}


def test_every_webhook_of_one_order_gives_one_conversion(platforms):
    for scope in ("store/order/created", "store/order/statusUpdated", "store/order/updated", "store/order/created"):
        assert post_bigcommerce(platforms, bigcommerce_webhook(scope=scope))[0] == 200
    messages, answer = fetch_jobs(platforms)
    assert len(messages) == 4 and answer == {"batchItemFailures": []}
    records, _ = drain(platforms)
    assert len(records) == 1  # the copies in one batch are dropped before the queue, later ones by the sender
    post_bigcommerce(platforms, bigcommerce_webhook(scope="store/order/updated"))  # a redelivery, later
    fetch_jobs(platforms)
    assert len(drain(platforms)[0]) == 1
    (sent,) = [e for e in delivered(platforms) if e["event_id"] == f"{STORE}-250"]  # Pinterest got it once
    assert sent["custom_data"]["value"] == "924.47" and sent["user_data"]["client_ip_address"] == "70.112.53.67"


def test_an_unpaid_order_is_sent_when_a_status_change_finds_it_paid(platforms):
    post_bigcommerce(platforms, bigcommerce_webhook(218))  # Awaiting Payment
    _, answer = fetch_jobs(platforms)
    assert answer == {"batchItemFailures": []}
    assert drain(platforms)[0] == []  # filtered: nothing queued
    platforms["store"].set_status(STORE, 218, 11)
    post_bigcommerce(platforms, bigcommerce_webhook(218, "store/order/statusUpdated"))
    fetch_jobs(platforms)
    drain(platforms)
    assert [e["event_id"] for e in delivered(platforms)] == [f"{STORE}-218"]


def test_a_store_that_is_down_gets_the_job_back_until_it_answers(platforms):
    post_bigcommerce(platforms, bigcommerce_webhook())
    platforms["store"].set_fault("status", status=503, count=2)  # both attempts of the first call
    messages, answer = fetch_jobs(platforms)
    assert answer == {"batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}]}
    platforms["aws"]["sqs"].change_message_visibility(QueueUrl=platforms["fetch_queue"],
                                                      ReceiptHandle=messages[0]["ReceiptHandle"], VisibilityTimeout=0)
    _, answer = fetch_jobs(platforms)
    assert answer == {"batchItemFailures": []}
    drain(platforms)
    assert [e["event_id"] for e in delivered(platforms)] == [f"{STORE}-250"]


def test_a_refused_token_keeps_the_job_for_the_dead_letter_queue(platforms, monkeypatch):
    monkeypatch.setenv("BIGCOMMERCE_API_TOKEN", "a-revoked-token-0000000000000000")
    config.bigcommerce_fetch_settings.cache_clear()
    post_bigcommerce(platforms, bigcommerce_webhook())
    messages, answer = fetch_jobs(platforms)
    assert answer == {"batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}]}


def test_a_deleted_order_is_done_with_and_nothing_is_sent(platforms):
    platforms["store"].delete_order(STORE, 250)
    post_bigcommerce(platforms, bigcommerce_webhook())
    assert fetch_jobs(platforms)[1] == {"batchItemFailures": []}
    assert drain(platforms)[0] == []


@pytest.mark.parametrize("case", ["no header", "wrong secret", "unknown store", "no store", "another store's secret",
                                  "not json"])
def test_a_webhook_that_is_not_the_stores_gets_401_and_queues_nothing(platforms, case):
    payload, secret = bigcommerce_webhook(), HEADER_SECRET
    if case == "no header":
        secret = None
    elif case == "wrong secret":
        secret = HEADER_SECRET[:-1] + "x"
    elif case == "unknown store":
        payload = bigcommerce_webhook(store="nobody99")
    elif case == "no store":
        del payload["producer"]
    elif case == "another store's secret":
        payload = bigcommerce_webhook(store=EU_STORE)
    if case == "not json":
        status, answer = call_ingest(platforms, "/webhooks/bigcommerce", b"{oops", {"x-pinrelay-secret": HEADER_SECRET})
    else:
        status, answer = post_bigcommerce(platforms, payload, secret)
    assert (status, answer) == (401, {"message": "unauthorized"})
    assert fetch_jobs(platforms, handler=False)[0] == []


def test_a_mapped_store_uses_its_own_secret_and_token_and_goes_to_its_ad_account(platforms):
    assert post_bigcommerce(platforms, bigcommerce_webhook(store=EU_STORE), EU_HEADER_SECRET)[0] == 200
    fetch_jobs(platforms)
    records, _ = drain(platforms)
    assert json.loads(records[0]["Body"])["ad_account_id"] == EU_ACCOUNT["ad_account_id"]
    assert platforms["store"].paths()[0] == f"/stores/{EU_STORE}/v2/orders/250"


def test_with_a_client_secret_the_standard_webhooks_signature_must_verify_too(platforms, monkeypatch):
    monkeypatch.setenv("BIGCOMMERCE_CLIENT_SECRET", CLIENT_SECRET)
    config.ingest_settings.cache_clear()
    payload = bigcommerce_webhook()
    assert post_bigcommerce(platforms, payload)[0] == 401  # no signature
    raw = json.dumps(payload).encode()
    now = int(time.time())
    signature = standard_webhook_signature(raw, "msg_1", now, CLIENT_SECRET.encode())
    headers = {"x-pinrelay-secret": HEADER_SECRET, "webhook-id": "msg_1", "webhook-timestamp": str(now)}
    assert call_ingest(platforms, "/webhooks/bigcommerce", raw, {**headers, "webhook-signature": signature})[0] == 200
    forged = standard_webhook_signature(raw, "msg_1", now, b"another-secret")
    assert call_ingest(platforms, "/webhooks/bigcommerce", raw, {**headers, "webhook-signature": forged})[0] == 401


def test_when_the_fetch_queue_does_not_take_the_job_bigcommerce_is_told_to_deliver_again(platforms, monkeypatch):
    monkeypatch.setenv("BIGCOMMERCE_FETCH_QUEUE_URL", platforms["fetch_queue"] + "-missing")
    config.ingest_settings.cache_clear()
    status, answer = post_bigcommerce(platforms, bigcommerce_webhook())
    assert status == 503 and "again" in answer["message"]


def test_without_bigcommerce_set_up_the_route_says_so(platforms, monkeypatch):
    monkeypatch.delenv("BIGCOMMERCE_FETCH_QUEUE_URL")
    config.ingest_settings.cache_clear()
    status, answer = post_bigcommerce(platforms, bigcommerce_webhook())
    assert status == 404 and "BigCommerceStoreHash" in answer["message"]


@pytest.mark.parametrize("scope", ["store/product/updated", "store/order/archived"])
def test_other_scopes_are_answered_200_and_ignored(platforms, scope):
    status, answer = post_bigcommerce(platforms, bigcommerce_webhook(scope=scope))
    assert status == 200 and answer == {"message": f"scope '{scope}' is not forwarded", "ignored": True}


# -- pinrelay status -------------------------------------------------------------------------------


def test_pinrelay_status_finds_orders_by_their_bigcommerce_ids_and_says_when_the_fetch_job_is_dead(platforms):
    import io

    from pinrelay_cli.main import build_parser
    from pinrelay_cli.status import EXIT_NOT_DELIVERED

    post_bigcommerce(platforms, bigcommerce_webhook(250))
    fetch_jobs(platforms)
    drain(platforms)
    fetch_dlq = platforms["aws"]["sqs"].create_queue(QueueName=f"fetch-dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    post_bigcommerce(platforms, bigcommerce_webhook(218))  # its job ends in the fetch DLQ (moved here as SQS would)
    (job,), _ = fetch_jobs(platforms, handler=False)
    platforms["aws"]["sqs"].send_message(QueueUrl=fetch_dlq, MessageBody=job["Body"])
    args = build_parser().parse_args(["status", "250", "218", "--bigcommerce-store", STORE, "--table", platforms["table"],
                                      "--ad-account", AD_ACCOUNT, "--fetch-dlq-url", fetch_dlq])
    out = io.StringIO()
    code = args._run(args, dynamodb=platforms["aws"]["dynamodb"], sqs=platforms["aws"]["sqs"], out=out, err=out)
    lines = dict(line.split(": ", 1) for line in out.getvalue().splitlines() if line.startswith(AD_ACCOUNT))
    assert code == EXIT_NOT_DELIVERED
    assert lines[f"{AD_ACCOUNT}#checkout#{STORE}-250"].startswith("delivered: Pinterest processed it")
    assert lines[f"{AD_ACCOUNT}#checkout#{STORE}-218"].startswith("its BigCommerce fetch job is in the fetch dead-letter queue")


# -- consent (pinrelay.consent, docs/privacy.md) ----------------------------------------------------


def set_consent_policy(platforms, monkeypatch, policy: str) -> None:
    monkeypatch.setenv("CONSENT_POLICY", policy)
    for cached in (config.ingest_settings, config.bigcommerce_fetch_settings, config.stripe_line_items_settings,
                   platforms["ingest"].service, platforms["fetcher"].service, platforms["line_items"].service):
        cached.cache_clear()


def ledger(platforms, event_id: str) -> dict:
    return platforms["aws"]["dynamodb"].get_item(TableName=platforms["table"], ConsistentRead=True,
                                                 Key={"pk": {"S": f"{AD_ACCOUNT}#checkout#{event_id}"}})["Item"]


EU_CUSTOMER = {"email": "kunde@example.de", "address": {"country": "DE", "postal_code": "10115", "city": "Berlin"}}


@pytest.mark.parametrize(("policy", "metadata", "expected"), [
    ("strict", {}, "withheld"),  # an EU customer, no recorded choice
    ("strict", {"pinrelay_consent_marketing": "yes"}, "accepted"),
    ("respect", {"pinrelay_consent_marketing": "no"}, "withheld"),
    ("respect", {}, "accepted"),
    ("strict; stripe=respect", {}, "accepted"),  # the source's own exception
    ("strict", {"pinrelay_consent_marketing": "maybe"}, "withheld"),  # unreadable: costs that value, never guessed yes
])
def test_a_stripe_session_passes_the_consent_policy_with_what_the_shops_server_recorded(platforms, monkeypatch,
                                                                                     policy, metadata, expected):
    set_consent_policy(platforms, monkeypatch, policy)
    session_id = f"cs_live_consent_{uuid.uuid4().hex[:8]}"
    event = stripe_event(id=session_id, customer_details=EU_CUSTOMER, metadata=metadata)
    status, answer = post_stripe(platforms, event)
    (result,) = answer["events"]
    assert status == 200 and result["status"] == expected, answer
    if "maybe" in metadata.values():
        assert any("pinrelay_consent_marketing" in warning for warning in result["warnings"])
    drain_stripe(platforms)
    sent = [e for e in delivered(platforms) if e["event_id"] == session_id]
    item = ledger(platforms, session_id)
    if expected == "withheld":
        assert result["reason"].startswith("not sent (consent): ") and sent == []
        assert (item["state"]["S"], item["reason"]["S"]) == ("not_sent", "consent")
    else:
        assert len(sent) == 1 and item["state"]["S"] == "delivered"


def test_a_stripe_customers_refusal_is_named_in_the_reason(platforms, monkeypatch):
    set_consent_policy(platforms, monkeypatch, "respect")
    event = stripe_event(id="cs_live_refused_consent", metadata={"pinrelay_consent_marketing": "no"})
    (result,) = post_stripe(platforms, event)[1]["events"]
    assert result["reason"] == ("not sent (consent): the shopper refused marketing "
                                "(the Checkout Session's pinrelay_consent_marketing metadata)")


@pytest.mark.parametrize(("policy", "country", "expected"), [
    ("strict", "DE", "not_sent"),  # an EU order: BigCommerce records no choice on the order
    ("strict", "US", "delivered"),
    ("respect", "DE", "delivered"),
    ("strict; channel:manual=respect", "DE", "delivered"),  # the order's order_source selects the exception
])
def test_a_bigcommerce_order_passes_the_consent_policy_and_its_fetch_job_is_done_with(platforms, monkeypatch,
                                                                                     policy, country, expected):
    set_consent_policy(platforms, monkeypatch, policy)
    bundle = example_orders()[250]
    bundle["order"]["billing_address"]["country_iso2"] = country
    bundle["order"]["order_source"] = "manual"
    for address in bundle["shipping_addresses"]:
        address["country_iso2"] = country
    platforms["store"].put_order(STORE, bundle)
    post_bigcommerce(platforms, bigcommerce_webhook(250))
    _, answer = fetch_jobs(platforms)
    assert answer == {"batchItemFailures": []}  # a withheld order's job is done with, never retried to the DLQ
    assert fetch_jobs(platforms, handler=False)[0] == []
    drain(platforms)
    item = ledger(platforms, f"{STORE}-250")
    sent = [e for e in delivered(platforms) if e["event_id"] == f"{STORE}-250"]
    assert item["state"]["S"] == expected and len(sent) == (expected == "delivered")
    if expected == "not_sent":
        assert item["reason"]["S"] == "consent"


# -- pinrelay reconcile-stripe / reconcile-bigcommerce -----------------------------------------------


def reconcile_cli(platforms, tmp_path, *argv):
    import io

    from pinrelay_cli.main import build_parser

    args = build_parser().parse_args([*argv, "--since", time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400)),
                                      "--table", platforms["table"], "--dlq-url", platforms["queue_url"],
                                      "--ad-account", AD_ACCOUNT, "--report", str(tmp_path / "report.html"),
                                      "--allow-loopback-http"])  # the stand-ins are plain http on this machine
    out = io.StringIO()
    code = args._run(args, out=out, err=out)
    return code, out.getvalue()


def test_reconcile_bigcommerce_accounts_for_every_order_of_the_store(platforms, tmp_path, monkeypatch):
    post_bigcommerce(platforms, bigcommerce_webhook(250))
    fetch_jobs(platforms)
    drain(platforms)
    never_posted = example_orders(created=time.time() - 1200)[250]  # older than the 15 minutes a queue may take
    never_posted["order"]["id"] = 300  # paid, but its webhook never came
    platforms["store"].put_order(STORE, never_posted)
    monkeypatch.setenv("BIGCOMMERCE_API_TOKEN", STORE_TOKEN)
    code, output = reconcile_cli(platforms, tmp_path, "reconcile-bigcommerce", "--store", STORE,
                                 "--bigcommerce-api-url", platforms["store"].base_url)
    assert code == 1, output
    assert re.search(r"total\s+delivered 1\s+rejected by Pinterest 0 .* filtered 1 .* missing 1", output), output
    assert "missing (1): #300" in output and (tmp_path / "report.html").is_file()


def test_the_platform_commands_send_a_token_to_the_platforms_own_hosts_only(platforms, tmp_path, monkeypatch):
    """https on *.stripe.com / *.bigcommerce.com; plain http only to this machine and only with
    --allow-loopback-http (pinrelay.endpoints), as for Shopify and Pinterest."""
    import io

    from pinrelay_cli.main import build_parser

    monkeypatch.setenv("STRIPE_API_KEY", "rk_live_" + "k" * 40)
    monkeypatch.setenv("BIGCOMMERCE_API_TOKEN", STORE_TOKEN)
    for argv in (["reconcile-stripe", "--stripe-api-url", "https://api.stripe.com.evil.example"],
                 ["reconcile-stripe", "--stripe-api-url", platforms["stripe"].base_url],  # http without the switch
                 ["reconcile-bigcommerce", "--store", STORE, "--bigcommerce-api-url", "http://api.bigcommerce.com"]):
        args = build_parser().parse_args([*argv, "--since", "2026-01-01", "--table", platforms["table"],
                                          "--ad-account", AD_ACCOUNT, "--report", str(tmp_path / "r.html")])
        out = io.StringIO()
        assert args._run(args, out=out, err=out) == 2, out.getvalue()
        assert "must be https://api." in out.getvalue(), out.getvalue()
    assert platforms["stripe"].requests == []


def test_reconcile_stripe_accounts_for_every_completed_session(platforms, tmp_path, monkeypatch):
    now = int(time.time())
    delivered_session = {**stripe_event(id="cs_live_rec1")["data"]["object"], "created": now - 1200, "status": "complete"}
    post_stripe(platforms, stripe_event(id="cs_live_rec1"))
    drain_stripe(platforms)
    platforms["stripe"].add_session(delivered_session)
    platforms["stripe"].add_session({**delivered_session, "id": "cs_live_rec2", "payment_status": "unpaid"})
    platforms["stripe"].add_session({**delivered_session, "id": "cs_live_rec3"})  # paid, never posted
    platforms["stripe"].add_session({**delivered_session, "id": "cs_live_open", "status": "open"})  # not an order
    code, output = reconcile_cli(platforms, tmp_path, "reconcile-stripe", "--stripe-api-url", platforms["stripe"].base_url)
    assert code == 1, output
    assert "stripe: 3 order(s)" in output and "missing (1): cs_live_rec3" in output
    assert re.search(r"total\s+delivered 1 .* filtered 1 .* missing 1", output), output
