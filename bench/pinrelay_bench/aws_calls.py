"""AWS calls per event, log bytes per function and accept -> delivery latency, on the local stack.

``pinrelay_local.stack.LocalStack`` runs moto in server mode, the real ingest handler behind an
HTTP API emulation, the real sender handler behind an emulation of Lambda's SQS event source,
the BigCommerce fetcher behind another, the Stripe line-items fetcher on its schedule
(``ScheduledFunction``, here at template.yaml's period, once a minute, as deployed), and the
Pinterest, Stripe and BigCommerce stand-ins. Calls are counted, never assumed: botocore
``before-call`` / ``after-call`` hooks on

* each function's own clients. In AWS, ingest, sender and the fetchers run in separate
  containers with separate clients; in one process they would share
  ``pinrelay.adapters.aws.client``'s cache, so the bench replaces that recipe (in every module
  that imported it) with one that gives each function its own client, found by the handler
  module on the creating thread's stack. A call through a client made outside the handlers is
  counted as ``other`` (and shown). The Stripe line-items fetcher drains its queue itself with
  such a client: its ReceiveMessage (with jobs, and empty: how long each empty one waited) and
  DeleteMessageBatch on that queue are counted apart (``job_*`` units, with the time moto took
  to answer them), under ``fetcher``;
* the event sources' client (``stack.sqs``: ReceiveMessage, DeleteMessageBatch on the events
  queue and the BigCommerce fetch queue), as ``poller``.

Secrets Manager calls are counted under the function on whose stack they run (the secrets
provider is shared in one process). DynamoDB: write/read requests, items, WRU/RRU (UpdateItem:
an upper bound of the item's size from the request, at least 1 WRU; after the phases the table is
scanned for the real item sizes), and which ledger write each UpdateItem is (claim, mark
``sending``, outcome). SQS: requests and billable requests (every 64 KB of payload is one).

The event source batches as deployed (template.yaml's SenderBatchSize and
SenderBatchingWindowSeconds defaults). Phases: 1000 web events in one post; offline store sales in
one post (the CSV import's shape); single posts of one web event (8 at a time); then a trickle of
5 web events/s (the rate the bill is modeled at), one post each, measuring accept -> delivery
latency at the stand-in; then the same trickle of Stripe webhooks (each session's line items read
by the line-items fetcher from the Stripe stand-in) and of BigCommerce webhooks (each order
fetched by the fetcher from the BigCommerce stand-in); the fetchers' calls to the platform's API
and their invocations are counted. Each phase waits until every event reached the stand-in and
the queue is empty, so the sender's writes and the event source's deletes are in its counts.
Empty receives (the poller's long polls while the queue is idle) are counted but not charged per
event: they depend on time, not on traffic.

The Stripe phase is the schedule's steady state: it starts as a run of the line-items fetcher
ends, lasts whole periods (three minutes; one with ``--quick``), so that each run takes what a
minute of webhooks brings, and ends when the runs that took its jobs have ended; only those runs
and their calls are its counts. The schedule's runs outside it find the queue empty (one empty
long poll each, no log line, no metric): the idle cost, measured apart (``idle_line_items_runs``).
"""

from __future__ import annotations

import json
import math
import re
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pinrelay_bench.bill import MODEL_ASSUMPTIONS, sqs_billable_requests, template_parameter_default
from pinrelay_bench.harness import HANDLER_FUNCTIONS, ByteCounter, function_on_stack, percentile
from pinrelay_bench.workload import make_events, make_offline_events, request_body

# the Stripe line-items queue's name (pinrelay_local.platforms.LINE_ITEMS_QUEUE_NAME), in its URL;
# its dead-letter queue's name starts with it too, and is told apart by its "-dlq"
JOB_QUEUE_MARK = "pinrelay-stripe-line-items"

DYNAMODB_WRITE_UNIT_BYTES = 1024
TRICKLE_RATE_EVENTS_PER_S = float(MODEL_ASSUMPTIONS["rate_events_per_s"])  # the rate the bill is modeled at


# ------------------------------------------------------------------------------------------
# units
# ------------------------------------------------------------------------------------------


