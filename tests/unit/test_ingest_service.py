import json

import pytest

from pinrelay.ingest import IngestService, IngestUnavailable
from tests.fakes import InMemoryDedupStore, ListQueue


def make(now, store=None, queue=None):
    return IngestService(
        ad_account_id="549755885175",
        dedup_window_seconds=86400,
        store=store or InMemoryDedupStore(),
        queue=queue or ListQueue(),
        clock=lambda: now,
    )


def raw(now, event_id="e1", **extra):
    return {"event_name": "checkout", "action_source": "web", "event_id": event_id, "event_time": now,
            "user_data": {"em": "bob@example.com"}, **extra}


def test_accepted_events_are_queued_hashed_one_message_each(now):
    queue = ListQueue()
    outcome = make(now, queue=queue).ingest_api_events([raw(now, "e1"), raw(now, "e2")])
    assert [r.status for r in outcome.results] == ["accepted", "accepted"]
    assert len(queue.bodies) == 2
    message = json.loads(queue.bodies[0])
    assert message["dedup_key"] == "549755885175#checkout#e1"
    assert message["expires_at"] == now + 86400
    assert "bob@example.com" not in queue.bodies[0]


def test_repeat_within_window_is_a_duplicate_and_not_queued(now):
    store, queue = InMemoryDedupStore(), ListQueue()
    make(now, store, queue).ingest_api_events([raw(now)])
    outcome = make(now + 3600, store, queue).ingest_api_events([raw(now)])
    assert outcome.results[0].status == "duplicate"
    assert len(queue.bodies) == 1


def test_same_event_id_with_another_event_name_is_another_event(now):
    queue = ListQueue()
    service = make(now, queue=queue)
    service.ingest_api_events([raw(now)])
    outcome = service.ingest_api_events([{**raw(now), "event_name": "add_to_cart"}])
    assert outcome.results[0].status == "accepted"


def test_after_the_window_the_same_event_is_accepted_again_even_if_the_item_was_not_swept(now):
    store, queue = InMemoryDedupStore(), ListQueue()
    make(now, store, queue).ingest_api_events([raw(now)])
    outcome = make(now + 86400, store, queue).ingest_api_events([raw(now + 86400)])
    assert outcome.results[0].status == "accepted"


def test_repeat_inside_one_request(now):
    outcome = make(now).ingest_api_events([raw(now), raw(now)])
    assert [r.status for r in outcome.results] == ["accepted", "duplicate"]


def test_rejected_event_is_never_queued_and_order_is_kept(now):
    queue = ListQueue()
    outcome = make(now, queue=queue).ingest_api_events([raw(now, "ok"), {"event_id": "bad"}, raw(now, "ok2")])
    assert [r.status for r in outcome.results] == ["accepted", "rejected", "accepted"]
    assert [json.loads(b)["event"]["event_id"] for b in queue.bodies] == ["ok", "ok2"]
    assert not outcome.failed and outcome.any_valid


def test_queue_failure_releases_the_claim_so_the_retry_is_not_a_duplicate(now):
    store = InMemoryDedupStore()
    outcome = make(now, store, ListQueue(fail_positions={1})).ingest_api_events([raw(now, "a"), raw(now, "b")])
    assert [r.status for r in outcome.results] == ["accepted", "error"]
    assert outcome.failed
    retry = make(now, store, ListQueue()).ingest_api_events([raw(now, "a"), raw(now, "b")])
    assert [r.status for r in retry.results] == ["duplicate", "accepted"]


def test_queue_exception_releases_every_claim(now):
    store = InMemoryDedupStore()
    outcome = make(now, store, ListQueue(raise_error=True)).ingest_api_events([raw(now, "a")])
    assert outcome.results[0].status == "error"
    assert store.items == {}


def test_dedup_store_down_is_unavailable(now):
    store = InMemoryDedupStore()
    store.fail_claims = True
    with pytest.raises(IngestUnavailable):
        make(now, store).ingest_api_events([raw(now)])


def test_release_failing_after_the_queue_failed_still_answers_an_error_not_a_crash(now):
    class ReleaseFails(InMemoryDedupStore):
        def release(self, claims):
            raise RuntimeError("dynamodb down too")

    outcome = make(now, ReleaseFails(), ListQueue(raise_error=True)).ingest_api_events([raw(now)])
    assert outcome.failed and outcome.results[0].status == "error" and outcome.unreleased_claims == 1
