"""A deterministic simulation of the delivery path: one seed, one run, invariants after every step.

The real code runs: ingest's decisions (``IngestService``: validation, the 7-day window, hashing,
in-request duplicates), the sender (``SenderService``) and the delivery ledger
(``DynamoDeliveryLedger``, its conditions evaluated by tests/simulation/dynamodb.py). Around it,
everything AWS and Pinterest do is simulated, with faults drawn from the seed:

* a clock that only moves when something takes time, and jumps minutes, hours or days between
  steps; invocations run "at once" as a discrete-event simulation (each in a thread, one running
  at a time, the earliest to wake first), so interleavings are the seed's, not the machine's;
* DynamoDB: conditional writes, ALL_OLD, slow calls (up to a call's worst case), throttling,
  writes applied and then answered with an error, answers lost and the write sent again by the
  SDK, TTL deleting expired items days late;
* SQS: at-least-once (the same message to two invocations at once, receive count 1), visibility
  timeouts, maxReceiveCount 5 and the DLQ, an operator's redrive days later, ingest's
  SendMessageBatch applied but answered as failed (two messages for one event);
* Pinterest: web/app events deduplicated by event_name + event_id for 48 hours after the first,
  offline never; per-event failures; 400 for a request as a whole; 429 with Retry-After; its own
  503; 500/502/504 and unreadable 200s before or after processing; answers that never come
  (processed or not); refused connections; 401; slow token reads;
* Lambda: the sender's 120 s timeout (a kill at it is a violation: I5), invocations killed at any
  call (before it reaches the service, or after it was applied), several invocations at once.

Invariants, checked after every step (``World.check``) and at the end (``World.finish``):
offline events processed by Pinterest at most once; web and app events counted by Pinterest at
most once (resent only inside its dedup window); no invocation killed by its timeout, and no
request answered without time left to record its outcome; what the ledger says agrees with what
Pinterest did (delivered: processed; not_sent: never processed; uncertain: a request with it went
out; rejected: refused); each invocation's fates agree with its ledger writes and its requests;
and once the storm is over and the queue drained, every accepted event has a final state in the
ledger's history, or a message in the DLQ.

``python -m tests.simulation --seed N`` replays one run and prints its trace (``make simulate SEED=N``).
"""

from __future__ import annotations

import heapq
import json
import logging
import random
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pinrelay.adapters.dynamodb import DynamoDeliveryLedger
from pinrelay.events import dedup_key
from pinrelay.ingest import IngestService
from pinrelay.models import QueuedEvent
from pinrelay.ports import FINAL_STATES, HttpAnswer, QueueRefusal
from pinrelay.sender import Fate, QueuedMessage, SendReport, SenderService
from pinrelay.windows import DAY_SECONDS, PINTEREST_WEB_DEDUP_SECONDS
from tests.simulation.dynamodb import ConditionalCheckFailedException, SimulatedDynamoDB

ACCOUNT = "549755885175"
OTHER_ACCOUNT = "549755885176"  # a second ad account of the deployment (the account map's): a chunk of its own
START = 1_800_000_000
SENDER_TIMEOUT = 120.0  # template.yaml's SenderFunction Timeout
VISIBILITY_TIMEOUT = 780  # template.yaml's EventsQueue
MAX_RECEIVE_COUNT = 5
DYNAMODB_WORST = 12.0  # pinrelay.adapters.aws: 3 x (1 + 2) s + 3 s
TOKEN_WORST = 14.0  # two Secrets Manager reads of 7 s
REQUEST_TIMEOUT = 10.0  # PINTEREST_TIMEOUT_SECONDS: the client's total deadline
WINDOW = 7 * DAY_SECONDS + 300

for _name in ("pinrelay", "pinrelay.sender", "pinrelay.adapters.dynamodb"):
    logging.getLogger(_name).setLevel(logging.CRITICAL)



def event_key(ad_account_id: str, event: dict[str, Any]) -> str:
    """The event's ledger key, as ingest gives it (offline events are keyed apart)."""
    return dedup_key(ad_account_id, event["event_name"], event["event_id"], event.get("action_source") == "offline")

class Killed(BaseException):
    """The invocation's process is gone (Lambda killed it): no except, no finally of the code runs
    on it (a BaseException, which the code's ``except Exception`` does not catch)."""


