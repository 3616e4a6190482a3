"""The ingest service wired to DynamoDB and SQS: one recipe for the ingest and offline-import functions."""

from __future__ import annotations

import time
from typing import Protocol

from pinrelay.adapters.aws import client
from pinrelay.adapters.dynamodb import DynamoDedupStore
from pinrelay.adapters.sqs import SqsEventQueue
from pinrelay.ingest import IngestService
from pinrelay.privacy import LdpPolicy


class IngestWiring(Protocol):
    pinterest_ad_account_id: str
    dedup_window_seconds: int
    dedup_table_name: str
    queue_url: str
    ldp_policy: LdpPolicy


def aws_ingest_service(settings: IngestWiring) -> IngestService:
    return IngestService(
        ad_account_id=settings.pinterest_ad_account_id,
        dedup_window_seconds=settings.dedup_window_seconds,
        store=DynamoDedupStore(settings.dedup_table_name, client("dynamodb")),
        queue=SqsEventQueue(settings.queue_url, client("sqs")),
        clock=time.time,
        ldp_policy=settings.ldp_policy,
    )
