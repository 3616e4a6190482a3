"""What the sender and the AWS adapters do so that nothing is lost and nothing is sent twice
(the whole-stack version of these is tests/e2e/test_faults.py)."""

import pytest

from pinrelay.adapters.dynamodb import DynamoDedupStore
from pinrelay.adapters.sqs import SqsEventQueue
from pinrelay.models import QueuedEvent
from pinrelay.ports import DedupClaim, DeliveryRecord, HttpAnswer
from pinrelay.sender import QueuedMessage, SenderService
from tests.fakes import InMemoryDedupStore, ScriptedPinterestApi, all_processed


def message(i, account="549755885175", receive_count=1):
    event = {"event_name": "checkout", "action_source": "web", "event_id": f"e{i}", "event_time": 1, "user_data": {"em": ["x"]}}
    queued = QueuedEvent(ad_account_id=account, source="api", dedup_key=f"{account}#checkout#e{i}", accepted_at=1,
                         expires_at=100, event=event)
    return QueuedMessage(message_id=f"m{i}-{account}", receive_count=receive_count, event=queued)


def make(api, store=None, sleeps=None, max_attempts=3, request_timeout_seconds=0.0):
    return SenderService(
        api=api, store=store or InMemoryDedupStore(), test_mode=False, max_attempts=max_attempts,
        backoff_base_seconds=0.5, backoff_max_seconds=8, clock=lambda: 1000,
        sleep=(sleeps.append if sleeps is not None else lambda s: None), request_timeout_seconds=request_timeout_seconds,
    )


def plenty():
    return 600.0


class CountingStore(InMemoryDedupStore):
    def __init__(self):
        super().__init__()
        self.writes: list[list[str]] = []

    def record_deliveries(self, records):
        self.writes.append([r.key for r in records])
        super().record_deliveries(records)


def test_outcomes_are_recorded_after_each_request_not_at_the_end_of_the_invocation():
    class Crash(BaseException):
        pass

    store = CountingStore()
    api = ScriptedPinterestApi(all_processed)
    calls = []

    def crash_on_second(records):
        calls.append(records)
        if len(calls) == 2:
            raise Crash()
        CountingStore.record_deliveries(store, records)

    store.record_deliveries = crash_on_second
    messages = [message(1), message(2), message(3, account="42")]
    with pytest.raises(Crash):
        make(api, store).deliver(messages, plenty)
    # the first request's outcome survived the crash: a redelivery skips those events
    assert store.delivery_states([m.event.dedup_key for m in messages]) == {
        "549755885175#checkout#e1": "delivered", "549755885175#checkout#e2": "delivered"}  # e3: still unknown


def test_a_redelivered_batch_only_resends_what_was_not_recorded_and_counts_it():
    store = InMemoryDedupStore()
    store.items["549755885175#checkout#e1"] = {"state": "delivered", "expires_at": 100}
    store.items["549755885175#checkout#e2"] = {"state": "queued", "expires_at": 100}
    api = ScriptedPinterestApi(all_processed)
    report = make(api, store).deliver([message(1, receive_count=2), message(2, receive_count=2), message(3)], plenty)
    assert [e["event_id"] for e in api.calls[0][1]] == ["e2", "e3"]
    assert report.skipped_already_done == 1 and report.resent_after_redelivery == 1


def test_a_split_chunk_keeps_what_was_delivered_when_the_rest_fails():
    """400 -> halves: the first half is delivered and recorded; the second meets an outage. Only
    the second half's messages go back to the queue."""
    answers = iter([HttpAnswer(status=400, body={"message": "bad"}), None])

    def script(events):
        step = next(answers, None)
        if step is not None:
            return step
        if events[0]["event_id"] == "e0":
            return all_processed(events)
        return HttpAnswer(status=503)

    store = CountingStore()
    report = make(ScriptedPinterestApi(script), store).deliver([message(i) for i in range(4)], plenty)
    assert store.writes == [["549755885175#checkout#e0", "549755885175#checkout#e1"]]
    assert sorted(report.failed_message_ids) == ["m2-549755885175", "m3-549755885175"]


def test_no_request_starts_unless_its_timeout_fits_in_the_invocation():
    api = ScriptedPinterestApi(all_processed)
    report = make(api, request_timeout_seconds=10).deliver([message(1)], lambda: 14.0)
    assert api.calls == [] and report.failed_message_ids == ["m1-549755885175"]
    report = make(api, request_timeout_seconds=10).deliver([message(1)], lambda: 15.5)
    assert len(api.calls) == 1 and report.delivered == 1


