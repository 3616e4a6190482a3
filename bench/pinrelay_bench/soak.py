"""The soak ledger: many events through the local stack while Pinterest (the stand-in) misbehaves.

    python -m pinrelay_bench.soak [--events 20000] [--rate 150] [--spell-seconds 5] [--seed 1]

Sends ``--events`` events through the whole local stack (HTTP API -> ingest -> SQS -> sender ->
Pinterest stand-in), from three sources: ``POST /events`` batches and single posts, and signed
Shopify ``orders/create`` webhooks (the real samples in tests/fixtures/shopify, each with its own
order id). About 10 % of the API events are offline events (store sales, which Pinterest cannot
deduplicate). About 5 % of the events are exact repeats of an event already accepted (a shop's or
Shopify's retry): ingest queues them again and the sender's claim must drop them. 2 % are invalid
(pinrelay rejects them at ingest), 1 % are two hours old, which pinrelay accepts and the stand-in
(told to take at most one hour) fails, as Pinterest fails stale events. A few unreadable messages
are put straight on the queue (poison).

While the events flow, a fault schedule plays: Pinterest answers 503, then 429 with
Retry-After, then answers slower than the sender's timeout, then drops connections, each for
``--spell-seconds``; then SQS throttles the ingest function (it answers 5xx, the client retries,
as Shopify and a shop's backend do) and DynamoDB the sender's claims, for a while. After the last event the soak waits
until the queue is empty (delivery must resume by itself), then prints the ledger:

* accepted / repeated in a request / rejected at ingest: what the ingest API answered;
* delivered: accepted events Pinterest (the stand-in) processed; rejected by Pinterest: accepted
  events recorded ``rejected`` in DynamoDB with Pinterest's message; in the DLQ;
* uncertain: offline events whose request got no answer (pinrelay recorded them uncertain and
  never sent them again: Pinterest cannot deduplicate them);
* lost: accepted events neither delivered, nor rejected, nor uncertain, nor in the DLQ;
* delivered twice: events the stand-in processed more than once (counted by event_id, only
  processed ones). When pinrelay gives up on a request after its timeout (``PINTEREST_TIMEOUT_SECONDS``)
  Pinterest may still process it; pinrelay cannot know, so it sends the events again, and
  Pinterest drops the repeat by event_id. Such a repeat is *explained* when every processing but
  one was in a request pinrelay abandoned (the stand-in was slower than the timeout); any other
  repeat is *unexplained*. An offline event processed twice is always unexplained.

Exit status 1 when an event is lost, delivered twice unexplained, or delivered without being
accepted. Scaled down from production: SQS visibility timeout 4 s (AWS: 780 s), sender timeout
1 s (10 s), backoff 0.1 s..0.5 s (0.5..8 s), spells of seconds instead of minutes.

moto's SQS scans the whole queue on every send and receive, so the soak paces ingest (``--rate``)
and holds back while the queue is deeper than ``--max-depth``: the sender drains while events
come in, as it does in AWS.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import random
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

from pinrelay.adapters.dead_letters import SqsDeadLetters
from pinrelay_bench import REPO_ROOT
from pinrelay_local.pinterest_standin import event_key, tally_standin
from pinrelay_local.stack import LocalStack, shopify_signature

SHOPIFY_FIXTURES = (
    REPO_ROOT / "tests" / "fixtures" / "shopify" / "shopify_orders_create_shopifyappjs-rest-2025-10.json",
    REPO_ROOT / "tests" / "fixtures" / "shopify" / "shopify_orders_create_triggerdev.json",
)
EVENT_NAMES = ("checkout", "add_to_cart", "page_visit", "lead", "signup", "view_category", "search")
USER_AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15",
)
STALE_SECONDS = 2 * 3600  # pinrelay accepts (< 7 days); the stand-in, told max age 1 h, fails it
STANDIN_MAX_AGE_SECONDS = 3600
SPELL_HOLD_SECONDS = 30.0

# Scaled-down settings of the stack (production values in parentheses, see the module docstring).
CLIENT_TIMEOUT_SECONDS = 1.0
HANDLER_ENV = {
    "LOG_LEVEL": "CRITICAL",  # the handlers' warnings (one per retry) would drown the ledger; --verbose shows them
    "PINTEREST_TIMEOUT_SECONDS": str(CLIENT_TIMEOUT_SECONDS),
    "SENDER_MAX_ATTEMPTS": "3",
    "SENDER_BACKOFF_BASE_SECONDS": "0.1",
    "SENDER_BACKOFF_MAX_SECONDS": "0.5",
}

Say = Callable[[str], None]


# --------------------------------------------------------------------------------------------
# What the stack holds at the end
# --------------------------------------------------------------------------------------------


def table_states(dynamodb: Any, table: str) -> dict[str, dict[str, Any]]:
    """Every item of the dedup table: key -> {state, attempts, error_message}."""
    items: dict[str, dict[str, Any]] = {}
    kwargs: dict[str, Any] = {"TableName": table}
    while True:
        page = dynamodb.scan(**kwargs)
        for item in page.get("Items", []):
            items[item["pk"]["S"]] = {
                "state": item.get("state", {}).get("S"),
                "attempts": int(item.get("attempts", {}).get("N", "0")),
                "error_message": item.get("error_message", {}).get("S"),
            }
        if not page.get("LastEvaluatedKey"):
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# --------------------------------------------------------------------------------------------
# The workload
# --------------------------------------------------------------------------------------------


@dataclass
class Post:
    kind: str  # "batch", "single", "shopify"
    path: str
    body: bytes
    headers: dict[str, str]
    expect: list[tuple[str | None, str]]  # per event: (dedup key or None, "accepted"/"duplicate"/"rejected")
    stale: list[bool]
    repeat: list[bool] = field(default_factory=list)  # a copy of an event accepted in an earlier post


class Workload:
    """Makes the posts, one at a time, remembering what was accepted so that repeats repeat it."""

    def __init__(self, *, run_id: str, ad_account_id: str, api_key: str, shopify_secret: str, seed: int,
                 repeat_share: float = 0.05, invalid_share: float = 0.02, stale_share: float = 0.01,
                 offline_share: float = 0.1) -> None:
        self.rng = random.Random(seed)
        self.run_id = run_id
        self.ad_account_id = ad_account_id
        self.api_key = api_key
        self.shopify_secret = shopify_secret
        self.repeat_share = repeat_share
        self.invalid_share = invalid_share
        self.stale_share = stale_share
        self.offline_share = offline_share
        self.counter = 0
        self.orders = [json.loads(path.read_text(encoding="utf-8")) for path in SHOPIFY_FIXTURES]
        self.order_base = 7_000_000_000 + self.rng.randrange(1_000_000_000)
        self.accepted_events: list[dict[str, Any]] = []  # API events accepted, for repeats
        self.accepted_orders: list[Post] = []  # Shopify posts accepted, for repeats
        self.offline_keys: set[str] = set()  # dedup keys of the offline events made

    # -- events ----------------------------------------------------------------------------
    def _new_event(self, now: int, stale: bool = False) -> dict[str, Any]:
        self.counter += 1
        n = self.counter
        rng = self.rng
        user: dict[str, Any] = {"em": f"Soak.Shopper{n}@Example.com"}
        if rng.random() < 0.6:
            user["client_ip_address"] = f"203.0.{n % 250}.{(n // 250) % 250 + 1}"
            user["client_user_agent"] = rng.choice(USER_AGENTS)
        if rng.random() < 0.3:
            user["ph"] = f"+1 (502) 555-{n % 10_000:04d}"
        offline = rng.random() < self.offline_share
        event: dict[str, Any] = {
            "event_name": "checkout" if offline else rng.choice(EVENT_NAMES),
            "action_source": "offline" if offline else "web",
            "event_id": f"soak-{self.run_id}-{n}",
            "event_time": now - (STALE_SECONDS if stale else rng.randrange(0, 600)),
            "event_source_url": f"https://shop.example.com/p/{n}",
            "user_data": user,
        }
        if offline:
            self.offline_keys.add(event_key(self.ad_account_id, event))
        if event["event_name"] in ("checkout", "add_to_cart"):
            event["custom_data"] = {"value": f"{rng.randrange(100, 50_000) / 100:.2f}", "currency": "USD",
                                    "order_id": f"order-{n}", "num_items": rng.randrange(1, 5)}
        return event

    def _invalid_event(self, now: int) -> dict[str, Any]:
        event = self._new_event(now)
        flaw = self.rng.randrange(5)
        if flaw == 0:
            del event["event_id"]
        elif flaw == 1:
            event["event_time"] = now - 8 * 86_400  # older than 7 days
        elif flaw == 2:
            event["event_name"] = "purchase"  # not one of Pinterest's
        elif flaw == 3:
            event["user_data"] = {"client_user_agent": USER_AGENTS[0]}  # nothing to match on
        else:
            event["unknown_field"] = 1
        return event

    def _pick_event(self, now: int) -> tuple[dict[str, Any], str, bool]:
        """(event, what ingest should answer, stale); a repeat of an accepted event is queued
        again ("accepted") and dropped by the sender's claim."""
        roll = self.rng.random()
        if roll < self.repeat_share and self.accepted_events:
            return self.rng.choice(self.accepted_events), "accepted", False
        if roll < self.repeat_share + self.invalid_share:
            return self._invalid_event(now), "rejected", False
        stale = roll < self.repeat_share + self.invalid_share + self.stale_share
        return self._new_event(now, stale=stale), "accepted", stale

    def _key(self, event: dict[str, Any]) -> str | None:
        if "event_id" not in event:
            return None
        return event_key(self.ad_account_id, event)

    # -- posts -----------------------------------------------------------------------------
    def next_post(self, remaining_events: int) -> Post:
        now = int(time.time())
        # per post; with batches of 2..14 events (8 on average) about 60 % of the events come in
        # API batches, 25 % in single posts and 15 % in Shopify orders
        roll = self.rng.random()
        if roll < 0.32:
            return self._shopify_post(now)
        if roll < 0.84 or remaining_events < 2:
            event, expect, stale = self._pick_event(now)
            return self._api_post("single", [event], [expect], [stale])
        # an event repeated inside one request answers duplicate (queued once)
        size = self.rng.randrange(2, min(14, remaining_events) + 1)
        picked = [self._pick_event(now) for _ in range(size)]
        seen: set[str] = set()
        expects = []
        for event, expect, _ in picked:  # an event repeated inside one request answers duplicate
            key = self._key(event)
            if expect == "accepted" and key in seen:
                expect = "duplicate"
            if key:
                seen.add(key)
            expects.append(expect)
        return self._api_post("batch", [e for e, _, _ in picked], expects, [s for _, _, s in picked])

    def _api_post(self, kind: str, events: list[dict[str, Any]], expects: list[str], stale: list[bool]) -> Post:
        payload: Any = events[0] if kind == "single" else {"data": events}
        accepted_before = {id(e) for e in self.accepted_events}
        return Post(
            kind=kind, path="/events", body=json.dumps(payload, separators=(",", ":")).encode(),
            headers={"Content-Type": "application/json", "x-api-key": self.api_key},
            expect=[(self._key(e), x) for e, x in zip(events, expects)], stale=stale,
            repeat=[id(e) in accepted_before for e in events],
        )

    def _shopify_post(self, now: int) -> Post:
        if self.rng.random() < self.repeat_share and self.accepted_orders:
            original = self.rng.choice(self.accepted_orders)  # Shopify's retry: same body, same webhook id
            return Post("shopify", original.path, original.body, original.headers,
                        [(original.expect[0][0], "accepted")], [False], [True])
        self.counter += 1
        order = copy.deepcopy(self.orders[self.counter % len(self.orders)])
        order_id = self.order_base + self.counter
        stamp = datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds")
        # a paid, live sale (Shopify's own sample is a cancelled test order, which pinrelay filters)
        order.update(id=order_id, order_number=self.counter, name=f"#S{self.counter}",
                     created_at=stamp, updated_at=stamp, processed_at=stamp,
                     cancelled_at=None, financial_status="paid", test=False)
        raw = json.dumps(order, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Hmac-Sha256": shopify_signature(self.shopify_secret, raw),
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Shop-Domain": "pinrelay-soak.myshopify.com",
            "X-Shopify-API-Version": "2025-10",
            "X-Shopify-Triggered-At": stamp,
        }
        key = f"{self.ad_account_id}#checkout#{order_id}"
        return Post("shopify", "/webhooks/shopify", raw, headers, [(key, "accepted")], [False], [False])

    def remember(self, post: Post, answered: list[str]) -> None:
        """Make accepted events and orders available for repeats."""
        if post.kind == "shopify":
            if answered and answered[0] == "accepted" and not post.repeat[0]:
                self.accepted_orders.append(post)
            return
        payload = json.loads(post.body)
        events = [payload] if post.kind == "single" else payload["data"]
        for event, status, repeat in zip(events, answered, post.repeat):
            if status == "accepted" and not repeat:
                self.accepted_events.append(event)


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------


