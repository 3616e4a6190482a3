"""The modeled AWS bill per million events (pure arithmetic; tests/bench/test_bench_model.py).

Prices are data: ``prices-us-east-1.json`` beside this file (each with its source page, and the
date they were taken). What one million events use comes from the measurements:

* requests: HTTP API requests (512 KB increments; none through a Lambda Function URL), ingest and
  sender invocations (events per sender invocation as measured in the trickle; 1000 for batches);
* the Stripe and BigCommerce webhooks (``stripe_webhook``, ``bigcommerce_webhook``): the webhook's
  usage as their own trickles counted it, the job ingest queues and the fetcher that reads it.
  BigCommerce: the fetcher's invocations (its queue's event source, batches of up to ten), each
  its local duration (CPU and local I/O, an upper bound of its CPU) plus its modeled waits (two
  ``bigcommerce_get``: the order, then its products and shipping addresses at once) and its
  SendMessageBatch. Stripe: the line-items fetcher runs on a schedule (once a minute) and drains
  its queue itself (pinrelay.job_drain), ten jobs a round: its invocations are the scheduled runs
  of the phase per event; a run is billed its local duration without the local long polls, plus
  per round the modeled waits of the round's ReceiveMessage, one ``stripe_line_items`` wait (the
  round's sessions read side by side), its SendMessageBatch and its DeleteMessageBatch
  (``drain_run_ms``), plus the 1-s long poll of its last receive when that one comes back empty;
  its SQS requests are its receives (with jobs and empty) and deletes on its queue as counted,
  and its sends. The schedule's runs on an empty queue are time-driven, not per event: a monthly
  figure beside the bill (``schedule_idle_month``). ``stripe_webhook_no_key``: without a key
  ingest queues the event itself, one a webhook, as any webhook: the trickle's counts;
* Lambda duration: CPU measured at full speed (handler CPU + the SDK's CPU per call) plus modeled
  I/O waits: ingest's SendMessageBatch calls (``ingest_queue_workers`` at a time), the sender's
  conditional UpdateItems (claim, mark ``sending`` for offline events, outcome: each a parallel
  round of ``sender_ledger_workers``) and its Pinterest request; INIT for ``cold_start_fraction``
  of invocations. The sensitivity line runs the CPU part of invocations at the speed of a 256 MB
  function (INIT has a full vCPU on demand);
* SQS and DynamoDB: the billable requests and write units counted on the local stack;
* CloudWatch Logs: the log bytes measured per event, Lambda's platform lines if template.yaml
  turns them on, and the HTTP API access log line (template.yaml's format, typical values);
* Secrets Manager: time-driven (each secret once per warm container per cache period);
* X-Ray: per template.yaml's Tracing and sampling rules.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pinrelay_bench import REPO_ROOT

PRICES_FILE = Path(__file__).with_name("prices-us-east-1.json")
TEMPLATE = REPO_ROOT / "template.yaml"


@dataclass(frozen=True)
class PriceTable:
    region: str
    taken: str  # YYYY-MM-DD
    sources: dict[str, str]  # service -> pricing page
    prices: dict[str, float]  # name -> value
    notes: list[str]


def load_prices(path: Path = PRICES_FILE) -> PriceTable:
    """The price table; every price names a source listed in the file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    prices: dict[str, float] = {}
    for name, entry in data["prices"].items():
        if entry["source"] not in data["sources"]:
            raise ValueError(f"{path.name}: price {name} names an unknown source {entry['source']!r}")
        prices[name] = float(entry["value"])
    return PriceTable(region=data["region"], taken=data["taken"], sources=dict(data["sources"]), prices=prices,
                      notes=list(data.get("notes", [])))


PRICE_TABLE = load_prices()
PRICES_US_EAST_1: dict[str, float] = PRICE_TABLE.prices
PRICES_TAKEN = PRICE_TABLE.taken

