"""``make bench``: what one event costs pinrelay, in CPU, cold start, AWS calls, log bytes and dollars.

Run with ``python -m pinrelay_local.bench [--quick] [--json bench.json] [--markdown] [--profile]``.
Everything is measured side by side in one run and printed as one table (``--markdown``: the same
table for the README); ``--json`` writes every number, the assumptions and the price table.

Sections (``--only`` picks some of them):

ingest    CPU per event (``time.process_time``, median of many repetitions) of ``json.loads`` +
          ``IngestService.ingest_api_events`` with in-memory dedup store and queue, for a 1-event
          and a 1000-event request, against the floor: ``json.loads`` + SHA-256 of the same user_data
          fields + ``json.dumps`` of the hashed events. Also the CPU the AWS SDK spends per call
          (botocore, HTTP short-circuited) and the thread-pool overhead of ``DynamoDedupStore.claim``.
handler   the full ingest handler (``lambda_handler`` with an API Gateway v2 event) with its
          ``service()`` swapped for in-memory fakes: "handler overhead" = handler - ingest work.
sender    10 000 queued events handed to the sender handler as 10 SQS events of 1000 records
          (Lambda with BatchSize 1000), Pinterest stand-in as the endpoint, in-memory DynamoDB:
          events per Pinterest request, CPU per invocation, log bytes.
local     the whole local stack (moto server, HTTP API + SQS event source emulations, stand-in):
          1000 events posted as one batch and as 1000 single posts, AWS calls counted with
          botocore ``before-call`` hooks on the handlers' clients (and the emulated Lambda SQS
          poller), DynamoDB WRU/RRU estimates, Secrets Manager calls, log bytes; then a trickle
          of 5 events/s measuring accept -> delivery latency.
cold      import time of each handler module in a fresh interpreter (median of 7), from the dev
          tree and from the artifact as Lambda loads it (``.aws-sam/build``, or on x86_64 a
          same-layout copy with this machine's wheels in /tmp/bench-layer), the first call's
          ``service()`` (boto3 import + clients), and ``-X importtime`` top offenders.
bill      (always) a modeled AWS bill per million events in us-east-1, webhook-per-event and
          1000-event batch ingest, from the numbers above and the price table below.

Nothing here is shipped to Lambda. Measurements run on this machine at full CPU; see
``MODEL_ASSUMPTIONS`` for how they become Lambda durations.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import io
import json
import math
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
AD_ACCOUNT = "549755885175"
BENCH_API_KEY = "bench-ingest-key"
BENCH_TOKEN = "bench-conversion-token"
HASHED_FIELDS = ("em", "ph", "fn", "ln", "ct", "st", "zp", "country", "external_id")
CLEAR_FIELDS = ("client_ip_address", "client_user_agent")

# ------------------------------------------------------------------------------------------
# Prices and model assumptions
# ------------------------------------------------------------------------------------------

PRICES_TAKEN = "2026-11-29"
PRICES_SOURCES = (
    "aws.amazon.com pricing pages for API Gateway, Lambda, SQS, DynamoDB, CloudWatch, Secrets Manager, X-Ray; "
    "DynamoDB on-demand after the 2024-11-01 50% cut; CloudWatch Logs first tier of the 2025-05 Lambda tiered "
    "pricing (= the old flat rate); free tiers ignored"
)
PRICES_US_EAST_1: dict[str, float] = {
    "http_api_per_million_requests": 1.00,  # first 300 M/month, metered in 512 KB increments
    "http_api_request_increment_bytes": 512 * 1024,
    "lambda_arm64_per_gb_second": 0.0000133334,
    "lambda_per_million_requests": 0.20,
    "sqs_per_million_requests": 0.40,  # standard queue; every 64 KB chunk of a payload is one request
    "sqs_chunk_bytes": 64 * 1024,
    "dynamodb_per_million_wru": 0.625,  # on-demand
    "dynamodb_per_million_rru": 0.125,
    "logs_ingestion_per_gb": 0.50,  # Standard log class; GB taken as 10^9 bytes (rounds the bill up)
    "secrets_per_10k_calls": 0.05,
    "xray_per_million_traces": 5.00,  # traces recorded
}

MODEL_ASSUMPTIONS: dict[str, Any] = {
    "memory_mb": 256,  # template.yaml Globals.Function.MemorySize
    "rate_events_per_s": 5.0,  # steady traffic the bill is modeled at (= the trickle measured); ~13 M events/month
    "seconds_per_month": 30 * 86_400,
    # Lambda durations = CPU measured here at full speed (handler + botocore serialisation) + I/O waits below.
    # At 256 MB Lambda gives ~256/1769 of a vCPU: the CPU part would take ~6.9x longer (see the sensitivity line).
    "vcpu_fraction_at_memory": 256 / 1769,
    "io_ms": {
        "dynamodb_put_item": 6.0,  # one conditional PutItem, in-region p50
        "dynamodb_batch": 10.0,  # one BatchGetItem (<=100 keys) or BatchWriteItem (<=25 items)
        "sqs_send_message_batch": 8.0,  # one SendMessageBatch of 10
        "pinterest_request_base": 100.0,  # one POST to Pinterest: 100 ms + 0.15 ms per event (unmeasured guess)
        "pinterest_request_per_event": 0.15,
    },
    "claim_workers": 16,  # DynamoDedupStore(max_workers=16): PutItems run 16 at a time
    "platform_log_bytes_per_invocation": 360,  # START + END + REPORT + XRAY lines (text log format)
    # HTTP API access log: template.yaml's AccessLogSettings.Format rendered with typical values (see below)
    "cold_start_fraction": 0.01,  # INIT is billed since 2025-08-01; AWS: INITs in under ~1% of invocations
    "secrets_max_age_s": 300,  # Powertools cache: one GetSecretValue per secret per warm container per 5 min
    "warm_containers_per_secret": 1,
    "xray_reservoir_per_s": 1.0,  # default sampling: the first request each second + 5% of the rest
    "xray_fixed_rate": 0.05,
}

TARGETS: dict[str, tuple[str, float]] = {
    "ingest_cpu_ratio_1000": ("<=", 3.0),
    "cold_import_ingest_ms": ("<=", 300.0),
    "cold_import_sender_ms": ("<=", 400.0),
    "sender_events_per_request": (">=", 990.0),
    "trickle_p99_s": ("<=", 5.0),
    "dynamodb_writes_per_event": ("<=", 2.0),
    "sqs_ingest_requests_per_event_batch": ("<=", 0.15),
    "bill_webhook_per_million": ("<=", 3.50),
    "bill_webhook_function_url_per_million": ("<=", 3.50),
    "bill_batch_per_million": ("<=", 2.50),
}
# the front doors template.yaml offers: the HTTP API (default: stage throttling, access log,
# $1.00 per million requests) and the opt-in Lambda Function URL (IngestFunctionUrl=Enabled)
FRONT_DOORS = ("http_api", "function_url")


# ------------------------------------------------------------------------------------------
# The bill model (pure arithmetic; tests/unit/test_bench_model.py)
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


def billed_ms(duration_ms: float) -> int:
    """Lambda bills duration rounded up to the millisecond (at least 1 ms)."""
    return max(1, math.ceil(duration_ms - 1e-9))


def http_billable_requests(body_bytes: int, increment: int = int(PRICES_US_EAST_1["http_api_request_increment_bytes"])) -> int:
    """HTTP API meters requests in 512 KB increments."""
    return max(1, math.ceil(body_bytes / increment))


def sqs_billable_requests(payload_bytes: int, chunk: int = int(PRICES_US_EAST_1["sqs_chunk_bytes"])) -> int:
    """SQS bills every 64 KB chunk of a request's payload as one request."""
    return max(1, math.ceil(payload_bytes / chunk))


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


def bill(usage: Usage, prices: dict[str, float] = PRICES_US_EAST_1) -> dict[str, float]:
    """Dollars per line for ``usage`` (one million events), and their ``total``."""
    gb = usage.memory_mb / 1024
    gb_seconds = (
        usage.ingest_invocations * usage.ingest_billed_ms
        + usage.sender_invocations * usage.sender_billed_ms
        + usage.init_billed_ms
    ) / 1000 * gb
    lines = {
        "http_api": usage.http_requests / 1e6 * prices["http_api_per_million_requests"],
        "lambda_requests": (usage.ingest_invocations + usage.sender_invocations) / 1e6 * prices["lambda_per_million_requests"],
        "lambda_duration": gb_seconds * prices["lambda_arm64_per_gb_second"],
        "sqs": usage.sqs_requests / 1e6 * prices["sqs_per_million_requests"],
        "dynamodb": usage.dynamodb_wru / 1e6 * prices["dynamodb_per_million_wru"]
        + usage.dynamodb_rru / 1e6 * prices["dynamodb_per_million_rru"],
        "cloudwatch_logs": usage.log_bytes / 1e9 * prices["logs_ingestion_per_gb"],
        "secrets_manager": usage.secrets_calls / 1e4 * prices["secrets_per_10k_calls"],
        "xray": usage.xray_traces / 1e6 * prices["xray_per_million_traces"],
    }
    lines["total"] = sum(lines.values())
    return lines


def secrets_calls_per_million(secrets: int, rate_events_per_s: float, max_age_s: float = 300,
                              containers_per_secret: int = 1, seconds_per_month: float = 30 * 86_400) -> float:
    """GetSecretValue calls per million events when each secret is refreshed every ``max_age_s`` by
    ``containers_per_secret`` warm containers (time-driven, not event-driven)."""
    calls_per_month = secrets * containers_per_secret * seconds_per_month / max_age_s
    events_per_month = rate_events_per_s * seconds_per_month
    return calls_per_month / (events_per_month / 1e6)


# ------------------------------------------------------------------------------------------
# Realistic events
# ------------------------------------------------------------------------------------------

_FIRST = ("Jane", "John", "Léon", "Aisha", "María", "Wei", "Olivia", "Noah", "Chloé", "Lukas", "Priya", "Sven")
_LAST = ("Doe", "Smith", "Müller", "García", "O'Brien", "Nguyen", "Dubois", "Kowalski", "Rossi", "Okafor")
_DOMAINS = ("Example.com", "gmail.com", "Yahoo.co.uk", "outlook.de", "icloud.com", "shop-mail.fr")
_UAS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
)


