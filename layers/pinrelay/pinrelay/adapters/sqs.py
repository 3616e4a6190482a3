"""EventQueue on SQS: SendMessageBatch, 10 messages a call.

Reports exactly which bodies were not queued: the entries SQS lists as ``Failed`` and, when a
call raises (throttling, 5xx, network after botocore's retries), that call's entries and every
later one (not attempted). The ingest service releases the dedup claims of exactly those, so
the caller's retry is accepted, and keeps the ones already queued.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


class SqsEventQueue:
    def __init__(self, queue_url: str, client: Any) -> None:
        self.queue_url = queue_url
        self.client = client

    def send(self, bodies: list[str]) -> list[int]:
        failed: list[int] = []
        for start in range(0, len(bodies), 10):
            entries = [{"Id": str(start + offset), "MessageBody": body} for offset, body in enumerate(bodies[start : start + 10])]
            try:
                answer = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except Exception as exc:  # noqa: BLE001 - reported as not queued, the claims are released
                logger.warning("SendMessageBatch failed: %s; %d message(s) not queued", type(exc).__name__, len(bodies) - start)
                if start == 0:
                    raise  # nothing queued: let the caller see the error itself
                return failed + list(range(start, len(bodies)))
            failed.extend(int(entry["Id"]) for entry in answer.get("Failed", []))
        return failed
