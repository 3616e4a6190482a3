"""The crash-point suite's world: pinrelay's handlers run as Lambda runs them, against moto server
behind a fault-injecting proxy, judged by an event_id ledger at the Pinterest stand-in.

* moto server holds the queue (with its DLQ, maxReceiveCount 5), the delivery ledger table and
  the secrets; every call a handler makes goes through ``AwsFaultProxy`` (AWS_ENDPOINT_URL), which
  can kill the handler's process right before a call reaches AWS or right after AWS applied it,
  lose the answer (botocore then sends the call again), or fail or throttle a service for a while.
* each invocation is a process of its own (``lambda_process.invoke``) with the template's Timeout:
  killed at the timeout, no clean-up, a cold start each time;
* ``World.drain`` plays Lambda's SQS event source: receive, invoke the sender, delete what it did
  not return. A batch whose invocation died is not deleted and comes back once its visibility
  timeout has passed: in AWS 780 s, so the next invocation runs 800 s later on its own clock
  (``clock_offset_s``), when every lease of the dead one has expired;
* ``World.client_post`` plays a client that retries a request until it gets a 2xx (Shopify,
  WooCommerce, a shop's backend): a killed ingest invocation is a 5xx/timeout to it.

The ledger: ``World.tally()`` counts, per dedup key, what the stand-in processed; ``World.states()``
reads the delivery ledger. See docs/delivery-guarantees.md, for the invariants checked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from pinrelay.adapters.dead_letters import make_visible
from pinrelay.events import dedup_key
from pinrelay_local.fault_proxy import AwsFaultProxy, FaultRule
from pinrelay_local.http_gateway import build_http_api_event
from pinrelay_local.lambda_process import InvocationResult, invoke
from pinrelay_local.moto_server import running_moto
from pinrelay_local.pinterest_standin import PinterestStandIn, StandInTally, tally_standin
from pinrelay_local.sqs_event_source import message_attributes_to_lambda
from pinrelay_tools.template import load_template

REPO = Path(__file__).resolve().parents[2]
AD_ACCOUNT = "549755885175"
API_KEY = "crash-ingest-key-long-enough-to-resist-guessing"
SHOPIFY_SECRET = "crash-shopify-secret-long-enough-to-resist-guessing"
WOO_SECRET = 'X~-hzjG:8*%K71 625w;@*,@$S&fw)}x|VH/)f8ysgvC|lIvid'
TOKEN = "crash-conversion-token"
REDELIVERY_SECONDS = 800  # SQS visibility timeout in the template (780 s) and a margin
MAX_RECEIVE_COUNT = 5  # the template's redrive policy
HANDLERS = {
    "ingest": ("functions/ingest/ingest_handler.py:lambda_handler", "IngestFunction"),
    "sender": ("functions/sender/sender_handler.py:lambda_handler", "SenderFunction"),
    "offline_import": ("functions/offline_import/offline_import_handler.py:lambda_handler", "OfflineImportFunction"),
    "bigcommerce_fetch": ("functions/bigcommerce_fetch/bigcommerce_fetch_handler.py:lambda_handler",
                          "BigCommerceFetchFunction"),
    "stripe_line_items": ("functions/stripe_line_items/stripe_line_items_handler.py:lambda_handler",
                          "StripeLineItemsFunction"),
}



def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/crash is marked ``crash``: `make test` leaves them to `make crash`."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.crash)


def template_timeouts() -> dict[str, float]:
    """Each function's Timeout as template.yaml sets it (Globals as the default)."""
    template = load_template(REPO / "template.yaml")
    default = template["Globals"]["Function"]["Timeout"]
    return {name: float(template["Resources"][logical]["Properties"].get("Timeout", default))
            for name, (_, logical) in HANDLERS.items()}


TIMEOUTS = template_timeouts()


def api_event(event_id: str, action_source: str = "web", **extra: Any) -> dict[str, Any]:
    return {"event_name": "checkout", "action_source": action_source, "event_id": event_id, "event_time": int(time.time()) - 60,
            "user_data": {"em": [f"{event_id}@example.com"], "client_ip_address": "203.0.113.9", "client_user_agent": "Mozilla/5.0"},
            "custom_data": {"value": "19.99", "currency": "USD", "order_id": event_id}, **extra}


def sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@dataclass
class Invocation:
    caller: str
    function: str
    result: InvocationResult
    pinterest_requests: list[dict[str, Any]] = field(default_factory=list)  # what the stand-in got meanwhile

    @property
    def status(self) -> str:
        return self.result.status

    def metric(self, name: str, dimensions: list[list[str]] | None = None) -> float:
        """The sum of an EMF metric the invocation printed (Powertools writes one JSON document a
        line); with ``dimensions``, only from the documents with those."""
        total = 0.0
        for line in self.result.stdout.splitlines():
            if line.startswith("{") and f'"{name}"' in line:
                document = json.loads(line)
                if dimensions is None or document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == dimensions:
                    value = document.get(name)
                    total += sum(value) if isinstance(value, list) else float(value or 0)
        return total

    def total(self, name: str) -> float:
        """A metric from the handler's totals document (dimension service only), leaving out the
        per source and event_name documents that count the same events again."""
        return self.metric(name, dimensions=[["service"]])


@dataclass
class World:
    proxy: AwsFaultProxy
    aws: dict[str, Any]  # boto3 clients straight to moto (not through the proxy): set-up and inspection
    standin: PinterestStandIn
    queue_url: str
    dlq_url: str
    table: str
    env: dict[str, str]
    invocations: list[Invocation] = field(default_factory=list)
    clock_offset: float = 0.0
    outcome: dict[str, str] = field(default_factory=dict)  # what the test found, for the results table
    pids: dict[str, int] = field(default_factory=dict)  # caller -> its process (a kill outside AWS calls)
    _callers: int = 0

    # -- invocations -----------------------------------------------------------------------
    def caller(self, function: str) -> str:
        self._callers += 1
        return f"{function}-{self._callers}"

    def invoke(self, function: str, event: dict[str, Any], caller: str | None = None,
               clock_offset: float | None = None) -> Invocation:
        caller = caller or self.caller(function)
        handler, logical = HANDLERS[function]
        before = len(self.standin.received)
        result = invoke(
            handler, event, env=self.env, timeout_s=TIMEOUTS[function], function_name=logical,
            python_paths=[str(REPO / Path(handler.split(":")[0]).parent), str(REPO / "layers" / "pinrelay")],
            caller_id=caller, on_start=lambda pid: (self.proxy.register_process(caller, pid), self.pids.__setitem__(caller, pid)),
            clock_offset_s=self.clock_offset if clock_offset is None else clock_offset,
        )
        invocation = Invocation(caller, function, result, list(self.standin.received[before:]))
        self.invocations.append(invocation)
        return invocation

    def timed_out(self) -> list[Invocation]:
        return [i for i in self.invocations if i.status == "timeout"]

    # -- the clients ----------------------------------------------------------------------
    def http_event(self, path: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        return build_http_api_event(method="POST", raw_path=path, raw_query="", header_pairs=list(headers.items()), body=body,
                                    source_ip="203.0.113.7", route_key=f"POST {path}")

    def post_events(self, events: list[dict[str, Any]]) -> tuple[bytes, dict[str, str]]:
        body = json.dumps({"data": events} if len(events) > 1 else events[0]).encode()
        return body, {"content-type": "application/json", "x-api-key": API_KEY}

    def client_post(self, path: str, body: bytes, headers: dict[str, str], first_caller: str | None = None,
                    attempts: int = 5) -> list[Invocation]:
        """Post until a 2xx, as Shopify, WooCommerce or a backend retrying 5xx and timeouts would;
        the first attempt as ``first_caller`` (the one a fault may target)."""
        tries = []
        for attempt in range(attempts):
            invocation = self.invoke("ingest", self.http_event(path, body, headers), caller=first_caller if attempt == 0 else None)
            tries.append(invocation)
            if invocation.status == "ok" and 200 <= invocation.result.response["statusCode"] < 300:
                return tries
        raise AssertionError(f"{path}: no 2xx after {attempts} attempts: {[t.result for t in tries]}")

    # -- the event source -------------------------------------------------------------------
    def receive(self, visibility: int = 1, queue_url: str | None = None) -> list[dict[str, Any]]:
        """Every visible message, each received once, then invisible for ``visibility`` seconds.
        The pass receives for 60 s and shortens that at the end: with 1 s, a pass slower than a
        second (moto scans the whole queue on each call; a loaded CI host) received the first
        messages again, and the extra receives sent them to the DLQ after maxReceiveCount."""
        sqs = self.aws["sqs"]
        queue_url = queue_url or self.queue_url
        messages: dict[str, dict[str, Any]] = {}
        for _ in range(20):
            got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60,
                                      AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
            if not got:
                break
            messages.update({m["MessageId"]: m for m in got})
        make_visible(sqs, queue_url, [m["ReceiptHandle"] for m in messages.values()], after_seconds=visibility)
        return list(messages.values())

    @staticmethod
    def sqs_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
        return {"Records": [{
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": m.get("Attributes", {}), "messageAttributes": message_attributes_to_lambda(m.get("MessageAttributes")),
            "md5OfBody": m.get("MD5OfBody", ""), "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:pinrelay-events", "awsRegion": "us-east-1",
        } for m in messages]}

    def deliver_batch(self, messages: list[dict[str, Any]], caller: str | None = None, function: str = "sender",
                      queue_url: str | None = None) -> Invocation:
        """One invocation of ``function`` (the sender) with ``messages`` of ``queue_url`` (the events
        queue); delete what it did not return (Lambda's event source)."""
        invocation = self.invoke(function, self.sqs_event(messages), caller=caller)
        if invocation.status == "ok":
            failed = {f["itemIdentifier"] for f in invocation.result.response.get("batchItemFailures", [])}
            done = [m for m in messages if m["MessageId"] not in failed]
            for start in range(0, len(done), 10):
                self.aws["sqs"].delete_message_batch(QueueUrl=queue_url or self.queue_url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start:start + 10])])
        return invocation

    def drain(self, rounds: int = 12) -> None:
        """Invoke the sender until the queue is empty; each round after the first happens
        REDELIVERY_SECONDS later (on the functions' clocks) than the one before, as SQS brings
        back what an invocation did not delete only after the visibility timeout."""
        for _ in range(rounds):
            messages = self.receive()
            if not messages:
                time.sleep(1.1)  # in flight after a kill: visible again after the 1 s we received them with
                messages = self.receive()
                if not messages:
                    return
            self.deliver_batch(messages)
            self.clock_offset += REDELIVERY_SECONDS
        raise AssertionError(f"the queue did not drain in {rounds} rounds")

    # -- the books -----------------------------------------------------------------------
    def key(self, event_id: str, offline: bool = False) -> str:
        return dedup_key(AD_ACCOUNT, "checkout", event_id, offline)

    def tally(self) -> StandInTally:
        return tally_standin(self.standin.received, client_timeout_s=10.0)

    def states(self) -> dict[str, dict[str, Any]]:
        items = {}
        for page in self.aws["dynamodb"].get_paginator("scan").paginate(TableName=self.table, ConsistentRead=True):
            for item in page["Items"]:
                items[item["pk"]["S"]] = {name: next(iter(value.values())) for name, value in item.items()}
        return items

    def dlq_depth(self) -> int:
        attributes = self.aws["sqs"].get_queue_attributes(
            QueueUrl=self.dlq_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    @staticmethod
    def keys_sent(invocation: Invocation) -> set[str]:
        """Keys of the events in the requests Pinterest got while ``invocation`` ran (invocations run
        one at a time here): events Pinterest may have processed before the process died."""
        return {dedup_key(record["ad_account_id"], e["event_name"], e["event_id"], e.get("action_source") == "offline")
                for record in invocation.pinterest_requests if record.get("body") for e in record["body"].get("data", [])}


@pytest.fixture(scope="session")
def moto() -> Iterator[str]:
    with running_moto() as url:
        yield url


@pytest.fixture(scope="session")
def proxy(moto: str) -> Iterator[AwsFaultProxy]:
    with AwsFaultProxy(moto) as running:
        yield running


@pytest.fixture(scope="session")
def standin() -> Iterator[PinterestStandIn]:
    with PinterestStandIn(token=TOKEN) as server:
        yield server


RESULTS = REPO / ".crash-results"  # one JSON line per case; `make crash` renders crash-results.md


def _record(request: pytest.FixtureRequest, world: World) -> None:
    RESULTS.mkdir(exist_ok=True)
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    line = {"case": request.node.nodeid.split("::", 1)[1], "file": request.node.path.name,
            "invocations": [f"{i.caller}: {i.status}" for i in world.invocations], "outcome": world.outcome}
    with (RESULTS / f"{worker}.jsonl").open("a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


@pytest.fixture
def world(request: pytest.FixtureRequest, moto: str, proxy: AwsFaultProxy, standin: PinterestStandIn) -> Iterator[World]:
    """Fresh queue, DLQ, table and secrets for each test; the proxy without rules, the stand-in empty."""
    kwargs = dict(endpoint_url=moto, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    aws = {name: boto3.client(name, **kwargs) for name in ("sqs", "dynamodb", "secretsmanager", "s3")}
    suffix = uuid.uuid4().hex[:8]
    dlq_url = aws["sqs"].create_queue(QueueName=f"crash-dlq-{suffix}")["QueueUrl"]
    dlq_arn = aws["sqs"].get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = aws["sqs"].create_queue(QueueName=f"crash-events-{suffix}", Attributes={
        "MaximumMessageSize": "1048576",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)})})["QueueUrl"]
    table = f"crash-ledger-{suffix}"
    aws["dynamodb"].create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                                 AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                                 KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    secrets = {}
    for name, value in (("ingest-api-key", "sha256:" + hashlib.sha256(API_KEY.encode()).hexdigest()), ("shopify", SHOPIFY_SECRET),
                        ("woocommerce", WOO_SECRET), ("token", TOKEN), ("account-map", '{"accounts": []}'),
                        ("account-tokens", "{}")):
        secrets[name] = f"pinrelay/crash-{suffix}/{name}"
        aws["secretsmanager"].create_secret(Name=secrets[name], SecretString=value)
    env = {
        # as template.yaml sets them
        "AWS_ENDPOINT_URL": proxy.url, "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "POWERTOOLS_SERVICE_NAME": "pinrelay", "POWERTOOLS_METRICS_NAMESPACE": "Pinrelay", "POWERTOOLS_TRACE_DISABLED": "true",
        "LOG_LEVEL": "INFO", "PINTEREST_AD_ACCOUNT_ID": AD_ACCOUNT, "QUEUE_URL": queue_url, "DEDUP_TABLE_NAME": table,
        "INGEST_API_KEY_SECRET_NAME": secrets["ingest-api-key"], "SHOPIFY_WEBHOOK_SECRET_NAME": secrets["shopify"],
        "WOOCOMMERCE_WEBHOOK_SECRET_NAME": secrets["woocommerce"], "ACCOUNT_MAP_SECRET_NAME": secrets["account-map"],
        "PINTEREST_CONVERSION_TOKEN_SECRET_NAME": secrets["token"], "ACCOUNT_TOKENS_SECRET_NAME": secrets["account-tokens"],
        "PINTEREST_API_URL": standin.base_url,
        "PINTEREST_TEST_MODE": "false", "PINTEREST_TIMEOUT_SECONDS": "10", "SENDER_MAX_ATTEMPTS": "4",
    }
    proxy.reset()
    standin.clear()
    standin.clear_fault()
    world = World(proxy=proxy, aws=aws, standin=standin, queue_url=queue_url, dlq_url=dlq_url, table=table, env=env)
    yield world
    if world.outcome:
        _record(request, world)
    proxy.reset()
    standin.clear_fault()


def rule_for(point: Any, action: Any, window_s: float = 3.0) -> FaultRule:
    """The rule putting ``action`` at ``point``: a kill or a lost answer at that one call; a 5xx or a
    throttle from that call on, for ``window_s`` seconds ("for a while")."""
    if action.kind in ("fail_5xx", "throttle"):
        return FaultRule(point.service, point.operation, caller=point.caller, nth=point.occurrence, times=None,
                         until=time.monotonic() + window_s, action=action)
    return FaultRule(point.service, point.operation, caller=point.caller, nth=point.occurrence, times=1, action=action)