def _address(rng: random.Random) -> dict[str, str]:
    pick = rng.random()
    if pick < 0.6:
        return {"country": "US", "ph": f"({rng.choice(('415', '212', '646', '312', '503', '502'))}) {rng.randint(200, 999)}-{rng.randint(0, 9999):04d}",
                "ct": rng.choice(("San Francisco", "New York", "St. Louis", "Louisville", "Portland")),
                "st": rng.choice(("California", "NY", "Missouri", "Kentucky", "OR")),
                "zp": rng.choice(("94103-1234", "10001", "63101", "40202-4421", "97205"))}
    if pick < 0.75:
        return {"country": "GB", "ph": f"020 7946 {rng.randint(0, 9999):04d}", "ct": "London", "st": "England",
                "zp": rng.choice(("SW1A 1AA", "EC1A 1BB", "W1A 0AX"))}
    if pick < 0.85:
        return {"country": "CA", "ph": f"+1 416 {rng.randint(200, 999)} {rng.randint(0, 9999):04d}", "ct": "Toronto",
                "st": "Ontario", "zp": "M5V 2T6"}
    if pick < 0.95:
        return {"country": "DE", "ph": f"030 {rng.randint(1000000, 9999999)}", "ct": "Berlin", "st": "Berlin", "zp": "10115"}
    return {"country": "FR", "ph": f"01 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}",
            "ct": "Paris", "st": "Île-de-France", "zp": "75001"}


def make_event(index: int, now: int, rng: random.Random, prefix: str = "bench") -> dict[str, Any]:
    """One checkout as a shop backend posts it: raw user data, client IP + UA, 3 contents."""
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    address = _address(rng)
    order_id = f"{prefix}-{index}"
    prices = [round(rng.uniform(5, 120), 2) for _ in range(3)]
    quantities = [rng.randint(1, 3) for _ in range(3)]
    value = sum(p * q for p, q in zip(prices, quantities))
    ip = (f"203.0.113.{rng.randint(1, 254)}" if rng.random() < 0.8
          else f"2001:db8:{rng.randint(0, 65535):x}::{rng.randint(1, 65535):x}")
    return {
        "event_name": "checkout",
        "action_source": "web",
        "event_id": order_id,
        "event_time": now - rng.randint(0, 3600),
        "event_source_url": f"https://shop.example.com/checkouts/{uuid.UUID(int=rng.getrandbits(128)).hex[:16]}/thank_you",
        "user_data": {
            "em": f" {first}.{last}{rng.randint(1, 999)}@{rng.choice(_DOMAINS)} ",
            "ph": address["ph"],
            "fn": first,
            "ln": last,
            "ct": address["ct"],
            "st": address["st"],
            "zp": address["zp"],
            "country": address["country"],
            "external_id": f"cust-{rng.randint(10_000, 9_999_999)}",
            "client_ip_address": ip,
            "client_user_agent": rng.choice(_UAS),
        },
        "custom_data": {
            "currency": rng.choice(("USD", "GBP", "EUR", "CAD")),
            "value": f"{value:.2f}" if rng.random() < 0.5 else round(value, 2),
            "order_id": order_id,
            "num_items": sum(quantities),
            "content_ids": [f"sku-{rng.randint(1000, 9999)}" for _ in range(3)],
            "contents": [
                {"id": f"sku-{rng.randint(1000, 9999)}", "item_price": f"{p:.2f}" if rng.random() < 0.5 else p, "quantity": q}
                for p, q in zip(prices, quantities)
            ],
        },
    }


def make_events(count: int, now: int, seed: int, prefix: str) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [make_event(i, now, rng, prefix) for i in range(count)]


def request_body(events: list[dict[str, Any]]) -> bytes:
    payload: Any = events[0] if len(events) == 1 else {"data": events}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# ------------------------------------------------------------------------------------------
# In-memory fakes (the idea of tests/fakes.py)
# ------------------------------------------------------------------------------------------


from pinrelay_local.memory import MemoryDedupStore  # noqa: E402  (also the unit tests' fake)


class MemoryQueue:
    def __init__(self) -> None:
        self.bodies: list[str] = []

    def send(self, bodies: list[str]) -> list[int]:
        self.bodies.extend(bodies)
        return []


def fake_ingest_service(store: Any | None = None, queue: Any | None = None) -> Any:
    """The real IngestService over in-memory fakes (keyword arguments it does not take are left out)."""
    import inspect

    from pinrelay.ingest import IngestService

    wanted = {"ad_account_id": AD_ACCOUNT, "dedup_window_seconds": 86_400, "store": store or MemoryDedupStore(),
              "queue": queue or MemoryQueue(), "clock": time.time}
    accepted = inspect.signature(IngestService).parameters
    return IngestService(**{name: value for name, value in wanted.items() if name in accepted})


# ------------------------------------------------------------------------------------------
# Measurement helpers
# ------------------------------------------------------------------------------------------


