"""A local emulation of Lambda's SQS event source mapping (with ReportBatchItemFailures).

``SqsEventSource`` runs in a background thread:

1. long-polls ``ReceiveMessage`` (10 messages a call) and accumulates messages until
   ``batch_size`` is reached, or ``batching_window_s`` has passed since the first message of
   the batch (or the payload nears Lambda's 6 MB invoke limit);
2. builds the Lambda SQS event (``{"Records": [...]}``) and calls ``handler(event, context)``;
3. deletes (``DeleteMessageBatch``, 10 a call) every message that is not listed in the
   response's ``batchItemFailures``. The failed ones are left alone: they become visible again
   when their visibility timeout expires and, after ``maxReceiveCount`` receives, SQS (moto
   too, on the next receive) moves them to the queue's dead-letter queue.

A failed message that has been received ``maxReceiveCount`` times (the queue's redrive policy) is
moved by SQS to the dead-letter queue at the next receive once it is visible again; the event
source sees it gone then and says so through ``on_dead_letter(messages)``.

As with Lambda, the whole batch counts as failed when the handler raises (or the "runtime dies":
SystemExit or another BaseException, as a crash between two effects), returns something
that is not a JSON object, or names an ``itemIdentifier`` that is empty or not in the batch; it counts
as fully successful when it returns ``None``, ``{}`` or an empty/null ``batchItemFailures``.

Only for local runs and tests; nothing here is deployed.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pinrelay_local.http_gateway import LambdaContext, handler_function_name

Handler = Callable[[dict[str, Any], Any], Any]

LAMBDA_MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
SQS_MAX_MESSAGE_BYTES = 256 * 1024
_RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "DeadLetterQueueSourceArn",
    "AWSTraceHeader",
)


@dataclass(frozen=True)
class BatchSummary:
    """What happened to one invocation of the handler."""

    records: int
    failed: int
    deleted: int
    duration_s: float
    failed_ids: tuple[str, ...] = ()
    error: str | None = None  # why the whole batch failed, if it did
    response: Any = field(default=None, repr=False)

    @property
    def duration_ms(self) -> int:
        return round(self.duration_s * 1000)

    @property
    def succeeded(self) -> int:
        return self.records - self.failed


def message_attributes_to_lambda(attrs: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in (attrs or {}).items():
        item: dict[str, Any] = {
            "stringListValues": list(value.get("StringListValues", [])),
            "binaryListValues": [base64.b64encode(b).decode("ascii") for b in value.get("BinaryListValues", [])],
            "dataType": value.get("DataType", "String"),
        }
        if "StringValue" in value:
            item["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            raw = value["BinaryValue"]
            item["binaryValue"] = base64.b64encode(raw).decode("ascii") if isinstance(raw, bytes) else raw
        out[name] = item
    return out


def sqs_message_to_record(message: dict[str, Any], *, event_source_arn: str, region: str) -> dict[str, Any]:
    """One boto3 ``ReceiveMessage`` message -> one Lambda SQS event record."""
    attributes = message.get("Attributes") or {}
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": {k: str(attributes[k]) for k in _RECORD_ATTRIBUTES if k in attributes},
        "messageAttributes": message_attributes_to_lambda(message.get("MessageAttributes")),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": event_source_arn,
        "awsRegion": region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


class WholeBatchFailed(Exception):
    pass


def failed_message_ids(response: Any, batch_ids: list[str]) -> set[str]:
    """The message ids Lambda would treat as failed for a ReportBatchItemFailures response.

    Raises ``WholeBatchFailed`` when Lambda would fail the whole batch.
    """
    if response is None:
        return set()
    try:
        json.dumps(response)
    except (TypeError, ValueError) as exc:
        raise WholeBatchFailed(f"response is not valid JSON: {exc}") from exc
    if not isinstance(response, dict):
        raise WholeBatchFailed(f"response is not an SQSBatchResponse object: {response!r:.200}")
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        raise WholeBatchFailed(f"batchItemFailures is not a list: {failures!r}")
    known = set(batch_ids)
    failed: set[str] = set()
    for item in failures:
        if not isinstance(item, dict) or "itemIdentifier" not in item:
            raise WholeBatchFailed(f"invalid batchItemFailures entry: {item!r}")
        ident = item["itemIdentifier"]
        if not isinstance(ident, str) or not ident:
            raise WholeBatchFailed(f"empty or null itemIdentifier: {item!r}")
        if ident not in known:
            raise WholeBatchFailed(f"itemIdentifier {ident!r} is not a message of this batch")
        failed.add(ident)
    return failed


class SqsEventSource:
    """Poll an SQS queue and invoke ``handler`` with Lambda-shaped SQS batches in a thread."""

    def __init__(
        self,
        sqs_client: Any,
        queue_url: str,
        handler: Handler,
        batch_size: int = 1000,
        batching_window_s: float = 2.0,
        visibility_timeout_s: int | None = 30,
        on_batch: Callable[[BatchSummary], None] | None = None,
        *,
        on_dead_letter: Callable[[list[dict[str, Any]]], None] | None = None,
        function_name: str | None = None,
        function_timeout_s: float = 60.0,
        memory_limit_in_mb: int = 512,
        report_batch_item_failures: bool = True,
        max_payload_bytes: int = LAMBDA_MAX_PAYLOAD_BYTES,
        poll_wait_s: int = 1,
        flush_on_stop: bool = True,
    ) -> None:
        if not 1 <= batch_size <= 10_000:
            raise ValueError("batch_size must be within 1..10000")
        if batching_window_s < 0:
            raise ValueError("batching_window_s must be >= 0")
        self.sqs = sqs_client
        self.queue_url = queue_url
        self.handler = handler
        self.batch_size = batch_size
        self.batching_window_s = float(batching_window_s)
        self.visibility_timeout_s = visibility_timeout_s
        self.on_batch = on_batch
        self.on_dead_letter = on_dead_letter
        self.max_receive_count: int | None = None  # the queue's redrive policy, read at start()
        self._last_receives: dict[str, tuple[dict[str, Any], float]] = {}  # message id -> (message, visible again at)
        self.function_name = function_name or handler_function_name(handler)
        self.function_timeout_s = function_timeout_s
        self.memory_limit_in_mb = memory_limit_in_mb
        self.report_batch_item_failures = report_batch_item_failures
        self.max_payload_bytes = max_payload_bytes
        self.poll_wait_s = max(0, min(20, int(poll_wait_s)))
        self.flush_on_stop = flush_on_stop
        self.region = getattr(getattr(sqs_client, "meta", None), "region_name", None) or "us-east-1"
        self.event_source_arn = ""
        self.invocations = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> SqsEventSource:
        if self._thread is not None:
            raise RuntimeError("event source already started")
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn", "RedrivePolicy"])
        self.event_source_arn = attrs["Attributes"]["QueueArn"]
        if attrs["Attributes"].get("RedrivePolicy"):
            self.max_receive_count = int(json.loads(attrs["Attributes"]["RedrivePolicy"])["maxReceiveCount"])
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sqs-event-source", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop polling, invoke the handler with what was already received (unless
        ``flush_on_stop=False``), and join the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                sys.stderr.write("sqs-event-source: thread did not stop in time\n")
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> SqsEventSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- polling ---------------------------------------------------------------------------
    def _receive(self, max_messages: int, wait_s: int) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "QueueUrl": self.queue_url,
            "MaxNumberOfMessages": max_messages,
            "WaitTimeSeconds": wait_s,
            "MessageSystemAttributeNames": ["All"],
            "MessageAttributeNames": ["All"],
        }
        if self.visibility_timeout_s is not None:
            kwargs["VisibilityTimeout"] = int(self.visibility_timeout_s)
        return self.sqs.receive_message(**kwargs).get("Messages", [])

    def _collect_batch(self) -> list[dict[str, Any]]:
        batch: dict[str, dict[str, Any]] = {}  # messageId -> message (latest receipt wins)
        size = 0
        first_at: float | None = None
        while True:
            if self._stop.is_set():
                # not flushed: the messages come back after their visibility timeout
                return list(batch.values()) if self.flush_on_stop else []
            if first_at is None:
                wait_s = self.poll_wait_s
            else:
                remaining = self.batching_window_s - (time.monotonic() - first_at)
                if remaining <= 0:
                    return list(batch.values())
                wait_s = min(self.poll_wait_s, int(remaining))
            want = min(10, self.batch_size - len(batch))
            receiving_at = time.monotonic()
            try:
                messages = self._receive(want, wait_s)
            except Exception as exc:  # noqa: BLE001 - keep polling, like the real poller
                if self._stop.is_set():
                    return list(batch.values()) if self.flush_on_stop else []
                sys.stderr.write(f"sqs-event-source: ReceiveMessage failed: {exc}\n")
                self._stop.wait(1.0)
                continue
            self._note_dead_letters(receiving_at, messages)
            if messages:
                if first_at is None:
                    first_at = time.monotonic()
                for message in messages:
                    batch[message["MessageId"]] = message
                    size += len(message.get("Body", "").encode("utf-8")) + 1024
                if len(batch) >= self.batch_size or size > self.max_payload_bytes - SQS_MAX_MESSAGE_BYTES - 1024:
                    return list(batch.values())
            elif first_at is not None and wait_s == 0:
                self._stop.wait(0.05)

    def _run(self) -> None:
        while True:
            batch = self._collect_batch()
            if batch:
                try:
                    self._invoke(batch)
                except Exception:  # noqa: BLE001 - never let the poller die
                    sys.stderr.write(f"sqs-event-source: invocation bookkeeping failed:\n{traceback.format_exc()}")
            if self._stop.is_set():
                return

    # -- invocation ------------------------------------------------------------------------
    def _invoke(self, batch: list[dict[str, Any]]) -> BatchSummary:
        records = [
            sqs_message_to_record(m, event_source_arn=self.event_source_arn, region=self.region) for m in batch
        ]
        ids = [r["messageId"] for r in records]
        context = LambdaContext(
            self.function_name, memory_limit_in_mb=self.memory_limit_in_mb, timeout_s=self.function_timeout_s
        )
        self.invocations += 1
        started = time.monotonic()
        response: Any = None
        error: str | None = None
        try:
            response = self.handler({"Records": records}, context)
        except Exception as exc:  # noqa: BLE001 - Lambda: the whole batch failed
            error = f"handler raised {type(exc).__name__}: {exc}"
            sys.stderr.write(f"sqs-event-source: {self.function_name} raised:\n{traceback.format_exc()}")
        except BaseException as exc:  # noqa: BLE001 - SystemExit & co: the runtime died (Runtime.ExitError)
            error = f"runtime exited ({type(exc).__name__}: {exc})"
            sys.stderr.write(f"sqs-event-source: {self.function_name} runtime exited: {type(exc).__name__}: {exc}\n")
        duration = time.monotonic() - started
        if error is None and duration > self.function_timeout_s:
            error = f"Task timed out after {duration:.2f} seconds"
        failed: set[str]
        if error is not None:
            failed = set(ids)
        elif not self.report_batch_item_failures:
            failed = set()
        else:
            try:
                failed = failed_message_ids(response, ids)
            except WholeBatchFailed as exc:
                error = str(exc)
                failed = set(ids)
                sys.stderr.write(f"sqs-event-source: whole batch failed: {error}\n")
        self._note_last_receives([m for m in batch if m["MessageId"] in failed], started)
        to_delete = [m for m in batch if m["MessageId"] not in failed]
        deleted = self._delete(to_delete)
        summary = BatchSummary(
            records=len(records),
            failed=len(failed),
            deleted=deleted,
            duration_s=duration,
            failed_ids=tuple(i for i in ids if i in failed),
            error=error,
            response=response,
        )
        if self.on_batch is not None:
            try:
                self.on_batch(summary)
            except Exception:  # noqa: BLE001
                sys.stderr.write(f"sqs-event-source: on_batch callback failed:\n{traceback.format_exc()}")
        return summary

    # -- the dead-letter queue -------------------------------------------------------------
    def _note_last_receives(self, failed: list[dict[str, Any]], received_by: float) -> None:
        """Failed messages that were received maxReceiveCount times: SQS moves each to the DLQ at
        the first receive after it is visible again."""
        if self.max_receive_count is None or self.on_dead_letter is None:
            return
        visible_at = received_by + (self.visibility_timeout_s or 0)
        for message in failed:
            if int((message.get("Attributes") or {}).get("ApproximateReceiveCount", 0)) >= self.max_receive_count:
                self._last_receives[message["MessageId"]] = (message, visible_at)

    def _note_dead_letters(self, receiving_at: float, received: list[dict[str, Any]]) -> None:
        """After a receive that began once they were visible again: the messages it did not bring
        are in the dead-letter queue."""
        if not self._last_receives:
            return
        for message in received:
            self._last_receives.pop(message["MessageId"], None)
        moved = [message for message_id, (message, visible_at) in list(self._last_receives.items())
                 if visible_at < receiving_at and self._last_receives.pop(message_id)]
        if moved and self.on_dead_letter is not None:
            try:
                self.on_dead_letter(moved)
            except Exception:  # noqa: BLE001
                sys.stderr.write(f"sqs-event-source: on_dead_letter callback failed:\n{traceback.format_exc()}")

    def _delete(self, messages: list[dict[str, Any]]) -> int:
        deleted = 0
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)]
            try:
                resp = self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except Exception as exc:  # noqa: BLE001
                sys.stderr.write(f"sqs-event-source: DeleteMessageBatch failed: {exc}\n")
                continue
            deleted += len(resp.get("Successful", []))
            for failure in resp.get("Failed", []):
                sys.stderr.write(f"sqs-event-source: could not delete message: {failure}\n")
        return deleted


__all__ = ["BatchSummary", "SqsEventSource", "WholeBatchFailed", "failed_message_ids", "sqs_message_to_record"]
