"""Stripe and BigCommerce, with each fault at each AWS call their handlers make, and the process
killed while it waits for the platform's API (Stripe's line items, the store's order).

The same world as test_crash_points.py (moto server behind the fault proxy, each invocation a
process of its own with the template's Timeout, the Pinterest stand-in as the ledger), plus the
Stripe and BigCommerce stand-ins, the Stripe line-items queue and the BigCommerce fetch queue,
each with its DLQ. The platforms behave as documented: Stripe and BigCommerce deliver a webhook
again until they get a 2xx; SQS brings back a job its fetcher did not finish, after the
visibility timeout. The BigCommerce fetcher is fed by Lambda's event source (played by the test);
the Stripe line-items fetcher runs on its schedule and receives and deletes its jobs itself
(pinrelay.job_drain): a test only starts its runs. Judged as in test_crash_points.py: every paid
session and order reaches Pinterest, once unless a dead sender had sent it (I1, I3), no
invocation runs into its timeout, nothing ends in a DLQ (I5), the jobs' DLQs included.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from pinrelay.sources.signatures import standard_webhook_signature, stripe_signature_header
from pinrelay_local.fault_proxy import KILL_AFTER, KILL_BEFORE, FaultAction, FaultPoint, FaultRule, sigkill_and_wait
from pinrelay_local.platform_standins import BigCommerceStandIn, StripeStandIn, example_orders, stripe_line_item
from pinrelay_local.schedule import scheduled_event
from tests.crash.conftest import AD_ACCOUNT, REPO, Invocation, World, rule_for
from tests.crash.test_crash_points import ACTIONS, judge, points

STRIPE_SECRET = "whsec_crash_stripe_endpoint_secret_000001"
STRIPE_KEY = "rk_test_crash_line_items_key_0001"
STORE = "crashstore"
STORE_TOKEN = "crash-bigcommerce-store-token-000000001"
HEADER_SECRET = "crash-bigcommerce-header-secret-0000000001"
CLIENT_SECRET = "crash-bigcommerce-client-secret-0000000001"
SESSION = "cs_live_crash_session"
ORDER_EVENT_ID = f"{STORE}-250"

# one Stripe webhook: the account map, the Stripe signing secret, the line-items job
STRIPE_CALLS = ["secretsmanager.GetSecretValue"] * 2 + ["sqs.SendMessageBatch"]
# one scheduled run of the line-items fetcher with one job waiting: the job received (one receive
# brings fewer than ten: the run's last), the restricted key (then the line items from Stripe's API,
# not an AWS call), the event on the events queue, the job deleted
LINE_ITEMS_CALLS = ["sqs.ReceiveMessage", "secretsmanager.GetSecretValue", "sqs.SendMessageBatch", "sqs.DeleteMessageBatch"]
# the line-items queue's visibility timeout here: the template's is 360 s; a few seconds let a
# killed run's jobs, or a job left for a retry, come back after a real wait
LINE_ITEMS_VISIBILITY_S = 3
SCHEDULE_RULE = "arn:aws:events:us-east-1:123456789012:rule/crash-line-items-every-minute"
# one BigCommerce webhook: the account map, the header secret, the client secret, the fetch job
BIGCOMMERCE_CALLS = ["secretsmanager.GetSecretValue"] * 3 + ["sqs.SendMessageBatch"]
# one fetch job: the store's API token (then the order, and its products and shipping addresses at
# the same time, from the store's API), the event on the events queue
FETCH_CALLS = ["secretsmanager.GetSecretValue", "sqs.SendMessageBatch"]
STORE_GETS = ["/orders/250", "/orders/250/products", "/orders/250/shipping_addresses"]


@pytest.fixture(scope="module")
def stripe() -> Iterator[StripeStandIn]:
    with StripeStandIn(key=STRIPE_KEY) as server:
        yield server


@pytest.fixture(scope="module")
def store() -> Iterator[BigCommerceStandIn]:
    with BigCommerceStandIn({STORE: STORE_TOKEN}) as server:
        yield server


@pytest.fixture
def platform_world(world: World, stripe: StripeStandIn, store: BigCommerceStandIn) -> Iterator[World]:
    """The crash world with Stripe and BigCommerce set up as the template sets them."""
    sqs, secrets = world.aws["sqs"], world.aws["secretsmanager"]
    suffix = uuid.uuid4().hex[:8]
    fetch_dlq = sqs.create_queue(QueueName=f"crash-fetch-dlq-{suffix}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=fetch_dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    fetch_queue = sqs.create_queue(QueueName=f"crash-fetch-{suffix}", Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})})["QueueUrl"]
    line_items_dlq = sqs.create_queue(QueueName=f"crash-line-items-dlq-{suffix}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=line_items_dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    line_items_queue = sqs.create_queue(QueueName=f"crash-line-items-{suffix}", Attributes={
        "VisibilityTimeout": str(LINE_ITEMS_VISIBILITY_S),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})})["QueueUrl"]
    names = {}
    for name, value in (("stripe", STRIPE_SECRET), ("stripe-key", STRIPE_KEY), ("bigcommerce", HEADER_SECRET),
                        ("bigcommerce-client", CLIENT_SECRET), ("bigcommerce-token", STORE_TOKEN)):
        names[name] = f"pinrelay/crash-{suffix}/{name}"
        secrets.create_secret(Name=names[name], SecretString=value)
    world.env.update({
        "STRIPE_WEBHOOK_SECRET_NAME": names["stripe"], "STRIPE_API_KEY_SECRET_NAME": names["stripe-key"],
        "STRIPE_API_URL": stripe.base_url, "ALLOW_LOOPBACK_HTTP": "true", "BIGCOMMERCE_STORE_HASH": STORE,
        "BIGCOMMERCE_WEBHOOK_SECRET_NAME": names["bigcommerce"], "BIGCOMMERCE_CLIENT_SECRET_NAME": names["bigcommerce-client"],
        "BIGCOMMERCE_FETCH_QUEUE_URL": fetch_queue, "BIGCOMMERCE_API_URL": store.base_url,
        "BIGCOMMERCE_API_TOKEN_SECRET_NAME": names["bigcommerce-token"], "STRIPE_LINE_ITEMS_QUEUE_URL": line_items_queue,
    })
    world.fetch_queue, world.fetch_dlq = fetch_queue, fetch_dlq  # type: ignore[attr-defined]
    world.line_items_queue, world.line_items_dlq = line_items_queue, line_items_dlq  # type: ignore[attr-defined]
    stripe.clear()
    stripe.add_session({"id": SESSION}, [stripe_line_item(1, 3, 1000, "usd", "prod_crash", "T-shirt")])
    store.clear()
    store.on_request = None
    for bundle in example_orders().values():
        store.put_order(STORE, bundle)
    yield world
    stripe.on_request = store.on_request = None
    stripe.clear()
    store.clear()


def stripe_webhook(session_id: str = SESSION) -> tuple[bytes, dict[str, str]]:
    event = json.loads((REPO / "events" / "webhooks" / "stripe_checkout_session_completed_stripe-ruby-mock.json").read_text())
    event.update(created=int(time.time()), livemode=True)
    event["data"]["object"].update(id=session_id, livemode=True)
    raw = json.dumps(event, indent=2).encode()
    return raw, {"content-type": "application/json", "stripe-signature": stripe_signature_header(raw, STRIPE_SECRET, int(time.time()))}


def bigcommerce_webhook() -> tuple[bytes, dict[str, str]]:
    payload = {"scope": "store/order/created", "store_id": "1", "data": {"type": "order", "id": 250},
               "hash": hashlib.sha1(b"250").hexdigest(), "created_at": int(time.time()), "producer": f"stores/{STORE}"}
    raw = json.dumps(payload).encode()
    message_id, stamp = f"msg_{uuid.uuid4().hex}", int(time.time())
    return raw, {"content-type": "application/json", "x-pinrelay-secret": HEADER_SECRET, "webhook-id": message_id,
                 "webhook-timestamp": str(stamp),
                 "webhook-signature": standard_webhook_signature(raw, message_id, stamp, CLIENT_SECRET.encode())}


def kill_when(standin: StripeStandIn | BigCommerceStandIn, world: World, caller: str, path_end: str) -> None:
    """Kill ``caller``'s process the first time it asks ``standin`` for a path ending in ``path_end``,
    before the answer is written: the process dies waiting for the platform's API."""
    armed = [True]

    def on_request(method: str, path: str) -> None:
        if armed[0] and path.endswith(path_end) and caller in world.pids:
            armed[0] = False
            sigkill_and_wait(world.pids[caller])

    standin.on_request = on_request


