"""Drills: play a failure against the running local stack and watch the operator commands handle it.

    make drill-rejected     # python -m pinrelay_local drill rejected
    make drill-dlq
    make drill-uncertain
    make drill-reconcile

Each drill reads the running stack from its profile (``pinrelay_cli.local_profile``, written by
``make local``), sets the failure up through the stand-ins' control APIs (the Pinterest stand-in's
``/_standin/fault`` and ``/_standin/settings``, the Shopify Admin stand-in's ``/_standin/orders``),
sends events the way a shop does (``POST /events``, a signed ``orders/create`` webhook, a CSV
row), waits until the stack has done what it does, puts the stand-ins back, and prints the
commands an operator runs next (``pinrelay --local ...``), each one line that works when pasted.
The drills are registered in ``DRILLS``; the make targets and ``make local``'s list are read
from it.
"""

from __future__ import annotations

import copy
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from pinrelay.events import dedup_key
from pinrelay_cli.local_profile import LocalProfile
from pinrelay_local.stack import REPO_ROOT, aws_client, shopify_topic_from_filename

Printer = Callable[[str], None]
DRILL_EMAIL = "drill.shopper@example.com"  # a test address (RFC 2606)


def program(name: str) -> str:
    """How to run the console script ``name`` of this virtualenv from the current folder
    (``.venv/bin/pinrelay`` in the checkout)."""
    path = Path(sys.executable).parent / name
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def make_or_script(target: str, *script_args: str) -> str:
    """``make TARGET`` in the checkout (where the README's commands run), else the script itself."""
    if Path.cwd().resolve() == REPO_ROOT.resolve():
        return f"make {target}"
    return " ".join([program("pinrelay-local"), *script_args])


