"""SQS: EventQueue (SendMessageBatch, at most 10 messages and 1 MiB a call) and JobQueue (a
fetcher draining its own job queue: ReceiveMessage, DeleteMessageBatch; at the end of this file).

EventQueue reports exactly which bodies were not queued: the entries SQS lists as ``Failed`` (with its
``SenderFault``: True means SQS refused that message itself, e.g. too large, so a retry cannot
help), and the entries of every call that raised (throttling, 5xx, network after botocore's
retries) or that was not started because the invocation had no time left for it.

Calls run in parallel (a 1000-event request is 100 calls) and none is started when its worst
case (``worst_call_seconds``: botocore's attempts x its timeouts, plus backoff) would not end
before the invocation must answer.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pinrelay.ports import Deadline, JobQueueUnavailable, QueueRefusal, ReceivedJob

MAX_BATCH_ENTRIES = 10
MAX_BATCH_BYTES = 1_048_576  # the sum of the bodies of one SendMessageBatch
# what SQS answers about a message itself (too large, characters it does not take): sending it
# again cannot help. Any other error (throttling, a missing queue, access) is "not now".
_MESSAGE_FAULT_CODES = frozenset({"InvalidParameterValue", "InvalidMessageContents", "BatchRequestTooLong",
                                  "MessageTooLong", "AWS.SimpleQueueService.BatchRequestTooLong"})

logger = logging.getLogger(__name__)


def _senders_fault_code(exc: Exception) -> str | None:
    """The error code when SQS refused the request for what a message holds."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    error = response.get("Error", {})
    for code in (error.get("Code"), error.get("QueryErrorCode")):
        if code in _MESSAGE_FAULT_CODES:
            return str(code)
    return None


def batches_by_size(bodies: list[str], max_entries: int = MAX_BATCH_ENTRIES, max_bytes: int = MAX_BATCH_BYTES) -> list[list[int]]:
    """Positions of ``bodies`` grouped into SendMessageBatch calls, in order: at most
    ``max_entries`` a call and at most ``max_bytes`` of UTF-8 bodies (a body over ``max_bytes``
    travels alone, and SQS refuses it as the sender's fault)."""
    batches: list[list[int]] = []
    current: list[int] = []
    current_bytes = 0
    for position, body in enumerate(bodies):
        size = len(body.encode("utf-8"))
        if current and (len(current) == max_entries or current_bytes + size > max_bytes):
            batches.append(current)
            current, current_bytes = [], 0
        current.append(position)
        current_bytes += size
    if current:
        batches.append(current)
    return batches


class SqsEventQueue:
    def __init__(self, queue_url: str, client: Any, worst_call_seconds: float, answer_margin_seconds: float = 1.0,
                 max_workers: int = 8) -> None:
        self.queue_url = queue_url
        self.client = client
        self.worst_call_seconds = worst_call_seconds
        self.answer_margin_seconds = answer_margin_seconds
        self.max_workers = max_workers

    def _send_batch(self, bodies: list[str], positions: list[int], time_left: Deadline | None) -> list[QueueRefusal]:
        if time_left is not None and time_left() < self.worst_call_seconds + self.answer_margin_seconds:
            return [QueueRefusal(p, False, "no time left in this invocation") for p in positions]
        entries = [{"Id": str(p), "MessageBody": bodies[p]} for p in positions]
        try:
            answer = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
        except Exception as exc:  # noqa: BLE001 - reported as not queued: the caller retries
            code = _senders_fault_code(exc)
            if code is None:
                logger.warning("SendMessageBatch failed: %s; %d message(s) not queued", type(exc).__name__, len(positions))
                return [QueueRefusal(p, False, type(exc).__name__) for p in positions]
            if len(positions) == 1:
                return [QueueRefusal(positions[0], True, code)]
            # SQS refused the call for one of its messages (it may answer so for the whole batch
            # rather than per entry): send them one by one to find which, and queue the others
            refusals: list[QueueRefusal] = []
            for position in positions:
                refusals += self._send_batch(bodies, [position], time_left)
            return refusals
        return [
            QueueRefusal(int(entry["Id"]), bool(entry.get("SenderFault")), str(entry.get("Code") or "refused"))
            for entry in answer.get("Failed", [])
        ]

    def send(self, bodies: list[str], time_left: Deadline | None = None) -> list[QueueRefusal]:
        batches = batches_by_size(bodies)
        if len(batches) == 1:
            return self._send_batch(bodies, batches[0], time_left)
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(batches))) as pool:
            answers = list(pool.map(lambda positions: self._send_batch(bodies, positions, time_left), batches))
        return sorted((refusal for answer in answers for refusal in answer), key=lambda refusal: refusal.position)


class SqsJobQueue:
    """JobQueue on SQS for a fetcher that drains its queue itself (``pinrelay.job_drain``).

    ``receive``: one ReceiveMessage of up to 10, long-polled for ``wait_seconds`` (1 s: a long
    poll asks every SQS server, where a short one samples some and may answer empty while jobs
    wait), with each message's ApproximateReceiveCount; the messages stay invisible for the
    queue's visibility timeout. ``delete``: DeleteMessageBatch, 10 a call. Errors after botocore's
    retries are JobQueueUnavailable."""

    def __init__(self, queue_url: str, client: Any, wait_seconds: int = 1) -> None:
        self.queue_url = queue_url
        self.client = client
        self.wait_seconds = wait_seconds

    def receive(self, max_jobs: int) -> list[ReceivedJob]:
        try:
            answer = self.client.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=min(max_jobs, MAX_BATCH_ENTRIES),
                WaitTimeSeconds=self.wait_seconds, MessageSystemAttributeNames=["ApproximateReceiveCount"])
        except Exception as exc:  # noqa: BLE001 - the drain stops; the jobs wait for the next run
            raise JobQueueUnavailable(f"ReceiveMessage failed: {type(exc).__name__}") from None
        return [ReceivedJob(message["MessageId"], message["ReceiptHandle"], message.get("Body") or "",
                            int((message.get("Attributes") or {}).get("ApproximateReceiveCount", 1)))
                for message in answer.get("Messages", [])]

    def delete(self, jobs: list[ReceivedJob]) -> list[str]:
        not_deleted: list[str] = []
        for start in range(0, len(jobs), MAX_BATCH_ENTRIES):
            chunk = jobs[start:start + MAX_BATCH_ENTRIES]
            try:
                answer = self.client.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                    {"Id": str(index), "ReceiptHandle": job.receipt_handle} for index, job in enumerate(chunk)])
            except Exception as exc:  # noqa: BLE001 - what was not deleted comes back: done again, deduplicated
                raise JobQueueUnavailable(f"DeleteMessageBatch failed: {type(exc).__name__}") from None
            not_deleted += [chunk[int(entry["Id"])].message_id for entry in answer.get("Failed", [])]
        return not_deleted