@dataclass
class Spell:
    name: str
    at: float  # seconds after the start of ingest
    seconds: float

    def describe(self) -> str:
        return f"{self.name} {self.seconds:g} s at +{self.at:.0f} s"


def default_schedule(ingest_seconds: float, spell_seconds: float) -> list[Spell]:
    names = ("503", "429", "slow", "close", "aws")
    step = ingest_seconds / (len(names) + 1)
    if step < spell_seconds + 1:
        step = spell_seconds + 1
    return [Spell(name, step * (i + 0.5), spell_seconds) for i, name in enumerate(names)]


class AwsTrouble:
    """Throttles the ingest function's SQS SendMessageBatch and the sender's DynamoDB UpdateItem
    (claims, marks, outcomes) with botocore hooks on the boto3 clients the handlers use
    (pinrelay.adapters.aws.client; both handlers run in this process)."""

    def __init__(self, client_factory: Callable[[str], Any], rng: random.Random,
                 sqs_share: float = 0.3, dynamodb_share: float = 0.03) -> None:
        self.sqs = client_factory("sqs")
        self.dynamodb = client_factory("dynamodb")
        self.rng = rng
        self.sqs_share = sqs_share
        self.dynamodb_share = dynamodb_share
        self.active = False
        self.injected: Counter[str] = Counter()
        self.sqs.meta.events.register("before-call.sqs.SendMessageBatch", self._sqs_hook)
        self.dynamodb.meta.events.register("before-call.dynamodb.UpdateItem", self._dynamodb_hook)

    def close(self) -> None:
        self.sqs.meta.events.unregister("before-call.sqs.SendMessageBatch", self._sqs_hook)
        self.dynamodb.meta.events.unregister("before-call.dynamodb.UpdateItem", self._dynamodb_hook)

    def _sqs_hook(self, **_: Any) -> None:
        if self.active and self.rng.random() < self.sqs_share:
            self.injected["SendMessageBatch"] += 1
            raise throttling_error("SendMessageBatch", "ThrottlingException")

    def _dynamodb_hook(self, **_: Any) -> None:
        if self.active and self.rng.random() < self.dynamodb_share:
            self.injected["UpdateItem"] += 1
            raise throttling_error("UpdateItem", "ProvisionedThroughputExceededException")


