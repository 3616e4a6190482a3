"""DynamoDedupStore and SqsEventQueue against moto server."""

import json

from pinrelay.adapters.dynamodb import DynamoDedupStore
from pinrelay.adapters.sqs import SqsEventQueue
from pinrelay.ports import DedupClaim, DeliveryRecord


def claim(key, now, claim_id="c1", window=86400):
    return DedupClaim(key=key, accepted_at=now, expires_at=now + window, claim_id=claim_id)


def test_claim_is_conditional_and_expiry_is_checked_in_the_condition(aws, dedup_table):
    store = DynamoDedupStore(dedup_table, aws["dynamodb"])
    assert store.claim([claim("a", 1000)], 1000) == [True]
    assert store.claim([claim("a", 2000, "c2")], 2000) == [False]  # within 24 h
    # moto, like DynamoDB's late TTL sweep, still holds the expired item: the condition decides
    assert store.claim([claim("a", 1000 + 86400, "c3")], 1000 + 86400) == [True]
    item = aws["dynamodb"].get_item(TableName=dedup_table, Key={"pk": {"S": "a"}})["Item"]
    assert item["claim_id"]["S"] == "c3" and item["state"]["S"] == "queued"
    assert item["expires_at"]["N"] == str(1000 + 2 * 86400)


def test_many_claims_in_parallel_keep_their_order(aws, dedup_table):
    store = DynamoDedupStore(dedup_table, aws["dynamodb"])
    store.claim([claim(f"k{i}", 10) for i in range(0, 40, 2)], 10)
    outcome = store.claim([claim(f"k{i}", 10, "c2") for i in range(40)], 10)
    assert outcome == [i % 2 == 1 for i in range(40)]


def test_release_only_removes_own_unsent_claim(aws, dedup_table):
    store = DynamoDedupStore(dedup_table, aws["dynamodb"])
    store.claim([claim("mine", 10, "me")], 10)
    store.release([claim("mine", 10, "someone-else")])
    assert store.delivery_states(["mine"]) == {"mine": "queued"}
    store.release([claim("mine", 10, "me")])
    assert store.delivery_states(["mine"]) == {}


def test_delivery_records_and_states(aws, dedup_table):
    store = DynamoDedupStore(dedup_table, aws["dynamodb"])
    keys = [f"k{i}" for i in range(130)]
    store.claim([claim(k, 10) for k in keys], 10)
    store.record_deliveries(
        [DeliveryRecord(key=k, state="rejected" if i == 7 else "delivered", attempts=2, accepted_at=10, expires_at=86410,
                        updated_at=20, error_message="Invalid event_timestamp" if i == 7 else None) for i, k in enumerate(keys[:60])]
    )
    states = store.delivery_states(keys + ["unknown"])
    assert len(states) == 130
    assert states["k7"] == "rejected" and states["k8"] == "delivered" and states["k100"] == "queued"
    item = aws["dynamodb"].get_item(TableName=dedup_table, Key={"pk": {"S": "k7"}})["Item"]
    assert item["error_message"]["S"] == "Invalid event_timestamp" and item["attempts"]["N"] == "2"


def test_queue_sends_ten_per_call_one_message_per_body(aws, queue_url):
    calls = []
    aws["sqs"].meta.events.register("before-call.sqs.SendMessageBatch", lambda **kw: calls.append(1))
    queue = SqsEventQueue(queue_url, aws["sqs"])
    bodies = [json.dumps({"n": i}) for i in range(23)]
    assert queue.send(bodies) == []
    assert len(calls) == 3
    received = []
    while True:
        batch = aws["sqs"].receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            break
        received += [json.loads(m["Body"])["n"] for m in batch]
        aws["sqs"].delete_message_batch(QueueUrl=queue_url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])
    assert sorted(received) == list(range(23))