class Violation(BaseException):
    """An invariant broke. A BaseException, so that no ``except Exception`` of the code under test
    swallows it when it is raised inside a simulated call."""

    def __init__(self, invariant: str, detail: str) -> None:
        super().__init__(f"{invariant}: {detail}")
        self.invariant = invariant
        self.detail = detail


class AwsError(Exception):
    """What botocore raises when DynamoDB refused a call after its retries."""


# -- time: a discrete-event scheduler --------------------------------------------------------------


@dataclass(eq=False)
class Task:
    name: str
    fn: Callable[[], Any]
    start_at: float
    deadline: float | None = None
    kill_at: int | None = None  # the call (1-based) at which the process dies
    kill_after: bool = False  # ... after the call was applied (else before it reached the service)
    calls: int = 0
    result: Any = None
    error: BaseException | None = None
    killed: str | None = None
    go: threading.Event = field(default_factory=threading.Event)


class Scheduler:
    """Runs tasks one at a time in simulated time: the task whose next wake-up is earliest runs;
    a task gives way only in ``wait``. A lone task runs inline (no thread)."""

    def __init__(self) -> None:
        self.now = float(START)
        self.current: Task | None = None
        self._heap: list[tuple[float, int, Task]] = []
        self._seq = 0
        self._main = threading.Event()
        self._threaded = False

    def _push(self, wake: float, task: Task) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (wake, self._seq, task))

    def run(self, tasks: list[Task]) -> None:
        if len(tasks) == 1:
            task = tasks[0]
            self.now = max(self.now, task.start_at)
            self.current = task
            try:
                task.result = task.fn()
            except BaseException as error:  # noqa: BLE001 - Killed, Violation: the caller looks
                task.error = error
            finally:
                self.current = None
            return
        self._threaded = True
        threads = []
        for task in tasks:
            thread = threading.Thread(target=self._body, args=(task,), daemon=True)
            threads.append(thread)
            thread.start()
            self._push(task.start_at, task)
        while self._heap:
            wake, _, task = heapq.heappop(self._heap)
            self.now = max(self.now, wake)
            self.current = task
            self._main.clear()
            task.go.set()
            self._main.wait()
        self.current = None
        self._threaded = False
        for thread in threads:
            thread.join()

    def _body(self, task: Task) -> None:
        task.go.wait()
        task.go.clear()
        try:
            task.result = task.fn()
        except BaseException as error:  # noqa: BLE001
            task.error = error
        finally:
            self._main.set()

    def wait(self, seconds: float) -> None:
        task = self.current
        wake = self.now + seconds
        if task is None or not self._threaded or not self._heap or wake < self._heap[0][0]:
            self.now = wake  # this task would be the next to run anyway
            return
        self._push(wake, task)
        self._main.set()
        task.go.wait()
        task.go.clear()


# -- the world -------------------------------------------------------------------------------------


@dataclass
class Weather:
    """How rough the run is: every fault's rate scales with these (drawn from the seed)."""

    aws: float  # slow calls, throttling
    ambiguity: float  # writes applied whose answer is lost or an error
    pinterest: float
    kills: float
    sqs: float


@dataclass
class Message:
    message_id: str
    body: str
    receive_count: int = 0
    visible_at: float = 0.0


@dataclass
class Receipt:
    """One event in one request Pinterest received."""

    at: float
    invocation: str
    processed: bool
    refused: bool = False  # failed, or refused with its request (400)