def _met_spell(record: dict[str, Any], spell_name: str) -> bool:
    """Whether a request the Pinterest stand-in recorded met the fault of spell ``spell_name``."""
    if spell_name in ("503", "429"):
        return record["fault"] == "status" and record["status"] == int(spell_name)
    return record["fault"] == spell_name


def throttling_error(operation: str, code: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": "Rate exceeded (injected)"},
                        "ResponseMetadata": {"HTTPStatusCode": 400}}, operation)


class FaultPlayer(threading.Thread):
    def __init__(self, stack: LocalStack, schedule: list[Spell], aws: AwsTrouble, started: float, say: Say) -> None:
        super().__init__(name="soak-faults", daemon=True)
        self.stack = stack
        self.schedule = sorted(schedule, key=lambda s: s.at)
        self.aws = aws
        self.started = started
        self.say = say
        self.stop_event = threading.Event()
        self.last_end = started

    def _faults_met(self, spell: Spell) -> int:
        """Requests that met ``spell`` so far: Pinterest requests answered with a fault, or for
        "aws" ingest's SQS calls failed (each one a 5xx answer)."""
        if spell.name == "aws":
            return self.aws.injected["SendMessageBatch"]
        # only the spell's own fault: a request of the "slow" spell is recorded when its answer
        # ends, 2 s later, and must not end the hold of the spell after it
        return sum(1 for record in self.stack.standin.received if _met_spell(record, spell.name))

    def run(self) -> None:
        for spell in self.schedule:
            if self.stop_event.wait(max(0.0, self.started + spell.at - time.monotonic())):
                return
            self.say(f"  fault: {spell.describe()}")
            met = self._faults_met(spell)
            standin = self.stack.standin
            if spell.name == "503":
                standin.set_fault("status", status=503)
            elif spell.name == "429":
                standin.set_fault("status", status=429, retry_after="1")
            elif spell.name == "slow":
                standin.set_fault("slow", seconds=2 * CLIENT_TIMEOUT_SECONDS)
            elif spell.name == "close":
                standin.set_fault("close")
            elif spell.name == "aws":
                self.aws.active = True
            self.stop_event.wait(spell.seconds)
            # a spell that no request met tested nothing: hold it until one has (at most
            # SPELL_HOLD_SECONDS more), so a slow sender or a quiet moment cannot skip it
            held_until = time.monotonic() + max(SPELL_HOLD_SECONDS, 2 * spell.seconds)
            while self._faults_met(spell) == met and time.monotonic() < held_until and not self.stop_event.wait(0.1):
                pass
            standin.clear_fault()
            self.aws.active = False
            self.last_end = time.monotonic()

    def stop(self) -> None:
        self.stop_event.set()
        self.aws.active = False
        if self.stack.standin is not None:
            self.stack.standin.clear_fault()


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