def median_cpu(work: Callable[[], Any], reps: int, setup: Callable[[], Any] | None = None,
               clock: Callable[[], float] = time.process_time, inner: int = 1) -> float:
    """Median seconds of ``clock`` per call of ``work``: ``reps`` samples of ``inner`` calls each
    (``setup`` untimed, before each sample; several calls per sample for work of a few µs, so that
    the ``gc.collect()`` before each sample does not leave every call with cold caches)."""
    samples = []
    for _ in range(reps):
        if setup is not None:
            setup()
        gc.collect()
        start = clock()
        for _ in range(inner):
            work()
        samples.append((clock() - start) / inner)
    return statistics.median(samples)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class ByteCounter(io.TextIOBase):
    """Stands in for sys.stdout while handlers run: counts what they log (Powertools Logger and
    Metrics write JSON lines to stdout, as on Lambda) and throws it away."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.bytes = 0
        self.lines = 0
        self.keep = 0  # while > 0, keep that many writes as samples
        self.kept: list[str] = []

    def write(self, text: str) -> int:
        size = len(text.encode("utf-8", "replace"))
        with self._lock:
            self.bytes += size
            self.lines += text.count("\n")
            if self.keep > 0 and text.strip():
                self.kept.append(text)
                self.keep -= 1
        return len(text)

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def patched_environ(values: dict[str, str], remove: tuple[str, ...] = ()) -> Iterator[None]:
    saved = dict(os.environ)
    for name in remove:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _bench_env(**extra: str) -> dict[str, str]:
    env = {
        "PINTEREST_AD_ACCOUNT_ID": AD_ACCOUNT,
        "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/pinrelay-bench",
        "DEDUP_TABLE_NAME": "pinrelay-bench",
        "INGEST_API_KEY": BENCH_API_KEY,
        "PINTEREST_CONVERSION_TOKEN": BENCH_TOKEN,
        "PINTEREST_TEST_MODE": "false",
        "POWERTOOLS_SERVICE_NAME": "pinrelay",
        "POWERTOOLS_METRICS_NAMESPACE": "Pinrelay",
        "LOG_LEVEL": "INFO",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "SENDER_BACKOFF_BASE_SECONDS": "0",
    }
    env.update(extra)
    return env


_ENV_REMOVE = ("AWS_ENDPOINT_URL", "POWERTOOLS_METRICS_DISABLED", "INGEST_API_KEY_SECRET_NAME", "SHOPIFY_WEBHOOK_SECRET_NAME",
               "PINTEREST_CONVERSION_TOKEN_SECRET_NAME", "ACCOUNT_MAP_SECRET_NAME", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
               "LAMBDA_TASK_ROOT", "AWS_LAMBDA_FUNCTION_NAME")


def _fresh_handler(name: str) -> Any:
    """Import functions/<x>/<name>.py afresh (and pinrelay's cached settings cleared)."""
    from pinrelay_local.stack import HANDLER_MODULES, import_module_from_path

    layer = str(REPO_ROOT / "layers" / "pinrelay")
    if layer not in sys.path:
        sys.path.insert(0, layer)
    sys.modules.pop(name, None)
    with contextlib.suppress(Exception):
        from pinrelay import config

        for cached in ("ingest_settings", "sender_settings"):
            getattr(getattr(config, cached, None), "cache_clear", lambda: None)()
    return import_module_from_path(name, REPO_ROOT / HANDLER_MODULES[name])


class _Section:
    """Runs one section; a failure is recorded (with its traceback) instead of ending the bench."""

    def __init__(self, results: dict[str, Any], name: str, say: Callable[[str], None]) -> None:
        self.results, self.name, self.say = results, name, say

    def __enter__(self) -> _Section:
        self.started = time.monotonic()
        self.say(f"[bench] {self.name} ...")
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        elapsed = time.monotonic() - self.started
        self.results.setdefault("meta", {}).setdefault("section_seconds", {})[self.name] = round(elapsed, 1)
        if exc is not None and not isinstance(exc, KeyboardInterrupt):
            text = "".join(traceback.format_exception(exc_type, exc, tb))
            self.results.setdefault("errors", {})[self.name] = text
            self.say(f"[bench] {self.name} FAILED: {exc_type.__name__}: {exc}")
            return True
        self.say(f"[bench] {self.name} done in {elapsed:.1f} s")
        return False


# ------------------------------------------------------------------------------------------
# Section: ingest CPU vs floor, AWS SDK CPU, claim thread pool
# ------------------------------------------------------------------------------------------


def floor_work(body: bytes) -> list[str]:
    """The least any ingest can do: parse, SHA-256 the same user_data fields, serialise."""
    payload = json.loads(body)
    events = payload["data"] if isinstance(payload, dict) and "data" in payload else [payload]
    out = []
    for event in events:
        raw = event["user_data"]
        user_data: dict[str, Any] = {
            name: [hashlib.sha256(raw[name].encode("utf-8")).hexdigest()] for name in HASHED_FIELDS if raw.get(name)
        }
        for name in CLEAR_FIELDS:
            if raw.get(name):
                user_data[name] = raw[name]
        out.append(json.dumps({**event, "user_data": user_data}, separators=(",", ":"), ensure_ascii=False))
    return out


def ingest_work(service: Any, body: bytes) -> Any:
    payload = json.loads(body)
    events = payload["data"] if isinstance(payload, dict) and "data" in payload else [payload]
    return service.ingest_api_events(events)


def ingest_breakdown(quick: bool) -> dict[str, float]:
    """Where the per-event CPU of a 1000-event request goes (µs/event, each step timed alone on the
    same 1000 events). Uses pinrelay's internals: a step that no longer exists is left out."""
    from pinrelay import events as ev
    from pinrelay import normalise
    from pinrelay.models import IncomingEvent

    now = int(time.time())
    raw_events = make_events(1000, now, seed=1000, prefix="cpu1000")
    body = request_body(raw_events)
    reps = 3 if quick else 9
    per = 1e6 / len(raw_events)
    out: dict[str, float] = {}
    out["json_loads"] = median_cpu(lambda: json.loads(body), reps) * per
    out["pydantic_model_validate"] = median_cpu(lambda: [IncomingEvent.model_validate(r) for r in raw_events], reps) * per
    incoming = [IncomingEvent.model_validate(r) for r in raw_events]
    out["pydantic_model_dump"] = median_cpu(lambda: [(i.model_dump(exclude_none=True, exclude={"user_data"}),
                                                      i.user_data.model_dump(exclude_none=True)) for i in incoming], reps) * per
    user_data = [i.user_data.model_dump(exclude_none=True) for i in incoming]
    out["hash_raw_user_data"] = median_cpu(lambda: [ev.hash_raw_user_data(u) for u in user_data], reps) * per
    phones = [(u["ph"], u["country"].lower()) for u in user_data]
    out["of_which_phonenumbers"] = median_cpu(lambda: [normalise.normalise_phone(ph, c) for ph, c in phones], reps) * per
    out["of_which_sha256"] = median_cpu(lambda: [normalise.sha256_hex(u[k]) for u in user_data for k in HASHED_FIELDS], reps) * per
    prepared = [ev.prepare_api_event(r, now) for r in raw_events]
    out["prepare_api_event_total"] = median_cpu(lambda: [ev.prepare_api_event(r, now) for r in raw_events], reps) * per
    holder: dict[str, Any] = {}

    def setup() -> None:
        holder["svc"] = fake_ingest_service()
        holder["prepared"] = [ev.PreparedEvent(event=json.loads(json.dumps(p.event)), warnings=list(p.warnings)) for p in prepared]

    if hasattr(ev, "unsafe_text_path"):
        out["unsafe_text_path_walk"] = median_cpu(lambda: [ev.unsafe_text_path(r) for r in raw_events], reps) * per
    out["check_deliverable"] = median_cpu(lambda: [ev.check_deliverable(p, now) for p in prepared], reps) * per
    out["accept_dedup_results_message_json"] = median_cpu(lambda: holder["svc"].accept(holder["prepared"], "api", now), reps, setup) * per
    with contextlib.suppress(Exception):
        from pinrelay.ingest import queued_message_body
        from pinrelay.ports import DedupClaim

        claim = DedupClaim(key="k", accepted_at=now, expires_at=now + 86_400, claim_id="c")
        out["of_which_message_json_dumps"] = median_cpu(lambda: [queued_message_body(AD_ACCOUNT, claim, p, "api") for p in prepared],
                                                        reps) * per
    return out


def bench_ingest_cpu(quick: bool) -> dict[str, Any]:
    now = int(time.time())
    # (samples, calls per sample): 1-event requests are timed 100 different requests at a time
    plan = {1: (9 if quick else 41, 100), 1000: (5 if quick else 21, 1)}
    results: dict[str, Any] = {}
    for size, (count, inner) in plan.items():
        if size == 1:
            bodies = [request_body([event]) for event in make_events(inner, now, seed=size, prefix="cpu1")]
        else:
            bodies = [request_body(make_events(size, now, seed=size, prefix=f"cpu{size}"))]
        holder: dict[str, Any] = {"i": 0}

        def setup() -> None:
            holder["svc"] = fake_ingest_service()
            holder["i"] = 0

        def next_body() -> bytes:
            body = bodies[holder["i"] % len(bodies)]
            holder["i"] += 1
            return body

        setup()
        check = ingest_work(holder["svc"], bodies[0])
        accepted = sum(1 for r in check.results if r.status == "accepted")
        if accepted != size:
            reasons = [r.reason for r in check.results if r.status != "accepted"][:3]
            raise RuntimeError(f"bench events not accepted ({accepted}/{size}): {reasons}")
        full = median_cpu(lambda: ingest_work(holder["svc"], next_body()), count, setup, inner=inner)
        floor = median_cpu(lambda: floor_work(next_body()), count * 2, setup, inner=inner)
        body = bodies[0]
        results[str(size)] = {
            "events": size,
            "body_bytes": len(body),
            "reps": count * inner,
            "full_ms": full * 1e3,
            "floor_ms": floor * 1e3,
            "full_us_per_event": full / size * 1e6,
            "floor_us_per_event": floor / size * 1e6,
            "ratio": full / floor if floor else float("nan"),
        }
    try:
        results["breakdown_us_per_event_1000"] = ingest_breakdown(quick)
    except Exception as exc:  # noqa: BLE001 - internals moved: the breakdown is optional
        results["breakdown_us_per_event_1000"] = {"error": f"{type(exc).__name__}: {exc}"}
    return results


class _StubHttp:
    status_code = 200
    headers: dict[str, str] = {}


def _stub_client(service: str) -> Any:
    """A real botocore client whose HTTP is short-circuited in ``before-call``: what remains is the
    SDK's own CPU (parameter validation, serialisation, endpoint resolution, event hooks) -
    a lower bound (no signing, no HTTP, no response parsing)."""
    import boto3

    client = boto3.session.Session(region_name="us-east-1", aws_access_key_id="bench", aws_secret_access_key="bench").client(service)
    answers = {
        "PutItem": {}, "DeleteItem": {}, "BatchGetItem": {"Responses": {}, "UnprocessedKeys": {}},
        "BatchWriteItem": {"UnprocessedItems": {}}, "SendMessageBatch": {"Successful": [], "Failed": []},
    }

    def short_circuit(model: Any, **_: Any) -> Any:
        return _StubHttp(), dict(answers.get(model.name, {}))

    client.meta.events.register("before-call", short_circuit)
    return client


def bench_sdk_cpu(quick: bool) -> dict[str, Any]:
    from pinrelay.adapters.dynamodb import DynamoDedupStore
    from pinrelay.ports import DedupClaim

    dynamodb, sqs = _stub_client("dynamodb"), _stub_client("sqs")
    now = int(time.time())
    claims = [DedupClaim(key=f"{AD_ACCOUNT}#checkout#sdk-{i}", accepted_at=now, expires_at=now + 86_400, claim_id=uuid.uuid4().hex)
              for i in range(1000)]
    body = json.dumps(floor_work(request_body(make_events(1, now, 7, "sdk")))[0])
    n = 200 if quick else 1000
    store = DynamoDedupStore("bench", dynamodb)
    put = median_cpu(lambda: [store._claim_one(claim, now) for claim in claims[:n]], 3) / n
    send_entries = [{"Id": str(i), "MessageBody": body} for i in range(10)]
    send = median_cpu(lambda: [sqs.send_message_batch(QueueUrl="https://sqs.us-east-1.amazonaws.com/1/q", Entries=send_entries)
                               for _ in range(n // 10)], 3) / (n // 10)
    keys = [{"pk": {"S": claim.key}} for claim in claims[:100]]
    get = median_cpu(lambda: [dynamodb.batch_get_item(RequestItems={"bench": {"Keys": keys, "ProjectionExpression": "pk, #s",
                                                                               "ExpressionAttributeNames": {"#s": "state"}}})
                              for _ in range(10)], 3) / 10
    writes = [{"PutRequest": {"Item": {"pk": {"S": c.key}, "state": {"S": "delivered"}, "attempts": {"N": "1"},
                                       "accepted_at": {"N": str(now)}, "updated_at": {"N": str(now)},
                                       "expires_at": {"N": str(now + 86_400)}}}} for c in claims[:25]]
    write = median_cpu(lambda: [dynamodb.batch_write_item(RequestItems={"bench": writes}) for _ in range(40)], 3) / 40
    # DynamoDedupStore.claim: thread pool (16 workers) vs the same calls one after another
    pool_store = DynamoDedupStore("bench", dynamodb)
    size = 200 if quick else 1000
    pooled = median_cpu(lambda: pool_store.claim(claims[:size], now), 3)
    sequential = median_cpu(lambda: [pool_store._claim_one(claim, now) for claim in claims[:size]], 3)
    pooled_wall = median_cpu(lambda: pool_store.claim(claims[:size], now), 3, clock=time.perf_counter)
    return {
        "put_item_us": put * 1e6,
        "send_message_batch_us": send * 1e6,
        "batch_get_item_100_us": get * 1e6,
        "batch_write_item_25_us": write * 1e6,
        "claim_pool_cpu_us_per_claim": pooled / size * 1e6,
        "claim_sequential_cpu_us_per_claim": sequential / size * 1e6,
        "claim_pool_overhead_us_per_claim": (pooled - sequential) / size * 1e6,
        "claim_pool_wall_us_per_claim": pooled_wall / size * 1e6,
        "note": "botocore with HTTP short-circuited in before-call: a lower bound (no SigV4, HTTP or parsing)",
    }


def sdk_cpu_ms_ingest(sdk: dict[str, Any], events: int) -> float:
    return (events * sdk["claim_pool_cpu_us_per_claim"] + math.ceil(events / 10) * sdk["send_message_batch_us"]) / 1e3


def sdk_cpu_ms_sender(sdk: dict[str, Any], events: int) -> float:
    return (math.ceil(events / 100) * sdk["batch_get_item_100_us"] + math.ceil(events / 25) * sdk["batch_write_item_25_us"]) / 1e3


# ------------------------------------------------------------------------------------------
# Section: full ingest handler with fakes
# ------------------------------------------------------------------------------------------


def bench_handler(quick: bool, counter: ByteCounter) -> dict[str, Any]:
    from pinrelay_local.http_gateway import LambdaContext, build_http_api_event

    with patched_environ(_bench_env(), remove=_ENV_REMOVE):
        handler = _fresh_handler("ingest_handler")
        holder: dict[str, Any] = {"svc": fake_ingest_service(), "i": 0}
        handler.service = lambda *args, **kwargs: holder["svc"]
        now = int(time.time())
        results: dict[str, Any] = {}
        for size, reps, inner in ((1, 7 if quick else 31, 100), (1000, 3 if quick else 15, 1)):
            if size == 1:
                bodies = [request_body([e]) for e in make_events(inner, now, seed=101, prefix="handler1")]
            else:
                bodies = [request_body(make_events(size, now, seed=100 + size, prefix=f"handler{size}"))]
            events = [build_http_api_event(
                method="POST", raw_path="/events", raw_query="",
                header_pairs=[("x-api-key", BENCH_API_KEY), ("content-type", "application/json"),
                              ("user-agent", "shop-backend/1.0")],
                body=body, source_ip="203.0.113.7", route_key="POST /events",
            ) for body in bodies]
            body = bodies[0]

            def setup() -> None:
                holder["svc"] = fake_ingest_service()
                holder["i"] = 0

            def call() -> Any:
                event = events[holder["i"] % len(events)]
                holder["i"] += 1
                return handler.lambda_handler(event, LambdaContext("pinrelay-ingest", memory_limit_in_mb=256))

            def work() -> Any:  # what bench_ingest_cpu times: json.loads + ingest_api_events
                body = bodies[holder["i"] % len(bodies)]
                holder["i"] += 1
                return ingest_work(holder["svc"], body)

            setup()
            answer = call()
            if answer.get("statusCode") != 202:
                raise RuntimeError(f"ingest handler answered {answer.get('statusCode')}: {str(answer.get('body'))[:300]}")
            logged_before = counter.bytes
            lines_before = counter.lines
            counter.keep = 4
            setup()
            call()
            counter.keep = 0
            log_bytes = counter.bytes - logged_before
            log_lines = counter.lines - lines_before
            if size == 1:
                results["log_sample_1_event"] = counter.kept[-4:]
            # handler and bare service work interleaved, sample by sample, so that load drift hits both alike
            handler_samples, service_samples = [], []
            for _ in range(reps):
                handler_samples.append(median_cpu(call, 1, setup, inner=inner))
                service_samples.append(median_cpu(work, 1, setup, inner=inner))
            cpu = statistics.median(handler_samples)
            service_ms = statistics.median(service_samples) * 1e3
            paired = statistics.median(h - s for h, s in zip(handler_samples, service_samples)) * 1e3
            wall = median_cpu(call, max(2, reps // 3), setup, clock=time.perf_counter, inner=inner)
            results[str(size)] = {
                "events": size,
                "body_bytes": len(body),
                "handler_cpu_ms": cpu * 1e3,
                "handler_wall_ms": wall * 1e3,
                "service_cpu_ms": service_ms,
                "overhead_ms": paired,
                "overhead_us_per_event": paired / size * 1e3,
                "response_bytes": len(answer.get("body") or ""),
                "log_bytes_per_request": log_bytes,
                "log_lines_per_request": log_lines,
                "log_bytes_per_event": log_bytes / size,
            }
        sys.modules.pop("ingest_handler", None)
    return results


# ------------------------------------------------------------------------------------------
# Section: sender with 10 000 queued events
# ------------------------------------------------------------------------------------------


def queued_bodies(count: int, now: int, prefix: str) -> list[str]:
    """SQS message bodies exactly as ingest writes them, for ``count`` fresh events."""
    queue = MemoryQueue()
    service = fake_ingest_service(queue=queue)
    for start in range(0, count, 1000):
        events = make_events(min(1000, count - start), now, seed=start + 7, prefix=f"{prefix}-{start}")
        service.ingest_api_events(events)
    return queue.bodies


def sqs_event(bodies: list[str], queue_arn: str = "arn:aws:sqs:us-east-1:123456789012:pinrelay-events") -> dict[str, Any]:
    now_ms = str(int(time.time() * 1000))
    records = []
    for body in bodies:
        records.append({
            "messageId": str(uuid.uuid4()),
            "receiptHandle": "AQEB" + uuid.uuid4().hex,
            "body": body,
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": now_ms, "SenderId": "AROAEXAMPLE:pinrelay-ingest",
                           "ApproximateFirstReceiveTimestamp": now_ms},
            "messageAttributes": {},
            "md5OfBody": hashlib.md5(body.encode("utf-8")).hexdigest(),  # noqa: S324 - what SQS sends
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": "us-east-1",
        })
    return {"Records": records}


def bench_sender(quick: bool, counter: ByteCounter) -> dict[str, Any]:
    from pinrelay_local.http_gateway import LambdaContext
    from pinrelay_local.pinterest_standin import PinterestStandIn

    invocations = 3 if quick else 10
    now = int(time.time())
    bodies = queued_bodies(invocations * 1000, now, prefix=f"sender-{uuid.uuid4().hex[:6]}")
    with PinterestStandIn(token=BENCH_TOKEN) as standin, patched_environ(
        _bench_env(PINTEREST_API_URL=standin.base_url), remove=_ENV_REMOVE
    ):
        handler = _fresh_handler("sender_handler")
        service = handler.service()
        service.store = MemoryDedupStore()
        cpu, wall, logged, answers = [], [], [], []
        for number in range(invocations):
            event = sqs_event(bodies[number * 1000 : (number + 1) * 1000])
            before = counter.bytes
            gc.collect()
            started_cpu, started = time.thread_time(), time.perf_counter()
            answer = handler.lambda_handler(event, LambdaContext("pinrelay-sender", memory_limit_in_mb=256, timeout_s=120))
            cpu.append(time.thread_time() - started_cpu)
            wall.append(time.perf_counter() - started)
            logged.append(counter.bytes - before)
            answers.append(len(answer.get("batchItemFailures", [])))
        records = standin.received
        sizes = [len(record["body"]["data"]) for record in records if isinstance(record.get("body"), dict)]
        statuses = Counter(record["status"] for record in records)
        delivered = len(standin.delivered_events())
        # one small invocation (a trickle batch): the fixed cost per invocation
        small_cpu, small_logged = [], []
        for _ in range(5 if quick else 20):
            event = sqs_event(queued_bodies(5, now, prefix=f"small-{uuid.uuid4().hex[:6]}"))
            before = counter.bytes
            started_cpu = time.thread_time()
            handler.lambda_handler(event, LambdaContext("pinrelay-sender", memory_limit_in_mb=256, timeout_s=120))
            small_cpu.append(time.thread_time() - started_cpu)
            small_logged.append(counter.bytes - before)
        sys.modules.pop("sender_handler", None)
    return {
        "queued_events": len(bodies),
        "invocations": invocations,
        "records_per_invocation": 1000,
        "pinterest_requests": len(sizes),
        "events_per_request": statistics.mean(sizes) if sizes else 0.0,
        "request_sizes": sizes,
        "pinterest_statuses": dict(statuses),
        "delivered": delivered,
        "batch_item_failures": sum(answers),
        "cpu_ms_per_invocation_1000": statistics.median(cpu) * 1e3,
        "wall_ms_per_invocation_1000": statistics.median(wall) * 1e3,
        "cpu_ms_per_invocation_5": statistics.median(small_cpu) * 1e3,
        "log_bytes_per_invocation_1000": statistics.median(logged),
        "log_bytes_per_invocation_5": statistics.median(small_logged),
        "log_bytes_per_event_1000": statistics.median(logged) / 1000,
        "note": "CPU = time.thread_time of the handler thread (the stand-in's schema validation runs in its own threads)",
    }


# ------------------------------------------------------------------------------------------
# Section: the whole local stack - AWS calls, log bytes, latency
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


class AwsCallCounter:
    """botocore ``before-call`` / ``after-call`` hooks: calls per (role, service, operation),
    DynamoDB WRU/RRU estimates, SQS billable requests (64 KB chunks), secrets read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.units: Counter[str] = Counter()
        self.secret_ids: set[str] = set()

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

    def _before(self, role: str, model: Any, params: dict[str, Any], **_: Any) -> None:
        service = model.service_model.endpoint_prefix
        op = model.name
        body = self._body(params)
        units: Counter[str] = Counter()
        if service == "dynamodb":
            if op in ("PutItem", "UpdateItem"):
                units["wru"] += max(1, math.ceil(dynamodb_item_size(body.get("Item") or {}) / 1024))
                units["writes"] += 1
            elif op == "DeleteItem":
                units["wru"] += 1
                units["writes"] += 1
            elif op == "BatchWriteItem":
                for requests in (body.get("RequestItems") or {}).values():
                    for request in requests:
                        item = (request.get("PutRequest") or {}).get("Item")
                        units["wru"] += max(1, math.ceil(dynamodb_item_size(item) / 1024)) if item else 1
                        units["writes"] += 1
            elif op == "GetItem":
                units["rru"] += 1.0 if body.get("ConsistentRead") else 0.5
                units["reads"] += 1
            elif op == "BatchGetItem":
                for table in (body.get("RequestItems") or {}).values():
                    keys = len(table.get("Keys") or [])
                    units["rru"] += keys * (1.0 if table.get("ConsistentRead") else 0.5)
                    units["reads"] += keys
        elif service == "sqs":
            if op == "SendMessageBatch":
                payload = sum(len((entry.get("MessageBody") or "").encode("utf-8")) for entry in body.get("Entries") or [])
                units["sqs_billable"] += sqs_billable_requests(payload)
                units["sqs_messages_sent"] += len(body.get("Entries") or [])
            elif op == "SendMessage":
                units["sqs_billable"] += sqs_billable_requests(len((body.get("MessageBody") or "").encode("utf-8")))
                units["sqs_messages_sent"] += 1
            elif op in ("DeleteMessageBatch", "DeleteMessage", "ChangeMessageVisibilityBatch"):
                units["sqs_billable"] += 1
        elif service == "secretsmanager" and op == "GetSecretValue":
            with self._lock:
                self.secret_ids.add(str(body.get("SecretId")))
        with self._lock:
            self.calls[f"{role}:{service}:{op}"] += 1
            for name, value in units.items():
                self.units[f"{role}:{name}"] += value

    def _after(self, role: str, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        if model.name != "ReceiveMessage":
            return
        messages = (parsed or {}).get("Messages") or []
        with self._lock:
            if messages:
                payload = sum(len((m.get("Body") or "").encode("utf-8")) for m in messages)
                self.units[f"{role}:sqs_billable"] += sqs_billable_requests(payload)
                self.units[f"{role}:receives_with_messages"] += 1
                self.units[f"{role}:messages_received"] += len(messages)
            else:
                self.units[f"{role}:receives_empty"] += 1

    def snapshot(self) -> dict[str, Counter]:
        with self._lock:
            return {"calls": Counter(self.calls), "units": Counter(self.units)}

    @staticmethod
    def diff(after: dict[str, Counter], before: dict[str, Counter]) -> dict[str, dict[str, float]]:
        return {kind: {k: v for k, v in (after[kind] - before[kind]).items() if v} for kind in ("calls", "units")}


def _post_json(url: str, body: bytes, api_key: str, timeout: float = 60.0) -> tuple[int, str, float]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"content-type": "application/json", "x-api-key": api_key})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - local URL
            text = response.read().decode("utf-8", "replace")
            return response.status, text, time.time()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8", "replace"), time.time()


def _delivered_at(standin: Any) -> dict[str, float]:
    """event_id -> when the stand-in received the request that processed it."""
    seen: dict[str, float] = {}
    for record in standin.received:
        if record["status"] not in (200, 422) or not isinstance(record.get("body"), dict):
            continue
        response = record["response"] or {}
        results = (response.get("details") if record["status"] == 422 else response) or {}
        for item, result in zip(record["body"].get("data", []), results.get("events", [])):
            if result.get("status") == "processed":
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
    time.sleep(0.2)
    return delivered


def _phase_summary(name: str, events: int, posts: int, counts: dict[str, dict[str, float]], log_bytes: int,
                   batches: list[Any], requests: list[int], body_bytes: int, post_ms: list[float]) -> dict[str, Any]:
    calls, units = counts["calls"], counts["units"]

    def calls_of(role: str, service: str, *ops: str) -> float:
        return sum(v for k, v in calls.items() if k.startswith(f"{role}:{service}:") and (not ops or k.split(":")[2] in ops))

    per = 1000 / events
    handler_wru = units.get("handler:wru", 0)
    summary = {
        "events": events,
        "posts": posts,
        "body_bytes_per_post": body_bytes,
        "calls": calls,
        "units": units,
        "per_1000_events": {
            "sqs_ingest_requests": calls_of("handler", "sqs") * per,
            "sqs_ingest_billable": units.get("handler:sqs_billable", 0) * per,
            "sqs_poller_receives_with_messages": units.get("poller:receives_with_messages", 0) * per,
            "sqs_poller_deletes": calls_of("poller", "sqs", "DeleteMessageBatch", "DeleteMessage") * per,
            "sqs_poller_billable": units.get("poller:sqs_billable", 0) * per,
            "dynamodb_write_requests": calls_of("handler", "dynamodb", "PutItem", "DeleteItem", "UpdateItem", "BatchWriteItem") * per,
            "dynamodb_read_requests": calls_of("handler", "dynamodb", "GetItem", "BatchGetItem", "Query") * per,
            "dynamodb_items_written": units.get("handler:writes", 0) * per,
            "dynamodb_items_read": units.get("handler:reads", 0) * per,
            "dynamodb_wcu": handler_wru * per,
            "dynamodb_rcu": units.get("handler:rru", 0) * per,
            "secretsmanager_calls": calls_of("handler", "secretsmanager") * per,
        },
        "dynamodb_writes_per_event": units.get("handler:writes", 0) / events,
        "sqs_ingest_requests_per_event": calls_of("handler", "sqs") / events,
        "log_bytes": log_bytes,
        "log_bytes_per_event": log_bytes / events,
        "sender_invocations": len(batches),
        "events_per_sender_invocation": (sum(b.records for b in batches) / len(batches)) if batches else 0.0,
        "sender_failed_records": sum(b.failed for b in batches),
        "pinterest_requests": len(requests),
        "events_per_pinterest_request": statistics.mean(requests) if requests else 0.0,
        "post_ms_p50": percentile(post_ms, 0.5),
        "post_ms_p99": percentile(post_ms, 0.99),
    }
    return summary


def bench_local(quick: bool, counter: ByteCounter, say: Callable[[str], None]) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    from pinrelay_local.stack import LocalStack

    calls = AwsCallCounter()
    results: dict[str, Any] = {}
    handler_env = {"LOG_LEVEL": "INFO", "POWERTOOLS_METRICS_DISABLED": "false", "POWERTOOLS_TRACE_DISABLED": "true"}
    nonce = uuid.uuid4().hex[:6]
    singles = 100 if quick else 1000
    trickle_seconds = 5.0 if quick else 20.0
    rate = float(MODEL_ASSUMPTIONS["rate_events_per_s"])
    with LocalStack(port=0, environ={}, test_mode=False, sender_window_s=2.0, handler_env=handler_env) as stack:
        # the handlers' clients: pinrelay's cached boto3 clients and Powertools' secrets provider,
        # created here (one thread) so the hooks are on the very clients the handlers will use
        aws = sys.modules["pinrelay.adapters.aws"]
        calls.attach(aws.client("dynamodb"), "handler")
        calls.attach(aws.client("sqs"), "handler")
        try:
            from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
            from aws_lambda_powertools.utilities.parameters.secrets import SecretsProvider

            DEFAULT_PROVIDERS["secrets"] = DEFAULT_PROVIDERS.get("secrets") or SecretsProvider()
            calls.attach(DEFAULT_PROVIDERS["secrets"].client, "handler")
            results["secrets_hooked"] = True
        except Exception as exc:  # noqa: BLE001 - counted as unknown
            results["secrets_hooked"] = f"no: {exc}"
        calls.attach(stack.sqs, "poller")  # the emulated Lambda SQS event source mapping
        url = f"{stack.url}/events"
        now = int(time.time())

        def run_phase(name: str, bodies: list[bytes], ids: set[str], concurrency: int, timeout: float) -> dict[str, Any]:
            say(f"[bench]   local: {name} ({len(ids)} events in {len(bodies)} posts)")
            phase_started = time.monotonic()
            before_calls, before_log = calls.snapshot(), counter.bytes
            before_batches, before_requests = len(stack.batches), len(stack.standin.received)
            post_ms: list[float] = []

            def post(body: bytes) -> int:
                started = time.perf_counter()
                status, text, _ = _post_json(url, body, stack.ingest_api_key)
                post_ms.append((time.perf_counter() - started) * 1e3)
                if status != 202:
                    raise RuntimeError(f"POST /events answered {status}: {text[:300]}")
                return status

            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                list(pool.map(post, bodies))
            _wait_delivered(stack, ids, timeout)
            counts = AwsCallCounter.diff(calls.snapshot(), before_calls)
            batches = stack.batches[before_batches:]
            requests = [len(r["body"]["data"]) for r in stack.standin.received[before_requests:] if isinstance(r.get("body"), dict)]
            summary = _phase_summary(name, len(ids), len(bodies), counts, counter.bytes - before_log, batches, requests,
                                     len(bodies[0]), post_ms)
            summary["seconds"] = round(time.monotonic() - phase_started, 1)
            return summary

        batch_events = make_events(1000, now, seed=11, prefix=f"local-batch-{nonce}")
        results["batch"] = run_phase("1 post of 1000", [request_body(batch_events)],
                                     {e["event_id"] for e in batch_events}, 1, 120)
        single_events = make_events(singles, now, seed=12, prefix=f"local-single-{nonce}")
        results["singles"] = run_phase(f"{singles} single posts", [request_body([e]) for e in single_events],
                                       {e["event_id"] for e in single_events}, 8, 120)

        # trickle: one event every 1/rate s, accept -> delivery latency
        count = int(trickle_seconds * rate)
        say(f"[bench]   local: trickle of {rate:g} events/s for {trickle_seconds:g} s")
        trickle_events = make_events(count, now, seed=13, prefix=f"local-trickle-{nonce}")
        accepted: dict[str, float] = {}
        before_calls, before_log = calls.snapshot(), counter.bytes
        before_batches, before_requests = len(stack.batches), len(stack.standin.received)
        post_ms: list[float] = []

        def post_one(event: dict[str, Any]) -> None:
            started = time.perf_counter()
            status, text, answered = _post_json(url, request_body([event]), stack.ingest_api_key)
            post_ms.append((time.perf_counter() - started) * 1e3)
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
        counts = AwsCallCounter.diff(calls.snapshot(), before_calls)
        batches = stack.batches[before_batches:]
        requests = [len(r["body"]["data"]) for r in stack.standin.received[before_requests:] if isinstance(r.get("body"), dict)]
        trickle = _phase_summary("trickle", count, count, counts, counter.bytes - before_log, batches, requests,
                                 len(request_body([trickle_events[0]])), post_ms)
        trickle.update({
            "seconds_total": round(time.monotonic() - start, 1),
            "rate_events_per_s": rate,
            "seconds": trickle_seconds,
            "latency_p50_s": percentile(latencies, 0.5),
            "latency_p99_s": percentile(latencies, 0.99),
            "latency_max_s": max(latencies),
            "sender_window_s": 2.0,
        })
        results["trickle"] = trickle
        results["secret_ids_read"] = len(calls.secret_ids)
    return results


# ------------------------------------------------------------------------------------------
# Section: cold start
# ------------------------------------------------------------------------------------------

_COLD_SCRIPT = r"""
import json, sys, time
sys.path[:0] = json.loads(sys.argv[1])
import importlib
t0, c0 = time.perf_counter(), time.process_time()
module = importlib.import_module(sys.argv[2])
t1, c1 = time.perf_counter(), time.process_time()
error = None
try:
    if sys.argv[3:] != ["import-only"]:
        module.service()
except Exception as exc:
    error = f"{type(exc).__name__}: {exc}"
t2, c2 = time.perf_counter(), time.process_time()
print("BENCH " + json.dumps({"import_ms": (t1 - t0) * 1e3, "service_ms": (t2 - t1) * 1e3, "import_cpu_ms": (c1 - c0) * 1e3,
                             "service_cpu_ms": (c2 - c1) * 1e3, "error": error, "modules": len(sys.modules)}), flush=True)
"""

LAMBDA_RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")


def lambda_env(function: str, task_root: Path) -> dict[str, str]:
    """The environment Lambda gives a handler at import (template.yaml's variables, Lambda's own)."""
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
    env.update({
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_SESSION_TOKEN": "bench",
        "AWS_LAMBDA_FUNCTION_NAME": f"pinrelay-{function}", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/pinrelay-{function}", "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR", "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        "POWERTOOLS_SERVICE_NAME": "pinrelay", "POWERTOOLS_METRICS_NAMESPACE": "Pinrelay", "LOG_LEVEL": "INFO",
        "DEDUP_TABLE_NAME": "pinrelay-dedup", "PINTEREST_AD_ACCOUNT_ID": AD_ACCOUNT,
        "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/pinrelay-events",
        "INGEST_API_KEY_SECRET_NAME": "pinrelay/ingest-api-key",
        "SHOPIFY_WEBHOOK_SECRET_NAME": "pinrelay/shopify-webhook-secret", "DEDUP_WINDOW_SECONDS": "86400",
        "PINTEREST_API_URL": "https://api.pinterest.com/v5",
        "PINTEREST_CONVERSION_TOKEN_SECRET_NAME": "pinrelay/pinterest-conversion-token",
        "PINTEREST_TEST_MODE": "false", "PINTEREST_TIMEOUT_SECONDS": "10", "SENDER_MAX_ATTEMPTS": "4",
    })
    return env


def _site_packages() -> Path:
    import sysconfig

    return Path(sysconfig.get_paths()["purelib"])


def runtime_packages_dir(base: Path) -> Path:
    """What the python3.13 Lambda runtime brings (boto3 & co.): links to this venv's copies."""
    target = base / "runtime"
    target.mkdir(parents=True, exist_ok=True)
    site = _site_packages()
    for name in LAMBDA_RUNTIME_PACKAGES:
        for candidate in (site / name, site / f"{name}.py"):
            link = target / candidate.name
            if candidate.exists() and not link.exists():
                link.symlink_to(candidate)
    return target


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.py")) if "__pycache__" not in p.parts}


def build_staleness(build: Path) -> dict[str, Any]:
    """Files of the sources that differ from (or are missing in) .aws-sam/build."""
    differing: list[str] = []
    pairs = [(REPO_ROOT / "layers/pinrelay/pinrelay", build / "PinrelayLayer/python/pinrelay"),
             (REPO_ROOT / "functions/ingest", build / "IngestFunction"), (REPO_ROOT / "functions/sender", build / "SenderFunction")]
    for source, built in pairs:
        theirs = _tree_digest(built) if built.is_dir() else {}
        for name, digest in _tree_digest(source).items():
            if theirs.get(name) != digest:
                differing.append(f"{source.relative_to(REPO_ROOT)}/{name}")
    requirements_built = (build / "PinrelayLayer/python/requirements.txt")
    requirements_same = (requirements_built.is_file() and requirements_built.read_bytes()
                         == (REPO_ROOT / "layers/pinrelay/requirements.txt").read_bytes())
    return {"stale_files": differing, "requirements_same": requirements_same}


def build_x86_layout(say: Callable[[str], None], base: Path = Path("/tmp/bench-layer")) -> dict[str, Path]:
    """The artifact's layout with this machine's wheels: layer python/ (pip --target, x86_64 wheels,
    our pinrelay), the two function folders, compiled with unchecked-hash .pyc like `make build`."""
    requirements = REPO_ROOT / "layers/pinrelay/requirements.txt"
    layer = base / "python"
    stamp_file = base / ".requirements.sha256"
    stamp = hashlib.sha256(requirements.read_bytes() + b"cp313-manylinux2014_x86_64").hexdigest()
    if not layer.is_dir() or not stamp_file.is_file() or stamp_file.read_text() != stamp:
        say(f"[bench]   cold: pip install --target {layer} (x86_64 wheels of layers/pinrelay/requirements.txt)")
        shutil.rmtree(layer, ignore_errors=True)
        layer.mkdir(parents=True)
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-warn-conflicts",
             "--target", str(layer), "-r", str(requirements), "--platform", "manylinux2014_x86_64",
             "--only-binary=:all:", "--python-version", "3.13", "--implementation", "cp"],
            capture_output=True, text=True, timeout=600,
        )
        if done.returncode != 0:
            raise RuntimeError(f"pip install --target {layer} failed:\n{done.stderr[-3000:]}")
        subprocess.run([sys.executable, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", str(layer)],
                       check=False, timeout=600, stdout=subprocess.DEVNULL)
        stamp_file.write_text(stamp)
    shutil.rmtree(layer / "pinrelay", ignore_errors=True)
    shutil.copytree(REPO_ROOT / "layers/pinrelay/pinrelay", layer / "pinrelay", ignore=shutil.ignore_patterns("__pycache__"))
    functions = {}
    for name, source in (("IngestFunction", "functions/ingest"), ("SenderFunction", "functions/sender")):
        target = base / name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(REPO_ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
        functions[name] = target
    fresh = [str(layer / "pinrelay")] + [str(path) for path in functions.values()]
    subprocess.run([sys.executable, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", *fresh],
                   check=False, timeout=600, stdout=subprocess.DEVNULL)
    return {"layer": layer, **functions}


def _cold_once(paths: list[str], module: str, env: dict[str, str], isolated: bool) -> dict[str, Any]:
    command = [sys.executable]
    if isolated:
        command += ["-I", "-S"]  # the runtime's path only: no site-packages of this venv
    command += ["-c", _COLD_SCRIPT, json.dumps(paths), module]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    process_ms = (time.perf_counter() - started) * 1e3
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("BENCH "):
            data = json.loads(line[6:])
            data["process_ms"] = process_ms
            return data
    raise RuntimeError(f"import of {module} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")


def importtime_top(paths: list[str], module: str, env: dict[str, str], isolated: bool, top: int = 10) -> list[dict[str, Any]]:
    command = [sys.executable, "-X", "importtime"] + (["-I", "-S"] if isolated else [])
    command += ["-c", _COLD_SCRIPT, json.dumps(paths), module, "import-only"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    rows = []
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if match:
            rows.append({"module": match.group(4), "self_ms": int(match.group(1)) / 1e3,
                         "cumulative_ms": int(match.group(2)) / 1e3, "depth": len(match.group(3)) // 2})
    # importlib.import_module does not report the handler itself: depth 0 = imported by the handler
    rows = [row for row in rows if row["module"] != module]
    return sorted(rows, key=lambda row: row["cumulative_ms"], reverse=True)[:top]


def bench_cold(quick: bool, say: Callable[[str], None], build: bool) -> dict[str, Any]:
    runs = 3 if quick else 7
    machine = platform.machine().lower()
    build_dir = REPO_ROOT / ".aws-sam" / "build"
    results: dict[str, Any] = {"machine": machine, "runs": runs}
    if not build_dir.is_dir() and build:
        say("[bench]   cold: .aws-sam/build missing: make build")
        subprocess.run(["make", "build"], cwd=REPO_ROOT, check=True, timeout=900)
    if build_dir.is_dir():
        results["aws_sam_build"] = build_staleness(build_dir)
    base = Path(tempfile.gettempdir()) / "bench-layer"
    if machine in ("aarch64", "arm64"):
        layout = {"layer": build_dir / "PinrelayLayer/python", "IngestFunction": build_dir / "IngestFunction",
                  "SenderFunction": build_dir / "SenderFunction"}
        results["artifact"] = ".aws-sam/build as built by make build"
    else:
        layout = build_x86_layout(say, base)
        results["artifact"] = f"{base}: same layout as .aws-sam/build, with this machine's ({machine}) wheels"
    runtime = runtime_packages_dir(base)
    results["layer_mb"] = sum(p.stat().st_size for p in Path(layout["layer"]).rglob("*") if p.is_file()) / 1e6
    for function, module, fn_key in (("ingest", "ingest_handler", "IngestFunction"), ("sender", "sender_handler", "SenderFunction")):
        entry: dict[str, Any] = {}
        dev_paths = [str(REPO_ROOT / "functions" / function), str(REPO_ROOT / "layers" / "pinrelay")]
        ship_paths = [str(layout[fn_key]), str(layout["layer"]), str(runtime)]
        layouts = [("artifact", ship_paths, True, Path(layout[fn_key]))]
        if not quick:  # --quick: the artifact only
            layouts.append(("dev", dev_paths, False, REPO_ROOT / "functions" / function))
        for label, paths, isolated, task_root in layouts:
            env = lambda_env(function, task_root)
            if label == "artifact":
                env["PYTHONDONTWRITEBYTECODE"] = "1"  # /var/task and /opt are read-only on Lambda
            _cold_once(paths, module, env, isolated)  # warm the OS page cache (and dev .pyc)
            samples = [_cold_once(paths, module, env, isolated) for _ in range(runs)]
            entry[label] = {
                "import_ms": statistics.median(s["import_ms"] for s in samples),
                "import_ms_min": min(s["import_ms"] for s in samples),
                "import_cpu_ms": statistics.median(s["import_cpu_ms"] for s in samples),
                "service_ms": statistics.median(s["service_ms"] for s in samples),
                "service_cpu_ms": statistics.median(s["service_cpu_ms"] for s in samples),
                "process_ms": statistics.median(s["process_ms"] for s in samples),
                "modules": samples[0]["modules"],
                "service_error": samples[0]["error"],
            }
        entry["importtime_top"] = importtime_top(ship_paths, module, lambda_env(function, Path(layout[fn_key])), True)
        results[function] = entry
    return results


# ------------------------------------------------------------------------------------------
# Bill scenarios from the measurements
# ------------------------------------------------------------------------------------------


def ingest_duration_ms(results: dict[str, Any], events: int) -> dict[str, float]:
    handler = results.get("handler", {}).get(str(events)) or {}
    cpu = handler.get("handler_cpu_ms")
    if cpu is None:
        cpu = (results.get("ingest_cpu", {}).get(str(events)) or {}).get("full_ms", 0.0)
    sdk = results.get("sdk_cpu")
    sdk_ms = sdk_cpu_ms_ingest(sdk, events) if sdk else 0.0
    io = MODEL_ASSUMPTIONS["io_ms"]
    workers = MODEL_ASSUMPTIONS["claim_workers"]
    io_ms = math.ceil(events / workers) * io["dynamodb_put_item"] + math.ceil(events / 10) * io["sqs_send_message_batch"]
    return {"cpu_ms": cpu + sdk_ms, "io_ms": io_ms}


def sender_duration_ms(results: dict[str, Any], events: float) -> dict[str, float]:
    sender = results.get("sender") or {}
    big, small = sender.get("cpu_ms_per_invocation_1000"), sender.get("cpu_ms_per_invocation_5")
    if big is not None and small is not None:
        per_event = max(0.0, (big - small) / 995)
        cpu = small + per_event * (events - 5)
    else:
        cpu = 0.0
    sdk = results.get("sdk_cpu")
    whole = max(1, math.ceil(events))
    sdk_ms = sdk_cpu_ms_sender(sdk, whole) if sdk else 0.0
    io = MODEL_ASSUMPTIONS["io_ms"]
    requests = math.ceil(whole / 1000)
    io_ms = (math.ceil(whole / 100) + math.ceil(whole / 25)) * io["dynamodb_batch"] + requests * io["pinterest_request_base"] \
        + whole * io["pinterest_request_per_event"]
    return {"cpu_ms": max(0.0, cpu) + sdk_ms, "io_ms": io_ms}


def scenario_usage(results: dict[str, Any], scenario: str, cpu_scale: float = 1.0,
                   front_door: str = "http_api") -> tuple[Usage, dict[str, Any]]:
    """Usage per million events for ``webhook`` (1 event per POST) or ``batch`` (1000 per POST),
    through the HTTP API or a Lambda Function URL (no per-request price, no access log)."""
    if front_door not in FRONT_DOORS:
        raise ValueError(f"front_door must be one of {FRONT_DOORS}")
    http_api = front_door == "http_api"
    a = MODEL_ASSUMPTIONS
    rate = a["rate_events_per_s"]
    local = results.get("local") or {}
    per_post = 1 if scenario == "webhook" else 1000
    phase = (local.get("trickle") or local.get("singles")) if scenario == "webhook" else local.get("batch")
    if not phase:
        raise RuntimeError("the local stack section did not run: no AWS call counts for the bill")
    handler = (results.get("handler") or {}).get(str(per_post)) or {}
    body_bytes = handler.get("body_bytes") or phase.get("body_bytes_per_post") or 0
    posts = 1e6 / per_post
    ingest = ingest_duration_ms(results, per_post)
    ingest_ms = billed_ms(ingest["cpu_ms"] * cpu_scale + ingest["io_ms"])
    if scenario == "batch":
        events_per_sender = 1000.0  # Lambda with BatchSize 1000 and 1000 messages queued at once
    else:
        events_per_sender = max(1.0, phase.get("events_per_sender_invocation") or 1.0)
    sender_invocations = 1e6 / events_per_sender
    sender = sender_duration_ms(results, events_per_sender)
    sender_ms = billed_ms(sender["cpu_ms"] * cpu_scale + sender["io_ms"])
    per_event = phase["per_1000_events"]
    if scenario == "batch":
        poller = 2 * math.ceil(1000 / 10) / 1000 * 1000  # Lambda's poller: ReceiveMessage + DeleteMessageBatch per 10
    else:
        poller = per_event["sqs_poller_receives_with_messages"] + per_event["sqs_poller_deletes"]
    sqs_requests = (per_event["sqs_ingest_billable"] + poller) * 1000
    cold = results.get("cold") or {}
    init_ms = 0.0
    for function, invocations in (("ingest", posts), ("sender", sender_invocations)):
        artifact = (cold.get(function) or {}).get("artifact") or {}
        init_ms += a["cold_start_fraction"] * invocations * (artifact.get("import_ms", 0.0) * cpu_scale)
    observe = template_observability()
    platform_bytes = a["platform_log_bytes_per_invocation"] * (
        posts * observe["ingest"]["platform_logs"] + sender_invocations * observe["sender"]["platform_logs"])
    access_bytes = access_log_bytes() * posts if http_api else 0
    log_bytes = phase["log_bytes_per_event"] * 1e6 + platform_bytes + access_bytes
    secrets = max(1, int(local.get("secret_ids_read") or 2))
    ingest_rate = rate / per_post
    sender_rate = rate / events_per_sender
    ingest_traced = observe["ingest"]["traced"] * xray_sampled_fraction(
        ingest_rate, observe["ingest"]["reservoir_per_s"], observe["ingest"]["fixed_rate"])
    sender_traced = observe["sender"]["traced"] * xray_sampled_fraction(
        sender_rate, observe["sender"]["reservoir_per_s"], observe["sender"]["fixed_rate"])
    xray = posts * ingest_traced + sender_invocations * sender_traced
    usage = Usage(
        http_requests=posts * http_billable_requests(body_bytes) if http_api else 0.0,
        ingest_invocations=posts,
        ingest_billed_ms=ingest_ms,
        sender_invocations=sender_invocations,
        sender_billed_ms=sender_ms,
        init_billed_ms=init_ms,
        sqs_requests=sqs_requests,
        dynamodb_wru=per_event["dynamodb_wcu"] * 1000,
        dynamodb_rru=per_event["dynamodb_rcu"] * 1000,
        log_bytes=log_bytes,
        secrets_calls=secrets_calls_per_million(secrets, rate, a["secrets_max_age_s"], a["warm_containers_per_secret"],
                                                a["seconds_per_month"]),
        xray_traces=xray,
        memory_mb=a["memory_mb"],
    )
    detail = {
        "front_door": front_door,
        "events_per_post": per_post, "body_bytes": body_bytes, "ingest_duration": ingest, "sender_duration": sender,
        "log_bytes_app_per_event": phase["log_bytes_per_event"], "log_bytes_platform": platform_bytes,
        "log_bytes_access": access_bytes,
        "events_per_sender_invocation": events_per_sender, "secrets": secrets,
        "xray_fraction_ingest": ingest_traced, "xray_fraction_sender": sender_traced, "template": observe,
        "measured_in_phase": "trickle" if scenario == "webhook" and local.get("trickle") else ("singles" if scenario == "webhook" else "batch"),
    }
    return usage, detail


_ACCESS_LOG_SAMPLE = {
    "requestId": "JKJaXmPLvHcESHA=", "identity.sourceIp": "203.0.113.7", "requestTime": "29/Nov/2026:18:15:28 +0000",
    "httpMethod": "POST", "path": "/webhooks/shopify", "status": "202", "responseLength": "201",
    "integrationErrorMessage": "-", "responseLatency": "38",
}


def template_observability(template: Path = REPO_ROOT / "template.yaml") -> dict[str, Any]:
    """What template.yaml says about tracing and Lambda's platform log lines, per function:
    ``{"ingest": {"traced": bool, "reservoir_per_s", "fixed_rate", "platform_logs": bool}, "sender": {...}}``."""
    from pinrelay_local.lint_template import load_template

    a = MODEL_ASSUMPTIONS
    resources = load_template(template).get("Resources", {})
    globals_fn = (load_template(template).get("Globals", {}) or {}).get("Function", {}) or {}
    rules = [r["Properties"]["SamplingRule"] for r in resources.values() if r.get("Type") == "AWS::XRay::SamplingRule"]
    out: dict[str, Any] = {}
    for short, logical in (("ingest", "IngestFunction"), ("sender", "SenderFunction")):
        props = resources.get(logical, {}).get("Properties", {})
        tracing = props.get("Tracing", globals_fn.get("Tracing", "PassThrough"))
        rule = next((r for r in rules if r.get("ServiceName") == {"Ref": logical}), None)
        system_level = (props.get("LoggingConfig") or {}).get("SystemLogLevel", "INFO")
        out[short] = {
            "traced": tracing == "Active",
            "reservoir_per_s": float(rule["ReservoirSize"]) if rule else a["xray_reservoir_per_s"],
            "fixed_rate": float(rule["FixedRate"]) if rule else a["xray_fixed_rate"],
            "platform_logs": system_level in ("DEBUG", "INFO"),
        }
    return out


def access_log_bytes(template: Path = REPO_ROOT / "template.yaml") -> int:
    """Bytes of one HTTP API access log line, from the template's AccessLogSettings Format."""
    try:
        text = template.read_text(encoding="utf-8")
    except OSError:
        return 0
    match = re.search(r"AccessLogSettings:.*?Format:\s*(?:>-|>|\|)?\s*\n?\s*(\{.*?\})\s*$", text, re.S | re.M)
    if not match:
        return 0
    line = re.sub(r"\$context\.([A-Za-z.]+)", lambda m: _ACCESS_LOG_SAMPLE.get(m.group(1), "-"), match.group(1))
    return len(line.encode("utf-8")) + 1


def bench_bill(results: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"prices": PRICES_US_EAST_1, "prices_taken": PRICES_TAKEN, "prices_sources": PRICES_SOURCES,
                           "assumptions": MODEL_ASSUMPTIONS}
    slow = 1 / MODEL_ASSUMPTIONS["vcpu_fraction_at_memory"]
    for name, scenario, front_door in (("webhook", "webhook", "http_api"), ("webhook_function_url", "webhook", "function_url"),
                                       ("batch", "batch", "http_api")):
        usage, detail = scenario_usage(results, scenario, front_door=front_door)
        slow_usage, _ = scenario_usage(results, scenario, cpu_scale=slow, front_door=front_door)
        out[name] = {"usage": asdict(usage), "lines": bill(usage), "detail": detail,
                         "total_if_cpu_at_256mb": bill(slow_usage)["total"],
                         "lambda_if_cpu_at_256mb": bill(slow_usage)["lambda_duration"]}
    return out


# ------------------------------------------------------------------------------------------
# Profiles
# ------------------------------------------------------------------------------------------


def profile_hot_paths(say: Callable[[str], None], counter: ByteCounter) -> str:
    import cProfile
    import pstats

    from pinrelay_local.http_gateway import LambdaContext, build_http_api_event

    now = int(time.time())
    body = request_body(make_events(1000, now, seed=21, prefix="profile"))
    report = io.StringIO()
    with patched_environ(_bench_env(), remove=_ENV_REMOVE):
        service = fake_ingest_service()
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(3):
            service.store = MemoryDedupStore()
            ingest_work(service, body)
        profiler.disable()
        report.write("== json.loads + IngestService.ingest_api_events, 3 x 1000 events (tottime) ==\n")
        pstats.Stats(profiler, stream=report).sort_stats("tottime").print_stats(25)
        report.write("== same, cumulative ==\n")
        pstats.Stats(profiler, stream=report).sort_stats("cumulative").print_stats(30)
        handler = _fresh_handler("ingest_handler")
        holder = {"svc": fake_ingest_service()}
        handler.service = lambda *args, **kwargs: holder["svc"]
        event = build_http_api_event(method="POST", raw_path="/events", raw_query="",
                                     header_pairs=[("x-api-key", BENCH_API_KEY)], body=body, source_ip="203.0.113.7",
                                     route_key="POST /events")
        profiler = cProfile.Profile()
        for _ in range(3):
            holder["svc"] = fake_ingest_service()
            profiler.enable()
            handler.lambda_handler(event, LambdaContext("pinrelay-ingest"))
            profiler.disable()
        report.write("== ingest lambda_handler, 3 x 1000 events (cumulative) ==\n")
        pstats.Stats(profiler, stream=report).sort_stats("cumulative").print_stats(30)
        singles = [build_http_api_event(method="POST", raw_path="/events", raw_query="",
                                        header_pairs=[("x-api-key", BENCH_API_KEY)], body=request_body([e]),
                                        source_ip="203.0.113.7", route_key="POST /events")
                   for e in make_events(300, now, seed=22, prefix="profile1")]
        holder["svc"] = fake_ingest_service()
        profiler = cProfile.Profile()
        profiler.enable()
        for single in singles:
            handler.lambda_handler(single, LambdaContext("pinrelay-ingest"))
        profiler.disable()
        report.write("== ingest lambda_handler, 300 x 1-event requests (tottime) ==\n")
        pstats.Stats(profiler, stream=report).sort_stats("tottime").print_stats(30)
        report.write("== same, cumulative ==\n")
        pstats.Stats(profiler, stream=report).sort_stats("cumulative").print_stats(40)
        sys.modules.pop("ingest_handler", None)
    return report.getvalue()


# ------------------------------------------------------------------------------------------
# Targets, table, markdown
# ------------------------------------------------------------------------------------------


def _get(results: dict[str, Any], *path: str) -> Any:
    node: Any = results
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def evaluate_targets(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    local = results.get("local") or {}
    writes = [local[p]["dynamodb_writes_per_event"] for p in ("batch", "singles") if p in local]
    values = {
        "ingest_cpu_ratio_1000": _get(results, "ingest_cpu", "1000", "ratio"),
        "cold_import_ingest_ms": _get(results, "cold", "ingest", "artifact", "import_ms"),
        "cold_import_sender_ms": _get(results, "cold", "sender", "artifact", "import_ms"),
        "sender_events_per_request": _get(results, "sender", "events_per_request"),
        "trickle_p99_s": _get(results, "local", "trickle", "latency_p99_s"),
        "dynamodb_writes_per_event": max(writes) if writes else None,
        "sqs_ingest_requests_per_event_batch": _get(results, "local", "batch", "sqs_ingest_requests_per_event"),
        "bill_webhook_per_million": _get(results, "bill", "webhook", "lines", "total"),
        "bill_webhook_function_url_per_million": _get(results, "bill", "webhook_function_url", "lines", "total"),
        "bill_batch_per_million": _get(results, "bill", "batch", "lines", "total"),
    }
    out = {}
    for name, (op, limit) in TARGETS.items():
        value = values[name]
        ok = None if value is None else (value <= limit if op == "<=" else value >= limit)
        out[name] = {"value": value, "target": f"{op} {limit:g}", "ok": ok}
    return out


def _fmt(value: Any, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:,.{digits}f}{unit}"
    return f"{value}{unit}"


def table_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(metric, value, target, status) rows of the one table."""
    targets = results.get("targets") or {}
    rows: list[tuple[str, str, str, str]] = []

    def status(name: str) -> str:
        ok = (targets.get(name) or {}).get("ok")
        return "n/a" if ok is None else ("ok" if ok else "MISSED")

    def target(name: str) -> str:
        return (targets.get(name) or {}).get("target", "")

    g = lambda *p: _get(results, *p)  # noqa: E731
    rows.append(("ingest CPU, 1-event request (µs/event)", f"{_fmt(g('ingest_cpu', '1', 'full_us_per_event'))} "
                 f"(floor {_fmt(g('ingest_cpu', '1', 'floor_us_per_event'))}, {_fmt(g('ingest_cpu', '1', 'ratio'))}x)", "", ""))
    rows.append(("ingest CPU, 1000-event request (µs/event)", f"{_fmt(g('ingest_cpu', '1000', 'full_us_per_event'))} "
                 f"(floor {_fmt(g('ingest_cpu', '1000', 'floor_us_per_event'))})", "", ""))
    rows.append(("ingest CPU / floor, 1000 events", _fmt(g("ingest_cpu", "1000", "ratio"), 1, "x"),
                 target("ingest_cpu_ratio_1000"), status("ingest_cpu_ratio_1000")))
    rows.append(("handler overhead, 1-event request (ms)", f"{_fmt(g('handler', '1', 'overhead_ms'), 3)} "
                 f"(handler {_fmt(g('handler', '1', 'handler_cpu_ms'), 3)} CPU)", "", ""))
    rows.append(("handler overhead, 1000-event request (ms)", f"{_fmt(g('handler', '1000', 'overhead_ms'), 1)} "
                 f"(handler {_fmt(g('handler', '1000', 'handler_cpu_ms'), 1)} CPU)", "", ""))
    rows.append(("AWS SDK CPU per PutItem / SendMessageBatch (µs)", f"{_fmt(g('sdk_cpu', 'put_item_us'), 0)} / "
                 f"{_fmt(g('sdk_cpu', 'send_message_batch_us'), 0)} (claim pool +{_fmt(g('sdk_cpu', 'claim_pool_overhead_us_per_claim'), 0)}/claim)", "", ""))
    for function in ("ingest", "sender"):
        name = f"cold_import_{function}_ms"
        rows.append((f"cold start: import {function}_handler (ms), as shipped",
                     f"{_fmt(g('cold', function, 'artifact', 'import_ms'), 0)} (CPU {_fmt(g('cold', function, 'artifact', 'import_cpu_ms'), 0)}; "
                     f"dev tree {_fmt(g('cold', function, 'dev', 'import_ms'), 0)}; "
                     f"+{_fmt(g('cold', function, 'artifact', 'service_ms'), 0)} first service())", target(name), status(name)))
    rows.append(("sender: events per Pinterest request (10 000 queued)", _fmt(g("sender", "events_per_request"), 1),
                 target("sender_events_per_request"), status("sender_events_per_request")))
    rows.append(("trickle 5 ev/s: accept -> delivery p50 / p99 (s)",
                 f"{_fmt(g('local', 'trickle', 'latency_p50_s'), 2)} / {_fmt(g('local', 'trickle', 'latency_p99_s'), 2)}",
                 target("trickle_p99_s"), status("trickle_p99_s")))
    for phase, label in (("batch", "1 post of 1000"), ("singles", "single posts")):
        per = g("local", phase, "per_1000_events") or {}
        rows.append((f"AWS calls per 1000 events, {label}",
                     f"SQS ingest {_fmt(per.get('sqs_ingest_requests'), 0)}, poller {_fmt((per.get('sqs_poller_receives_with_messages') or 0) + (per.get('sqs_poller_deletes') or 0), 0)}; "
                     f"DDB writes {_fmt(per.get('dynamodb_write_requests'), 0)} reqs/{_fmt(per.get('dynamodb_items_written'), 0)} items "
                     f"({_fmt(per.get('dynamodb_wcu'), 0)} WCU), reads {_fmt(per.get('dynamodb_read_requests'), 0)} reqs "
                     f"({_fmt(per.get('dynamodb_rcu'), 0)} RCU); secrets {_fmt(per.get('secretsmanager_calls'), 1)}", "", ""))
    rows.append(("DynamoDB writes per event", _fmt(targets.get("dynamodb_writes_per_event", {}).get("value"), 2),
                 target("dynamodb_writes_per_event"), status("dynamodb_writes_per_event")))
    rows.append(("SQS requests per event at ingest, batch posts", _fmt(g("local", "batch", "sqs_ingest_requests_per_event"), 3),
                 target("sqs_ingest_requests_per_event_batch"), status("sqs_ingest_requests_per_event_batch")))
    rows.append(("log bytes per event (INFO, metrics on): webhook / batch",
                 f"{_fmt(g('local', 'trickle', 'log_bytes_per_event'), 0)} / {_fmt(g('local', 'batch', 'log_bytes_per_event'), 0)}", "", ""))
    for scenario, label in (("webhook", "1 event/request, HTTP API"), ("webhook_function_url", "1 event/request, Function URL"),
                            ("batch", "1000 events/request, HTTP API")):
        name = f"bill_{scenario}_per_million"
        lines = g("bill", scenario, "lines") or {}
        top = sorted(((k, v) for k, v in lines.items() if k != "total"), key=lambda kv: kv[1], reverse=True)[:3]
        detail = ", ".join(f"{k} {v:.2f}" for k, v in top)
        rows.append((f"modeled bill per million events, {label} ($)",
                     f"{_fmt(lines.get('total'), 2)} ({detail}; {_fmt(g('bill', scenario, 'total_if_cpu_at_256mb'), 2)} if CPU runs at 256 MB speed)",
                     target(name), status(name)))
    return rows


def render_table(rows: list[tuple[str, str, str, str]]) -> str:
    widths = [max(len(r[i]) for r in rows + [("metric", "value", "target", "status")]) for i in range(4)]
    widths[1] = min(widths[1], 110)
    lines = []
    header = ("metric", "value", "target", "status")
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))
    return "\n".join(lines)


def render_markdown(rows: list[tuple[str, str, str, str]], results: dict[str, Any]) -> str:
    meta = results.get("meta") or {}
    git = meta.get("git") or {}
    out = [f"Measured by `make bench` on {meta.get('date', '?')} ({meta.get('machine', '?')}, {meta.get('cpus', '?')} CPUs, "
           f"Python {meta.get('python', '?')}{', --quick' if meta.get('quick') else ''}; commit {git.get('head', '?')}"
           f"{' + ' + str(git.get('changed_files')) + ' changed files' if git.get('changed_files') else ''}); "
           f"prices us-east-1 as of {PRICES_TAKEN}.", "",
           "| metric | value | target | |", "|---|---|---|---|"]
    for metric, value, target, status in rows:
        mark = {"ok": "✅", "MISSED": "❌"}.get(status, "")
        out.append(f"| {metric} | {value.replace('|', '/')} | {target} | {mark} |")
    return "\n".join(out)


# ------------------------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------------------------

SECTIONS = ("ingest", "handler", "sender", "local", "cold")


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def _git_state() -> dict[str, Any]:
    """What was measured: the commit and how many files differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO_ROOT, capture_output=True, text=True,
                               timeout=10).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"head": head, "changed_files": len(dirty)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pinrelay_local.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and a shorter trickle (under a minute)")
    parser.add_argument("--json", metavar="PATH", help="write every number, the assumptions and the prices as JSON")
    parser.add_argument("--markdown", action="store_true", help="also print the table as markdown (for the README)")
    parser.add_argument("--profile", action="store_true", help="also print cProfile of the ingest hot paths")
    parser.add_argument("--only", metavar="LIST", help=f"comma-separated sections: {','.join(SECTIONS)}")
    parser.add_argument("--no-build", action="store_true", help="never run `make build` for the cold-start section")
    args = parser.parse_args(argv)
    only = set(args.only.split(",")) if args.only else set(SECTIONS)
    unknown = only - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")

    import warnings

    warnings.filterwarnings("ignore", message="No application metrics to publish")
    real_stdout = sys.stdout
    counter = ByteCounter()

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    started = time.monotonic()
    results: dict[str, Any] = {"meta": {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.machine(),
        "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
        "quick": args.quick, "sections": sorted(only), "load_average_at_start": _load_average(), "git": _git_state(),
    }}
    sys.stdout = counter  # the handlers' log lines are counted here, not shown
    try:
        layer = str(REPO_ROOT / "layers" / "pinrelay")
        if layer not in sys.path:
            sys.path.insert(0, layer)
        if "ingest" in only:
            with patched_environ(_bench_env(), remove=_ENV_REMOVE):
                with _Section(results, "ingest", say):
                    results["ingest_cpu"] = bench_ingest_cpu(args.quick)
                with _Section(results, "sdk", say):
                    results["sdk_cpu"] = bench_sdk_cpu(args.quick)
        if "handler" in only:
            with _Section(results, "handler", say):
                results["handler"] = bench_handler(args.quick, counter)
        if "sender" in only:
            with _Section(results, "sender", say):
                results["sender"] = bench_sender(args.quick, counter)
        if "local" in only:
            with _Section(results, "local", say):
                results["local"] = bench_local(args.quick, counter, say)
        if "cold" in only:
            with _Section(results, "cold", say):
                results["cold"] = bench_cold(args.quick, say, build=not args.no_build)
        with _Section(results, "bill", say):
            results["bill"] = bench_bill(results)
        profile_text = ""
        if args.profile:
            with _Section(results, "profile", say):
                profile_text = profile_hot_paths(say, counter)
    finally:
        sys.stdout = real_stdout
    results["targets"] = evaluate_targets(results)
    results["meta"]["seconds"] = round(time.monotonic() - started, 1)
    results["meta"]["load_average"] = _load_average()
    rows = table_rows(results)
    results["markdown"] = render_markdown(rows, results)
    print(render_table(rows))
    load = results["meta"].get("load_average")
    if load and os.cpu_count() and max(load) > os.cpu_count() * 0.75:
        print(f"note: load average {load} on {os.cpu_count()} CPUs while measuring: timings are inflated; run again on an idle machine")
    missed = [name for name, t in results["targets"].items() if t["ok"] is False]
    print(f"\n{len(missed)} target(s) missed{': ' + ', '.join(missed) if missed else ''}; "
          f"{len(results.get('errors', {}))} section(s) failed; {results['meta']['seconds']} s")
    for name, text in (results.get("errors") or {}).items():
        print(f"\n[{name}] failed:\n{text}", file=sys.stderr)
    if args.markdown:
        print()
        print(results["markdown"])
    if profile_text:
        print()
        print(profile_text)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"wrote {args.json}", file=sys.stderr)
    return 1 if results.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
