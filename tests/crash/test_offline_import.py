"""The offline import killed at each of its AWS calls, then retried as Lambda retries an
asynchronous S3 invocation: every sale reaches Pinterest exactly once (offline events cannot be
deduplicated by Pinterest, so a copy sent twice would count the sale twice)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from urllib.parse import quote_plus

import pytest

from pinrelay_local.fault_proxy import KILL_AFTER, KILL_BEFORE, LOSE_ANSWER, FaultPoint
from tests.crash.conftest import World, rule_for

ROWS = 25  # three SendMessageBatch calls (10 + 10 + 5)
# the object's size, the bytes read twice (the UTF-8 check, then the rows), the queue, the report
IMPORT_CALLS = ["s3.HeadObject", "s3.GetObject", "s3.GetObject", "sqs.SendMessageBatch", "sqs.SendMessageBatch",
                "sqs.SendMessageBatch", "s3.PutObject"]


def sales(prefix: str) -> bytes:
    now = int(time.time()) - 3600
    lines = ["event_id,email,phone,event_time,value,currency"]
    lines += [f"{prefix}-{i},buyer{i}@example.com,+1 502 555 {1000 + i},{now},{10 + i}.00,USD" for i in range(ROWS)]
    return ("\n".join(lines) + "\n").encode()


def s3_event(bucket: str, key: str) -> dict:
    return {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
                         "eventTime": datetime.now(UTC).isoformat(), "eventName": "ObjectCreated:Put",
                         "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                                "object": {"key": quote_plus(key), "size": 1}}}]}


def upload(world: World, prefix: str) -> dict:
    bucket = f"crash-offline-{prefix}-{int(time.time() * 1000) % 10**9}"
    world.aws["s3"].create_bucket(Bucket=bucket)
    key = f"uploads/{prefix}.csv"
    world.aws["s3"].put_object(Bucket=bucket, Key=key, Body=sales(prefix))
    return s3_event(bucket, key)


def import_with_lambdas_retry(world: World, event: dict, caller: str) -> list:
    """The first attempt (the one a fault may hit) and, if it failed, Lambda's one retry."""
    attempts = [world.invoke("offline_import", event, caller=caller)]
    if attempts[0].status != "ok":
        attempts.append(world.invoke("offline_import", event))
    return attempts


def test_the_offline_import_makes_these_aws_calls(world: World):
    (attempt,) = import_with_lambdas_retry(world, upload(world, "rec"), caller="import-rec")
    assert attempt.status == "ok" and attempt.result.response["imports"][0]["accepted"] == ROWS
    assert world.proxy.operations_of("import-rec") == IMPORT_CALLS


@pytest.mark.parametrize("point", [FaultPoint("import-1", i, *call.split("."), IMPORT_CALLS[:i].count(call), action)
                                   for i, call in enumerate(IMPORT_CALLS, start=1)
                                   for action in (KILL_BEFORE, KILL_AFTER, LOSE_ANSWER)], ids=str)
def test_offline_import_fault(world: World, point: FaultPoint):
    world.proxy.add_rule(rule_for(point, point.action))
    attempts = import_with_lambdas_retry(world, upload(world, "imp"), caller="import-1")
    assert attempts[-1].status == "ok", attempts[-1].result
    world.drain()
    tally = world.tally()
    counts = {i: tally.processed[world.key(f"imp-{i}", offline=True)] for i in range(ROWS)}
    assert counts == dict.fromkeys(range(ROWS), 1), counts  # every sale once: none lost, none twice
    world.outcome = {"sales": f"{ROWS} of {ROWS} processed once"}
    assert world.dlq_depth() == 0 and not world.timed_out()