class World:
    def __init__(self, seed: int, *, steps: int = 40, trace: bool = False,
                 service_overrides: dict[str, Any] | None = None) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.steps = steps
        self.tracing = trace
        self.lines: list[str] = []
        self.scheduler = Scheduler()
        self.weather = Weather(aws=self.rng.choice([0, 0.5, 1, 2, 4]), ambiguity=self.rng.choice([0, 0.5, 1, 4]),
                               pinterest=self.rng.choice([0, 0.5, 1, 2, 4]), kills=self.rng.choice([0, 0.5, 1, 2]),
                               sqs=self.rng.choice([0, 1, 2]))
        self.calm = False  # the storm is over: no fault, no kill (the end of a run)
        self.service_overrides = service_overrides or {}
        self.table = SimulatedDynamoDB()
        self.dynamodb = SimDynamoClient(self)
        self.pinterest = SimPinterest(self)
        self.queue: dict[str, Message] = {}
        self.dead_letters: list[Message] = []
        self.ingest = IngestService(ad_account_id=ACCOUNT, queue=IngestQueue(self), clock=lambda: self.now)
        # dedup key -> (ad account, the event as posted): what must end somewhere
        self.accepted: dict[str, tuple[str, dict[str, Any]]] = {}
        self.unanswered: list[tuple[str, list[dict[str, Any]]]] = []  # requests a client must post again
        self.history: dict[str, list[tuple[float, str, str]]] = defaultdict(list)  # key -> (when, claim_id, state)
        self.posted: dict[str, set[str]] = defaultdict(set)  # key -> invocations that posted it
        self.ttl_lag: dict[str, float] = {}
        self.forgotten: dict[str, float] = {}  # key -> when DynamoDB's TTL last deleted its item
        self.invocations = 0
        self.messages = 0
        self.events = 0

    # -- time ------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        return self.scheduler.now

    def spend(self, seconds: float) -> None:
        """The current task (or the world) takes ``seconds``; Lambda kills a task at its deadline."""
        task = self.scheduler.current
        if task is not None and task.deadline is not None and self.now + seconds > task.deadline:
            self.scheduler.wait(max(0.0, task.deadline - self.now))
            task.killed = "timeout"
            raise Killed("Task timed out")
        self.scheduler.wait(seconds)

    def call(self, name: str) -> Task | None:
        """A call of the current task to a service: counted; the process may die right before it."""
        task = self.scheduler.current
        if task is not None:
            task.calls += 1
            if task.kill_at == task.calls and not task.kill_after:
                task.killed = f"killed before call {task.calls} ({name})"
                self.say(f"    {task.name}: {task.killed}")
                raise Killed(task.killed)
        return task

    def after_call(self, task: Task | None, name: str) -> None:
        if task is not None and task.kill_at == task.calls and task.kill_after:
            task.killed = f"killed after call {task.calls} ({name}) was applied"
            self.say(f"    {task.name}: {task.killed}")
            raise Killed(task.killed)

    def chance(self, rate: float) -> bool:
        return not self.calm and self.rng.random() < rate

    def say(self, line: str) -> None:
        if self.tracing:
            self.lines.append(f"[{self.now - START:>10.1f}] {line}")

    # -- the run -----------------------------------------------------------------------------
    def run(self) -> None:
        actions = [(self.post, 6), (self.post_again, 2), (self.deliver, 8), (self.deliver_at_once, 3),
                   (self.wait_a_while, 4), (self.wait_days, 1), (self.redrive, 1), (self.withhold, 1), (self.sweep, 2)]
        weights = [weight for _, weight in actions]
        for step in range(self.steps):
            action = self.rng.choices(actions, weights)[0][0]
            self.say(f"step {step}: {action.__name__}")
            action()
            self.check(f"after step {step} ({action.__name__})")
        self.finish()

    def finish(self) -> None:
        """The storm is over: clients post what was not answered, SQS brings back what is left,
        the sender drains the queue; then every accepted event must have ended somewhere."""
        self.calm = True
        self.say("the storm is over")
        for _ in range(3):
            self.post_again()
        for round_number in range(12):
            self.scheduler.now += VISIBILITY_TIMEOUT + 20
            if not self.queue:
                break
            while self.visible():
                self.deliver(batch=50)
                self.check(f"draining, round {round_number}")
        if self.queue:
            raise Violation("I1 settled", f"{len(self.queue)} messages still queued after the storm")
        in_dlq = {json.loads(m.body)["dedup_key"] for m in self.dead_letters}
        for key in self.accepted:
            finals = [state for _, _, state in self.history.get(key, []) if state in FINAL_STATES]
            if not finals and key not in in_dlq:
                states = [state for _, _, state in self.history.get(key, [])]
                raise Violation("I1 nothing lost", f"{key} was accepted and ended nowhere (ledger history {states})")
        self.check("at the end")

    # -- clients and ingest --------------------------------------------------------------------
    def new_event(self) -> dict[str, Any]:
        self.events += 1
        source = self.rng.choice(["web", "web", "web", "offline", "offline", "app_ios"])
        kind = self.rng.random()
        prefix = "bad-" if kind < 0.04 else "poison-" if kind < 0.06 else ""
        age = self.rng.choice([30, 600, 3600, 86400 * self.rng.uniform(0, 6.99)])
        return {"event_name": "checkout", "action_source": source, "event_id": f"{prefix}{source[0]}{self.events}",
                "event_time": int(self.now - age), "user_data": {"em": [f"e{self.events}@example.com"]}}

    def post(self) -> None:
        account = ACCOUNT if self.rng.random() < 0.7 else OTHER_ACCOUNT
        events = [self.new_event() for _ in range(self.rng.randint(1, 6))]
        copies = [event for key, (owner, event) in sorted(self.accepted.items()) if owner == account]
        if copies and self.rng.random() < 0.3:  # a client's retry or a webhook replayed: a copy
            events.append(dict(self.rng.choice(copies)))
        self._post(account, events)

    def post_again(self) -> None:
        waiting, self.unanswered = self.unanswered, []
        for account, events in waiting:
            self._post(account, events)

    def _post(self, account: str, events: list[dict[str, Any]]) -> None:
        outcome = self.ingest.ingest_api_events([dict(e) for e in events], ad_account_id=account)
        again = []
        for event, result in zip(events, outcome.results, strict=True):
            if result.status == "accepted":
                self.accepted.setdefault(event_key(account, event), (account, event))
            elif result.status == "error":  # not queued: the client sends it again
                again.append(event)
        self.say(f"  ingest ({account}): {[r.status for r in outcome.results]}")
        if again:
            self.unanswered.append((account, again))

    def withhold(self) -> None:
        """A message ingest queued withheld (the shopper's consent), as issue 19 specifies it."""
        event = self.new_event()
        event.pop("user_data")
        key = event_key(ACCOUNT, event)
        body = QueuedEvent(ad_account_id=ACCOUNT, source="shopify", dedup_key=key, accepted_at=int(self.now),
                           event=event, withheld="consent").model_dump_json(exclude_defaults=False)
        self.enqueue(body)
        self.accepted[key] = (ACCOUNT, event)

    def enqueue(self, body: str) -> None:
        self.messages += 1
        message_id = f"m{self.messages}"
        self.queue[message_id] = Message(message_id, body, visible_at=self.now)

    # -- SQS and the event source --------------------------------------------------------------
    def visible(self) -> list[Message]:
        return [m for m in self.queue.values() if m.visible_at <= self.now]

    def receive(self, batch: int) -> list[Message]:
        got = []
        for message in self.visible()[:batch]:
            if message.receive_count >= MAX_RECEIVE_COUNT:  # SQS moves it to the DLQ instead
                del self.queue[message.message_id]
                self.dead_letters.append(message)
                self.say(f"  {message.message_id} -> DLQ")
                continue
            message.receive_count += 1
            if not self.chance(0.05 * self.weather.sqs):  # else: delivered again at once (at least once)
                message.visible_at = self.now + VISIBILITY_TIMEOUT
            got.append(message)
        return got

    def deliver(self, batch: int | None = None) -> None:
        messages = self.receive(batch or self.rng.randint(1, 12))
        if messages:
            self.run_invocations([messages])

    def deliver_at_once(self) -> None:
        """Two or three invocations at the same time; SQS may hand the same message to more than one."""
        first = self.receive(self.rng.randint(1, 8))
        if not first:
            return
        batches = [first]
        for _ in range(self.rng.randint(1, 2)):
            more = self.receive(self.rng.randint(0, 6))
            copies = [m for m in first if self.rng.random() < 0.5 * (self.weather.sqs + 0.5)]
            batches.append(more + copies)
        self.run_invocations([b for b in batches if b])

    def run_invocations(self, batches: list[list[Message]]) -> None:
        tasks = []
        for batch in batches:
            self.invocations += 1
            name = f"inv-{self.invocations}"
            start = self.now + (self.rng.uniform(0, 5) if len(batches) > 1 else 0.0)
            task = Task(name, lambda: None, start, deadline=start + SENDER_TIMEOUT)
            if self.chance(0.15 * self.weather.kills):  # most often early, where claims, marks and requests are
                task.kill_at = self.rng.randint(1, 8) if self.rng.random() < 0.6 else self.rng.randint(1, 30)
                task.kill_after = self.rng.random() < 0.5
            task.fn = (lambda t, b: lambda: self.invoke_sender(t, b))(task, batch)
            tasks.append((task, batch))
            self.say(f"  {name}: {[m.message_id for m in batch]}" + (f" (dies at call {task.kill_at}"
                     f" {'after' if task.kill_after else 'before'})" if task.kill_at else ""))
        self.scheduler.run([task for task, _ in tasks])
        for task, batch in tasks:
            if isinstance(task.error, Violation):
                raise task.error
            if task.killed == "timeout":
                raise Violation("I5 timeout", f"{task.name} ran into the sender's {SENDER_TIMEOUT:g} s timeout")
            if task.error is not None and not isinstance(task.error, Killed):
                raise task.error
            if task.killed:
                continue  # nothing deleted: SQS brings the batch back after its visibility timeout
            report: SendReport = task.result
            failed = set(report.failed_message_ids)
            for message in batch:
                if message.message_id not in failed and message.message_id in self.queue:
                    if self.chance(0.02 * self.weather.sqs):  # the event source's delete failed
                        continue
                    del self.queue[message.message_id]
            self.check_report(task, batch, report)

    def invoke_sender(self, task: Task, batch: list[Message]) -> SendReport:
        messages = [QueuedMessage(m.message_id, m.receive_count, QueuedEvent.model_validate_json(m.body)) for m in batch]
        ledger = DynamoDeliveryLedger("ledger", self.dynamodb, worst_call_seconds=DYNAMODB_WORST, max_workers=1,
                                      sleep=self.spend)
        settings = dict(api=self.pinterest, ledger=ledger, test_mode=False, max_attempts=4, backoff_base_seconds=0.5,
                        backoff_max_seconds=8.0, clock=lambda: self.now, sleep=self.spend,
                        request_timeout_seconds=REQUEST_TIMEOUT, ledger_call_seconds=DYNAMODB_WORST,
                        prepare_seconds=TOKEN_WORST, dedup_window_seconds=WINDOW, offline_dedup_window_seconds=WINDOW)
        settings.update(self.service_overrides)
        service = SenderService(**settings)
        report = service.deliver(messages, time_left=lambda: task.deadline - self.now, claim_id=task.name)
        self.spend(0.05)  # the handler answers SQS
        self.say(f"  {task.name}: {report.counts()}" + (f" rejections {report.rejections}" if report.rejections else ""))
        return report

    # -- operators, time, TTL ----------------------------------------------------------------------
    def wait_a_while(self) -> None:
        self.scheduler.now += self.rng.choice([1, 30, 300, VISIBILITY_TIMEOUT + 20, 3600, 6 * 3600])

    def wait_days(self) -> None:
        self.scheduler.now += self.rng.uniform(0.5, 3.5) * DAY_SECONDS

    def redrive(self) -> None:
        """An operator moves the DLQ back (the console's StartMessageMoveTask: new messages)."""
        moved, self.dead_letters = self.dead_letters, []
        for message in moved:
            self.enqueue(message.body)
        if moved:
            self.say(f"  redrove {len(moved)} messages")

    def sweep(self) -> None:
        """DynamoDB's TTL deletes expired items, days late."""
        for key in sorted(self.table.items):
            expires = int(self.table.items[key].get("expires_at", {}).get("N", "0"))
            lag = self.ttl_lag.setdefault(key, self.rng.uniform(0, 3 * DAY_SECONDS))
            if expires and expires + lag <= self.now:
                del self.table.items[key]
                self.forgotten[key] = self.now
                self.say(f"  TTL deleted {key}")

    # -- invariants --------------------------------------------------------------------------------
    def check(self, when: str) -> None:
        for key, receipts in self.pinterest.receipts.items():
            processed = [r for r in receipts if r.processed]
            if self.pinterest.offline[key] and len(processed) > 1:
                raise Violation("I3 offline once", f"{key} processed {len(processed)} times {when}")
            counted = self.pinterest.counted(processed)
            if not self.pinterest.offline[key] and counted > 1:
                raise Violation("I3 web inside Pinterest's window",
                                f"{key} counted {counted} times by Pinterest (resent after its dedup window) {when}")
        for key, item in self.table.items.items():
            state = item.get("state", {}).get("S")
            receipts = self.pinterest.receipts.get(key, [])
            if state == "delivered" and not any(r.processed for r in receipts):
                raise Violation("ledger truth", f"{key} is delivered but Pinterest never processed it {when}")
            # (a copy that comes after the ledger forgot an earlier delivery is not sent: too old by then)
            if state == "not_sent" and any(r.processed and r.at > self.forgotten.get(key, 0) for r in receipts):
                raise Violation("ledger truth", f"{key} is not_sent but Pinterest processed it {when}")
            if state == "uncertain" and not any(s == "sending" for _, _, s in self.history.get(key, [])):
                raise Violation("ledger truth", f"{key} is uncertain but was never sending {when}")
            if state == "rejected" and not any(r.refused for r in receipts):
                raise Violation("ledger truth", f"{key} is rejected but Pinterest never refused it {when}")

    def check_report(self, task: Task, batch: list[Message], report: SendReport) -> None:
        """Metrics agree with the ledger: each fate of the invocation with its ledger writes and
        its requests; one fate per message; the batch response is the fates that return."""
        if sum(report.counts().values()) != len(batch):
            raise Violation("metrics", f"{task.name}: {report.counts()} for {len(batch)} messages")
        returned = {m for m, fate in report.message_fates() if fate.returns_to_sqs}
        if set(report.failed_message_ids) != returned:
            raise Violation("metrics", f"{task.name}: batch response {report.failed_message_ids} is not its fates")
        written = {(key, state) for key, entries in self.history.items() for _, claim, state in entries
                   if claim == task.name}
        for event in report.events:
            key, fate = event.key, event.fate
            receipts = [r for r in self.pinterest.receipts.get(key, []) if r.invocation == task.name]
            state = {Fate.DELIVERED: "delivered", Fate.REJECTED: "rejected", Fate.UNCERTAIN: "uncertain",
                     Fate.NOT_SENT: "not_sent"}.get(fate)
            if state and (key, state) not in written:
                raise Violation("metrics agree with the ledger", f"{task.name} counted {key} {fate} but wrote no {state}")
            if fate is Fate.DELIVERED and not any(r.processed for r in receipts):
                raise Violation("metrics agree with Pinterest", f"{task.name} counted {key} delivered, not processed by it")
            if fate in (Fate.NOT_SENT, Fate.DUPLICATE, Fate.HELD_ELSEWHERE, Fate.CLAIM_FAILED) and receipts:
                raise Violation("metrics", f"{task.name} posted {key} yet counted it {fate}")
            if fate is Fate.DUPLICATE and not any(s in FINAL_STATES for _, _, s in self.history.get(key, [])):
                raise Violation("metrics agree with the ledger", f"{task.name} counted {key} a duplicate of nothing final")