@dataclass
class Ledger:
    events: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    accepted: int = 0
    duplicates_answered: int = 0  # repeated within one request: queued once
    repeats_sent: int = 0  # copies of events accepted earlier: queued again, dropped by the sender
    offline_sent: int = 0
    uncertain: int = 0  # offline events recorded uncertain (never resent)
    offline_twice: int = 0
    rejected_at_ingest: int = 0
    invalid_sent: int = 0
    unexpected_answers: int = 0
    ingest_5xx: int = 0
    ingest_gave_up: int = 0
    delivered: int = 0
    rejected_by_pinterest: int = 0
    stale_sent: int = 0
    dlq_events: int = 0
    dlq_poison: int = 0
    poison_sent: int = 0
    lost: int = 0
    twice_explained: int = 0
    twice_unexplained: int = 0
    delivered_not_accepted: int = 0
    state_not_recorded: int = 0
    pinterest_requests: Counter[str] = field(default_factory=Counter)
    sender_batches: int = 0
    sender_failed_batches: int = 0
    max_depth: int = 0
    seconds: float = 0.0
    ingest_seconds: float = 0.0
    drain_seconds: float = 0.0  # from the last event sent (or the end of the last fault, if later)
    faults: list[str] = field(default_factory=list)
    aws_injected: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (self.lost == 0 and self.twice_unexplained == 0 and self.delivered_not_accepted == 0
                and self.offline_twice == 0)

    def lines(self) -> list[str]:
        kinds = ", ".join(f"{name} {self.by_kind[name]}" for name in ("batch", "single", "shopify"))
        requests_line = ", ".join(f"{label} {count}" for label, count in sorted(self.pinterest_requests.items()))
        out = [
            f"pinrelay soak ledger: {self.events} events in {self.seconds:.0f} s (sent in {self.ingest_seconds:.0f} s,"
            f" {self.events / max(self.ingest_seconds, 0.001):.0f}/s; all settled {self.drain_seconds:.1f} s after"
            " the last event and the last fault)",
            f"  faults                      {'; '.join(self.faults) or 'none'}"
            + (f" (injected: {dict(self.aws_injected)})" if self.aws_injected else ""),
            f"  events sent                 {self.events:>7}  (events in: {kinds})",
            f"  accepted                    {self.accepted:>7}",
            f"  repeats sent                {self.repeats_sent:>7}  (copies of accepted events: queued again, each"
            " dropped by the sender's claim)",
            f"  repeated in one request     {self.duplicates_answered:>7}  (answered duplicate, queued once)",
            f"  rejected at ingest          {self.rejected_at_ingest:>7}  (invalid sent: {self.invalid_sent})",
            f"  unexpected answers          {self.unexpected_answers:>7}",
            f"  ingest 5xx answers          {self.ingest_5xx:>7}  (each retried by the client; gave up: {self.ingest_gave_up})",
            f"  delivered                   {self.delivered:>7}",
            f"  rejected by Pinterest       {self.rejected_by_pinterest:>7}  (stale events sent: {self.stale_sent};"
            " recorded in DynamoDB with Pinterest's message, not retried)",
            f"  in the DLQ                  {self.dlq_events + self.dlq_poison:>7}  "
            f"({self.dlq_poison} poison of {self.poison_sent} sent, {self.dlq_events} events)",
            f"  offline events accepted     {self.offline_sent:>7}  ({self.offline_twice} processed twice)",
            f"  uncertain (offline)         {self.uncertain:>7}  (their request got no answer: recorded uncertain,"
            " never sent again)",
            f"  lost                        {self.lost:>7}",
            f"  delivered twice             {self.twice_explained + self.twice_unexplained:>7}  "
            f"({self.twice_explained} explained: processed again after pinrelay abandoned a request"
            f" slower than its {CLIENT_TIMEOUT_SECONDS:g} s timeout; Pinterest drops the repeat by event_id;"
            f" {self.twice_unexplained} unexplained)",
            f"  delivered, never accepted   {self.delivered_not_accepted:>7}",
            f"  delivered, state not recorded {self.state_not_recorded:>5}",
            f"  Pinterest requests          {sum(self.pinterest_requests.values()):>7}  ({requests_line})",
            f"  sender invocations          {self.sender_batches:>7}  ({self.sender_failed_batches} returned failures);"
            f" deepest queue {self.max_depth}",
        ]
        for name, keys in self.examples.items():
            if keys:
                out.append(f"  e.g. {name}: {', '.join(keys[:5])}")
        out.append("  result: " + ("OK (nothing lost, nothing sent twice unexplained)" if self.ok else "FAILED"))
        return out