def test_a_retry_after_longer_than_the_invocation_may_wait_returns_the_messages_instead_of_retrying_early():
    sleeps = []
    api = ScriptedPinterestApi(HttpAnswer(status=429, retry_after=120.0), all_processed)
    report = make(api, sleeps=sleeps).deliver([message(1)], plenty)
    assert len(api.calls) == 1 and sleeps == [] and report.failed_message_ids == ["m1-549755885175"]


def test_sends_without_a_readable_answer_are_counted_as_uncertain():
    api = ScriptedPinterestApi(HttpAnswer(status=None, transport_error="timed out"), HttpAnswer(status=200, text="<html>"),
                               HttpAnswer(status=503), all_processed)
    report = make(api, max_attempts=4).deliver([message(1), message(2)], plenty)
    assert report.delivered == 2 and report.uncertain_sends == 4  # 2 events x (timeout + unreadable 200); not the 503


def test_a_failed_write_of_outcomes_is_counted_and_the_events_are_not_sent_again():
    class BrokenStore(InMemoryDedupStore):
        def record_deliveries(self, records):
            raise RuntimeError("throttled")

    report = make(ScriptedPinterestApi(all_processed), BrokenStore()).deliver([message(1), message(2)], plenty)
    assert report.failed_message_ids == [] and report.record_failures == 2


# -- adapters, with fake boto3 clients ---------------------------------------------------------


class FakeErrors:
    class ConditionalCheckFailedException(Exception):
        pass


class FakeSqs:
    def __init__(self, fail_call: int):
        self.calls = 0
        self.fail_call = fail_call
        self.sent: list[str] = []

    def send_message_batch(self, QueueUrl, Entries):
        self.calls += 1
        if self.calls == self.fail_call:
            raise RuntimeError("ThrottlingException")
        self.sent += [e["MessageBody"] for e in Entries]
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}


def test_sqs_queue_reports_exactly_what_was_not_queued_when_a_later_call_fails():
    sqs = FakeSqs(fail_call=2)
    bodies = [str(i) for i in range(25)]
    assert SqsEventQueue("q", sqs).send(bodies) == list(range(10, 25))
    assert sqs.sent == bodies[:10]


def test_sqs_queue_raises_when_nothing_was_queued():
    with pytest.raises(RuntimeError):
        SqsEventQueue("q", FakeSqs(fail_call=1)).send(["a", "b"])


class FakeDynamo:
    exceptions = FakeErrors

    def __init__(self, delete_failures=0, unprocessed_rounds=0):
        self.delete_failures = delete_failures
        self.deletes = 0
        self.unprocessed_rounds = unprocessed_rounds
        self.batch_writes = 0

    def delete_item(self, **kwargs):
        self.deletes += 1
        if self.deletes <= self.delete_failures:
            raise RuntimeError("ThrottlingException")

    def batch_write_item(self, RequestItems):
        self.batch_writes += 1
        if self.batch_writes <= self.unprocessed_rounds:
            return {"UnprocessedItems": RequestItems}
        return {}


@pytest.fixture
def no_sleep(monkeypatch):
    from pinrelay.adapters import dynamodb

    monkeypatch.setattr(dynamodb.time, "sleep", lambda s: None)


def claim(key):
    return DedupClaim(key=key, accepted_at=1, expires_at=2, claim_id="c")


def test_release_retries_a_throttled_delete(no_sleep):
    client = FakeDynamo(delete_failures=3)
    DynamoDedupStore("t", client).release([claim("a"), claim("b")])
    assert client.deletes == 5


def test_release_raises_after_its_retries_and_still_releases_the_others(no_sleep):
    client = FakeDynamo(delete_failures=6)
    with pytest.raises(RuntimeError):
        DynamoDedupStore("t", client).release([claim("a"), claim("b")])
    assert client.deletes == 7  # 6 for a (all failed), 1 for b


def test_unprocessed_delivery_records_are_retried_with_backoff_then_give_up(no_sleep):
    record = DeliveryRecord(key="k", state="delivered", attempts=1, accepted_at=1, expires_at=2, updated_at=1)
    client = FakeDynamo(unprocessed_rounds=2)
    DynamoDedupStore("t", client).record_deliveries([record])
    assert client.batch_writes == 3
    with pytest.raises(RuntimeError, match="unprocessed"):
        DynamoDedupStore("t", FakeDynamo(unprocessed_rounds=100)).record_deliveries([record])
