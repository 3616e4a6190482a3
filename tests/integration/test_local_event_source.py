"""The local SQS event source mapping emulation against a real moto server."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from pinrelay_local.moto_server import running_moto
from pinrelay_local.sqs_event_source import BatchSummary, SqsEventSource, WholeBatchFailed, failed_message_ids

# Documented Lambda SQS event record (AWS docs, "Using Lambda with Amazon SQS").
RECORD_KEYS = {"messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
               "eventSource", "eventSourceARN", "awsRegion"}
RECORD_ATTRIBUTES = {"ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"}


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with running_moto() as url:
        yield url


@pytest.fixture(scope="module")
def sqs(moto_url: str) -> Any:
    return boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    ).client("sqs", endpoint_url=moto_url)


@pytest.fixture
def make_queue(sqs: Any) -> Callable[..., tuple[str, str]]:
    def make(visibility_timeout: int = 1, max_receive_count: int = 2) -> tuple[str, str]:
        name = f"q-{uuid.uuid4().hex[:10]}"
        dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        url = sqs.create_queue(QueueName=name, Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}),
        })["QueueUrl"]
        return url, dlq_url

    return make


def send(sqs: Any, url: str, bodies: list[str], **kwargs: Any) -> list[str]:
    ids = []
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": b, **kwargs} for i, b in enumerate(bodies[start:start + 10])]
        resp = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        assert not resp.get("Failed")
        ids += [s["MessageId"] for s in sorted(resp["Successful"], key=lambda s: int(s["Id"]))]
    return ids


def depth(sqs: Any, url: str) -> tuple[int, int]:
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def dlq_bodies(sqs: Any, dlq_url: str) -> list[str]:
    msgs = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
    return sorted(m["Body"] for m in msgs)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


class Handler:
    """A fake sender: records every event; ``decide(record) -> True`` marks a record failed."""

    def __init__(self, decide: Callable[[dict[str, Any]], bool] = lambda r: False,
                 respond: Callable[[dict[str, Any]], Any] | None = None) -> None:
        self.decide = decide
        self.respond = respond
        self.events: list[dict[str, Any]] = []
        self.times: list[float] = []
        self.contexts: list[Any] = []
        self.summaries: list[BatchSummary] = []
        self.lock = threading.Lock()

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        with self.lock:
            self.events.append(event)
            self.times.append(time.monotonic())
            self.contexts.append(context)
        if self.respond is not None:
            return self.respond(event)
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"] if self.decide(r)]}

    def on_batch(self, summary: BatchSummary) -> None:
        with self.lock:
            self.summaries.append(summary)

    def bodies(self) -> list[str]:
        with self.lock:
            return [r["body"] for e in self.events for r in e["Records"]]


def test_success_deletes_everything_and_records_have_the_lambda_shape(sqs: Any, make_queue: Any) -> None:
    url, _ = make_queue(visibility_timeout=30)
    ids = send(sqs, url, [json.dumps({"n": i}) for i in range(3)],
               MessageAttributes={"kind": {"DataType": "String", "StringValue": "test"}})
    handler = Handler()
    with SqsEventSource(sqs, url, handler, batch_size=10, batching_window_s=0.3,
                        on_batch=handler.on_batch, function_name="fake-sender"):
        wait_for(lambda: sum(s.records for s in handler.summaries) == 3, 5, "3 records")
        wait_for(lambda: depth(sqs, url) == (0, 0), 3, "an empty queue")
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    records = [r for e in handler.events for r in e["Records"]]
    assert sorted(r["messageId"] for r in records) == sorted(ids)
    for r in records:
        assert set(r) == RECORD_KEYS | ({"md5OfMessageAttributes"} & set(r))
        assert set(r["attributes"]) == RECORD_ATTRIBUTES
        assert r["attributes"]["ApproximateReceiveCount"] == "1"
        assert r["eventSource"] == "aws:sqs" and r["eventSourceARN"] == arn and r["awsRegion"] == "us-east-1"
        assert r["md5OfBody"] == hashlib.md5(r["body"].encode()).hexdigest()
        assert r["messageAttributes"]["kind"]["stringValue"] == "test"
        assert r["messageAttributes"]["kind"]["dataType"] == "String"
        json.dumps(r)
    ctx = handler.contexts[0]
    assert ctx.function_name == "fake-sender" and ctx.get_remaining_time_in_millis() > 0
    assert all(s.failed == 0 and s.deleted == s.records and s.error is None for s in handler.summaries)


def test_failed_records_come_back_then_reach_the_dlq(sqs: Any, make_queue: Any) -> None:
    url, dlq_url = make_queue(visibility_timeout=1, max_receive_count=2)
    send(sqs, url, ["ok-1", "fail-1", "ok-2", "fail-2"])
    handler = Handler(decide=lambda r: r["body"].startswith("fail"))
    seen_moving: list[dict[str, Any]] = []
    with SqsEventSource(sqs, url, handler, batch_size=10, batching_window_s=0.2, visibility_timeout_s=1,
                        on_batch=handler.on_batch, on_dead_letter=seen_moving.extend):
        wait_for(lambda: len(dlq_bodies_peek(sqs, dlq_url)) == 2, 8, "2 messages in the DLQ")
        wait_for(lambda: len(seen_moving) == 2, 4, "the event source to see them moved")
    assert sorted(message["Body"] for message in seen_moving) == ["fail-1", "fail-2"]  # and nothing else
    bodies = handler.bodies()
    # each failing message was delivered maxReceiveCount (2) times, each good one once
    assert sorted(bodies) == ["fail-1", "fail-1", "fail-2", "fail-2", "ok-1", "ok-2"]
    second = [r for e in handler.events for r in e["Records"] if r["attributes"]["ApproximateReceiveCount"] == "2"]
    assert sorted(r["body"] for r in second) == ["fail-1", "fail-2"]
    assert depth(sqs, url) == (0, 0)
    assert dlq_bodies(sqs, dlq_url) == ["fail-1", "fail-2"]
    first = handler.summaries[0]
    assert (first.records, first.failed, first.deleted) == (4, 2, 2)


def dlq_bodies_peek(sqs: Any, dlq_url: str) -> list[str]:
    visible, invisible = depth(sqs, dlq_url)
    return ["x"] * (visible + invisible)


def test_handler_exception_fails_the_whole_batch(sqs: Any, make_queue: Any,
                                                 capfd: pytest.CaptureFixture[str]) -> None:
    url, dlq_url = make_queue(visibility_timeout=1, max_receive_count=3)
    send(sqs, url, ["a", "b"])
    calls = {"n": 0}

    def flaky(event: dict[str, Any]) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("first invocation explodes")
        return None  # Lambda: a null response is a full success

    handler = Handler(respond=flaky)
    with SqsEventSource(sqs, url, handler, batch_size=10, batching_window_s=0.2, visibility_timeout_s=1,
                        on_batch=handler.on_batch):
        wait_for(lambda: sum(s.deleted for s in handler.summaries) == 2, 6, "the retry to succeed")
    first = handler.summaries[0]
    assert (first.records, first.failed, first.deleted) == (2, 2, 0)
    assert first.error and "first invocation explodes" in first.error
    assert "RuntimeError: first invocation explodes" in capfd.readouterr().err
    retried = [r for e in handler.events[1:] for r in e["Records"]]
    assert sorted(r["body"] for r in retried) == ["a", "b"]
    assert {r["attributes"]["ApproximateReceiveCount"] for r in retried} == {"2"}
    assert depth(sqs, url) == (0, 0) and depth(sqs, dlq_url) == (0, 0)


def test_unknown_item_identifier_fails_the_whole_batch(sqs: Any, make_queue: Any) -> None:
    url, _ = make_queue(visibility_timeout=30)
    send(sqs, url, ["a", "b", "c"])
    handler = Handler(respond=lambda e: {"batchItemFailures": [{"itemIdentifier": "not-a-message-of-this-batch"}]})
    source = SqsEventSource(sqs, url, handler, batch_size=10, batching_window_s=0.2, visibility_timeout_s=30,
                            on_batch=handler.on_batch)
    with source:
        wait_for(lambda: handler.summaries, 5, "one batch")
    s = handler.summaries[0]
    assert (s.records, s.failed, s.deleted) == (3, 3, 0)
    assert "not a message of this batch" in (s.error or "")
    assert depth(sqs, url) == (0, 3)  # still in flight, will come back after the visibility timeout


def test_batch_size_and_window_are_respected(sqs: Any, make_queue: Any) -> None:
    url, _ = make_queue(visibility_timeout=30)
    send(sqs, url, [f"m{i}" for i in range(25)])
    handler = Handler()
    started = time.monotonic()
    with SqsEventSource(sqs, url, handler, batch_size=10, batching_window_s=1.0, on_batch=handler.on_batch):
        wait_for(lambda: sum(s.records for s in handler.summaries) == 25, 6, "25 records")
        # a full batch goes at once; the last, partial one waits for the window
        assert [len(e["Records"]) for e in handler.events] == [10, 10, 5]
        assert handler.times[1] - started < 1.0
        assert 0.9 <= handler.times[2] - handler.times[1] < 2.5

        # a lone message waits the whole window, then goes alone
        t0 = time.monotonic()
        send(sqs, url, ["late"])
        wait_for(lambda: len(handler.events) == 4, 5, "the 4th batch")
        assert handler.events[3]["Records"][0]["body"] == "late"
        assert 0.9 <= handler.times[3] - t0 < 3.0
    assert sorted(handler.bodies()) == sorted([f"m{i}" for i in range(25)] + ["late"])
    assert depth(sqs, url) == (0, 0)


def test_large_batch_accumulates_across_receives(sqs: Any, make_queue: Any) -> None:
    url, _ = make_queue(visibility_timeout=30)
    send(sqs, url, [f"m{i}" for i in range(45)])
    handler = Handler()
    with SqsEventSource(sqs, url, handler, batch_size=1000, batching_window_s=0.5, on_batch=handler.on_batch):
        wait_for(lambda: sum(s.records for s in handler.summaries) == 45, 6, "45 records")
    assert [len(e["Records"]) for e in handler.events] == [45]
    assert handler.summaries[0].deleted == 45
    assert depth(sqs, url) == (0, 0)


def test_stop_is_prompt_and_flushes_the_pending_batch(sqs: Any, make_queue: Any) -> None:
    url, _ = make_queue(visibility_timeout=30)
    handler = Handler()
    source = SqsEventSource(sqs, url, handler, batch_size=100, batching_window_s=30, on_batch=handler.on_batch)
    source.start()
    send(sqs, url, ["pending"])
    wait_for(lambda: depth(sqs, url) == (0, 1), 5, "the message to be received")
    t0 = time.monotonic()
    source.stop()
    assert time.monotonic() - t0 < 3
    assert not source.running
    assert handler.bodies() == ["pending"]
    assert depth(sqs, url) == (0, 0)


@pytest.mark.parametrize("response, expected", [
    (None, set()),
    ({}, set()),
    ({"batchItemFailures": []}, set()),
    ({"batchItemFailures": None}, set()),
    ({"batchItemFailures": [{"itemIdentifier": "b"}]}, {"b"}),
])
def test_failed_message_ids_success_shapes(response: Any, expected: set[str]) -> None:
    assert failed_message_ids(response, ["a", "b"]) == expected


@pytest.mark.parametrize("response", [
    {"batchItemFailures": [{"itemIdentifier": ""}]},
    {"batchItemFailures": [{"itemIdentifier": None}]},
    {"batchItemFailures": [{"itemId": "a"}]},
    {"batchItemFailures": [{"itemIdentifier": "zzz"}]},
    {"batchItemFailures": "a"},
    {"batchItemFailures": [{"itemIdentifier": "a"}], "x": object()},
    "not an object",
])
def test_failed_message_ids_whole_batch_failures(response: Any) -> None:
    with pytest.raises(WholeBatchFailed):
        failed_message_ids(response, ["a", "b"])