def _answers(post: Post, status: int, body: Any) -> list[str] | None:
    """Per-event statuses of a 2xx/4xx/503 answer, or None when the answer names none."""
    if not isinstance(body, dict):
        return None
    events = body.get("events")
    if not isinstance(events, list) or len(events) != len(post.expect):
        return None
    return [str(e.get("status")) for e in events]


def run_soak(
    *,
    events: int = 20_000,
    rate: float = 150.0,
    spell_seconds: float = 5.0,
    schedule: list[Spell] | None = None,
    poison: int = 3,
    seed: int = 1,
    max_depth: int = 300,
    visibility_timeout_s: int = 4,
    max_receive_count: int = 8,
    drain_timeout_s: float = 120.0,
    sender_batch_size: int = 500,
    verbose: bool = False,
    say: Say | None = print,
) -> Ledger:
    say = say or (lambda _line: None)
    ledger = Ledger()
    ingest_seconds = events / rate
    spells = default_schedule(ingest_seconds, spell_seconds) if schedule is None else schedule
    ledger.faults = [spell.describe() for spell in spells]
    stack = LocalStack(
        port=0, test_mode=False, visibility_timeout_s=visibility_timeout_s, max_receive_count=max_receive_count,
        sender_batch_size=sender_batch_size, sender_window_s=0.5,
        handler_env={**HANDLER_ENV, "LOG_LEVEL": "WARNING"} if verbose else HANDLER_ENV,
    )
    started = time.monotonic()
    stack.start()
    aws: AwsTrouble | None = None
    player: FaultPlayer | None = None
    try:
        stack.standin.max_event_age_seconds = STANDIN_MAX_AGE_SECONDS
        aws = AwsTrouble(importlib.import_module("pinrelay.adapters.aws").client, random.Random(seed + 1))
        workload = Workload(run_id=uuid.uuid4().hex[:8], ad_account_id=stack.ad_account_id, api_key=stack.ingest_api_key,
                            shopify_secret=stack.shopify_webhook_secret, seed=seed)
        for i in range(poison):
            stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=f"poison {i}: not a queued event {{")
        ledger.poison_sent = poison
        say(f"soak: {events} events at {rate:g}/s through {stack.url}; faults: {'; '.join(ledger.faults) or 'none'}")

        session = requests.Session()
        accepted_keys: set[str] = set()
        stale_keys: set[str] = set()
        examples: dict[str, list[str]] = {"unexpected": [], "lost": [], "twice unexplained": [], "never accepted": []}
        ingest_started = time.monotonic()
        player = FaultPlayer(stack, spells, aws, ingest_started, say)
        player.start()
        depth_checked, depth = 0.0, 0
        sent = 0
        last_progress = ingest_started
        while sent < events:
            # pace: the rate, and a shallow queue (moto scans it on every call)
            delay = ingest_started + sent / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            while True:
                if time.monotonic() - depth_checked > 0.25:
                    visible, in_flight = stack.queue_depth()
                    depth, depth_checked = visible + in_flight, time.monotonic()
                    ledger.max_depth = max(ledger.max_depth, depth)
                if depth <= max_depth:
                    break
                time.sleep(0.1)
            post = workload.next_post(events - sent)
            answered = _post_with_retries(session, stack.url, post, ledger)
            sent += len(post.expect)
            ledger.by_kind[post.kind] += len(post.expect)
            for (key, expect), status, stale, repeat in zip(post.expect, answered, post.stale,
                                                            post.repeat or [False] * len(post.expect)):
                ledger.events += 1
                if repeat:
                    ledger.repeats_sent += 1
                if expect == "rejected":
                    ledger.invalid_sent += 1
                if status == "accepted" and not repeat:
                    ledger.accepted += 1
                    accepted_keys.add(key)  # type: ignore[arg-type]
                    if stale:
                        ledger.stale_sent += 1
                        stale_keys.add(key)  # type: ignore[arg-type]
                elif status == "duplicate":
                    ledger.duplicates_answered += 1
                elif status == "rejected":
                    ledger.rejected_at_ingest += 1
                if status != expect:
                    ledger.unexpected_answers += 1
                    examples["unexpected"].append(f"{key} expected {expect}, answered {status}")
                    if expect == "accepted" and key and status != "rejected":
                        # e.g. a retry swallowed as a duplicate: pinrelay still owes its delivery
                        accepted_keys.add(key)
            workload.remember(post, answered)
            if time.monotonic() - last_progress > 10:
                last_progress = time.monotonic()
                say(f"  {sent} events sent, queue depth {depth}, {len(stack.standin.received)} Pinterest requests")
        ingest_ended = time.monotonic()
        ledger.ingest_seconds = ingest_ended - ingest_started
        say(f"soak: all {sent} events sent in {ledger.ingest_seconds:.0f} s; waiting for delivery")

        # let the schedule finish, then wait for the pipeline to settle by itself
        schedule_end = ingest_started + max((spell.at + spell.seconds for spell in spells), default=0.0)
        player.join(timeout=max(0.0, schedule_end - time.monotonic()) + 5)
        player.stop()
        faults_over = max(player.last_end, ingest_ended)
        deadline = time.monotonic() + drain_timeout_s
        while time.monotonic() < deadline:
            tally = tally_standin(stack.standin.received, CLIENT_TIMEOUT_SECONDS)
            visible, in_flight = stack.queue_depth()
            waiting = [k for k in accepted_keys if not (tally.processed[k] or tally.failed[k])]
            if waiting and visible == 0 and in_flight == 0:  # an offline event recorded uncertain is settled too
                states = table_states(stack.dynamodb, stack.table_name)
                waiting = [k for k in waiting if states.get(k, {}).get("state") not in ("uncertain", "rejected")]
            if not waiting and visible == 0 and in_flight == 0:
                break
            time.sleep(0.5)
        drained_at = time.monotonic()
        ledger.drain_seconds = max(0.0, drained_at - faults_over)
        time.sleep(1.0)  # a late duplicate would arrive within a batching window

        # the books
        tally = tally_standin(stack.standin.received, CLIENT_TIMEOUT_SECONDS)
        states = table_states(stack.dynamodb, stack.table_name)
        dead_letters = SqsDeadLetters(stack.sqs, stack.dlq_url)
        dlq_keys = dead_letters.dedup_keys()
        ledger.dlq_poison = dead_letters.unreadable  # messages that are no queued event
        ledger.dlq_events = len(dlq_keys)
        for key in accepted_keys:
            state = states.get(key, {}).get("state")
            if key in workload.offline_keys:
                ledger.offline_sent += 1
                if tally.processed[key] > 1:
                    ledger.offline_twice += 1
                    examples.setdefault("offline twice", []).append(key)
                if state == "uncertain":
                    ledger.uncertain += 1
                    continue
            if tally.processed[key]:
                ledger.delivered += 1
                if state != "delivered":
                    ledger.state_not_recorded += 1
            elif state == "rejected":
                ledger.rejected_by_pinterest += 1
            elif key in dlq_keys:
                examples.setdefault("in the DLQ", []).append(f"{key} (state {state})")
            else:
                ledger.lost += 1
                examples["lost"].append(f"{key} (state {state})")
        explained, unexplained = tally.twice()
        unexplained |= explained & workload.offline_keys  # Pinterest cannot deduplicate these
        explained -= workload.offline_keys
        ledger.twice_explained, ledger.twice_unexplained = len(explained), len(unexplained)
        examples["twice unexplained"] = sorted(unexplained)[:5]
        never = [k for k in tally.processed if k not in accepted_keys]
        ledger.delivered_not_accepted = len(never)
        examples["never accepted"] = sorted(never)[:5]
        ledger.pinterest_requests = tally.requests
        ledger.sender_batches = len(stack.batches)
        ledger.sender_failed_batches = sum(1 for b in stack.batches if b.failed)
        ledger.aws_injected = aws.injected
        ledger.examples = examples
    finally:
        if player is not None:
            player.stop()
        if aws is not None:
            aws.close()
        stack.stop()
    ledger.seconds = time.monotonic() - started
    for line in ledger.lines():
        say(line)
    return ledger