def dynamodb_item_size(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names + values (numbers ~1 byte per 2 digits + 1)."""
    def value_size(value: dict[str, Any]) -> int:
        (kind, data), = value.items()
        if kind == "S":
            return len(data.encode("utf-8"))
        if kind == "N":
            return math.ceil(len(data.lstrip("-").replace(".", "")) / 2) + 1
        if kind == "B":
            return len(data)
        if kind in ("BOOL", "NULL"):
            return 1
        if kind == "L":
            return 3 + sum(value_size(v) + 1 for v in data)
        if kind == "M":
            return 3 + sum(len(k.encode("utf-8")) + value_size(v) + 1 for k, v in data.items())
        if kind in ("SS", "NS", "BS"):
            return sum(len(str(v)) for v in data)
        return 0

    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in item.items())


def update_item_size_bound(request: dict[str, Any]) -> int:
    """An upper bound of the item an UpdateItem leaves: its key, every value the request carries
    and the whole update expression's text (which names every attribute it sets)."""
    key = dynamodb_item_size(request.get("Key") or {})
    values = sum(dynamodb_item_size({"": value}) for value in (request.get("ExpressionAttributeValues") or {}).values())
    return key + values + len((request.get("UpdateExpression") or "").encode("utf-8"))


def ledger_write_kind(request: dict[str, Any]) -> str:
    """Which delivery-ledger write an UpdateItem is: ``claim`` (it takes the lease: sets
    ``claim_id``), ``mark_sending`` (sets the state to ``sending`` without a claim) or ``outcome``
    (delivered, rejected, uncertain, or the lease given back as ``claimed``)."""
    expression = request.get("UpdateExpression") or ""
    names = request.get("ExpressionAttributeNames") or {}
    values = request.get("ExpressionAttributeValues") or {}
    if re.search(r"\bclaim_id\s*=", expression):
        return "claim"
    for name, placeholder in re.findall(r"(#?\w+)\s*=\s*(:\w+)", expression):
        if names.get(name, name) == "state":
            state = (values.get(placeholder) or {}).get("S")
            return "mark_sending" if state == "sending" else "outcome"
    return "other"


# ------------------------------------------------------------------------------------------
# counting
# ------------------------------------------------------------------------------------------


JOB_QUEUE_OPERATIONS = ("ReceiveMessage", "DeleteMessageBatch", "DeleteMessage")


def is_job_queue(queue_url: Any) -> bool:
    """Whether ``queue_url`` is the Stripe line-items queue (not its dead-letter queue)."""
    name = str(queue_url or "").rstrip("/").rsplit("/", 1)[-1]
    return name.startswith(JOB_QUEUE_MARK) and "-dlq" not in name


class AwsCallCounter:
    """botocore ``before-call`` / ``after-call`` hooks: calls per ``role:service:operation`` and units
    per ``role:unit`` (DynamoDB writes, reads, WRU, RRU, ledger write kinds, conditional check
    failures; SQS billable requests, of which sends, messages sent and received, empty receives;
    the Stripe line-items queue's receives, empty receives and the ms they waited, deletes, and the
    ms all its calls took, as ``job_*``), secrets read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.units: Counter[str] = Counter()
        self.secret_ids: dict[str, set[str]] = {}

    def attach(self, client: Any, role: str) -> None:
        client.meta.events.register("before-call", lambda **kw: self._before(role, **kw))
        client.meta.events.register("after-call", lambda **kw: self._after(role, **kw))

    @staticmethod
    def _body(params: dict[str, Any]) -> dict[str, Any]:
        body = params.get("body")
        if not body:
            return {}
        try:
            parsed = json.loads(body)
        except (ValueError, TypeError):
            return {}
        return parsed if isinstance(parsed, dict) else {}

    def _before(self, role: str, model: Any, params: dict[str, Any], context: dict[str, Any] | None = None,
                **_: Any) -> None:
        service = model.service_model.endpoint_prefix
        op = model.name
        body = self._body(params)
        units: Counter[str] = Counter()
        if service == "sqs" and is_job_queue(body.get("QueueUrl")) and op in JOB_QUEUE_OPERATIONS:
            # the Stripe line-items fetcher draining its own queue (pinrelay.job_drain): counted
            # apart, so that the bill can price its receives and deletes, and time its empty polls
            if context is not None:
                context["pinrelay_job_queue"] = True
                context["pinrelay_started"] = time.perf_counter()
            if op in ("DeleteMessageBatch", "DeleteMessage"):
                units["job_deletes"] += 1
                units["job_delete_billable"] += 1
        if service == "dynamodb":
            if op == "PutItem":
                units["wru"] += max(1, math.ceil(dynamodb_item_size(body.get("Item") or {}) / DYNAMODB_WRITE_UNIT_BYTES))
                units["writes"] += 1
            elif op == "UpdateItem":
                units["wru"] += max(1, math.ceil(update_item_size_bound(body) / DYNAMODB_WRITE_UNIT_BYTES))
                units["writes"] += 1
                units[f"ledger_{ledger_write_kind(body)}"] += 1
            elif op == "DeleteItem":
                units["wru"] += 1
                units["writes"] += 1
            elif op == "BatchWriteItem":
                for requests in (body.get("RequestItems") or {}).values():
                    for request in requests:
                        item = (request.get("PutRequest") or {}).get("Item")
                        units["wru"] += max(1, math.ceil(dynamodb_item_size(item) / DYNAMODB_WRITE_UNIT_BYTES)) if item else 1
                        units["writes"] += 1
            elif op == "GetItem":
                units["rru"] += 1.0 if body.get("ConsistentRead") else 0.5
                units["reads"] += 1
            elif op == "BatchGetItem":
                for table in (body.get("RequestItems") or {}).values():
                    keys = len(table.get("Keys") or [])
                    units["rru"] += keys * (1.0 if table.get("ConsistentRead") else 0.5)
                    units["reads"] += keys
            elif op in ("Query", "Scan"):
                units["reads"] += 1
        elif service == "sqs":
            if op in ("SendMessageBatch", "SendMessage"):
                entries = (body.get("Entries") or []) if op == "SendMessageBatch" else [body]
                billable = sqs_billable_requests(sum(len((entry.get("MessageBody") or "").encode("utf-8")) for entry in entries))
                units["sqs_billable"] += billable
                units["sqs_send_billable"] += billable
                units["sqs_messages_sent"] += len(entries)
            elif op in ("DeleteMessageBatch", "DeleteMessage", "ChangeMessageVisibilityBatch", "ChangeMessageVisibility"):
                units["sqs_billable"] += 1
        elif service == "secretsmanager":
            on_stack = function_on_stack(2)
            role = on_stack if on_stack != "other" else role
            if op == "GetSecretValue":
                with self._lock:
                    self.secret_ids.setdefault(role, set()).add(str(body.get("SecretId")))
        with self._lock:
            self.calls[f"{role}:{service}:{op}"] += 1
            for name, value in units.items():
                self.units[f"{role}:{name}"] += value

    def _after(self, role: str, model: Any, parsed: dict[str, Any], context: dict[str, Any] | None = None,
               **_: Any) -> None:
        error = ((parsed or {}).get("Error") or {}).get("Code")
        job_queue = bool((context or {}).get("pinrelay_job_queue"))
        # how long the fetcher's own queue took to answer (moto's time, here): a part of its local duration
        elapsed_ms = (time.perf_counter() - context["pinrelay_started"]) * 1e3 if job_queue else 0.0
        with self._lock:
            if error:
                self.units[f"{role}:errors"] += 1
                if error == "ConditionalCheckFailedException":
                    self.units[f"{role}:conditional_check_failed"] += 1
            if job_queue:
                self.units[f"{role}:job_queue_call_ms"] += elapsed_ms
            if model.name != "ReceiveMessage":
                return
            messages = (parsed or {}).get("Messages") or []
            billable = sqs_billable_requests(sum(len((m.get("Body") or "").encode("utf-8")) for m in messages))
            self.units[f"{role}:sqs_billable"] += billable
            if messages:
                self.units[f"{role}:receives_with_messages"] += 1
                self.units[f"{role}:messages_received"] += len(messages)
            else:
                self.units[f"{role}:receives_empty"] += 1
            if job_queue:
                self.units[f"{role}:job_receive_billable"] += billable
                if messages:
                    self.units[f"{role}:job_receives_with_messages"] += 1
                    self.units[f"{role}:job_messages_received"] += len(messages)
                else:  # the long poll: it waits WaitTimeSeconds (moto too) before it answers empty
                    self.units[f"{role}:job_receives_empty"] += 1
                    self.units[f"{role}:job_receive_empty_ms"] += elapsed_ms

    def snapshot(self) -> dict[str, Counter]:
        with self._lock:
            return {"calls": Counter(self.calls), "units": Counter(self.units)}

    @staticmethod
    def diff(after: dict[str, Counter], before: dict[str, Counter]) -> dict[str, dict[str, float]]:
        return {kind: {k: v for k, v in (after[kind] - before[kind]).items() if v} for kind in ("calls", "units")}


class FunctionClients:
    """pinrelay's client recipe (``pinrelay.adapters.aws.client``, uncached) made per function: the
    first ``client(service)`` from ingest or sender makes that function's own client, hooked with
    the function's name as its role; later calls from the same function get the same client."""

    def __init__(self, counter: AwsCallCounter, recipe: Callable[[str], Any]) -> None:
        self.counter = counter
        self.recipe = recipe
        self.made: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()  # creating clients from one boto3 session is not thread-safe

    def client(self, service: str) -> Any:
        function = function_on_stack(2)
        with self._lock:
            key = (function, service)
            if key not in self.made:
                made = self.recipe(service)
                self.counter.attach(made, function)
                self.made[key] = made
            return self.made[key]


def give_each_function_its_own_clients(stack: Any, counter: AwsCallCounter) -> dict[str, Any]:
    """Replace ``pinrelay.adapters.aws.client`` in every pinrelay and handler module that holds it
    by a ``FunctionClients`` recipe; drop the services, the line-items fetcher's job queue, the
    BigCommerce fetch queue and the secrets provider built before, so they are built again with
    their function's clients. Raises when the recipe is not there."""
    from pinrelay_local.stack import FUNCTION_MODULES

    aws = sys.modules.get("pinrelay.adapters.aws")
    original = getattr(aws, "client", None)
    recipe = getattr(original, "__wrapped__", None)
    if recipe is None:
        raise RuntimeError("pinrelay.adapters.aws.client is not a cached client recipe any more: "
                           "aws_calls.give_each_function_its_own_clients must learn the new wiring")
    clients = FunctionClients(counter, recipe)
    patched = []
    for name, module in list(sys.modules.items()):
        in_function = name in HANDLER_FUNCTIONS or name in FUNCTION_MODULES  # a handler, or a module beside it
        if (name.startswith("pinrelay.") or in_function) and getattr(module, "client", None) is original:
            module.client = clients.client
            patched.append(name)
    for handler in (stack.ingest_handler, stack.sender_handler, stack.bigcommerce_fetch_handler,
                    stack.stripe_line_items_handler):
        getattr(handler.service, "cache_clear", lambda: None)()
    # the Stripe line-items fetcher's own queue (it drains it itself): its SQS client too
    getattr(getattr(stack.stripe_line_items_handler, "job_queue", None), "cache_clear", lambda: None)()
    platform_webhooks = sys.modules.get("platform_webhooks")
    getattr(getattr(platform_webhooks, "fetch_queue", None), "cache_clear", lambda: None)()  # its SQS client
    secrets = sys.modules.get("pinrelay.adapters.secrets")
    getattr(getattr(secrets, "_provider", None), "cache_clear", lambda: None)()
    return {"patched_modules": sorted(patched), "clients": clients}


# ------------------------------------------------------------------------------------------
# one phase's numbers
# ------------------------------------------------------------------------------------------


def phase_summary(events: int, posts: int, counts: dict[str, dict[str, float]], log_bytes: dict[str, float],
                  batches: list[Any], requests: list[int], body_bytes: int, post_ms: list[float],
                  log_lines: dict[str, float] | None = None) -> dict[str, Any]:
    """Per-event and per-1000-event figures of one phase from its call and unit counts
    (``role:service:Operation`` / ``role:unit``) and its log bytes (and lines) per ``function:kind``."""
    calls, units = counts["calls"], counts["units"]

    def calls_of(role: str | None, service: str, *ops: str) -> float:
        total = 0.0
        for key, value in calls.items():
            who, svc, op = key.split(":", 2)
            if (role is None or who == role) and svc == service and (not ops or op in ops):
                total += value
        return total

    def units_of(name: str, *roles: str) -> float:
        return sum(v for k, v in units.items() if k.split(":", 1)[1] == name and (not roles or k.split(":", 1)[0] in roles))

    per = 1000 / events
    functions = ("ingest", "sender", "fetcher", "other")
    writes = units_of("writes", *functions)
    ingest_sqs = calls_of("ingest", "sqs", "SendMessageBatch", "SendMessage")
    receives = units_of("receives_with_messages", "poller")
    deletes = calls_of("poller", "sqs", "DeleteMessageBatch", "DeleteMessage")
    log_total = sum(log_bytes.values())
    return {
        "events": events,
        "posts": posts,
        "body_bytes_per_post": body_bytes,
        "calls": calls,
        "units": units,
        "per_1000_events": {
            "sqs_ingest_requests": ingest_sqs * per,
            "sqs_ingest_billable": units_of("sqs_billable", "ingest") * per,
            "sqs_poller_receives_with_messages": receives * per,
            "sqs_poller_receives_empty": units_of("receives_empty", "poller") * per,
            "sqs_poller_deletes": deletes * per,
            "sqs_poller_billable": units_of("sqs_billable", "poller") * per,
            "sqs_sender_requests": calls_of("sender", "sqs") * per,
            # the fetcher's sends of the events (its receives and deletes of its own jobs: sqs_job_*)
            "sqs_fetcher_requests": calls_of("fetcher", "sqs", "SendMessageBatch", "SendMessage") * per,
            "sqs_fetcher_billable": units_of("sqs_send_billable", "fetcher") * per,
            # the Stripe line-items fetcher draining its queue: receives with jobs and empty, deletes
            "sqs_job_receives_with_messages": units_of("job_receives_with_messages", "fetcher") * per,
            "sqs_job_receives_empty": units_of("job_receives_empty", "fetcher") * per,
            "sqs_job_messages_received": units_of("job_messages_received", "fetcher") * per,
            "sqs_job_deletes": units_of("job_deletes", "fetcher") * per,
            "sqs_job_receive_billable": units_of("job_receive_billable", "fetcher") * per,
            "sqs_job_delete_billable": units_of("job_delete_billable", "fetcher") * per,
            "dynamodb_ingest_requests": calls_of("ingest", "dynamodb") * per,
            "dynamodb_write_requests": sum(calls_of(r, "dynamodb", "PutItem", "DeleteItem", "UpdateItem", "BatchWriteItem")
                                           for r in functions) * per,
            "dynamodb_read_requests": sum(calls_of(r, "dynamodb", "GetItem", "BatchGetItem", "Query", "Scan")
                                          for r in functions) * per,
            "dynamodb_items_written": writes * per,
            "dynamodb_items_read": units_of("reads", *functions) * per,
            "dynamodb_claims": units_of("ledger_claim", *functions) * per,
            "dynamodb_marks_sending": units_of("ledger_mark_sending", *functions) * per,
            "dynamodb_outcomes": units_of("ledger_outcome", *functions) * per,
            "dynamodb_conditional_check_failed": units_of("conditional_check_failed", *functions) * per,
            "dynamodb_wcu": units_of("wru", *functions) * per,
            "dynamodb_rcu": units_of("rru", *functions) * per,
            "secretsmanager_calls": sum(calls_of(r, "secretsmanager") for r in functions) * per,
            "unattributed_requests": sum(v for k, v in calls.items() if k.startswith("other:")) * per,
        },
        "dynamodb_writes_per_event": writes / events,
        "sqs_ingest_requests_per_event": ingest_sqs / events,
        "sqs_event_source_requests_per_event": (receives + deletes) / events,
        "log_bytes": log_total,
        "log_bytes_per_event": log_total / events,
        "log_bytes_per_event_by_source": {source: value / events for source, value in sorted(log_bytes.items()) if value},
        "log_lines_by_source": {source: value for source, value in sorted((log_lines or {}).items()) if value},
        "sender_invocations": len(batches),
        "events_per_sender_invocation": (sum(b.records for b in batches) / len(batches)) if batches else 0.0,
        "sender_failed_records": sum(b.failed for b in batches),
        "pinterest_requests": len(requests),
        "events_per_pinterest_request": statistics.mean(requests) if requests else 0.0,
        "post_ms_p50": percentile(post_ms, 0.5),
        "post_ms_p99": percentile(post_ms, 0.99),
    }


# ------------------------------------------------------------------------------------------
# the local stack
# ------------------------------------------------------------------------------------------


def _post_json(url: str, body: bytes, api_key: str | None, timeout: float = 120.0,
               headers: dict[str, str] | None = None) -> tuple[int, str, float]:
    import urllib.error
    import urllib.request

    sent = headers or {"content-type": "application/json", "x-api-key": api_key or ""}
    request = urllib.request.Request(url, data=body, method="POST", headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - local URL
            text = response.read().decode("utf-8", "replace")
            return response.status, text, time.time()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8", "replace"), time.time()


def _delivered_at(standin: Any) -> dict[str, float]:
    """event_id -> when the stand-in received the request that processed it."""
    from pinrelay_local.pinterest_standin import answered_events

    seen: dict[str, float] = {}
    for record in list(standin.received):
        for item, status in answered_events(record):
            if status == "processed":
                seen.setdefault(item.get("event_id"), record["at"])
    return seen


def _wait_delivered(stack: Any, ids: set[str], timeout: float) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while True:
        delivered = _delivered_at(stack.standin)
        if ids <= delivered.keys():
            break
        if time.monotonic() > deadline:
            missing = len(ids - delivered.keys())
            raise TimeoutError(f"{missing} of {len(ids)} events not delivered after {timeout:.0f} s")
        time.sleep(0.1)
    stack.wait_until_drained(timeout=30)
    time.sleep(0.3)  # the event source deletes after the handler returns
    return delivered


def _log_diff(after: Counter[str], before: Counter[str]) -> dict[str, float]:
    return {source: after[source] - before.get(source, 0) for source in after if after[source] - before.get(source, 0)}


def ledger_items(stack: Any) -> dict[str, Any]:
    """Item sizes and states of the delivery ledger after the phases (a Scan through the stack's
    own client, which is not counted)."""
    sizes: list[int] = []
    states: Counter[str] = Counter()
    kwargs: dict[str, Any] = {"TableName": stack.table_name}
    while True:
        page = stack.dynamodb.scan(**kwargs)
        for item in page.get("Items", []):
            sizes.append(dynamodb_item_size(item))
            states[(item.get("state") or {}).get("S", "?")] += 1
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return {
        "items": len(sizes),
        "states": dict(states),
        "item_bytes_median": statistics.median(sizes) if sizes else 0,
        "item_bytes_max": max(sizes) if sizes else 0,
        "wru_per_write_at_max": max(1, math.ceil((max(sizes) if sizes else 0) / DYNAMODB_WRITE_UNIT_BYTES)),
    }


def measure_aws_calls(quick: bool, counter: ByteCounter, say: Callable[[str], None]) -> dict[str, Any]:
    from pinrelay_local.schedule import schedule_seconds
    from pinrelay_local.stack import LocalStack

    from pinrelay_bench import REPO_ROOT

    calls = AwsCallCounter()
    results: dict[str, Any] = {}
    handler_env = {"LOG_LEVEL": "INFO", "POWERTOOLS_METRICS_DISABLED": "false", "POWERTOOLS_TRACE_DISABLED": "true"}
    nonce = uuid.uuid4().hex[:6]
    batch_size = 1000
    offline_size = 200 if quick else 1000
    singles = 100 if quick else 1000
    trickle_seconds = 5.0 if quick else 20.0
    rate = TRICKLE_RATE_EVENTS_PER_S
    # the event source as deployed: template.yaml's batch size and batching window
    window_s = float(template_parameter_default("SenderBatchingWindowSeconds", 2))
    batch_limit = int(template_parameter_default("SenderBatchSize", 1000))
    results["sender_event_source"] = {"batching_window_s": window_s, "batch_size": batch_limit}
    # the Stripe line-items fetcher's schedule as deployed (template.yaml: rate(1 minute)), not the
    # local stack's 2 s: a run then takes what a minute of webhooks brings
    period_s = schedule_seconds(REPO_ROOT / "template.yaml", "StripeLineItemsFunction")
    stripe_periods = 1 if quick else 3  # whole periods of Stripe webhooks: each run a steady-state minute
    with LocalStack(port=0, environ={}, test_mode=False, sender_batch_size=batch_limit, sender_window_s=window_s,
                    line_items_every_s=period_s, handler_env=handler_env) as stack:
        wiring = give_each_function_its_own_clients(stack, calls)
        results["clients_patched_in"] = wiring["patched_modules"]
        calls.attach(stack.sqs, "poller")  # the emulated Lambda SQS event source mapping
        url = f"{stack.url}/events"
        now = int(time.time())

        def snapshot() -> tuple[Any, ...]:
            _, log_bytes, log_lines = counter.snapshot()
            return calls.snapshot(), log_bytes, log_lines, len(stack.batches), len(stack.standin.received)

        def summarise(before: tuple[Any, ...], events: int, posts: int, body_bytes: int, post_ms: list[float]) -> dict[str, Any]:
            counts = AwsCallCounter.diff(calls.snapshot(), before[0])
            _, log_bytes, log_lines = counter.snapshot()
            batches = stack.batches[before[3]:]
            requests = [len(r["body"]["data"]) for r in stack.standin.received[before[4]:] if isinstance(r.get("body"), dict)]
            return phase_summary(events, posts, counts, _log_diff(log_bytes, before[1]), batches, requests, body_bytes,
                                 post_ms, _log_diff(log_lines, before[2]))

        def run_phase(name: str, bodies: list[bytes], ids: set[str], concurrency: int, timeout: float) -> dict[str, Any]:
            say(f"[bench]   local: {name} ({len(ids)} events in {len(bodies)} posts)")
            started = time.monotonic()
            before = snapshot()
            post_ms: list[float] = []

            def post(body: bytes) -> int:
                began = time.perf_counter()
                status, text, _ = _post_json(url, body, stack.ingest_api_key)
                post_ms.append((time.perf_counter() - began) * 1e3)
                if status != 202:
                    raise RuntimeError(f"POST /events answered {status}: {text[:300]}")
                return status

            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                list(pool.map(post, bodies))
            _wait_delivered(stack, ids, timeout)
            summary = summarise(before, len(ids), len(bodies), len(bodies[0]), post_ms)
            summary["seconds"] = round(time.monotonic() - started, 1)
            return summary

        batch_events = make_events(batch_size, now, seed=11, prefix=f"local-batch-{nonce}")
        results["batch"] = run_phase(f"1 post of {batch_size} web events", [request_body(batch_events)],
                                     {e["event_id"] for e in batch_events}, 1, 180)
        offline_events = make_offline_events(offline_size, now, seed=14, prefix=f"local-offline-{nonce}")
        results["offline_batch"] = run_phase(f"1 post of {offline_size} offline events", [request_body(offline_events)],
                                             {e["event_id"] for e in offline_events}, 1, 180)
        single_events = make_events(singles, now, seed=12, prefix=f"local-single-{nonce}")
        results["singles"] = run_phase(f"{singles} single posts", [request_body([e]) for e in single_events],
                                       {e["event_id"] for e in single_events}, 8, 180)

        # trickle: one event every 1/rate s, accept -> delivery latency
        count = int(trickle_seconds * rate)
        say(f"[bench]   local: trickle of {rate:g} events/s for {trickle_seconds:g} s")
        trickle_events = make_events(count, now, seed=13, prefix=f"local-trickle-{nonce}")
        accepted: dict[str, float] = {}
        before = snapshot()
        post_ms: list[float] = []

        def post_one(event: dict[str, Any]) -> None:
            began = time.perf_counter()
            status, text, answered = _post_json(url, request_body([event]), stack.ingest_api_key)
            post_ms.append((time.perf_counter() - began) * 1e3)
            if status != 202:
                raise RuntimeError(f"POST /events answered {status}: {text[:300]}")
            accepted[event["event_id"]] = answered

        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = []
            for index, event in enumerate(trickle_events):
                delay = start + index / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                futures.append(pool.submit(post_one, event))
            for future in futures:
                future.result()
        delivered = _wait_delivered(stack, set(accepted), 60)
        latencies = [delivered[event_id] - at for event_id, at in accepted.items()]
        trickle = summarise(before, count, count, len(request_body([trickle_events[0]])), post_ms)
        trickle.update({
            "seconds_total": round(time.monotonic() - start, 1),
            "rate_events_per_s": rate,
            "seconds": trickle_seconds,
            "latency_p50_s": percentile(latencies, 0.5),
            "latency_p99_s": percentile(latencies, 0.99),
            "latency_max_s": max(latencies),
            "sender_window_s": window_s,
        })
        results["trickle"] = trickle
        results["stripe"] = _platform_trickle(stack, "stripe", summarise, snapshot, say, rate, stripe_periods * period_s,
                                              nonce, period_s=period_s)
        results["bigcommerce"] = _platform_trickle(stack, "bigcommerce", summarise, snapshot, say, rate, trickle_seconds,
                                                   nonce)
        results["idle_line_items_runs"] = _idle_runs(stack, calls, say, samples=3)
        phase_runs = results["stripe"].pop("_run_indexes")
        others = [run for index, run in enumerate(stack.line_items_runs) if index not in phase_runs]
        results["line_items_schedule"] = {
            "period_s": period_s, "runs_in_the_bench": len(stack.line_items_runs),
            "runs_outside_the_stripe_phase": len(others),
            "jobs_received_outside_the_stripe_phase": sum(run.records for run in others),  # 0: the phase has them all
            "run_errors": [run.error for run in stack.line_items_runs if run.error],
        }
        results["secret_ids_read"] = sum(len(ids) for ids in calls.secret_ids.values())
        results["secret_ids_read_by_function"] = {role: len(ids) for role, ids in calls.secret_ids.items()}
        results["clients_made"] = sorted(f"{function}:{service}" for function, service in wiring["clients"].made)
        results["ledger_items"] = ledger_items(stack)
        results["log_samples"] = {source: [text[:2000] for text in texts] for source, texts in counter.samples.items()}
    return results


def _wait_for_run(stack: Any, timeout: float) -> None:
    """Wait until the line-items fetcher's scheduled run under way, or its next one, has ended."""
    seen = len(stack.line_items_runs)
    deadline = time.monotonic() + timeout
    while len(stack.line_items_runs) == seen:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no run of the line-items fetcher ended in {timeout:.0f} s")
        time.sleep(0.05)


def _platform_trickle(stack: Any, platform: str, summarise: Callable[..., dict[str, Any]], snapshot: Callable[[], Any],
                      say: Callable[[str], None], rate: float, seconds: float, nonce: str,
                      period_s: float | None = None) -> dict[str, Any]:
    """A trickle of Stripe or BigCommerce webhooks at ``rate``, one session or order each, signed as
    the platform signs them: what the trickle counts, plus the calls to the platform's API, the
    fetcher's invocations and their local duration, and accept -> delivery latency.

    Stripe: the line-items fetcher runs every ``period_s`` (its schedule). The trickle starts as a
    run ends and lasts ``seconds`` (whole periods), so that each run of the phase takes what a
    period of webhooks brings; the phase ends when the runs that received its jobs have ended
    (their deletes and final receives are in its counts), and those runs are its invocations."""
    import copy

    from pinrelay_local.platform_standins import example_orders, rfc2822, stripe_line_item
    from pinrelay_local.platforms import bigcommerce_webhook, stripe_webhook

    count = int(seconds * rate)
    settings = {name: setting.value for name, setting in stack.settings.items()}
    bodies: list[tuple[bytes, dict[str, str]]] = []
    event_ids: list[str] = []  # the event id the Pinterest stand-in sees, a body's each
    if platform == "stripe":
        template = json.loads((stack.repo_root / "events" / "webhooks" /
                               "stripe_checkout_session_completed_stripe-ruby-mock.json").read_text(encoding="utf-8"))
        for index in range(count):
            event = copy.deepcopy(template)
            session_id = f"cs_live_bench_{nonce}_{index}"
            event.update(id=f"evt_bench_{nonce}_{index}", livemode=True)
            event["data"]["object"].update(id=session_id, livemode=True)
            stack.stripe_standin.add_session({"id": session_id}, [stripe_line_item(index, 3, 1000, "usd", "prod_bench", "T")])
            bodies.append(stripe_webhook(event, settings["STRIPE_WEBHOOK_SECRET"]))
            event_ids.append(session_id)
        api = stack.stripe_standin
    else:
        store = settings["BIGCOMMERCE_STORE_HASH"]
        notice = json.loads((stack.repo_root / "events" / "webhooks" / "bigcommerce_store_order_created_bcdocs.json").read_text(encoding="utf-8"))
        paid = example_orders()[250]
        first = 100_000 + int(nonce, 16) % 100_000 * 10
        for index in range(count):
            bundle = copy.deepcopy(paid)
            bundle["order"].update(id=first + index, date_created=rfc2822(time.time()))
            stack.bigcommerce_standin.put_order(store, bundle)
            hook = {**notice, "data": {"type": "order", "id": first + index}}
            bodies.append(bigcommerce_webhook(hook, store, settings["BIGCOMMERCE_WEBHOOK_SECRET"],
                                              settings["BIGCOMMERCE_CLIENT_SECRET"]))
            event_ids.append(f"{store}-{first + index}")
        api = stack.bigcommerce_standin
        # a store allowed this rate: 5 orders/s take 15 calls/s, a Standard plan allows 150 per 30 s
        # (docs/sources.md), and its 429s would be retries, not what a fetch costs
        api.quota = 1_000_000
    url = f"{stack.url}/webhooks/{platform}"
    scheduled = platform == "stripe"
    batches = stack.line_items_runs if scheduled else stack.fetch_batches  # the fetcher's invocations
    if scheduled:
        say(f"[bench]   local: stripe webhooks: waiting for a run of the line-items fetcher (every {period_s:g} s) to end")
        _wait_for_run(stack, (period_s or 60) + 60)
    say(f"[bench]   local: {platform} webhooks, {rate:g}/s for {seconds:g} s")
    api_before, fetches_before = len(api.requests), len(batches)
    before = snapshot()
    post_ms: list[float] = []
    accepted: dict[str, float] = {}
    start = time.monotonic()
    for index, (body, headers) in enumerate(bodies):
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        began = time.perf_counter()
        status, text, answered = _post_json(url, body, None, headers=headers)
        post_ms.append((time.perf_counter() - began) * 1e3)
        if status != 200:
            raise RuntimeError(f"POST /webhooks/{platform} answered {status}: {text[:300]}")
        accepted[event_ids[index]] = answered
    posting_s = time.monotonic() - start
    delivered = _wait_delivered(stack, set(event_ids), (period_s or 0) + 90)
    if scheduled:  # the run that delivered the last jobs may still be at its final receive
        deadline = time.monotonic() + 60
        while sum(run.records for run in batches[fetches_before:]) < count:
            if time.monotonic() > deadline:
                raise TimeoutError("the line-items fetcher's runs did not end after delivering the phase's jobs")
            time.sleep(0.05)
    fetches = batches[fetches_before:]
    summary = summarise(before, count, count, len(bodies[0][0]), post_ms)
    latencies = [delivered[event_id] - at for event_id, at in accepted.items() if event_id in delivered]
    summary.update({
        "seconds": seconds,
        "posting_s": round(posting_s, 1),
        "rate_events_per_s": rate,
        "platform_api_requests_per_event": (len(api.requests) - api_before) / count,
        "fetcher_invocations": len(fetches),
        "fetcher_invocations_per_event": len(fetches) / count,
        "fetcher_local_ms_per_invocation": (statistics.mean(b.duration_ms for b in fetches) if fetches else 0.0),
        "jobs_per_fetcher_invocation": (sum(b.records for b in fetches) / len(fetches)) if fetches else 0.0,
        "latency_p50_s": percentile(latencies, 0.5),
        "latency_p99_s": percentile(latencies, 0.99),
        "latency_max_s": max(latencies) if latencies else float("nan"),
    })
    if scheduled:
        units = summary["units"]
        received = units.get("fetcher:job_messages_received", 0)
        if received < count:  # a client the counter does not see (a job queue cached before the hooks)
            raise RuntimeError(f"the line-items fetcher received {sum(b.records for b in fetches)} jobs, the counter "
                               f"saw {received:.0f}: its SQS client is not hooked (aws_calls.give_each_function_its_own_clients)")
        runs = len(fetches)
        summary.update({
            "schedule_period_s": period_s,
            "fetcher_jobs_per_invocation": [b.records for b in fetches],
            "fetcher_local_ms_per_run": [b.duration_ms for b in fetches],
            "fetcher_rounds_per_invocation": statistics.mean(int((b.response or {}).get("rounds", 0)) for b in fetches),
            "fetcher_empty_receives_per_invocation": units.get("fetcher:job_receives_empty", 0) / runs,
            "fetcher_empty_receive_ms_per_invocation": units.get("fetcher:job_receive_empty_ms", 0.0) / runs,
            # of its local duration, the time its queue took to answer its receives and deletes
            # (moto's, locally; the bill keeps it, as an upper bound, beside the modeled waits)
            "fetcher_queue_call_ms_per_invocation": units.get("fetcher:job_queue_call_ms", 0.0) / runs,
            "job_messages_per_receive": received / max(1, units.get("fetcher:job_receives_with_messages", 0)),
            "fetcher_run_errors": [b.error for b in fetches if b.error],
            "fetcher_stopped": sorted({str((b.response or {}).get("stopped")) for b in fetches}),
            "_run_indexes": set(range(fetches_before, fetches_before + runs)),
        })
    return summary


def _idle_runs(stack: Any, calls: AwsCallCounter, say: Callable[[str], None], samples: int = 3) -> dict[str, Any]:
    """Runs of the line-items fetcher on its empty queue, as the schedule makes 43 200 a month
    whether webhooks come or not: each one's local duration, and how long its empty long poll
    waited (moto holds it for WaitTimeSeconds, as SQS does). A sample during which another run
    made calls is left out."""
    say(f"[bench]   local: {samples} idle runs of the line-items fetcher")
    kept: list[dict[str, float]] = []
    for _ in range(samples + 2):
        before = calls.snapshot()
        run = stack.line_items_schedule.run_once()
        units = AwsCallCounter.diff(calls.snapshot(), before)["units"]
        if (run.records or run.error or units.get("fetcher:job_receives_empty") != 1
                or units.get("fetcher:job_receives_with_messages")):
            continue
        kept.append({"local_ms": run.duration_s * 1e3, "empty_receive_ms": units["fetcher:job_receive_empty_ms"]})
        if len(kept) == samples:
            break
    if not kept:
        raise RuntimeError("no idle run of the line-items fetcher could be measured")
    return {
        "samples": len(kept),
        "local_ms_per_run": statistics.median(k["local_ms"] for k in kept),
        "empty_receive_ms_per_run": statistics.median(k["empty_receive_ms"] for k in kept),
        "local_ms_without_the_long_poll": statistics.median(k["local_ms"] - k["empty_receive_ms"] for k in kept),
        "receives_per_run": 1,
    }
