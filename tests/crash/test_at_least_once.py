"""What SQS, the platforms and AWS outages do besides a crash, in real processes.

* SQS standard queues deliver at least once: one message may reach two sender invocations with
  ApproximateReceiveCount 1, one after the other or at the same time;
* the SQS console's "Start DLQ redrive" (StartMessageMoveTask) moves a message back with no
  attribute of pinrelay's;
* WooCommerce delivers a webhook once and never retries: a fault at any of its AWS calls, and a
  DynamoDB outage (I4), must not lose an order it got a 2xx for;
* slow or failing AWS services: every invocation still ends inside its timeout (I5);
* an event too large for one SQS message is refused alone (I6).
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from pinrelay_local.fault_proxy import DELAY, FAIL_5XX, KILL_AFTER, KILL_BEFORE, LOSE_ANSWER, THROTTLE, FaultPoint, FaultRule
from tests.conftest import load_fixture
from tests.crash.conftest import WOO_SECRET, Invocation, World, api_event, rule_for, sign
from tests.crash.test_crash_points import judge

# ---------------------------------------------------------------- one message, two invocations


def queue_and_receive(world: World, events: list[dict]) -> list[dict]:
    world.client_post("/events", *world.post_events(events))
    messages = world.receive(visibility=300)
    assert len(messages) == len(events)
    return messages


def test_the_same_message_handed_to_two_invocations_one_after_the_other_is_sent_once(world: World):
    events = [api_event("seq-web"), api_event("seq-offline", "offline")]
    messages = queue_and_receive(world, events)
    first = world.invoke("sender", world.sqs_event(messages))
    # SQS hands the same messages out again, receive count 1 (at-least-once delivery)
    assert all(m["Attributes"]["ApproximateReceiveCount"] == "1" for m in messages)
    second = world.invoke("sender", world.sqs_event(messages))
    assert first.status == second.status == "ok"
    assert second.result.response == {"batchItemFailures": []} and second.metric("EventsDuplicate") == 2
    assert set(judge(world, events).values()) == {"delivered, processed 1x"}


def test_a_copy_handed_to_a_second_invocation_while_the_first_is_sending_is_given_back(world: World):
    events = [api_event("held-web"), api_event("held-offline", "offline")]
    messages = queue_and_receive(world, events)
    world.standin.set_fault("slow", seconds=4.0)  # the first invocation's request takes 4 s
    first: list[Invocation] = []
    thread = threading.Thread(target=lambda: first.append(world.invoke("sender", world.sqs_event(messages))))
    thread.start()
    keys = [world.key(event["event_id"], event["action_source"] == "offline") for event in events]
    deadline = time.monotonic() + 30
    while not all(world.states().get(key, {}).get("state") == "sending" for key in keys):  # its request is out
        assert time.monotonic() < deadline and thread.is_alive(), "the first invocation never sent"
        time.sleep(0.05)
    second = world.invoke("sender", world.sqs_event(messages))  # SQS hands the copies out meanwhile
    thread.join()
    world.standin.clear_fault()
    assert second.status == "ok" and second.total("EventsHeldElsewhere") == 2 and second.total("PinterestRequests") == 0
    assert sorted(f["itemIdentifier"] for f in second.result.response["batchItemFailures"]) == sorted(
        m["MessageId"] for m in messages)  # given back to SQS, not dropped: the first might yet fail
    assert first[0].status == "ok" and first[0].result.response == {"batchItemFailures": []}
    world.clock_offset += 800  # SQS brings the copies back after their visibility timeout
    again = world.invoke("sender", world.sqs_event(messages))
    assert again.result.response == {"batchItemFailures": []} and again.metric("EventsDuplicate") == 2
    assert set(judge(world, events).values()) == {"delivered, processed 1x"}


def test_the_same_messages_handed_to_two_invocations_at_the_same_time_are_sent_once(world: World):
    """Both claim the same ten events at once: each event goes to exactly one of them (which one is
    a race), the other gives its copy back or finds it delivered."""
    events = [api_event(f"conc-web-{n}") for n in range(5)] + [api_event(f"conc-offline-{n}", "offline") for n in range(5)]
    messages = queue_and_receive(world, events)
    world.standin.set_fault("slow", seconds=2.0)  # both invocations are in flight together
    start = threading.Barrier(2)
    results: list[Invocation] = []

    def run() -> None:
        start.wait()
        results.append(world.invoke("sender", world.sqs_event(messages)))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    world.standin.clear_fault()
    assert [r.status for r in results] == ["ok", "ok"]
    assert sum(r.total("EventsDelivered") for r in results) == len(events)  # each by one invocation
    for result in results:
        held, repeats = result.total("EventsHeldElsewhere"), result.metric("EventsDuplicate")
        assert result.total("EventsDelivered") + held + repeats == len(events)
        assert len(result.result.response["batchItemFailures"]) == held
    world.clock_offset += 800  # the copies given back come again: duplicates by then
    world.invoke("sender", world.sqs_event(messages))
    assert set(judge(world, events).values()) == {"delivered, processed 1x"}


def test_a_message_moved_back_by_the_consoles_dlq_redrive_is_not_sent_again(world: World):
    events = [api_event("redrive-web"), api_event("redrive-offline", "offline")]
    messages = queue_and_receive(world, events)
    world.deliver_batch(messages)
    # the messages also ended in the DLQ (say an invocation died before SQS deleted them); the
    # console's StartMessageMoveTask sends each body back as a new message, attributes as they were
    sqs = world.aws["sqs"]
    for message in messages:
        sqs.send_message(QueueUrl=world.dlq_url, MessageBody=message["Body"])
    for message in sqs.receive_message(QueueUrl=world.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=30)["Messages"]:
        sqs.send_message(QueueUrl=world.queue_url, MessageBody=message["Body"])
        sqs.delete_message(QueueUrl=world.dlq_url, ReceiptHandle=message["ReceiptHandle"])
    world.drain()
    assert set(judge(world, events).values()) == {"delivered, processed 1x"}


def test_a_message_that_went_to_the_dlq_undelivered_is_delivered_once_after_the_redrive(world: World):
    events = [api_event("dlq-web"), api_event("dlq-offline", "offline")]
    world.client_post("/events", *world.post_events(events))
    world.standin.set_fault("status", status=503)  # Pinterest down for longer than five receives
    world.drain(rounds=8)  # SQS moves the messages to the DLQ after maxReceiveCount (5) receives
    assert world.dlq_depth() == 2 and not world.tally().processed
    world.standin.clear_fault()
    sqs = world.aws["sqs"]
    for message in sqs.receive_message(QueueUrl=world.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=30)["Messages"]:
        sqs.send_message(QueueUrl=world.queue_url, MessageBody=message["Body"])
        sqs.delete_message(QueueUrl=world.dlq_url, ReceiptHandle=message["ReceiptHandle"])
    world.drain()
    assert set(judge(world, events).values()) == {"delivered, processed 1x"}


# ---------------------------------------------------------------- WooCommerce never retries

WEBHOOK_CALLS = ["secretsmanager.GetSecretValue", "secretsmanager.GetSecretValue", "sqs.SendMessageBatch"]


def woo_order(order_id: int) -> bytes:
    order = load_fixture("woocommerce/woocommerce_order_updated_wcrestdocs.json")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 60))
    order["id"] = order_id
    for key in ("date_created_gmt", "date_modified_gmt", "date_paid_gmt", "date_completed_gmt"):
        order[key] = stamp
    return json.dumps(order).encode()


def post_woo_once(world: World, body: bytes, caller: str | None = None):
    """WooCommerce's delivery: one attempt, whatever the answer (class-wc-webhook.php)."""
    headers = {"content-type": "application/json", "x-wc-webhook-topic": "order.created",
               "x-wc-webhook-signature": sign(body, WOO_SECRET), "x-wc-webhook-source": "https://shop.example/"}
    return world.invoke("ingest", world.http_event("/webhooks/woocommerce", body, headers), caller=caller)