class DrillContext:
    """The running stack as a drill reaches it."""

    def __init__(self, profile: LocalProfile, say: Printer) -> None:
        self.profile = profile
        self.say = say
        self.pinrelay = program("pinrelay") + " --local"
        self.dynamodb = aws_client("dynamodb", profile.aws_endpoint_url, profile.region)
        self.sqs = aws_client("sqs", profile.aws_endpoint_url, profile.region)
        self.http = requests.Session()

    # -- the stand-ins -----------------------------------------------------------------------
    def pinterest(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if not self.profile.pinterest_standin_url:
            raise DrillCannotRun("the local stack sends to PINTEREST_API_URL, not to its Pinterest stand-in: "
                                 "the drills need the stand-in (start `make local` without PINTEREST_API_URL)")
        answer = self.http.post(f"{self.profile.pinterest_standin_url}/_standin/{path}", json=body, timeout=10)
        answer.raise_for_status()
        return answer.json()

    def fault(self, **fault: Any) -> None:
        self.pinterest("fault", fault)

    # -- what a shop does ------------------------------------------------------------------------
    def post_events(self, *events: dict[str, Any]) -> dict[str, Any]:
        answer = self.http.post(f"{self.profile.ingest_url}/events", json={"data": list(events)}, timeout=30,
                                headers={"x-api-key": self.profile.api_key})
        body = answer.json()
        if answer.status_code != 202 or body.get("accepted") != len(events):
            raise DrillCannotRun(f"ingest answered {answer.status_code}: {json.dumps(body)[:300]}")
        return body

    # -- what the stack did ----------------------------------------------------------------------
    def key(self, event_id: str, event_name: str = "checkout", offline: bool = False) -> str:
        return dedup_key(self.profile.ad_account, event_name, event_id, offline)

    def ledger(self, key: str) -> dict[str, Any]:
        item = self.dynamodb.get_item(TableName=self.profile.table, Key={"pk": {"S": key}}, ConsistentRead=True)
        return {name: next(iter(value.values())) for name, value in item.get("Item", {}).items()}

    def in_dead_letter_queue(self, key: str) -> bool:
        from pinrelay.adapters.dead_letters import SqsDeadLetters

        return key in SqsDeadLetters(self.sqs, self.profile.dlq_url).dedup_keys()

    def wait_for(self, what: str, done: Callable[[], Any], timeout: float, every: float = 0.5) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            result = done()
            if result:
                return result
            if time.monotonic() >= deadline:
                raise DrillCannotRun(f"{what} did not happen within {timeout:.0f} s: is the local stack still running?")
            time.sleep(every)

    def wait_for_state(self, key: str, states: set[str], timeout: float = 30.0) -> dict[str, Any]:
        return self.wait_for(f"{key} {' or '.join(sorted(states))}",
                             lambda: (item := self.ledger(key)).get("state") in states and item, timeout)


class DrillCannotRun(Exception):
    """The drill could not play its failure: one line saying why."""


@dataclass(frozen=True)
class Drill:
    name: str
    summary: str  # one line: what it plays
    play: Callable[[DrillContext], list[str]]  # what it does, saying so; returns the commands to run next


def new_id(kind: str) -> str:
    return f"drill-{kind}-{uuid.uuid4().hex[:6]}"


def web_event(event_id: str, event_time: int) -> dict[str, Any]:
    return {"event_name": "checkout", "action_source": "web", "event_id": event_id, "event_time": event_time,
            "user_data": {"em": DRILL_EMAIL}, "custom_data": {"currency": "USD", "value": "42.00"}}


# --------------------------------------------------------------------------------------------
# rejected: Pinterest refuses one event of a request (422 with its per-event message)
# --------------------------------------------------------------------------------------------


def rejected(drill: DrillContext) -> list[str]:
    event_id = new_id("rejected")
    key = drill.key(event_id)
    drill.say("The Pinterest stand-in is told to take events up to 1 hour old (Pinterest takes 7 days); one checkout "
              "2 hours old is posted. Ingest takes it, Pinterest refuses it, as it refuses an event whose "
              "event_time a shop got wrong.")
    previous = drill.pinterest("settings", {"max_event_age_seconds": 3600})["previous"]
    try:
        drill.post_events(web_event(event_id, int(time.time()) - 7200))
        drill.say(f"posted {event_id}: ingest answered 202 accepted")
        item = drill.wait_for_state(key, {"rejected", "delivered"})
    finally:
        drill.pinterest("settings", previous)
    drill.say(f"the sender recorded it {item['state']}: {item.get('error_message', '')}")
    drill.say("(the local stack's console printed the batch: rejected 1, with Pinterest's message)")
    return [f"{drill.pinrelay} rejected", f"{drill.pinrelay} status {event_id}"]


# --------------------------------------------------------------------------------------------
# dlq: Pinterest refuses the token until SQS gives up on the event; then redrive delivers it
# --------------------------------------------------------------------------------------------


def dead_letter(drill: DrillContext) -> list[str]:
    event_id = new_id("dlq")
    key = drill.key(event_id)
    profile = drill.profile
    expected = profile.visibility_timeout_s * profile.max_receive_count
    drill.say(f"The Pinterest stand-in refuses the conversion token (401) until the event is in the dead-letter "
              f"queue: the sender gives it back each time, SQS hands it out again after its visibility timeout, and "
              f"after {profile.max_receive_count} receives moves it to the DLQ (about {expected} s here: "
              f"{profile.max_receive_count} x {profile.visibility_timeout_s} s, LOCAL_VISIBILITY_TIMEOUT_S).")
    drill.fault(mode="status", status=401, duration=expected + 300)  # a deadline, should this drill be stopped
    try:
        drill.post_events(web_event(event_id, int(time.time())))
        drill.say(f"posted {event_id}: ingest answered 202 accepted; waiting for SQS to move it ...")
        started = time.monotonic()
        drill.wait_for(f"{event_id} in the dead-letter queue", lambda: drill.in_dead_letter_queue(key),
                       timeout=expected + 240, every=2.0)
        drill.say(f"in the dead-letter queue after {time.monotonic() - started:.0f} s (DeadLetterQueueNotEmptyAlarm "
                  "would fire in AWS)")
    finally:
        drill.fault(mode=None)
    drill.say("Pinterest takes the token again (in AWS: you put the right token in the secret). Now look, redrive, "
              "and look again a few seconds later:")
    return [f"{drill.pinrelay} status {event_id}", f"{drill.pinrelay} redrive --dry-run", f"{drill.pinrelay} redrive",
            f"sleep 5; {drill.pinrelay} status {event_id}"]


# --------------------------------------------------------------------------------------------
# uncertain: an offline sale whose request got no answer; released, uploaded again
# --------------------------------------------------------------------------------------------


def uncertain(drill: DrillContext) -> list[str]:
    event_id = new_id("pos")
    folder = Path(tempfile.mkdtemp(prefix="pinrelay-drill-"))
    csv = folder / "store-sales.csv"
    csv.write_text(f"event_id,event_time,email,value,currency\n{event_id},{int(time.time())},{DRILL_EMAIL},42.00,USD\n",
                   encoding="utf-8")
    drill.say(f"A store sale (an offline event) is uploaded from {csv} while the Pinterest stand-in closes the "
              "connection of the next request without answering: Pinterest may or may not have it, and it cannot "
              "deduplicate offline events, so pinrelay records it uncertain and never sends it again by itself.")
    drill.fault(mode="close", count=1)
    try:
        from pinrelay_cli.main import main as pinrelay

        status = pinrelay(["import-offline", str(csv), "--url", drill.profile.ingest_url,
                           "--api-key", drill.profile.api_key])
        if status != 0:
            raise DrillCannotRun(f"pinrelay import-offline exited {status}")
        item = drill.wait_for_state(drill.key(event_id, offline=True), {"uncertain", "delivered", "rejected"})
    finally:
        drill.fault(mode=None)
    drill.say(f"the sender recorded {event_id} {item['state']}")
    drill.say("In AWS, UncertainOfflineEventsAlarm fires. Check the sale in Pinterest's Events Manager; it is not "
              "there (the stand-in never processed it), so release it and upload its row again:")
    return [f"{drill.pinrelay} uncertain", f"{drill.pinrelay} status {event_id}",
            f"{drill.pinrelay} uncertain --release {event_id}", f"{drill.pinrelay} import-offline {csv}",
            f"sleep 5; {drill.pinrelay} status {event_id}"]


# --------------------------------------------------------------------------------------------
# reconcile: the shop's orders against the ledger; one webhook never came, --backfill sends it
# --------------------------------------------------------------------------------------------


def sample_order() -> dict[str, Any]:
    """A real Shopify orders/create body of events/webhooks/ that is a sale (not cancelled)."""
    for path in sorted((REPO_ROOT / "events" / "webhooks").glob("shopify_*.json")):
        body = json.loads(path.read_text(encoding="utf-8"))
        if shopify_topic_from_filename(path.name) == "orders/create" and not body.get("cancelled_at"):
            return body
    raise DrillCannotRun("no Shopify orders/create sample in events/webhooks/")


def shop_orders(base: dict[str, Any], now: float) -> dict[str, dict[str, Any]]:
    """Three orders of the local shop: one whose webhook came, one cancelled, one whose webhook
    never came."""
    first = int(now * 1000) % 10**11  # new ids on every run
    orders = {}
    for number, (kind, age_hours) in enumerate((("delivered", 3), ("cancelled", 2), ("missing", 1))):
        order = copy.deepcopy(base)
        order.update(id=first + number, name=f"#D{str(first)[-4:]}{number}", order_number=first + number,
                     admin_graphql_api_id=f"gid://shopify/Order/{first + number}")
        for field in ("created_at", "updated_at", "processed_at"):
            order[field] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - age_hours * 3600))
        if kind == "cancelled":
            order.update(cancelled_at=order["created_at"], cancel_reason="customer")
        orders[kind] = order
    return orders


