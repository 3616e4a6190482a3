import json

from pinrelay.ingest import MAX_MESSAGE_BYTES, IngestService
from tests.fakes import ListQueue


def make(now, queue=None):
    return IngestService(ad_account_id="549755885175", queue=queue or ListQueue(), clock=lambda: now)


def raw(now, event_id="e1", **extra):
    return {"event_name": "checkout", "action_source": "web", "event_id": event_id, "event_time": now,
            "user_data": {"em": "bob@example.com"}, **extra}


def test_accepted_events_are_queued_hashed_one_message_each(now):
    queue = ListQueue()
    outcome = make(now, queue=queue).ingest_api_events([raw(now, "e1"), raw(now, "e2")])
    assert [r.status for r in outcome.results] == ["accepted", "accepted"]
    assert len(queue.bodies) == 2
    message = json.loads(queue.bodies[0])
    assert message["v"] == 2 and message["dedup_key"] == "549755885175#checkout#e1" and message["accepted_at"] == now
    assert "bob@example.com" not in queue.bodies[0]


def test_a_repeat_in_a_later_request_is_queued_again_and_left_to_the_senders_claim(now):
    queue = ListQueue()
    make(now, queue).ingest_api_events([raw(now)])
    outcome = make(now + 3600, queue).ingest_api_events([raw(now)])
    assert outcome.results[0].status == "accepted" and len(queue.bodies) == 2


def test_repeat_inside_one_request_is_queued_once(now):
    queue = ListQueue()
    outcome = make(now, queue).ingest_api_events([raw(now), raw(now)])
    assert [r.status for r in outcome.results] == ["accepted", "duplicate"] and len(queue.bodies) == 1


def test_same_event_id_with_another_event_name_is_another_event(now):
    outcome = make(now).ingest_api_events([raw(now), {**raw(now), "event_name": "add_to_cart"}])
    assert [r.status for r in outcome.results] == ["accepted", "accepted"]


def test_rejected_event_is_never_queued_and_order_is_kept(now):
    queue = ListQueue()
    outcome = make(now, queue=queue).ingest_api_events([raw(now, "ok"), {"event_id": "bad"}, raw(now, "ok2")])
    assert [r.status for r in outcome.results] == ["accepted", "rejected", "accepted"]
    assert [json.loads(b)["event"]["event_id"] for b in queue.bodies] == ["ok", "ok2"]
    assert not outcome.failed and outcome.any_valid


def test_events_the_queue_could_not_take_are_errors_the_caller_retries(now):
    outcome = make(now, ListQueue(fail_positions={1})).ingest_api_events([raw(now, "a"), raw(now, "b")])
    assert [r.status for r in outcome.results] == ["accepted", "error"] and outcome.failed
    assert "retry the request" in outcome.results[1].reason


def test_a_queue_that_raises_makes_every_event_an_error(now):
    outcome = make(now, ListQueue(raise_error=True)).ingest_api_events([raw(now, "a"), raw(now, "b")])
    assert [r.status for r in outcome.results] == ["error", "error"]


def test_a_message_sqs_refuses_as_the_senders_fault_is_a_rejection_not_a_retry(now):
    outcome = make(now, ListQueue(refuse_positions={0})).ingest_api_events([raw(now, "a"), raw(now, "b")])
    assert [r.status for r in outcome.results] == ["rejected", "accepted"] and not outcome.failed


def test_an_event_too_large_for_one_message_is_rejected_naming_the_field_and_the_others_are_queued(now):
    queue = ListQueue()
    big = raw(now, "big", custom_data={"content_name": "x" * MAX_MESSAGE_BYTES})
    outcome = make(now, queue).ingest_api_events([raw(now, "a"), big, raw(now, "b")])
    assert [r.status for r in outcome.results] == ["accepted", "rejected", "accepted"]
    assert outcome.results[1].reason.startswith("custom_data.content_name: the event is over 1048576 bytes")
    assert [json.loads(b)["event"]["event_id"] for b in queue.bodies] == ["a", "b"]


def test_lists_of_user_data_are_bounded(now):
    outcome = make(now).ingest_api_events([raw(now, user_data={"em": [f"p{i}@example.com" for i in range(11)]})])
    assert outcome.results[0].status == "rejected"
    assert outcome.results[0].reason == "user_data.em: 11 values; at most 10 per field"
