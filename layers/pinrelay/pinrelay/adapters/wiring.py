"""The services wired to AWS: one recipe each, shared by the functions that use them."""

from __future__ import annotations

import time
from typing import Protocol

from pinrelay.adapters.aws import client, worst_call_seconds
from pinrelay.adapters.sqs import SqsEventQueue
from pinrelay.ingest import IngestService
from pinrelay.consent import ConsentPolicy


class IngestWiring(Protocol):
    pinterest_ad_account_id: str
    queue_url: str
    consent_policy: ConsentPolicy


def aws_ingest_service(settings: IngestWiring) -> IngestService:
    """Ingest's only AWS dependency is the queue (SQS): DynamoDB is the sender's."""
    return IngestService(
        ad_account_id=settings.pinterest_ad_account_id,
        queue=SqsEventQueue(settings.queue_url, client("sqs"), worst_call_seconds=worst_call_seconds("sqs")),
        clock=time.time,
        consent_policy=settings.consent_policy,
    )
