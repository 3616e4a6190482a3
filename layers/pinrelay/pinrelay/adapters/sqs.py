"""EventQueue on SQS: SendMessageBatch, 10 messages a call."""

from __future__ import annotations

from typing import Any


class SqsEventQueue:
    def __init__(self, queue_url: str, client: Any) -> None:
        self.queue_url = queue_url
        self.client = client

    def send(self, bodies: list[str]) -> list[int]:
        failed: list[int] = []
        for start in range(0, len(bodies), 10):
            entries = [{"Id": str(start + offset), "MessageBody": body} for offset, body in enumerate(bodies[start : start + 10])]
            answer = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            failed.extend(int(entry["Id"]) for entry in answer.get("Failed", []))
        return failed