def test_the_woocommerce_path_makes_these_aws_calls(world: World):
    answer = post_woo_once(world, woo_order(910001), caller="woo-rec")
    assert answer.result.response["statusCode"] == 200
    assert world.proxy.operations_of("woo-rec") == WEBHOOK_CALLS


@pytest.mark.parametrize("point", [FaultPoint("woo-1", i, *call.split("."), n, action)
                                   for i, (call, n) in enumerate(zip(WEBHOOK_CALLS, (1, 2, 1)), start=1)
                                   for action in (KILL_BEFORE, KILL_AFTER, LOSE_ANSWER, FAIL_5XX, THROTTLE)], ids=str)
def test_woocommerce_fault(world: World, point: FaultPoint):
    """A 2xx means the order reaches Pinterest once; without one, WooCommerce gives up (that
    order is not pinrelay's to lose) and it reaches Pinterest at most once."""
    world.proxy.add_rule(rule_for(point, point.action))
    answer = post_woo_once(world, woo_order(920000 + point.index), caller="woo-1")
    world.drain()
    key = world.key(str(920000 + point.index))
    processed = world.tally().processed[key]
    answered = answer.status == "ok" and answer.result.response["statusCode"] == 200
    if answered:
        assert processed == 1
    else:
        assert processed <= 1
    assert not world.timed_out()
    world.outcome = {"order": f"{'answered 200' if answered else 'not answered (WooCommerce gives up)'}, processed {processed}x"}


