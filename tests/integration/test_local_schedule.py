"""The local stack's schedule (pinrelay_local.schedule): a function run as an EventBridge
rate(...) rule runs it, with the event EventBridge sends and a Lambda context with the function's
Timeout; each run reported as a RunSummary. The Stripe line-items fetcher runs on one."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from pinrelay_local.schedule import RunSummary, ScheduledFunction, schedule_seconds
from pinrelay_local.stack import REPO_ROOT

# what an EventBridge schedule (SAM `Type: Schedule`) sends, as AWS documents it
DOCUMENTED_EVENT = {
    "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
    "source": "aws.events", "account": "123456789012", "time": "2015-10-08T16:53:06Z", "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/my-scheduled-rule"], "detail": {},
}


class Handler:
    """Records each call (the event, the context, the time the context left, when it came) and
    answers ``answer``, or raises ``raises``, after ``sleep_s``."""

    def __init__(self, answer: Any = None, raises: Exception | None = None, sleep_s: float = 0.0) -> None:
        self.answer, self.raises, self.sleep_s = answer, raises, sleep_s
        self.calls: list[tuple[dict, Any, int, float]] = []

    def __call__(self, event: dict, context: Any) -> Any:
        self.calls.append((event, context, context.get_remaining_time_in_millis(), time.monotonic()))
        time.sleep(self.sleep_s)
        if self.raises is not None:
            raise self.raises
        return self.answer


def scheduled(handler: Handler, every_s: float = 60, timeout_s: float = 120, **kwargs: Any) -> ScheduledFunction:
    return ScheduledFunction(handler, every_s=every_s, function_name="pinrelay-stripe-line-items",
                             function_timeout_s=timeout_s, **kwargs)


def test_a_run_gives_the_handler_eventbridges_scheduled_event_and_a_context_with_the_timeout():
    handler = Handler({"received": 7, "rounds": 1, "stopped": "drained"})
    function = scheduled(handler, timeout_s=120)
    run = function.run_once()
    ((event, context, remaining_ms, _),) = handler.calls
    assert set(event) == set(DOCUMENTED_EVENT)
    assert (event["version"], event["detail-type"], event["source"], event["detail"]) == ("0", "Scheduled Event",
                                                                                        "aws.events", {})
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/pinrelay-stripe-line-items-schedule"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])
    assert context.function_name == "pinrelay-stripe-line-items"
    assert 119_000 < remaining_ms <= 120_000
    assert (run.records, run.error, run.response) == (7, None, {"received": 7, "rounds": 1, "stopped": "drained"})
    assert function.runs == 1
    function.run_once()
    assert handler.calls[1][0]["id"] != event["id"]  # each run an event of its own


@pytest.mark.parametrize("answer", [None, {"rounds": 0, "stopped": "drained"}, {"received": None}, "done"])
def test_an_answer_without_a_count_of_received_jobs_is_a_run_of_no_records(answer):
    run = scheduled(Handler(answer)).run_once()
    assert (run.records, run.error) == (0, None)


def test_a_handler_that_raises_is_a_run_with_its_error():
    function = scheduled(Handler(raises=RuntimeError("the queue is gone")))
    run = function.run_once()
    assert (run.records, run.response, run.error) == (0, None, "handler raised RuntimeError: the queue is gone")


def test_a_run_longer_than_the_functions_timeout_is_reported_timed_out():
    run = scheduled(Handler({"received": 0}, sleep_s=0.3), timeout_s=0.1).run_once()
    assert run.error is not None and run.error.startswith("Task timed out after ") and run.duration_s >= 0.3


def test_started_it_runs_once_a_period_reports_every_run_and_stops():
    handler, runs = Handler({"received": 2}), []
    function = scheduled(handler, every_s=0.2, timeout_s=5, on_run=runs.append)
    started = time.monotonic()
    function.start()
    deadline = started + 10
    while len(runs) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    function.stop()
    stopped_with = len(handler.calls)
    time.sleep(0.5)  # more than two periods
    assert len(handler.calls) == stopped_with == function.runs >= 3  # none after stop
    assert len(runs) == stopped_with and all(isinstance(r, RunSummary) and r.records == 2 for r in runs)
    called = [started] + [call[3] for call in handler.calls]
    assert all(later - earlier >= 0.19 for earlier, later in zip(called, called[1:]))  # a period before each


def test_runs_keep_the_schedules_cadence_however_long_each_takes():
    """EventBridge starts a run every period; a run of 0.15 s in a 0.3 s period does not push the
    next one to 0.45 s after it started."""

    handler = Handler({"received": 0}, sleep_s=0.15)
    function = scheduled(handler, every_s=0.3, timeout_s=5)
    started = time.monotonic()
    function.start()
    while len(handler.calls) < 4 and time.monotonic() < started + 10:
        time.sleep(0.02)
    function.stop()
    starts = [call[3] - started for call in handler.calls[:4]]
    assert len(starts) == 4
    for number, at in enumerate(starts, start=1):  # the n-th run starts n periods after the start
        assert number * 0.3 - 0.01 <= at < number * 0.3 + 0.1, starts


def test_stop_ends_the_wait_for_the_next_run_at_once():
    handler = Handler({"received": 0})
    function = scheduled(handler, every_s=60)
    function.start()
    started = time.monotonic()
    function.stop()
    assert time.monotonic() - started < 1 and handler.calls == []


def test_schedule_seconds_reads_the_line_items_fetchers_rate_from_template_yaml():
    assert schedule_seconds(REPO_ROOT / "template.yaml", "StripeLineItemsFunction") == 60


def test_schedule_seconds_reads_minutes_and_hours_and_names_a_function_without_a_rate(tmp_path):
    template = tmp_path / "template.yaml"
    template.write_text("""
Resources:
  Five:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Api: {Type: HttpApi}
        Often: {Type: Schedule, Properties: {Schedule: rate(5 minutes)}}
  Hourly:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Hour: {Type: Schedule, Properties: {Schedule: rate(1 hour)}}
  Twice:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Hours: {Type: Schedule, Properties: {Schedule: rate(2 hours)}}
  Cron:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Nightly: {Type: Schedule, Properties: {Schedule: "cron(0 3 * * ? *)"}}
  Plain:
    Type: AWS::Serverless::Function
    Properties: {}
""")
    assert [schedule_seconds(template, name) for name in ("Five", "Hourly", "Twice")] == [300, 3600, 7200]
    for name in ("Cron", "Plain"):
        with pytest.raises(ValueError, match=f"{name} has no rate"):
            schedule_seconds(template, name)