def _post_with_retries(session: requests.Session, base_url: str, post: Post, ledger: Ledger, attempts: int = 60) -> list[str]:
    """POST as a well-behaved client: retry 5xx and connection errors; the per-event statuses
    (an event accepted by an earlier attempt stays accepted: the retry answers it duplicate)."""
    result: list[str | None] = [None] * len(post.expect)
    for attempt in range(attempts):
        try:
            # Connection: close: the local HTTP API emulation writes headers and body in two
            # segments without TCP_NODELAY, so a keep-alive request waits 40 ms for a delayed ACK
            response = session.post(base_url + post.path, data=post.body, headers={**post.headers, "Connection": "close"},
                                    timeout=30)
            status, body = response.status_code, response.json()
        except (requests.RequestException, ValueError):
            status, body = 0, None
        answered = _answers(post, status, body)
        if answered is not None:
            for i, value in enumerate(answered):
                if result[i] is None or (result[i] != "accepted" and value != "error"):
                    result[i] = value
        if status and status < 500:
            return [value or f"HTTP {status}" for value in result]
        ledger.ingest_5xx += 1
        time.sleep(min(2.0, 0.1 * 2 ** min(attempt, 4)))
    ledger.ingest_gave_up += 1
    return [value if value == "accepted" else "gave up" for value in result]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pinrelay_bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="events to send (default 20000)")
    parser.add_argument("--rate", type=float, default=150.0, help="events per second offered to ingest (default 150)")
    parser.add_argument("--spell-seconds", type=float, default=5.0, help="length of each fault spell (default 5)")
    parser.add_argument("--no-faults", action="store_true", help="no fault schedule")
    parser.add_argument("--poison", type=int, default=3, help="unreadable messages put on the queue (default 3)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-depth", type=int, default=300, help="hold ingest back while the queue is deeper")
    parser.add_argument("--verbose", action="store_true", help="show the handlers' warnings (retries, faults)")
    args = parser.parse_args(argv)
    ledger = run_soak(events=args.events, rate=args.rate, spell_seconds=args.spell_seconds,
                      schedule=[] if args.no_faults else None, poison=args.poison, seed=args.seed,
                      max_depth=args.max_depth, verbose=args.verbose, say=lambda line: print(line, flush=True))
    return 0 if ledger.ok else 1


if __name__ == "__main__":
    sys.exit(main())