def test_a_woocommerce_order_during_a_dynamodb_outage_is_answered_held_and_delivered_once_after_it(world: World):
    """I4: DynamoDB refuses every call; the webhook is answered 200 (ingest does not need it), the
    sender gives the event back to SQS in time, and delivers it once DynamoDB is back."""
    world.proxy.add_rule(FaultRule("dynamodb", action=FAIL_5XX, times=None, until=time.monotonic() + 60))
    answer = post_woo_once(world, woo_order(930001))
    assert answer.status == "ok" and answer.result.response["statusCode"] == 200
    during = world.deliver_batch(world.receive())
    assert during.status == "ok" and during.result.response["batchItemFailures"]  # returned, not lost
    assert not world.tally().processed
    world.proxy.clear_rules()  # DynamoDB is back
    world.clock_offset += 800
    world.drain()
    assert world.tally().processed[world.key("930001")] == 1 and world.dlq_depth() == 0
    world.outcome = {"order": "answered 200 during the outage, returned to SQS by the sender, processed 1x after it"}


# ---------------------------------------------------------------- slow and failing AWS (I5)


@pytest.mark.parametrize("action", [DELAY(3.0), THROTTLE, FAIL_5XX], ids=lambda a: a.label)
def test_the_sender_ends_inside_its_timeout_whatever_dynamodb_does(world: World, action):
    events = [api_event(f"slow-{i}") for i in range(25)] + [api_event("slow-offline", "offline")]
    world.client_post("/events", *world.post_events(events))
    world.proxy.add_rule(FaultRule("dynamodb", action=action, times=None))
    invocation = world.deliver_batch(world.receive())
    assert invocation.status == "ok", invocation.result  # not "timeout": Lambda would kill it mid-write
    assert invocation.result.duration_s < 120
    world.proxy.clear_rules()
    world.clock_offset += 800
    world.drain()
    judge(world, events)


def test_ingest_ends_inside_its_timeout_when_sqs_is_slow(world: World):
    world.proxy.add_rule(FaultRule("sqs", action=DELAY(3.0), times=None))
    events = [api_event(f"sqs-slow-{i}") for i in range(95)]
    invocation = world.invoke("ingest", world.http_event("/events", *world.post_events(events)))
    assert invocation.status == "ok" and invocation.result.duration_s < 29, invocation.result
    world.proxy.clear_rules()
    answered = json.loads(invocation.result.response["body"])
    # whatever it could not queue in time it answered as errors (503): the client sends them again
    if invocation.result.response["statusCode"] == 503:
        world.client_post("/events", *world.post_events(events))
    world.drain()
    assert set(judge(world, events).values()) == {"delivered, processed 1x"}, answered


# ---------------------------------------------------------------- too large (I6)


def test_an_event_too_large_for_an_sqs_message_is_refused_alone_naming_the_field(world: World):
    small = api_event("size-small")
    big = api_event("size-big")
    # under the 1 MiB body limit, over 1 MiB once hashed and wrapped as a queued message
    big["user_data"] = {name: [f"v{i}@x.io" for i in range(10)] for name in ("em", "fn", "ln", "ct", "st", "external_id")}
    big["user_data"]["client_ip_address"] = "203.0.113.9"
    big["custom_data"]["content_name"] = "x" * (1_048_576 - 3_200)
    body, headers = world.post_events([small, big])
    assert len(body) <= 1_048_576
    (answer,) = world.client_post("/events", body, headers)
    result = json.loads(answer.result.response["body"])
    assert [e["status"] for e in result["events"]] == ["accepted", "rejected"]
    assert result["events"][1]["reason"].startswith("custom_data.content_name: the event is over 1048576 bytes")
    world.drain()
    assert world.tally().processed[world.key("size-small")] == 1 and not world.tally().processed[world.key("size-big")]
    world.outcome = {"small": "accepted, processed 1x", "big": "rejected at ingest (400 for that event), never queued"}