MODEL_ASSUMPTIONS: dict[str, Any] = {
    "memory_mb": 256,  # template.yaml Globals.Function.MemorySize
    "rate_events_per_s": 5.0,  # steady traffic the bill is modeled at (= the trickle measured); ~13 M events/month
    "seconds_per_month": 30 * 86_400,
    # Lambda durations = CPU measured here at full speed (handler + botocore serialisation) + I/O waits below.
    # At 256 MB Lambda gives ~256/1769 of a vCPU: the CPU part of an invocation would take ~6.9x longer
    # (see the sensitivity line); INIT gets a full vCPU on demand, so it is not scaled.
    "vcpu_fraction_at_memory": 256 / 1769,
    "io_ms": {
        "dynamodb_update_item": 6.0,  # one conditional UpdateItem, in-region p50
        "sqs_send_message_batch": 8.0,  # one SendMessageBatch of up to 10
        # the line-items fetcher's own queue (unmeasured in-region guesses, as the send): a
        # ReceiveMessage that finds jobs answers at once; one DeleteMessageBatch of up to 10
        "sqs_receive_message": 10.0,
        "sqs_delete_message_batch": 8.0,
        "pinterest_request_base": 100.0,  # one POST to Pinterest: 100 ms + 0.15 ms per event (unmeasured guess)
        "pinterest_request_per_event": 0.15,
        # GET /v1/checkout/sessions/{id}/line_items from AWS (unmeasured guess); the line-items fetcher
        # reads a round's sessions (up to ten) side by side: one such wait per round
        "stripe_line_items": 250.0,
        "bigcommerce_get": 200.0,  # one Orders V2 GET from AWS (unmeasured guess); a fetch waits for two rounds
    },
    "ingest_queue_workers": 8,  # SqsEventQueue(max_workers=8): one request's SendMessageBatch calls, 8 at a time
    "sender_ledger_workers": 16,  # DynamoDeliveryLedger(max_workers=16): claims / marks / outcomes, 16 at a time
    "batch_events_per_sender_invocation": 1000,  # BatchSize 1000 with 1000 messages queued at once
    "poller_messages_per_receive": 10,  # Lambda's SQS poller: ReceiveMessage and DeleteMessageBatch take 10
    # the Stripe line-items fetcher's drain (pinrelay.job_drain, SqsJobQueue): up to 10 jobs a
    # receive, long-polled for 1 s; an empty receive is billed, and its Lambda waits that second
    "job_drain_max_jobs": 10,
    "job_queue_wait_s": 1,
    "platform_log_bytes_per_invocation": 360,  # START + END + REPORT + XRAY lines, when SystemLogLevel lets them through
    "cold_start_fraction": 0.01,  # INIT is billed since 2025-08-01; AWS: INITs in under ~1% of invocations
    "secrets_max_age_s": 300,  # Powertools cache: one GetSecretValue per secret per warm container per 5 min
    "warm_containers_per_secret": 1,
    "xray_reservoir_per_s": 1.0,  # default sampling: the first request each second + 5% of the rest
    "xray_fixed_rate": 0.05,
}

# the front doors template.yaml offers: the HTTP API (default: stage throttling, access log,
# $1.00 per million requests) and the opt-in Lambda Function URL (IngestFunctionUrl=Enabled)
FRONT_DOORS = ("http_api", "function_url")
# scenario -> (events per POST, the local-stack phase whose counts it uses)
SCENARIOS = {"webhook": (1, "trickle"), "batch": (1000, "batch"), "offline_batch": (1000, "offline_batch"),
             "stripe_webhook": (1, "stripe"), "stripe_webhook_no_key": (1, "trickle"),
             "bigcommerce_webhook": (1, "bigcommerce")}
WEBHOOKS = ("webhook", "stripe_webhook", "stripe_webhook_no_key", "bigcommerce_webhook")  # one event a POST, at the trickle's rate


# ------------------------------------------------------------------------------------------
# billing units and the bill
# ------------------------------------------------------------------------------------------


@dataclass
class Usage:
    """What one million events use, in billable units."""

    http_requests: float  # billable HTTP API requests (512 KB increments)
    ingest_invocations: float
    ingest_billed_ms: float  # per invocation, already rounded up to the ms
    sender_invocations: float
    sender_billed_ms: float
    init_billed_ms: float  # all INIT phases together
    sqs_requests: float  # billable (64 KB chunks)
    dynamodb_wru: float
    dynamodb_rru: float
    log_bytes: float
    secrets_calls: float
    xray_traces: float
    memory_mb: int = 256
    fetcher_invocations: float = 0.0  # the fetcher of the webhook's jobs (Stripe's line items, BigCommerce's orders)
    fetcher_billed_ms: float = 0.0


def billed_ms(duration_ms: float) -> int:
    """Lambda bills duration rounded up to the millisecond (at least 1 ms)."""
    return max(1, math.ceil(duration_ms - 1e-9))


def http_billable_requests(body_bytes: int, increment: int = int(PRICES_US_EAST_1["http_api_request_increment_bytes"])) -> int:
    """HTTP API meters requests in 512 KB increments."""
    return max(1, math.ceil(body_bytes / increment))


def sqs_billable_requests(payload_bytes: int, chunk: int = int(PRICES_US_EAST_1["sqs_chunk_bytes"])) -> int:
    """SQS bills every 64 KB chunk of a request's payload as one request."""
    return max(1, math.ceil(payload_bytes / chunk))


def parallel_rounds(calls: float, workers: int) -> int:
    """How many waits ``calls`` take when ``workers`` run at a time (0 calls: none)."""
    return math.ceil(calls / workers) if calls > 0 else 0


def xray_sampled_fraction(invocations_per_s: float, reservoir_per_s: float = 1.0, fixed_rate: float = 0.05) -> float:
    """Share of invocations X-Ray's default rule records, for Poisson arrivals at ``invocations_per_s``:
    the first request of each second (reservoir 1/s) plus ``fixed_rate`` of the others."""
    if invocations_per_s <= 0:
        return 1.0
    rate = invocations_per_s
    if reservoir_per_s == 1.0:
        first = 1.0 - math.exp(-rate)  # P(at least one request in a second)
    else:
        first = min(rate, reservoir_per_s)
    sampled = first + fixed_rate * max(0.0, rate - first)
    return min(1.0, sampled / rate)


