"""Stripe and BigCommerce, with each fault at each AWS call their handlers make, and the process
killed while it waits for the platform's API (Stripe's line items, the store's order).

The same world as test_crash_points.py (moto server behind the fault proxy, each invocation a
process of its own with the template's Timeout, the Pinterest stand-in as the ledger), plus the
Stripe and BigCommerce stand-ins, the Stripe line-items queue and the BigCommerce fetch queue,
each with its DLQ. The platforms behave as documented: Stripe and BigCommerce deliver a webhook
again until they get a 2xx; SQS brings back a job its fetcher did not finish, after the
visibility timeout. Judged as in test_crash_points.py: every paid session and order reaches
Pinterest, once unless a dead sender had sent it (I1, I3), no invocation runs into its timeout,
nothing ends in a DLQ (I5), the jobs' DLQs included.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator

import pytest

from pinrelay.sources.signatures import standard_webhook_signature, stripe_signature_header
from pinrelay_local.fault_proxy import FaultPoint, sigkill_and_wait
from pinrelay_local.platform_standins import BigCommerceStandIn, StripeStandIn, example_orders, stripe_line_item
from tests.crash.conftest import AD_ACCOUNT, REPO, World, rule_for
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
# one line-items job: the restricted key (then the line items from Stripe's API, not an AWS call),
# the event on the events queue
LINE_ITEMS_CALLS = ["secretsmanager.GetSecretValue", "sqs.SendMessageBatch"]
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


def stripe_webhook() -> tuple[bytes, dict[str, str]]:
    event = json.loads((REPO / "events" / "webhooks" / "stripe_checkout_session_completed_stripe-ruby-mock.json").read_text())
    event.update(created=int(time.time()), livemode=True)
    event["data"]["object"].update(id=SESSION, livemode=True)
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


def drain_fetch_jobs(world: World, rounds: int = 8, function: str = "bigcommerce_fetch") -> None:
    """A job queue's event source (the BigCommerce fetch queue, or the Stripe line-items queue with
    ``function="stripe_line_items"``): invoke its fetcher until the queue is empty, each round after
    the first as SQS brings back what an invocation did not delete (after the visibility timeout)."""
    queue_url = world.line_items_queue if function == "stripe_line_items" else world.fetch_queue
    for _ in range(rounds):
        messages = world.receive(queue_url=queue_url)
        if not messages:
            time.sleep(1.1)
            messages = world.receive(queue_url=queue_url)
            if not messages:
                return
        world.deliver_batch(messages, function=function, queue_url=queue_url)
        world.clock_offset += 800
    raise AssertionError(f"the {function} queue did not drain in {rounds} rounds")


def drain_line_items_jobs(world: World) -> None:
    drain_fetch_jobs(world, function="stripe_line_items")


def dlq_depth(world: World, queue_url: str) -> int:
    attributes = world.aws["sqs"].get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(value) for value in attributes["Attributes"].values())


def judged(world: World, event_id: str) -> dict[str, str]:
    assert dlq_depth(world, world.fetch_dlq) == 0, "a fetch job ended in the fetch DLQ"
    assert dlq_depth(world, world.line_items_dlq) == 0, "a line-items job ended in the line-items DLQ"
    return judge(world, [{"event_id": event_id, "action_source": "web"}])


# -- the call lists are what the handlers really do ---------------------------------------------


def test_the_stripe_and_line_items_paths_make_these_aws_calls(platform_world: World, stripe: StripeStandIn):
    (attempt,) = platform_world.client_post("/webhooks/stripe", *stripe_webhook(), first_caller="stripe-rec")
    assert attempt.result.response["statusCode"] == 200
    assert platform_world.proxy.operations_of("stripe-rec") == STRIPE_CALLS
    assert stripe.paths() == []  # nothing read from Stripe while Stripe waits
    read = platform_world.deliver_batch(platform_world.receive(queue_url=platform_world.line_items_queue),
                                        caller="items-rec", function="stripe_line_items",
                                        queue_url=platform_world.line_items_queue)
    assert read.status == "ok" and read.result.response == {"batchItemFailures": []}
    assert platform_world.proxy.operations_of("items-rec") == LINE_ITEMS_CALLS
    assert stripe.paths() == [f"/v1/checkout/sessions/{SESSION}/line_items"]
    platform_world.drain()
    assert set(judged(platform_world, SESSION).values()) == {"delivered, processed 1x"}
    (sent,) = [e for r in platform_world.standin.received if r.get("body") for e in r["body"].get("data", [])
               if e["event_id"] == SESSION]
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
    drain_line_items_jobs(platform_world)
    platform_world.drain()
    assert set(judged(platform_world, SESSION).values()) == {"delivered, processed 1x"}


@pytest.mark.parametrize("point", points("items-1", LINE_ITEMS_CALLS), ids=str)
def test_line_items_fault(platform_world: World, point: FaultPoint):
    platform_world.client_post("/webhooks/stripe", *stripe_webhook())
    platform_world.proxy.add_rule(rule_for(point, point.action))
    first = platform_world.deliver_batch(platform_world.receive(queue_url=platform_world.line_items_queue),
                                         caller="items-1", function="stripe_line_items",
                                         queue_url=platform_world.line_items_queue)
    assert first.status == ("killed" if point.action.kills else "ok"), first.result
    platform_world.clock_offset += 800
    drain_line_items_jobs(platform_world)
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
    first = platform_world.deliver_batch(platform_world.receive(queue_url=platform_world.line_items_queue),
                                         caller="items-1", function="stripe_line_items",
                                         queue_url=platform_world.line_items_queue)
    assert first.status == "killed"
    platform_world.clock_offset += 800
    drain_line_items_jobs(platform_world)
    platform_world.drain()
    assert set(judged(platform_world, SESSION).values()) == {"delivered, processed 1x"}


def test_stripe_down_for_a_while_only_delays_the_session(platform_world: World, stripe: StripeStandIn):
    platform_world.client_post("/webhooks/stripe", *stripe_webhook())
    stripe.set_fault("status", status=503, count=4)  # two reads, each trying twice
    drain_line_items_jobs(platform_world)
    platform_world.drain()
    retried = [i for i in platform_world.invocations if i.function == "stripe_line_items"]
    assert len(retried) == 3 and not platform_world.timed_out()
    assert set(judged(platform_world, SESSION).values()) == {"delivered, processed 1x"}


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