def drain_fetch_jobs(world: World, rounds: int = 8) -> None:
    """The BigCommerce fetch queue's event source: invoke its fetcher until the queue is empty, each
    round after the first as SQS brings back what an invocation did not delete (after the
    visibility timeout)."""
    for _ in range(rounds):
        messages = world.receive(queue_url=world.fetch_queue)
        if not messages:
            time.sleep(1.1)
            messages = world.receive(queue_url=world.fetch_queue)
            if not messages:
                return
        world.deliver_batch(messages, function="bigcommerce_fetch", queue_url=world.fetch_queue)
        world.clock_offset += 800
    raise AssertionError(f"the fetch queue did not drain in {rounds} rounds")


def scheduled_run(world: World, caller: str | None = None) -> Invocation:
    """One run of the Stripe line-items fetcher as its schedule starts it (EventBridge's event): it
    receives, does and deletes its jobs itself."""
    return world.invoke("stripe_line_items", scheduled_event(SCHEDULE_RULE), caller=caller)


def line_items_jobs(world: World) -> tuple[int, int]:
    """(visible, in flight) jobs on the line-items queue, as SQS counts them."""
    attributes = world.aws["sqs"].get_queue_attributes(QueueUrl=world.line_items_queue, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def wait_for_in_flight_jobs(world: World) -> None:
    """Wait until no line-items job is in flight: the jobs a killed run received, and those a run
    left for a retry, come back after the queue's visibility timeout."""
    deadline = time.monotonic() + LINE_ITEMS_VISIBILITY_S + 10
    while line_items_jobs(world)[1]:
        assert time.monotonic() < deadline, f"line-items jobs still in flight: {line_items_jobs(world)}"
        time.sleep(0.25)


def run_the_schedule(world: World, runs: int = 8) -> list[Invocation]:
    """The fetcher's schedule until the line-items queue is empty: a run while jobs wait, each
    800 s after the one before on the functions' clocks. Jobs in flight are waited for, not taken
    for an empty queue. Returns the runs."""
    done = []
    for _ in range(runs):
        wait_for_in_flight_jobs(world)
        if line_items_jobs(world) == (0, 0):
            return done
        done.append(scheduled_run(world))
        world.clock_offset += 800
    raise AssertionError(f"the line-items queue did not drain in {runs} runs: {line_items_jobs(world)}")


def post_sessions(world: World, stripe: StripeStandIn, count: int) -> list[str]:
    """``count`` paid sessions, each with its line items at Stripe and its webhook taken by ingest:
    a backlog of ``count`` line-items jobs."""
    sessions = [f"{SESSION}-{number:02d}" for number in range(count)]
    for session in sessions:
        stripe.add_session({"id": session}, [stripe_line_item(1, 1, 1000, "usd", f"prod_{session}", "T-shirt")])
        world.client_post("/webhooks/stripe", *stripe_webhook(session))
    assert line_items_jobs(world) == (count, 0)
    return sessions


def received_by(world: World, callers: tuple[str, ...], timeout_s: float = 60.0) -> None:
    """Wait until each of ``callers`` has had the answer to a ReceiveMessage (or ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answered = {record.caller for record in world.proxy.calls
                    if record.operation == "ReceiveMessage" and record.client_status == 200}
        if answered.issuperset(callers):
            return
        time.sleep(0.05)


def dlq_depth(world: World, queue_url: str) -> int:
    attributes = world.aws["sqs"].get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(value) for value in attributes["Attributes"].values())


def judged(world: World, *event_ids: str) -> dict[str, str]:
    assert dlq_depth(world, world.fetch_dlq) == 0, "a fetch job ended in the fetch DLQ"
    assert dlq_depth(world, world.line_items_dlq) == 0, "a line-items job ended in the line-items DLQ"
    return judge(world, [{"event_id": event_id, "action_source": "web"} for event_id in event_ids])


def sent_events(world: World, event_id: str) -> list[dict]:
    """The events of ``event_id`` that Pinterest (the stand-in) got."""
    return [e for r in world.standin.received if r.get("body") for e in r["body"].get("data", []) if e["event_id"] == event_id]


# -- the call lists are what the handlers really do ---------------------------------------------


def test_the_stripe_and_line_items_paths_make_these_aws_calls(platform_world: World, stripe: StripeStandIn):
    (attempt,) = platform_world.client_post("/webhooks/stripe", *stripe_webhook(), first_caller="stripe-rec")
    assert attempt.result.response["statusCode"] == 200
    assert platform_world.proxy.operations_of("stripe-rec") == STRIPE_CALLS
    assert stripe.paths() == []  # nothing read from Stripe while Stripe waits
    run = scheduled_run(platform_world, caller="items-rec")
    assert run.status == "ok" and run.result.response == {
        "received": 1, "queued": 1, "rejected": 0, "retry": 0, "without_contents": 0, "rounds": 1, "stopped": "drained",
        "problem": None, "not_deleted": 0}, run.result
    assert platform_world.proxy.operations_of("items-rec") == LINE_ITEMS_CALLS
    assert stripe.paths() == [f"/v1/checkout/sessions/{SESSION}/line_items"]
    assert line_items_jobs(platform_world) == (0, 0)  # the run deleted its job
    platform_world.drain()
    assert set(judged(platform_world, SESSION).values()) == {"delivered, processed 1x"}
    (sent,) = sent_events(platform_world, SESSION)
    assert sent["custom_data"]["content_ids"] == ["prod_crash"]


def test_the_bigcommerce_and_fetch_paths_make_these_aws_calls(platform_world: World, store: BigCommerceStandIn):
    (attempt,) = platform_world.client_post("/webhooks/bigcommerce", *bigcommerce_webhook(), first_caller="bc-rec")
    assert attempt.result.response["statusCode"] == 200
    assert platform_world.proxy.operations_of("bc-rec") == BIGCOMMERCE_CALLS
    fetch = platform_world.deliver_batch(platform_world.receive(queue_url=platform_world.fetch_queue),
                                         caller="fetch-rec", function="bigcommerce_fetch", queue_url=platform_world.fetch_queue)
    assert fetch.status == "ok" and fetch.result.response == {"batchItemFailures": []}
    assert platform_world.proxy.operations_of("fetch-rec") == FETCH_CALLS
    asked = [path.removeprefix(f"/stores/{STORE}/v2") for path in store.paths()]
    assert asked[0] == STORE_GETS[0] and sorted(asked[1:]) == sorted(STORE_GETS[1:])  # then both at once
    platform_world.drain()
    assert set(judged(platform_world, ORDER_EVENT_ID).values()) == {"delivered, processed 1x"}


# -- every fault at every AWS call ----------------------------------------------------------------


@pytest.mark.parametrize("point", points("stripe-1", STRIPE_CALLS), ids=str)
def test_stripe_fault(platform_world: World, point: FaultPoint):
    platform_world.proxy.add_rule(rule_for(point, point.action))
    tries = platform_world.client_post("/webhooks/stripe", *stripe_webhook(), first_caller="stripe-1")
    assert json.loads(tries[-1].result.response["body"])["accepted"] == 1  # Stripe's retry is taken
    run_the_schedule(platform_world)
    platform_world.drain()
    assert set(judged(platform_world, SESSION).values()) == {"delivered, processed 1x"}


@pytest.mark.parametrize("point", points("items-1", LINE_ITEMS_CALLS), ids=str)
def test_line_items_fault(platform_world: World, point: FaultPoint):
    platform_world.client_post("/webhooks/stripe", *stripe_webhook())
    rule = platform_world.proxy.add_rule(rule_for(point, point.action))
    first = scheduled_run(platform_world, caller="items-1")
    assert rule.fired, f"the run never made call {point.index} ({point.service}.{point.operation})"
    assert first.status == ("killed" if point.action.kills else "ok"), first.result
    platform_world.clock_offset += 800
    run_the_schedule(platform_world)
    platform_world.drain()
    assert set(judged(platform_world, SESSION).values()) == {"delivered, processed 1x"}


@pytest.mark.parametrize("point", points("bc-1", BIGCOMMERCE_CALLS), ids=str)
def test_bigcommerce_fault(platform_world: World, point: FaultPoint):
    platform_world.proxy.add_rule(rule_for(point, point.action))
    platform_world.client_post("/webhooks/bigcommerce", *bigcommerce_webhook(), first_caller="bc-1")
    drain_fetch_jobs(platform_world)
    platform_world.drain()
    assert set(judged(platform_world, ORDER_EVENT_ID).values()) == {"delivered, processed 1x"}


@pytest.mark.parametrize("point", points("fetch-1", FETCH_CALLS), ids=str)
def test_fetch_fault(platform_world: World, point: FaultPoint):
    platform_world.client_post("/webhooks/bigcommerce", *bigcommerce_webhook())
    platform_world.proxy.add_rule(rule_for(point, point.action))
    first = platform_world.deliver_batch(platform_world.receive(queue_url=platform_world.fetch_queue), caller="fetch-1",
                                         function="bigcommerce_fetch", queue_url=platform_world.fetch_queue)
    assert first.status == ("killed" if point.action.kills else "ok"), first.result
    platform_world.clock_offset += 800
    drain_fetch_jobs(platform_world)
    platform_world.drain()
    assert set(judged(platform_world, ORDER_EVENT_ID).values()) == {"delivered, processed 1x"}


# -- killed while waiting for the platform's API --------------------------------------------------


def test_the_fetcher_killed_while_stripe_answers_the_line_items(platform_world: World, stripe: StripeStandIn):
    platform_world.client_post("/webhooks/stripe", *stripe_webhook())
    kill_when(stripe, platform_world, "items-1", "/line_items")
    first = scheduled_run(platform_world, caller="items-1")
    assert first.status == "killed"
    assert sum(line_items_jobs(platform_world)) == 1  # received, not deleted
    platform_world.clock_offset += 800
    run_the_schedule(platform_world)
    platform_world.drain()
    assert set(judged(platform_world, SESSION).values()) == {"delivered, processed 1x"}


def test_stripe_down_for_a_while_only_delays_the_session(platform_world: World, stripe: StripeStandIn):
    platform_world.client_post("/webhooks/stripe", *stripe_webhook())
    stripe.set_fault("status", status=503, count=4)  # two reads, each trying twice
    runs = run_the_schedule(platform_world)
    platform_world.drain()
    worked = [run.result.response for run in runs if run.status == "ok" and run.result.response["received"]]
    # the job left for a retry twice, each time back after the visibility timeout; the third run queues it
    assert [(r["retry"], r["queued"]) for r in worked] == [(1, 0), (1, 0), (0, 1)], worked
    assert not platform_world.timed_out()
    assert set(judged(platform_world, SESSION).values()) == {"delivered, processed 1x"}
    (sent,) = sent_events(platform_world, SESSION)
    assert sent["custom_data"]["content_ids"] == ["prod_crash"]  # delayed, with its line items


# -- the scheduled drain: a backlog, runs side by side, a run killed mid-backlog ---------------


def test_two_runs_at_the_same_time_drain_one_backlog_once(platform_world: World, stripe: StripeStandIn):
    """Two runs overlap (a run longer than the schedule's minute, at a backlog): each takes jobs,
    SQS may hand a job to both (at-least-once); every session reaches Pinterest once, none is lost."""
    sessions = post_sessions(platform_world, stripe, 12)
    callers = ("items-a", "items-b")
    # neither run reads Stripe before both have received: both hold jobs at the same time
    stripe.on_request = lambda method, path: received_by(platform_world, callers)
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda caller: scheduled_run(platform_world, caller), callers))
    stripe.on_request = None
    assert [run.status for run in runs] == ["ok", "ok"], [run.result for run in runs]
    received = [run.result.response["received"] for run in runs]
    assert min(received) >= 1 and sum(received) >= len(sessions), received
    platform_world.clock_offset += 800
    run_the_schedule(platform_world)  # what a run left for a retry, if any
    platform_world.drain()
    assert set(judged(platform_world, *sessions).values()) == {"delivered, processed 1x"}
    platform_world.outcome["runs"] = "received " + " and ".join(map(str, received))


@pytest.mark.parametrize("action", [KILL_BEFORE, KILL_AFTER], ids=lambda action: action.label)
def test_a_run_killed_at_its_first_round_loses_none_of_a_full_backlog(platform_world: World, stripe: StripeStandIn,
                                                                      action: FaultAction):
    sessions = post_sessions(platform_world, stripe, 12)
    platform_world.proxy.add_rule(FaultRule("sqs", "SendMessageBatch", caller="items-1", action=action))
    first = scheduled_run(platform_world, caller="items-1")
    assert first.status == "killed"
    assert platform_world.proxy.operations_of("items-1") == LINE_ITEMS_CALLS[:3]  # the first round: its receive, key, events
    assert sum(line_items_jobs(platform_world)) == len(sessions)  # none deleted
    platform_world.clock_offset += 800
    wait_for_in_flight_jobs(platform_world)
    second = scheduled_run(platform_world)
    # the next run takes all twelve: ten, then two (fewer than ten: the last round)
    assert second.status == "ok" and second.result.response == {
        "received": 12, "queued": 12, "rejected": 0, "retry": 0, "without_contents": 0, "rounds": 2, "stopped": "drained",
        "problem": None, "not_deleted": 0}, second.result
    assert line_items_jobs(platform_world) == (0, 0)
    platform_world.drain()
    assert set(judged(platform_world, *sessions).values()) == {"delivered, processed 1x"}


@pytest.mark.parametrize("path_end", STORE_GETS, ids=lambda p: p.rsplit("/", 1)[-1])
def test_fetcher_killed_while_the_store_answers(platform_world: World, store: BigCommerceStandIn, path_end: str):
    platform_world.client_post("/webhooks/bigcommerce", *bigcommerce_webhook())
    kill_when(store, platform_world, "fetch-1", path_end)
    first = platform_world.deliver_batch(platform_world.receive(queue_url=platform_world.fetch_queue), caller="fetch-1",
                                         function="bigcommerce_fetch", queue_url=platform_world.fetch_queue)
    assert first.status == "killed"
    platform_world.clock_offset += 800
    drain_fetch_jobs(platform_world)
    platform_world.drain()
    assert set(judged(platform_world, ORDER_EVENT_ID).values()) == {"delivered, processed 1x"}


def test_a_store_down_for_a_while_only_delays_the_order(platform_world: World, store: BigCommerceStandIn):
    platform_world.client_post("/webhooks/bigcommerce", *bigcommerce_webhook())
    store.set_fault("status", status=503, count=4)  # two fetches, each trying its first call twice
    drain_fetch_jobs(platform_world)
    platform_world.drain()
    retried = [i for i in platform_world.invocations if i.function == "bigcommerce_fetch"]
    assert len(retried) == 3 and not platform_world.timed_out()
    assert set(judged(platform_world, ORDER_EVENT_ID).values()) == {"delivered, processed 1x"}


def test_a_store_that_stays_down_keeps_the_job_in_the_fetch_dlq_until_it_is_redriven(platform_world: World,
                                                                                        store: BigCommerceStandIn):
    platform_world.client_post("/webhooks/bigcommerce", *bigcommerce_webhook())
    store.set_fault("status", status=503)
    for _ in range(5):  # maxReceiveCount: five fetches fail, SQS moves the job to the DLQ
        messages = platform_world.receive(queue_url=platform_world.fetch_queue)
        platform_world.deliver_batch(messages, function="bigcommerce_fetch", queue_url=platform_world.fetch_queue)
        platform_world.clock_offset += 800
        time.sleep(1.1)
    assert platform_world.receive(queue_url=platform_world.fetch_queue) == []
    (kept,) = platform_world.receive(queue_url=platform_world.fetch_dlq)
    assert json.loads(kept["Body"])["order_id"] == 250  # nothing personal, enough to fetch it again
    store.set_fault(None)
    # the operator's redrive (the console's, or StartMessageMoveTask): the job back on its queue
    platform_world.aws["sqs"].send_message(QueueUrl=platform_world.fetch_queue, MessageBody=kept["Body"])
    platform_world.aws["sqs"].delete_message(QueueUrl=platform_world.fetch_dlq, ReceiptHandle=kept["ReceiptHandle"])
    drain_fetch_jobs(platform_world)
    platform_world.drain()
    assert set(judged(platform_world, ORDER_EVENT_ID).values()) == {"delivered, processed 1x"}


assert ACTIONS  # the same five actions as the ingest and sender paths
assert AD_ACCOUNT