# the bill's lines, in the order the tables show them
SERVICES = ("http_api", "lambda_requests", "lambda_duration", "sqs", "dynamodb", "cloudwatch_logs", "secrets_manager",
            "xray")


def bill(usage: Usage, prices: dict[str, float] = PRICES_US_EAST_1) -> dict[str, float]:
    """Dollars per line for ``usage`` (one million events), and their ``total``: ``itemise``'s
    items added up by service (one place for each price formula)."""
    lines = dict.fromkeys(SERVICES, 0.0)
    for item in itemise(usage, {}, prices):
        lines[item["service"]] += item["dollars"]
    lines["total"] = sum(lines.values())
    return lines


def itemise(usage: Usage, split: dict[str, dict[str, float]], prices: dict[str, float] = PRICES_US_EAST_1) -> list[dict[str, Any]]:
    """The bill of ``usage`` line by line: ``{"service", "item", "quantity", "unit", "dollars"}``.

    ``split`` divides usage quantities among their causes (each part a share of the usage total):
    ``lambda_requests`` / ``lambda_ms`` (ingest, sender, init), ``sqs_requests``, ``dynamodb_wru`` and
    ``log_bytes`` by cause. A quantity without a split is one item. The dollars of a service's
    items add up to ``bill(usage)[service]``, which is computed from them."""
    gb = usage.memory_mb / 1024
    items: list[dict[str, Any]] = []

    def add(service: str, item: str, quantity: float, unit: str, dollars: float) -> None:
        items.append({"service": service, "item": item, "quantity": quantity, "unit": unit, "dollars": dollars})

    def parts(name: str, total: float, default: str) -> dict[str, float]:
        given = {k: v for k, v in (split.get(name) or {}).items() if v}
        rest = total - sum(given.values())
        if abs(rest) > 1e-6 * max(1.0, abs(total)):
            given[default if not given else "other"] = rest
        return given or {default: total}

    add("http_api", "HTTP API requests", usage.http_requests, "requests",
        usage.http_requests / 1e6 * prices["http_api_per_million_requests"])
    invocations = usage.ingest_invocations + usage.sender_invocations + usage.fetcher_invocations
    for cause, count in parts("lambda_requests", invocations, "invocations").items():
        add("lambda_requests", f"{cause} invocations", count, "requests", count / 1e6 * prices["lambda_per_million_requests"])
    total_ms = (usage.ingest_invocations * usage.ingest_billed_ms + usage.sender_invocations * usage.sender_billed_ms
                + usage.fetcher_invocations * usage.fetcher_billed_ms + usage.init_billed_ms)
    for cause, ms in parts("lambda_ms", total_ms, "duration").items():
        gb_seconds = ms / 1000 * gb
        add("lambda_duration", f"{cause} duration", gb_seconds, "GB-s", gb_seconds * prices["lambda_arm64_per_gb_second"])
    for cause, count in parts("sqs_requests", usage.sqs_requests, "requests").items():
        add("sqs", cause, count, "requests", count / 1e6 * prices["sqs_per_million_requests"])
    for cause, units in parts("dynamodb_wru", usage.dynamodb_wru, "writes").items():
        add("dynamodb", cause, units, "WRU", units / 1e6 * prices["dynamodb_per_million_wru"])
    if usage.dynamodb_rru:
        add("dynamodb", "reads", usage.dynamodb_rru, "RRU", usage.dynamodb_rru / 1e6 * prices["dynamodb_per_million_rru"])
    for cause, size in parts("log_bytes", usage.log_bytes, "log lines").items():
        add("cloudwatch_logs", cause, size, "bytes", size / 1e9 * prices["logs_ingestion_per_gb"])
    add("secrets_manager", "GetSecretValue", usage.secrets_calls, "calls", usage.secrets_calls / 1e4 * prices["secrets_per_10k_calls"])
    add("xray", "traces recorded", usage.xray_traces, "traces", usage.xray_traces / 1e6 * prices["xray_per_million_traces"])
    return items


def secrets_calls_per_million(secrets: int, rate_events_per_s: float, max_age_s: float = 300,
                              containers_per_secret: int = 1, seconds_per_month: float = 30 * 86_400) -> float:
    """GetSecretValue calls per million events when each secret is refreshed every ``max_age_s`` by
    ``containers_per_secret`` warm containers (time-driven, not event-driven)."""
    calls_per_month = secrets * containers_per_secret * seconds_per_month / max_age_s
    events_per_month = rate_events_per_s * seconds_per_month
    return calls_per_month / (events_per_month / 1e6)


# ------------------------------------------------------------------------------------------
# a fetcher draining its queue on a schedule (the Stripe line-items fetcher)
# ------------------------------------------------------------------------------------------