# -- the simulated services ------------------------------------------------------------------------


class IngestQueue:
    """SQS as ingest's SendMessageBatch sees it: taken, refused, or taken and answered as failed."""

    def __init__(self, world: World) -> None:
        self.world = world

    def send(self, bodies: list[str], time_left: Any = None) -> list[QueueRefusal]:
        world = self.world
        world.spend(world.rng.uniform(0.005, 0.05))
        if world.chance(0.05 * world.weather.sqs):
            raise AwsError("ServiceUnavailable")  # nothing queued
        refusals = []
        for position, body in enumerate(bodies):
            fate = world.rng.random() if not world.calm else 1.0
            if fate < 0.04 * world.weather.sqs:
                refusals.append(QueueRefusal(position, False, "InternalError"))  # not queued
                continue
            world.enqueue(body)
            if fate < 0.08 * world.weather.sqs:  # queued, but the answer said it failed: the client sends it again
                refusals.append(QueueRefusal(position, False, "InternalError"))
        return refusals


class SimDynamoClient:
    """The DynamoDB client the ledger calls: the simulated table, with latency and faults."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.exceptions = world.table.exceptions

    def update_item(self, **request: Any) -> dict[str, Any]:
        """One call as the ledger sees it, the SDK's retries included: at most a call's worst case
        long (slow, throttled, applied with its answer lost and sent again, applied then failed)."""
        world = self.world
        task = world.call("dynamodb.UpdateItem")
        rate, ambiguous = 0.04 * world.weather.aws, 0.03 * world.weather.ambiguity
        total = world.rng.uniform(0.5, DYNAMODB_WORST - 0.5) if world.chance(rate) else world.rng.uniform(0.004, 0.04)
        world.spend(total * 0.4)
        if world.chance(rate):
            world.spend(total * 0.6)
            world.after_call(task, "dynamodb.UpdateItem")
            raise AwsError("ProvisionedThroughputExceededException")
        answer = self._apply(task, request)
        if world.chance(ambiguous):  # applied, the answer lost: the SDK sends the same write again
            world.spend(total * 0.3)
            answer = self._apply(task, request)
        world.spend(total * 0.3)
        world.after_call(task, "dynamodb.UpdateItem")
        if world.chance(ambiguous):  # applied, then an error the SDK gave up on
            raise AwsError("InternalServerError")
        if isinstance(answer, ConditionalCheckFailedException):
            raise answer
        return answer

    def _apply(self, task: Task | None, request: dict[str, Any]) -> Any:
        key = request["Key"]["pk"]["S"]
        before = self.world.table.items.get(key)
        try:
            answer = self.world.table.update_item(**request)
        except ConditionalCheckFailedException as failed:
            return failed
        after = self.world.table.items[key]
        takes = "claim_id = :claim" in request["UpdateExpression"]  # a claim or a settlement; the rest write under one
        holder = (before or {}).get("claim_id", {}).get("S")
        if after is not before and not takes and task is not None and holder != task.name:
            raise Violation("writes under the claim", f"{task.name} wrote {key} while {holder} held its claim")
        lease = int((before or {}).get("lease_until", {}).get("N", "0"))
        if (after is not before and takes and task is not None and holder not in (None, task.name)
                and (before or {}).get("state", {}).get("S") in ("claimed", "sending") and lease > self.world.now):
            raise Violation("one holder at a time", f"{task.name} took {key} while {holder}'s lease ran until {lease}")
        if after is not before:
            state = after.get("state", {}).get("S", "")
            claim = after.get("claim_id", {}).get("S", "")
            self.world.history[key].append((self.world.now, claim, state))
            self.world.say(f"    {task.name if task else '-'} wrote {key}: {state}")
        return answer

    def batch_get_item(self, **request: Any) -> dict[str, Any]:
        return self.world.table.batch_get_item(**request)


class SimPinterest:
    """Pinterest's API for Conversions as the sender's port sees it."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.receipts: dict[str, list[Receipt]] = defaultdict(list)
        self.offline: dict[str, bool] = {}

    @staticmethod
    def counted(processed: list[Receipt]) -> int:
        """How many times Pinterest counts a web/app event: a repeat within 48 hours of the first
        counted one is dropped."""
        count, first = 0, None
        for receipt in sorted(processed, key=lambda r: r.at):
            if first is None or receipt.at > first + PINTEREST_WEB_DEDUP_SECONDS:
                count, first = count + 1, receipt.at
        return count

    def prepare(self, ad_account_id: str) -> str | None:
        world = self.world
        task = world.call("secretsmanager.GetSecretValue")
        rate = 0.05 * world.weather.aws
        world.spend(world.rng.uniform(1, TOKEN_WORST) if world.chance(3 * rate) else world.rng.uniform(0.0, 0.002))
        world.after_call(task, "secretsmanager.GetSecretValue")
        if world.chance(rate):
            return "the conversion token could not be read (InternalServiceError)"
        return None

    def forget_token(self, ad_account_id: str) -> None:
        pass

    def post_events(self, ad_account_id: str, events: list[dict[str, Any]], test: bool) -> HttpAnswer:
        world = self.world
        task = world.call("pinterest.post")
        name = task.name if task else "-"
        rate = 0.06 * world.weather.pinterest
        weights = {"ok": 1.0, "429": rate, "503": rate, "gateway_after": rate, "gateway_before": rate / 2,
                   "no_answer_after": rate, "no_answer_before": rate / 2, "refused": rate / 2, "401": rate / 3,
                   "html_200": rate / 3, "422_no_details": rate / 3}
        behaviour = "ok" if world.calm else world.rng.choices(list(weights), list(weights.values()))[0]
        keys = [event_key(ad_account_id, e) for e in events]
        for key, event in zip(keys, events, strict=True):
            world.posted[key].add(name)
            self.offline[key] = event.get("action_source") == "offline"
        world.spend(world.rng.uniform(0.02, 0.5))  # on its way
        processed = behaviour in ("ok", "gateway_after", "no_answer_after", "html_200", "422_no_details")
        statuses = []
        if processed and any(e["event_id"].startswith("poison-") for e in events):
            behaviour, processed = "400", False
            for key in keys:
                self.receipts[key].append(Receipt(world.now, name, processed=False, refused=len(keys) == 1))
        elif processed:
            some = behaviour != "422_no_details" or world.rng.random() < 0.5
            for key, event in zip(keys, events, strict=True):
                failed = event["event_id"].startswith("bad-") or event["event_time"] < world.now - 7 * DAY_SECONDS
                takes = some or world.rng.random() < 0.5
                if takes:
                    self.receipts[key].append(Receipt(world.now, name, processed=not failed, refused=failed))
                statuses.append({"status": "failed" if failed else "processed",
                                 "error_message": "Invalid event_timestamp" if failed else None})
        answer = {
            "ok": lambda: (HttpAnswer(200, {"events": statuses}) if all(s["status"] == "processed" for s in statuses)
                           else HttpAnswer(422, {"code": 953, "message": "not all processed", "details": {"events": statuses}})),
            "400": lambda: HttpAnswer(400, {"code": 4196, "message": "The request was invalid."}),
            "429": lambda: HttpAnswer(429, {"code": 8, "message": "rate limit"},
                                      retry_after=world.rng.choice([None, 1.0, 30.0, 60.0, 90.0])),
            "503": lambda: HttpAnswer(503, {"code": 4197, "message": "ramped down"}),
            "gateway_after": lambda: HttpAnswer(world.rng.choice([500, 502, 504]), None, text="<html>Bad Gateway</html>"),
            "gateway_before": lambda: HttpAnswer(world.rng.choice([500, 502, 504]), None, text="<html>Bad Gateway</html>"),
            "no_answer_after": lambda: HttpAnswer(None, transport_error="timed out after 10s"),
            "no_answer_before": lambda: HttpAnswer(None, transport_error="timed out after 10s"),
            "refused": lambda: HttpAnswer(None, transport_error="ConnectionError", may_have_arrived=False),
            "401": lambda: HttpAnswer(401, {"code": 2, "message": "Authentication failed."}),
            "html_200": lambda: HttpAnswer(200, None, text="<html>"),
            "422_no_details": lambda: HttpAnswer(422, {"code": 953, "message": "not all processed"}),
        }[behaviour]()
        if behaviour.startswith("no_answer"):  # the client's total deadline
            world.spend(max(0.0, REQUEST_TIMEOUT - 0.5))
        else:
            slow = world.chance(0.05 + 0.15 * world.weather.pinterest)
            world.spend(world.rng.uniform(1, REQUEST_TIMEOUT - 1) if slow else world.rng.uniform(0.01, 0.3))
        world.after_call(task, "pinterest.post")
        if task is not None and task.deadline is not None:
            left = task.deadline - world.now
            if left < DYNAMODB_WORST + 1:  # the ledger's margin: its outcome write could not even start
                raise Violation("I5 time for the outcome",
                                f"{task.name}'s request was answered with {left:.1f} s left, too little to record it")
        world.say(f"    {name} posted {[e['event_id'] for e in events]}: {behaviour} -> {answer.status}")
        return answer


def run(seed: int, *, steps: int = 40, trace: bool = False, service_overrides: dict[str, Any] | None = None) -> World:
    """One simulated run; raises Violation (with the world's trace kept on it) when an invariant fails."""
    world = World(seed, steps=steps, trace=trace, service_overrides=service_overrides)
    try:
        world.run()
    except Violation as violation:
        violation.world = world  # type: ignore[attr-defined]
        raise
    return world
