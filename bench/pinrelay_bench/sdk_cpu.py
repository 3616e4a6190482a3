"""The AWS SDK's own CPU per call, which the in-memory measurements leave out.

Real botocore clients whose HTTP is short-circuited in ``before-call``: what remains is parameter
validation, serialisation, endpoint resolution and event hooks - a lower bound (no SigV4 signing,
no HTTP, no response parsing). Measured through pinrelay's own adapters, so their thread pools
are included:

* ingest: one SendMessageBatch of 10 messages, and ``SqsEventQueue.send`` of a 1000-event
  request (its calls run in parallel threads): CPU per call with the pool, and the pool's overhead;
* sender: ``DynamoDeliveryLedger`` (16 threads) claiming, marking ``sending`` and recording
  outcomes with conditional UpdateItems: CPU per write with the pool, the pool's overhead
  against the same claims one after another, and the wall time per write.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from pinrelay_bench.harness import AD_ACCOUNT, median_cpu
from pinrelay_bench.workload import queued_bodies

QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/pinrelay-bench"
CLAIM_ID = "bench-invocation"


class _StubHttp:
    status_code = 200
    headers: dict[str, str] = {}


def stub_client(service: str) -> Any:
    """A real botocore client answering every call from ``before-call`` (no network). The answer is
    registered last, so hooks attached later (a call counter) still see every call."""
    import boto3

    client = boto3.session.Session(region_name="us-east-1", aws_access_key_id="bench",
                                   aws_secret_access_key="bench").client(service)
    answers = {"SendMessageBatch": {"Successful": [], "Failed": []}, "UpdateItem": {"Attributes": {}}}

    def short_circuit(model: Any, **_: Any) -> Any:
        return _StubHttp(), dict(answers.get(model.name, {}))

    client.meta.events.register_last("before-call", short_circuit)
    return client


def measure_sdk_cpu(quick: bool) -> dict[str, Any]:
    from pinrelay.adapters.dynamodb import DynamoDeliveryLedger
    from pinrelay.adapters.sqs import SqsEventQueue, batches_by_size
    from pinrelay.ports import ClaimRequest, Outcome

    def time_left() -> float:
        return 900.0

    sqs, dynamodb = stub_client("sqs"), stub_client("dynamodb")
    now = int(time.time())
    n = 200 if quick else 1000
    reps = 3 if quick else 5
    body = queued_bodies(1, now, prefix="sdk")[0]

    # ingest: SendMessageBatch alone, then a whole request's bodies through the adapter's pool
    entries = [{"Id": str(i), "MessageBody": body} for i in range(10)]
    send = median_cpu(lambda: [sqs.send_message_batch(QueueUrl=QUEUE_URL, Entries=entries) for _ in range(n // 10)],
                      reps) / (n // 10)
    queue = SqsEventQueue(QUEUE_URL, sqs, worst_call_seconds=12.0)
    bodies = [body] * 1000
    calls = len(batches_by_size(bodies))
    send_pooled = median_cpu(lambda: queue.send(bodies, time_left), reps) / calls
    send_pooled_wall = median_cpu(lambda: queue.send(bodies, time_left), reps, clock=time.perf_counter) / calls

    # sender: the ledger's conditional UpdateItems, 16 threads
    ledger = DynamoDeliveryLedger("bench", dynamodb, worst_call_seconds=12.0)
    claims = [ClaimRequest(key=f"{AD_ACCOUNT}#checkout#sdk-{i}", state="claimed", lease_until=now + 900,
                           expires_at=now + 86_400, accepted_at=now) for i in range(n)]
    keys = [claim.key for claim in claims]
    outcomes = [Outcome(key, "delivered", now) for key in keys]
    claim_pooled = median_cpu(lambda: ledger.claim(claims, CLAIM_ID, now, time_left), reps) / n
    mark_pooled = median_cpu(lambda: ledger.mark_sending(keys, CLAIM_ID, now, time_left), reps) / n
    record_pooled = median_cpu(lambda: ledger.record(outcomes, CLAIM_ID, time_left), reps) / n
    pooled_wall = median_cpu(lambda: ledger.claim(claims, CLAIM_ID, now, time_left), reps, clock=time.perf_counter) / n
    claim_one = getattr(ledger, "_claim_one", None)
    sequential = (median_cpu(lambda: [claim_one(c, CLAIM_ID, now, time_left) for c in claims], reps) / n
                  if claim_one is not None else None)
    per_write = statistics.median([claim_pooled, mark_pooled, record_pooled])
    return {
        "send_message_batch_us": send * 1e6,
        "send_calls_per_1000_events": calls,
        "send_pool_cpu_us_per_call": send_pooled * 1e6,
        "send_pool_overhead_us_per_call": (send_pooled - send) * 1e6,
        "send_pool_wall_us_per_call": send_pooled_wall * 1e6,
        "update_item_us": sequential * 1e6 if sequential is not None else None,
        "claim_pool_cpu_us_per_write": claim_pooled * 1e6,
        "mark_sending_pool_cpu_us_per_write": mark_pooled * 1e6,
        "record_pool_cpu_us_per_write": record_pooled * 1e6,
        "update_item_pool_cpu_us": per_write * 1e6,
        "ledger_pool_overhead_us_per_write": (claim_pooled - sequential) * 1e6 if sequential is not None else None,
        "ledger_pool_wall_us_per_write": pooled_wall * 1e6,
        "ledger_workers": ledger.max_workers,
        "queue_workers": queue.max_workers,
        "note": "botocore with HTTP short-circuited in before-call: a lower bound (no SigV4, HTTP or parsing)",
    }