def drain_receives_per_1000_jobs(jobs_per_run: float, max_jobs: int = 10) -> float:
    """ReceiveMessage requests per 1000 jobs when each run finds ``jobs_per_run`` jobs waiting and
    drains them (pinrelay.job_drain): one receive per ``max_jobs``, and the one that brings fewer
    (the rest, or none) ends the run. A shorter schedule leaves fewer jobs a run: more receives."""
    if jobs_per_run <= 0:
        raise ValueError("a run with no job has no receives per job")
    return 1000 * (math.floor(jobs_per_run / max_jobs) + 1) / jobs_per_run


def drain_round_io_ms(io: dict[str, float] | None = None) -> float:
    """The modeled waits of one round of the drain: its ReceiveMessage, the round's sessions read
    from Stripe side by side (one wait), its events' SendMessageBatch and its DeleteMessageBatch."""
    io = io or MODEL_ASSUMPTIONS["io_ms"]
    return io["sqs_receive_message"] + io["stripe_line_items"] + io["sqs_send_message_batch"] + io["sqs_delete_message_batch"]


def drain_run_ms(local_ms: float, local_long_poll_ms: float, rounds: float, empty_final_receives: float,
                 cpu_scale: float = 1.0) -> dict[str, float]:
    """One scheduled run of the drain, billed: its local duration without the local empty long
    polls (``local_long_poll_ms``: what moto held them; CPU and local I/O, scaled by ``cpu_scale``)
    + ``rounds`` times the modeled waits of a round + ``job_queue_wait_s`` for each empty receive
    (a run's last one, when it comes back empty: SQS answers it after the wait)."""
    own = max(0.0, local_ms - local_long_poll_ms)
    rounds_io = rounds * drain_round_io_ms()
    long_poll = empty_final_receives * MODEL_ASSUMPTIONS["job_queue_wait_s"] * 1000.0
    return {"own_ms": own, "rounds_io_ms": rounds_io, "long_poll_ms": long_poll,
            "billed_ms": billed_ms(own * cpu_scale + rounds_io + long_poll)}


def schedule_idle_month(idle: dict[str, float], period_s: float, cpu_scale: float = 1.0,
                        prices: dict[str, float] = PRICES_US_EAST_1) -> dict[str, Any]:
    """What the schedule costs a month with no job to take: every ``period_s`` a run whose one
    ReceiveMessage long-polls the empty queue (``idle``: a run's local duration and what its local
    long poll took, as measured). Time-driven, not per event: a fixed figure beside the bill.
    Lambda duration at ``MODEL_ASSUMPTIONS["memory_mb"]``; EventBridge's own charge for the rule
    is not in the price table."""
    a = MODEL_ASSUMPTIONS
    runs = a["seconds_per_month"] / period_s
    run = drain_run_ms(idle["local_ms_per_run"], idle["empty_receive_ms_per_run"], rounds=0,
                       empty_final_receives=idle.get("receives_per_run", 1), cpu_scale=cpu_scale)
    gb_seconds = runs * run["billed_ms"] / 1000 * a["memory_mb"] / 1024
    receives = runs * idle.get("receives_per_run", 1)
    lines = {"lambda_requests": runs / 1e6 * prices["lambda_per_million_requests"],
             "lambda_duration": gb_seconds * prices["lambda_arm64_per_gb_second"],
             "sqs": receives / 1e6 * prices["sqs_per_million_requests"]}
    return {"period_s": period_s, "runs_per_month": runs, "billed_ms_per_run": run["billed_ms"], "run": run,
            "gb_seconds": gb_seconds, "receives_per_month": receives, "lines": lines,
            "total_per_month": sum(lines.values())}


# ------------------------------------------------------------------------------------------
# Lambda durations from the measurements
# ------------------------------------------------------------------------------------------


def sdk_cpu_ms_ingest(sdk: dict[str, Any], send_calls: float) -> float:
    """The SDK's CPU for one request's SendMessageBatch calls (with the pool when there are several)."""
    per_call = sdk["send_pool_cpu_us_per_call"] if send_calls > 1 else sdk["send_message_batch_us"]
    return send_calls * per_call / 1e3


def sdk_cpu_ms_sender(sdk: dict[str, Any], ledger_writes: float) -> float:
    """The SDK's CPU for one invocation's conditional UpdateItems (16 threads)."""
    return ledger_writes * sdk["update_item_pool_cpu_us"] / 1e3


def ingest_duration_ms(results: dict[str, Any], events: int, send_calls: float | None = None) -> dict[str, float]:
    """CPU (handler + SDK) and modeled I/O of one ingest invocation of ``events`` events making
    ``send_calls`` SendMessageBatch calls (default: one per 10 events), 8 at a time."""
    a = MODEL_ASSUMPTIONS
    if send_calls is None:
        send_calls = math.ceil(events / 10)
    handler = (results.get("handler") or {}).get(str(events)) or {}
    cpu = handler.get("handler_cpu_ms")
    if cpu is None:
        cpu = ((results.get("ingest_cpu") or {}).get(str(events)) or {}).get("full_ms", 0.0)
    sdk = results.get("sdk_cpu")
    sdk_ms = sdk_cpu_ms_ingest(sdk, send_calls) if sdk else 0.0
    io_ms = parallel_rounds(send_calls, a["ingest_queue_workers"]) * a["io_ms"]["sqs_send_message_batch"]
    return {"cpu_ms": cpu + sdk_ms, "io_ms": io_ms, "send_calls": send_calls}


