"""A Lambda function on a schedule (an EventBridge ``rate(...)`` rule), for the local stack.

``ScheduledFunction`` invokes its handler every ``every_s`` seconds with the event EventBridge
sends, and a Lambda context with the function's Timeout, one run at a time (a run longer than
the period delays the next, where EventBridge would start one beside it; the runs keep the
schedule's cadence: they start every ``every_s`` from the start, not ``every_s`` after the end of
the one before). Each run's summary (``RunSummary``) goes to ``on_run``. The Stripe line-items
fetcher runs on one: it drains its queue itself (pinrelay.job_drain).
"""

from __future__ import annotations

import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pinrelay_local.http_gateway import LambdaContext


@dataclass
class RunSummary:
    """One run of a scheduled function."""

    records: int  # jobs the run received (its answer's ``received``; 0 when it gave none)
    duration_s: float
    response: Any = field(default=None, repr=False)
    error: str | None = None

    @property
    def duration_ms(self) -> int:
        return round(self.duration_s * 1000)


def scheduled_event(rule_arn: str) -> dict[str, Any]:
    """What EventBridge sends a function on a schedule."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": "us-east-1", "resources": [rule_arn], "detail": {}}


def schedule_seconds(template: Path, function: str) -> float:
    """The period of ``function``'s ``Type: Schedule`` event in template.yaml (``rate(N unit)``)."""
    from pinrelay_tools.template import load_template

    events = load_template(template)["Resources"][function]["Properties"].get("Events") or {}
    for event in events.values():
        if event.get("Type") == "Schedule":
            match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours)\)", str(event["Properties"]["Schedule"]))
            if match:
                return int(match.group(1)) * (60 if match.group(2).startswith("minute") else 3600)
    raise ValueError(f"{function} has no rate(...) schedule in {template.name}")


class ScheduledFunction:
    def __init__(self, handler: Callable[[dict[str, Any], Any], Any], *, every_s: float, function_name: str,
                 function_timeout_s: float, on_run: Callable[[RunSummary], None] | None = None) -> None:
        self.handler = handler
        self.every_s = every_s
        self.function_name = function_name
        self.function_timeout_s = function_timeout_s
        self.on_run = on_run
        self.runs = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"schedule-{self.function_name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.function_timeout_s + 5)
            self._thread = None

    def _loop(self) -> None:
        # EventBridge's cadence: a run starts every ``every_s`` from the start, however long the
        # runs take (the next tick is not counted from the end of a run)
        next_at = time.monotonic() + self.every_s
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            self.run_once()
            next_at += self.every_s

    def run_once(self) -> RunSummary:
        """One run now, as the schedule's next would be."""
        context = LambdaContext(self.function_name, timeout_s=self.function_timeout_s)
        event = scheduled_event(f"arn:aws:events:us-east-1:123456789012:rule/{self.function_name}-schedule")
        self.runs += 1
        started = time.monotonic()
        response: Any = None
        error: str | None = None
        try:
            response = self.handler(event, context)
        except Exception as exc:  # noqa: BLE001 - a failed run; the next one drains what it left
            error = f"handler raised {type(exc).__name__}: {exc}"
            sys.stderr.write(f"schedule: {self.function_name} raised:\n{traceback.format_exc()}")
        duration = time.monotonic() - started
        if error is None and duration > self.function_timeout_s:
            error = f"Task timed out after {duration:.2f} seconds"
        received = response.get("received", 0) if isinstance(response, dict) else 0
        summary = RunSummary(records=int(received or 0), duration_s=duration, response=response, error=error)
        if self.on_run is not None:
            self.on_run(summary)
        return summary