def reconcile(drill: DrillContext) -> list[str]:
    from pinrelay.adapters.webhook_backfill import ShopifyWebhookBackfill

    profile = drill.profile
    if not (profile.shop and profile.shopify_admin_url):
        raise DrillCannotRun("this local stack runs no Shopify Admin stand-in: restart `make local`")
    orders = shop_orders(sample_order(), time.time())
    answer = drill.http.post(f"{profile.shopify_admin_url}/_standin/orders", json=list(orders.values()), timeout=10)
    answer.raise_for_status()
    names = {kind: order["name"] for kind, order in orders.items()}
    drill.say(f"The Shopify Admin stand-in of {profile.shop} now has three more orders: {names['delivered']} "
              f"(its orders/create webhook is posted now), {names['cancelled']} (cancelled: posted, filtered) and "
              f"{names['missing']} (its webhook never came, as when Shopify dropped a failing subscription).")
    webhook = ShopifyWebhookBackfill(profile.ingest_url, profile.shop, profile.secrets["SHOPIFY_WEBHOOK_SECRET"])
    for kind in ("delivered", "cancelled"):
        result = webhook.send(orders[kind])
        drill.say(f"webhook of {names[kind]}: ingest answered: {result.detail or result.status}")
    drill.wait_for_state(drill.key(str(orders["delivered"]["id"])), {"delivered"})
    drill.say(f"{names['delivered']} is delivered. Reconcile reads the shop's orders and finds {names['missing']} "
              "missing (exit status 1); --backfill sends it through ingest as its webhook; run it once more a few "
              "seconds later: every order accounted for (exit status 0).")
    return [f"{drill.pinrelay} reconcile", f"{drill.pinrelay} reconcile --backfill",
            f"sleep 5; {drill.pinrelay} reconcile"]


DRILLS: dict[str, Drill] = {drill.name: drill for drill in (
    Drill("rejected", "Pinterest refuses an event (422): `pinrelay rejected` and `status` show its message", rejected),
    Drill("dlq", "Pinterest refuses the token until the event is in the DLQ; `pinrelay redrive` delivers it",
          dead_letter),
    Drill("uncertain", "an offline sale's request gets no answer: `pinrelay uncertain`, `--release`, upload again",
          uncertain),
    Drill("reconcile", "a Shopify order whose webhook never came: `pinrelay reconcile`, then `--backfill`", reconcile),
)}


def run_drill(name: str, profile: LocalProfile, say: Printer) -> list[str]:
    """Play drill ``name``; the commands to run next. DrillCannotRun when it could not."""
    drill = DRILLS[name]
    say(f"drill {name}: {drill.summary}")
    return drill.play(DrillContext(profile, say))