def sender_duration_ms(results: dict[str, Any], events: float, ledger_writes_per_event: float = 2.0,
                       offline: bool = False) -> dict[str, float]:
    """CPU (handler, interpolated between the 5- and 1000-event invocations measured, + SDK) and
    modeled I/O of one sender invocation of ``events`` events: each ledger write of an event is a
    parallel round of UpdateItems (claim, mark sending for offline events, outcome), then one
    Pinterest request per 1000 events."""
    a = MODEL_ASSUMPTIONS
    sender = results.get("sender") or {}
    big = sender.get("cpu_ms_per_invocation_1000_offline" if offline else "cpu_ms_per_invocation_1000")
    if big is None:
        big = sender.get("cpu_ms_per_invocation_1000")
    small = sender.get("cpu_ms_per_invocation_5")
    if big is not None and small is not None:
        per_event = max(0.0, (big - small) / 995)
        cpu = small + per_event * (events - 5)
    else:
        cpu = 0.0
    whole = max(1, math.ceil(events))
    writes = ledger_writes_per_event * whole
    sdk = results.get("sdk_cpu")
    sdk_ms = sdk_cpu_ms_sender(sdk, writes) if sdk else 0.0
    io = a["io_ms"]
    requests = math.ceil(whole / 1000)
    ledger_ms = ledger_writes_per_event * parallel_rounds(whole, a["sender_ledger_workers"]) * io["dynamodb_update_item"]
    pinterest_ms = requests * io["pinterest_request_base"] + whole * io["pinterest_request_per_event"]
    return {"cpu_ms": max(0.0, cpu) + sdk_ms, "io_ms": ledger_ms + pinterest_ms, "ledger_io_ms": ledger_ms,
            "pinterest_io_ms": pinterest_ms}


# ------------------------------------------------------------------------------------------
# template.yaml
# ------------------------------------------------------------------------------------------

_ACCESS_LOG_SAMPLE = {
    "requestId": "JKJaXmPLvHcESHA=", "identity.sourceIp": "203.0.113.7", "requestTime": "29/Nov/2026:18:15:28 +0000",
    "httpMethod": "POST", "path": "/webhooks/shopify", "status": "202", "responseLength": "201",
    "integrationErrorMessage": "-", "responseLatency": "38", "routeKey": "POST /webhooks/shopify",
}


def template_observability(template: Path = TEMPLATE) -> dict[str, Any]:
    """What template.yaml says about tracing and Lambda's platform log lines, per function:
    ``{"ingest": {"traced": bool, "reservoir_per_s", "fixed_rate", "platform_logs": bool}, "sender": {...}}``."""
    from pinrelay_tools.template import load_template

    a = MODEL_ASSUMPTIONS
    loaded = load_template(template)
    resources = loaded.get("Resources", {})
    globals_fn = (loaded.get("Globals", {}) or {}).get("Function", {}) or {}
    rules = [r["Properties"]["SamplingRule"] for r in resources.values() if r.get("Type") == "AWS::XRay::SamplingRule"]
    out: dict[str, Any] = {}
    for short, logical in (("ingest", "IngestFunction"), ("sender", "SenderFunction")):
        props = resources.get(logical, {}).get("Properties", {})
        tracing = props.get("Tracing", globals_fn.get("Tracing", "PassThrough"))
        rule = next((r for r in rules if r.get("ServiceName") == {"Ref": logical}), None)
        system_level = (props.get("LoggingConfig") or globals_fn.get("LoggingConfig") or {}).get("SystemLogLevel", "INFO")
        out[short] = {
            "traced": tracing == "Active",
            "reservoir_per_s": float(rule["ReservoirSize"]) if rule else a["xray_reservoir_per_s"],
            "fixed_rate": float(rule["FixedRate"]) if rule else a["xray_fixed_rate"],
            "platform_logs": system_level in ("DEBUG", "INFO"),
        }
    return out


def template_parameter_default(name: str, fallback: Any = None, template: Path = TEMPLATE) -> Any:
    """The Default of one of template.yaml's Parameters (``fallback`` when it has none)."""
    from pinrelay_tools.template import load_template

    return ((load_template(template).get("Parameters") or {}).get(name) or {}).get("Default", fallback)


def access_log_line(template: Path = TEMPLATE) -> str:
    """One HTTP API access log line: the template's AccessLogSettings Format with typical values."""
    try:
        text = template.read_text(encoding="utf-8")
    except OSError:
        return ""
    match = re.search(r"AccessLogSettings:.*?Format:\s*(?:>-|>|\|)?\s*\n?\s*(\{.*?\})\s*$", text, re.S | re.M)
    if not match:
        return ""
    return re.sub(r"\$context\.([A-Za-z.]+)", lambda m: _ACCESS_LOG_SAMPLE.get(m.group(1), "-"), match.group(1))


