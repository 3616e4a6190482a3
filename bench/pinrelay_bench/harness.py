"""What every measurement of the bench shares.

* ``median_cpu``: the median of many timed samples (``time.process_time`` by default), each after a
  ``gc.collect()`` and an untimed setup;
* ``ByteCounter``: stands in for ``sys.stdout`` while the handlers run and counts the bytes they log
  (Powertools Logger and Metrics write JSON lines to stdout, as on Lambda), split by function
  (ingest or sender, from the handler module on the writing thread's stack) and by kind (EMF
  metrics document or log line);
* the handlers' environment (``bench_env``) and a fresh import of a handler module;
* in-memory fakes: a queue that keeps the bodies, the real ``IngestService`` over it.
"""

from __future__ import annotations

import contextlib
import gc
import io
import math
import os
import statistics
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from pinrelay_bench import REPO_ROOT

AD_ACCOUNT = "549755885175"
BENCH_API_KEY = "bench-ingest-key-long-enough-to-resist-guessing"
BENCH_WOO_SECRET = "bench woo secret, commas included, 50 characters.."
BENCH_TOKEN = "bench-conversion-token"
# one platform's fetcher works in a phase: the Stripe line-items fetcher's scheduled runs go on in
# every phase, but outside the Stripe phase they find its queue empty (one empty receive, on its
# own queue, which aws_calls counts apart; no log line, no metric)
HANDLER_FUNCTIONS = {"ingest_handler": "ingest", "sender_handler": "sender", "bigcommerce_fetch_handler": "fetcher",
                     "stripe_line_items_handler": "fetcher"}


# ------------------------------------------------------------------------------------------
# timing
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


# ------------------------------------------------------------------------------------------
# log bytes
# ------------------------------------------------------------------------------------------


def function_on_stack(skip: int = 1) -> str:
    """``ingest``, ``sender`` or ``fetcher`` when a handler module of that function is on the calling thread's
    stack - its own code, or a Powertools decorator wrapping its ``lambda_handler`` (the metrics
    decorator flushes after the handler has returned) - else ``other`` (worker threads of a pool
    show no handler frame)."""
    frame: Any = sys._getframe(skip)
    while frame is not None:
        name = frame.f_globals.get("__name__") or ""
        if name in HANDLER_FUNCTIONS:
            return HANDLER_FUNCTIONS[name]
        if name.startswith("aws_lambda_powertools"):
            wrapped = getattr(frame.f_locals.get("lambda_handler"), "__module__", None)
            if wrapped in HANDLER_FUNCTIONS:
                return HANDLER_FUNCTIONS[wrapped]
        frame = frame.f_back
    return "other"


class ByteCounter(io.TextIOBase):
    """Stands in for sys.stdout while handlers run: counts what they log and throws it away.

    ``bytes`` / ``lines`` are the totals; ``by_source`` counts bytes per (function, kind) where
    kind is ``metrics`` (an EMF document: it has ``"_aws"``) or ``log``; ``samples`` keeps the first
    two writes of each (function, kind). A write of only whitespace (``print`` sends the newline
    separately) belongs to the previous write of the same thread."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._last_kind = threading.local()
        self.bytes = 0
        self.lines = 0
        self.by_source: Counter[str] = Counter()
        self.lines_by_source: Counter[str] = Counter()
        self.samples: dict[str, list[str]] = {}
        self.keep = 0  # while > 0, keep that many writes as samples (kept)
        self.kept: list[str] = []

    def write(self, text: str) -> int:
        size = len(text.encode("utf-8", "replace"))
        if text.strip():
            kind = "metrics" if '"_aws"' in text else "log"
            source = f"{function_on_stack(2)}:{kind}"
            self._last_kind.source = source
        else:
            source = getattr(self._last_kind, "source", "other:log")
        with self._lock:
            self.bytes += size
            newlines = text.count("\n")
            self.lines += newlines
            self.by_source[source] += size
            self.lines_by_source[source] += newlines
            if text.strip():
                kept = self.samples.setdefault(source, [])
                if len(kept) < 2:
                    kept.append(text)
                if self.keep > 0:
                    self.kept.append(text)
                    self.keep -= 1
        return len(text)

    def snapshot(self) -> tuple[int, Counter[str], Counter[str]]:
        with self._lock:
            return self.bytes, Counter(self.by_source), Counter(self.lines_by_source)

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False


# ------------------------------------------------------------------------------------------
# the handlers' environment
# ------------------------------------------------------------------------------------------


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


def bench_env(**extra: str) -> dict[str, str]:
    """What the handlers see when the bench calls them directly (no moto: the queue and ledger are fakes)."""
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


ENV_REMOVE = ("AWS_ENDPOINT_URL", "POWERTOOLS_METRICS_DISABLED", "INGEST_API_KEY_SECRET_NAME", "SHOPIFY_WEBHOOK_SECRET_NAME",
              "PINTEREST_CONVERSION_TOKEN_SECRET_NAME", "ACCOUNT_MAP_SECRET_NAME", "ACCOUNT_TOKENS_SECRET_NAME", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
              "LAMBDA_TASK_ROOT", "AWS_LAMBDA_FUNCTION_NAME")


def put_layer_on_path() -> None:
    layer = str(REPO_ROOT / "layers" / "pinrelay")
    if layer not in sys.path:
        sys.path.insert(0, layer)


def fresh_handler(name: str) -> Any:
    """Import functions/<x>/<name>.py afresh (and pinrelay's cached settings cleared)."""
    from pinrelay_local.stack import HANDLER_MODULES, import_module_from_path

    put_layer_on_path()
    function_dir = str((REPO_ROOT / HANDLER_MODULES[name]).parent)  # /var/task on Lambda: the function's other modules
    if function_dir not in sys.path:
        sys.path.insert(0, function_dir)
    sys.modules.pop(name, None)
    with contextlib.suppress(Exception):
        from pinrelay import config

        for cached in ("ingest_settings", "sender_settings"):
            getattr(getattr(config, cached, None), "cache_clear", lambda: None)()
    return import_module_from_path(name, REPO_ROOT / HANDLER_MODULES[name])


# ------------------------------------------------------------------------------------------
# in-memory fakes
# ------------------------------------------------------------------------------------------


class MemoryQueue:
    """An EventQueue that keeps the bodies and takes every one."""

    def __init__(self) -> None:
        self.bodies: list[str] = []

    def send(self, bodies: list[str], time_left: Any = None) -> list[Any]:
        self.bodies.extend(bodies)
        return []


def fake_ingest_service(queue: Any | None = None) -> Any:
    """The real IngestService over an in-memory queue (ingest has no other dependency)."""
    from pinrelay.ingest import IngestService

    return IngestService(ad_account_id=AD_ACCOUNT, queue=queue or MemoryQueue(), clock=time.time)


# ------------------------------------------------------------------------------------------
# sections
# ------------------------------------------------------------------------------------------


class Section:
    """Runs one section; a failure is recorded (with its traceback) instead of ending the bench."""

    def __init__(self, results: dict[str, Any], name: str, say: Callable[[str], None]) -> None:
        self.results, self.name, self.say = results, name, say

    def __enter__(self) -> Section:
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
