"""DeadLetters on SQS: the ledger keys of the dead-letter queue's messages, left in the queue.

SQS has no "peek": the messages are received with a short visibility timeout, read, then made
visible again at once (ChangeMessageVisibility to 0), as ``pinrelay redrive --dry-run`` does. Only
ReceiveMessage and ChangeMessageVisibility are needed (the reconcile function's role has nothing
else on the queue). Each message body is a queued event (``pinrelay.ingest.queued_message_body``:
JSON with ``dedup_key``); one that is not is counted in ``unreadable`` and skipped. Another queue's
messages are read with their own ``key_of`` (the BigCommerce fetch jobs: ``fetch_job_key``; the
Stripe line-items jobs: ``line_items_job_key``).

While they are received the messages are invisible for at most ``visibility_timeout`` seconds:
a ``pinrelay redrive`` running at that moment leaves them for its next run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

MAX_MESSAGES = 10_000  # a dead-letter queue that holds more is an incident of its own: its alarm fired


class SqsDeadLetters:
    def __init__(self, sqs: Any, queue_url: str, *, visibility_timeout: int = 30, wait_seconds: int = 1,
                 max_messages: int = MAX_MESSAGES, key_of: Callable[[str | None], str | None] | None = None) -> None:
        self.sqs = sqs
        self.key_of = key_of or _dedup_key
        self.queue_url = queue_url
        self.visibility_timeout = visibility_timeout
        self.wait_seconds = wait_seconds
        self.max_messages = max_messages
        self.messages = 0
        self.unreadable = 0

    def dedup_keys(self) -> set[str]:
        keys: set[str] = set()
        handles: dict[str, str] = {}  # message id -> the receipt handle it was received with last
        try:
            while len(handles) < self.max_messages:
                received = self.sqs.receive_message(
                    QueueUrl=self.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=self.visibility_timeout,
                    WaitTimeSeconds=self.wait_seconds,
                ).get("Messages", [])
                new = [message for message in received if message["MessageId"] not in handles]
                for message in received:
                    handles[message["MessageId"]] = message["ReceiptHandle"]
                if not new:
                    break
                for message in new:
                    key = self.key_of(message.get("Body"))
                    if key is None:
                        self.unreadable += 1
                    else:
                        keys.add(key)
        finally:
            make_visible(self.sqs, self.queue_url, list(handles.values()))
        self.messages = len(handles)
        return keys


def make_visible(sqs: Any, queue_url: str, receipt_handles: list[str], after_seconds: int = 0) -> None:
    """Give received messages back to the queue, at once by default (ChangeMessageVisibility, ten a
    call): how a peek at a queue (``SqsDeadLetters``, ``pinrelay redrive --dry-run``) leaves it as
    it was."""
    for start in range(0, len(receipt_handles), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(n), "ReceiptHandle": handle, "VisibilityTimeout": after_seconds}
                     for n, handle in enumerate(receipt_handles[start : start + 10])],
        )


def _dedup_key(body: str | None) -> str | None:
    try:
        message = json.loads(body or "")
    except ValueError:
        return None
    key = message.get("dedup_key") if isinstance(message, dict) else None
    return key if isinstance(key, str) and key else None


def fetch_job_key(event_id_template: str) -> Callable[[str | None], str | None]:
    """``key_of`` for the BigCommerce fetch jobs' DLQ: the ledger key of the order a job names,
    with the fetcher's event_id template."""
    from pinrelay.events import dedup_key
    from pinrelay.sources.bigcommerce import FetchJob, event_id_of, BigCommerceOptions

    options = BigCommerceOptions(event_id_template=event_id_template)

    def key_of(body: str | None) -> str | None:
        try:
            job = FetchJob.model_validate_json(body or "")
        except ValueError:
            return None
        return dedup_key(job.ad_account_id, "checkout", event_id_of({"id": job.order_id}, job.store_hash, options))

    return key_of


def line_items_job_key(body: str | None) -> str | None:
    """``key_of`` for the Stripe line-items jobs' DLQ: the ledger key of the event a job carries."""
    from pinrelay.events import OFFLINE, dedup_key
    from pinrelay.sources.stripe import LineItemsJob

    try:
        job = LineItemsJob.model_validate_json(body or "")
        name, event_id = job.event["event_name"], job.event["event_id"]
    except (ValueError, KeyError):
        return None
    return dedup_key(job.ad_account_id, name, event_id, job.event.get("action_source") == OFFLINE)