def access_log_bytes(template: Path = TEMPLATE) -> int:
    """Bytes of one HTTP API access log line (with its newline), from the template's format."""
    line = access_log_line(template)
    return len(line.encode("utf-8")) + 1 if line else 0


# ------------------------------------------------------------------------------------------
# scenarios
# ------------------------------------------------------------------------------------------

_LOG_SOURCES = {"ingest:log": "ingest log lines", "ingest:metrics": "ingest metrics (EMF)",
                "sender:log": "sender log lines", "sender:metrics": "sender metrics (EMF)",
                "fetcher:log": "fetcher log lines", "fetcher:metrics": "fetcher metrics (EMF)"}
# the function that reads a platform scenario's jobs
FETCHERS = {"stripe_webhook": "Stripe line-items fetcher", "bigcommerce_webhook": "BigCommerce fetcher"}


def scenario_usage(results: dict[str, Any], scenario: str, cpu_scale: float = 1.0,
                   front_door: str = "http_api") -> tuple[Usage, dict[str, Any]]:
    """Usage per million events for ``webhook`` (1 web event per POST), ``batch`` (1000 web events
    per POST) or ``offline_batch`` (1000 offline events per POST), through the HTTP API or a Lambda
    Function URL (no per-request price, no access log). ``detail["split"]`` divides the usage
    among its causes (for ``itemise``)."""
    if front_door not in FRONT_DOORS:
        raise ValueError(f"front_door must be one of {FRONT_DOORS}")
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {tuple(SCENARIOS)}")
    http_api = front_door == "http_api"
    a = MODEL_ASSUMPTIONS
    rate = a["rate_events_per_s"]
    local = results.get("local") or {}
    per_post, phase_name = SCENARIOS[scenario]
    phase = local.get(phase_name)
    if not phase and scenario == "webhook":  # the trickle did not run: the single posts' counts
        phase_name, phase = "singles", local.get("singles")
    if not phase:
        raise RuntimeError(f"the local stack section did not run the {phase_name!r} phase: no AWS call counts for the bill")
    per_1000 = phase["per_1000_events"]
    handler = (results.get("handler") or {}).get(str(per_post)) or {}
    body_bytes = handler.get("body_bytes") or phase.get("body_bytes_per_post") or 0
    posts = 1e6 / per_post

    send_calls = per_1000.get("sqs_ingest_requests", per_1000["sqs_ingest_billable"]) * per_post / 1000
    # ingest CPU is measured on web events; offline ones (no IP, user agent, URL or contents) take
    # less, so the web figure is an upper bound for them
    ingest = ingest_duration_ms(results, per_post, send_calls)  # Stripe: the fetcher reads the line items, not ingest
    ingest_ms = billed_ms(ingest["cpu_ms"] * cpu_scale + ingest["io_ms"])
    if scenario in WEBHOOKS:
        events_per_sender = max(1.0, phase.get("events_per_sender_invocation") or 1.0)
    else:
        events_per_sender = float(a["batch_events_per_sender_invocation"])
    sender_invocations = 1e6 / events_per_sender
    writes_per_event = phase.get("dynamodb_writes_per_event")
    if writes_per_event is None:
        writes_per_event = per_1000.get("dynamodb_items_written", per_1000["dynamodb_wcu"]) / 1000
    sender = sender_duration_ms(results, events_per_sender, writes_per_event, offline=scenario == "offline_batch")
    sender_ms = billed_ms(sender["cpu_ms"] * cpu_scale + sender["io_ms"])

    # SQS: ingest's sends as counted; the event source's receives and deletes as counted in the
    # trickle, or, for batches, one of each per 10 messages (Lambda reads a full queue 10 at a time)
    sqs_send = per_1000["sqs_ingest_billable"] * 1000  # Stripe with a key: the job; BigCommerce: the fetch job
    fetcher_sends = per_1000.get("sqs_fetcher_billable", 0.0) * 1000  # the job's event
    fetcher_invocations = 1e6 * phase.get("fetcher_invocations_per_event", 0.0)
    fetcher_ms = 0
    fetcher_run: dict[str, float] = {}
    job_receives = job_deletes = 0.0  # the Stripe line-items fetcher's own queue
    if scenario == "stripe_webhook" and fetcher_invocations:
        # scheduled runs draining the line-items queue: per round a receive, one wait for its
        # sessions read side by side, a send and a delete; an empty last receive waits its 1 s
        fetcher_run = drain_run_ms(phase["fetcher_local_ms_per_invocation"],
                                   phase.get("fetcher_empty_receive_ms_per_invocation", 0.0),
                                   phase["fetcher_rounds_per_invocation"],
                                   phase.get("fetcher_empty_receives_per_invocation", 0.0), cpu_scale)
        fetcher_ms = fetcher_run["billed_ms"]
        # beside the receives counted: what a drain of the measured jobs a run would take
        fetcher_run["receives_per_1000_jobs_by_the_model"] = drain_receives_per_1000_jobs(
            phase.get("jobs_per_fetcher_invocation") or 1, a["job_drain_max_jobs"])
        job_receives = per_1000["sqs_job_receive_billable"] * 1000
        job_deletes = per_1000["sqs_job_delete_billable"] * 1000
    elif fetcher_invocations:  # local duration (CPU + local I/O: an upper bound of its CPU) + the platform's waits
        # the order, then its products and shipping addresses at the same time: two waits
        fetcher_ms = billed_ms(phase["fetcher_local_ms_per_invocation"] * cpu_scale + 2 * a["io_ms"]["bigcommerce_get"]
                               + a["io_ms"]["sqs_send_message_batch"])
    if scenario in WEBHOOKS:
        sqs_receive = per_1000["sqs_poller_receives_with_messages"] * 1000
        sqs_delete = per_1000["sqs_poller_deletes"] * 1000
    else:
        sqs_receive = sqs_delete = 1e6 / a["poller_messages_per_receive"]

    cold = results.get("cold") or {}
    init_ms = {}
    for function, invocations in (("ingest", posts), ("sender", sender_invocations)):
        artifact = (cold.get(function) or {}).get("artifact") or {}
        # INIT runs at full speed whatever the memory: "On-demand Lambda functions use a full vCPU
        # (non-throttled) [...] during its initialization phase" (AWS, serverlessland.com, "Effectively
        # running Java on Serverless: utilize initialization phase"), so cpu_scale does not apply
        init_ms[function] = a["cold_start_fraction"] * invocations * artifact.get("import_ms", 0.0)

    observe = template_observability()
    platform_bytes = {
        "ingest": a["platform_log_bytes_per_invocation"] * posts * observe["ingest"]["platform_logs"],
        "sender": a["platform_log_bytes_per_invocation"] * sender_invocations * observe["sender"]["platform_logs"],
    }
    access_bytes = access_log_bytes() * posts if http_api else 0
    log_split: dict[str, float] = {}
    if http_api:
        log_split[f"HTTP API access log ({access_log_bytes()} bytes a request)"] = access_bytes
    lines_by_source = phase.get("log_lines_by_source") or {}
    fetcher_name = FETCHERS.get(scenario, "fetcher")
    for source, per_event in (phase.get("log_bytes_per_event_by_source") or {}).items():
        label = _LOG_SOURCES.get(source, f"{source} lines").replace("fetcher", fetcher_name, 1)
        lines = lines_by_source.get(source)
        if lines and phase.get("events"):
            label += f" ({per_event * phase['events'] / lines:,.0f} bytes a line, {lines / phase['events'] * 1000:,.0f} lines per 1000 events)"
        log_split[label] = log_split.get(label, 0.0) + per_event * 1e6
    for function, size in platform_bytes.items():
        if size:
            log_split[f"{function} platform lines (START/END/REPORT)"] = size
    log_bytes = phase["log_bytes_per_event"] * 1e6 + sum(platform_bytes.values()) + access_bytes

    secrets = max(1, int(local.get("secret_ids_read") or 2))
    ingest_rate = rate / per_post
    sender_rate = rate / events_per_sender
    ingest_traced = observe["ingest"]["traced"] * xray_sampled_fraction(
        ingest_rate, observe["ingest"]["reservoir_per_s"], observe["ingest"]["fixed_rate"])
    sender_traced = observe["sender"]["traced"] * xray_sampled_fraction(
        sender_rate, observe["sender"]["reservoir_per_s"], observe["sender"]["fixed_rate"])
    xray = posts * ingest_traced + sender_invocations * sender_traced

    wru = per_1000["dynamodb_wcu"] * 1000
    kinds = {"claims": per_1000.get("dynamodb_claims", 0.0), "marks sending (offline)": per_1000.get("dynamodb_marks_sending", 0.0),
             "outcomes": per_1000.get("dynamodb_outcomes", 0.0)}
    counted = sum(kinds.values())
    wru_split = {f"UpdateItem: {kind}": wru * count / counted for kind, count in kinds.items() if count} if counted else {}

    usage = Usage(
        http_requests=posts * http_billable_requests(body_bytes) if http_api else 0.0,
        ingest_invocations=posts,
        ingest_billed_ms=ingest_ms,
        sender_invocations=sender_invocations,
        sender_billed_ms=sender_ms,
        init_billed_ms=sum(init_ms.values()),
        sqs_requests=sqs_send + job_receives + job_deletes + fetcher_sends + sqs_receive + sqs_delete,
        dynamodb_wru=wru,
        dynamodb_rru=per_1000["dynamodb_rcu"] * 1000,
        log_bytes=log_bytes,
        secrets_calls=secrets_calls_per_million(secrets, rate, a["secrets_max_age_s"], a["warm_containers_per_secret"],
                                                a["seconds_per_month"]),
        xray_traces=xray,
        memory_mb=a["memory_mb"],
        fetcher_invocations=fetcher_invocations,
        fetcher_billed_ms=fetcher_ms,
    )
    split = {
        "lambda_requests": {"ingest": posts, "sender": sender_invocations, fetcher_name: fetcher_invocations},
        "lambda_ms": {"ingest": posts * ingest_ms, "sender": sender_invocations * sender_ms,
                      fetcher_name: fetcher_invocations * fetcher_ms,
                      "INIT (ingest)": init_ms["ingest"], "INIT (sender)": init_ms["sender"]},
        "sqs_requests": {"SendMessageBatch (ingest)": sqs_send,
                         f"ReceiveMessage ({fetcher_name}, its queue)": job_receives,
                         f"DeleteMessageBatch ({fetcher_name}, its queue)": job_deletes,
                         f"SendMessageBatch ({fetcher_name})": fetcher_sends,
                         "ReceiveMessage (event sources)": sqs_receive, "DeleteMessageBatch (event sources)": sqs_delete},
        "dynamodb_wru": wru_split,
        "log_bytes": log_split,
    }
    detail = {
        "front_door": front_door, "events_per_post": per_post, "body_bytes": body_bytes, "measured_in_phase": phase_name,
        "ingest_duration": ingest, "ingest_billed_ms": ingest_ms, "sender_duration": sender, "sender_billed_ms": sender_ms,
        "events_per_sender_invocation": events_per_sender, "ledger_writes_per_event": writes_per_event,
        "log_bytes_app_per_event": phase["log_bytes_per_event"], "fetcher_billed_ms": fetcher_ms, "fetcher_run": fetcher_run,
        # of a scheduled run's local duration, what its queue (moto) took to answer: kept in own_ms
        "fetcher_queue_call_ms_per_run": phase.get("fetcher_queue_call_ms_per_invocation"),
        "log_bytes_platform": sum(platform_bytes.values()),
        "log_bytes_access": access_bytes, "secrets": secrets,
        "xray_fraction_ingest": ingest_traced, "xray_fraction_sender": sender_traced, "template": observe,
        "split": split,
    }
    return usage, detail


