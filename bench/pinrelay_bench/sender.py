"""Sender batching and CPU per invocation.

10 000 queued web events (messages exactly as ingest writes them) are handed to the real sender
handler as 10 SQS events of 1000 records (Lambda with BatchSize 1000 and a full queue), with the
Pinterest stand-in as the endpoint and a delivery ledger in memory (``FreshLedger``: every
event new, every write taken, no I/O; the SDK's CPU per UpdateItem is in sdk_cpu.py). Measured:
events per Pinterest request, CPU per invocation (``time.thread_time`` of the handler thread: the
stand-in validates bodies in its own threads), log bytes per invocation; the same for 1000
offline events (claimed, marked ``sending``, recorded) and for small 5-event invocations (the
fixed cost of one invocation, as a trickle makes them).
"""

from __future__ import annotations

import gc
import hashlib
import statistics
import sys
import time
import uuid
from collections import Counter
from typing import Any

from pinrelay_bench.harness import BENCH_TOKEN, ENV_REMOVE, ByteCounter, bench_env, fresh_handler, patched_environ
from pinrelay_bench.workload import queued_bodies


def sqs_event(bodies: list[str], queue_arn: str = "arn:aws:sqs:us-east-1:123456789012:pinrelay-events") -> dict[str, Any]:
    """The event Lambda's SQS event source hands the sender for these message bodies."""
    now_ms = str(int(time.time() * 1000))
    records = []
    for body in bodies:
        records.append({
            "messageId": str(uuid.uuid4()),
            "receiptHandle": "AQEB" + uuid.uuid4().hex,
            "body": body,
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": now_ms, "SenderId": "AROAEXAMPLE:pinrelay-ingest",
                           "ApproximateFirstReceiveTimestamp": now_ms},
            "messageAttributes": {},
            "md5OfBody": hashlib.md5(body.encode("utf-8")).hexdigest(),  # noqa: S324 - what SQS sends
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": "us-east-1",
        })
    return {"Records": records}


class FreshLedger:
    """A delivery ledger in which every event is new and every write succeeds: what the sender's
    common path meets, without DynamoDB's latency (the bench measures the sender's own CPU)."""

    def claim(self, requests: list[Any], claim_id: str, now: int, time_left: Any) -> list[Any]:
        from pinrelay.ports import ClaimResult

        return [ClaimResult(request.key, won=True) for request in requests]

    def mark_sending(self, keys: list[str], claim_id: str, now: int, time_left: Any) -> list[str]:
        return []

    def record(self, outcomes: list[Any], claim_id: str, time_left: Any) -> list[str]:
        return []


def measure_sender(quick: bool, counter: ByteCounter) -> dict[str, Any]:
    from pinrelay_local.http_gateway import LambdaContext
    from pinrelay_local.pinterest_standin import PinterestStandIn

    invocations = 3 if quick else 10
    now = int(time.time())
    bodies = queued_bodies(invocations * 1000, now, prefix=f"sender-{uuid.uuid4().hex[:6]}")
    offline_bodies = queued_bodies(1000, now, prefix=f"sender-offline-{uuid.uuid4().hex[:6]}", offline=True)

    with PinterestStandIn(token=BENCH_TOKEN) as standin, patched_environ(
        bench_env(PINTEREST_API_URL=standin.base_url), remove=ENV_REMOVE
    ):
        handler = fresh_handler("sender_handler")
        service = handler.service()
        service.ledger = FreshLedger()

        def invoke(event: dict[str, Any]) -> tuple[float, float, int, int]:
            """(CPU s, wall s, log bytes, batch item failures) of one invocation."""
            before = counter.bytes
            gc.collect()
            started_cpu, started = time.thread_time(), time.perf_counter()
            answer = handler.lambda_handler(event, LambdaContext("pinrelay-sender", memory_limit_in_mb=256, timeout_s=120))
            return (time.thread_time() - started_cpu, time.perf_counter() - started, counter.bytes - before,
                    len(answer.get("batchItemFailures", [])))

        runs = [invoke(sqs_event(bodies[n * 1000 : (n + 1) * 1000])) for n in range(invocations)]
        records = list(standin.received)
        sizes = [len(record["body"]["data"]) for record in records if isinstance(record.get("body"), dict)]
        statuses = Counter(record["status"] for record in records)
        delivered = len(standin.delivered_events())
        offline = invoke(sqs_event(offline_bodies))
        # small invocations (a trickle's batches): the fixed cost per invocation
        small = [invoke(sqs_event(queued_bodies(5, now, prefix=f"small-{uuid.uuid4().hex[:6]}"))) for _ in range(5 if quick else 20)]
        sys.modules.pop("sender_handler", None)
    cpu = [run[0] for run in runs]
    return {
        "queued_events": len(bodies),
        "invocations": invocations,
        "records_per_invocation": 1000,
        "pinterest_requests": len(sizes),
        "events_per_request": statistics.mean(sizes) if sizes else 0.0,
        "request_sizes": sizes,
        "pinterest_statuses": dict(statuses),
        "delivered": delivered,
        "batch_item_failures": sum(run[3] for run in runs) + offline[3],
        "cpu_ms_per_invocation_1000": statistics.median(cpu) * 1e3,
        "wall_ms_per_invocation_1000": statistics.median(run[1] for run in runs) * 1e3,
        "cpu_ms_per_invocation_1000_offline": offline[0] * 1e3,
        "cpu_ms_per_invocation_5": statistics.median(run[0] for run in small) * 1e3,
        "log_bytes_per_invocation_1000": statistics.median(run[2] for run in runs),
        "log_bytes_per_invocation_5": statistics.median(run[2] for run in small),
        "log_bytes_per_event_1000": statistics.median(run[2] for run in runs) / 1000,
        "note": "CPU = time.thread_time of the handler thread (the stand-in's schema validation runs in its own threads); "
                "ledger in memory (UpdateItem SDK CPU: sdk_cpu)",
    }