BILL_SCENARIOS = (
    # name, scenario, front door, label
    ("webhook", "webhook", "http_api", "1 event/request, HTTP API"),
    ("webhook_function_url", "webhook", "function_url", "1 event/request, Function URL"),
    ("batch", "batch", "http_api", "1000 events/request, HTTP API"),
    ("offline_batch", "offline_batch", "http_api", "1000 offline events/request, HTTP API"),
    ("stripe_webhook_no_key", "stripe_webhook_no_key", "http_api", "Stripe webhook without line items, HTTP API"),
    ("stripe_webhook", "stripe_webhook", "http_api", "Stripe webhook with line items, HTTP API"),
    ("stripe_webhook_function_url", "stripe_webhook", "function_url", "Stripe webhook with line items, Function URL"),
    ("bigcommerce_webhook", "bigcommerce_webhook", "http_api", "BigCommerce webhook + fetch, HTTP API"),
    ("bigcommerce_webhook_function_url", "bigcommerce_webhook", "function_url", "BigCommerce webhook + fetch, Function URL"),
)


def bill_section(results: dict[str, Any]) -> dict[str, Any]:
    """Every bill scenario the local stack measured, with its itemised lines and the sensitivity to
    Lambda's CPU share at 256 MB."""
    out: dict[str, Any] = {"prices": PRICES_US_EAST_1, "prices_taken": PRICES_TAKEN, "prices_sources": PRICE_TABLE.sources,
                           "prices_notes": PRICE_TABLE.notes, "assumptions": MODEL_ASSUMPTIONS,
                           "access_log_line": access_log_line()}
    slow = 1 / MODEL_ASSUMPTIONS["vcpu_fraction_at_memory"]
    local = results.get("local") or {}
    for name, scenario, front_door, label in BILL_SCENARIOS:
        if scenario != "webhook" and not local.get(SCENARIOS[scenario][1]):  # a phase that did not run
            continue
        usage, detail = scenario_usage(results, scenario, front_door=front_door)
        slow_usage, _ = scenario_usage(results, scenario, cpu_scale=slow, front_door=front_door)
        out[name] = {"label": label, "usage": asdict(usage), "lines": bill(usage), "items": itemise(usage, detail["split"]),
                     "detail": detail, "total_if_cpu_at_256mb": bill(slow_usage)["total"],
                     "lambda_if_cpu_at_256mb": bill(slow_usage)["lambda_duration"]}
    idle, schedule = local.get("idle_line_items_runs"), local.get("line_items_schedule") or {}
    if idle and schedule.get("period_s"):  # time-driven: a month of the schedule's runs on an empty queue
        out["stripe_schedule_idle"] = schedule_idle_month(idle, schedule["period_s"])
        out["stripe_schedule_idle"]["total_if_cpu_at_256mb"] = schedule_idle_month(
            idle, schedule["period_s"], cpu_scale=slow)["total_per_month"]
    return out
