import pytest

from pinrelay.models import QueuedEvent
from pinrelay.ports import HttpAnswer
from pinrelay.sender import SenderService, chunks
from tests.fakes import InMemoryDedupStore, ScriptedPinterestApi, all_processed


def message(i, account="549755885175", receive_count=1):
    event = {"event_name": "checkout", "action_source": "web", "event_id": f"e{i}", "event_time": 1, "user_data": {"em": ["x"]}}
    queued = QueuedEvent(ad_account_id=account, source="api", dedup_key=f"{account}#checkout#e{i}", accepted_at=1, expires_at=100, event=event)
    from pinrelay.sender import QueuedMessage

    return QueuedMessage(message_id=f"m{i}", receive_count=receive_count, event=queued)


def make(api, store=None, sleeps=None, test_mode=False, max_attempts=3):
    return SenderService(
        api=api, store=store or InMemoryDedupStore(), test_mode=test_mode, max_attempts=max_attempts,
        backoff_base_seconds=0.5, backoff_max_seconds=8, clock=lambda: 1000,
        sleep=(sleeps.append if sleeps is not None else lambda s: None),
    )


def plenty():
    return 600.0


def test_chunks_of_at_most_1000_grouped_by_ad_account():
    api = ScriptedPinterestApi(all_processed)
    messages = [message(i) for i in range(2500)] + [message(i, account="42") for i in range(3)]
    report = make(api, test_mode=True).deliver(messages, plenty)
    assert [(account, len(events), test) for account, events, test in api.calls] == [
        ("549755885175", 1000, True), ("549755885175", 1000, True), ("549755885175", 500, True), ("42", 3, True)]
    assert report.delivered == 2503 and report.failed_message_ids == []
    assert chunks(list(range(5)), 2) == [[0, 1], [2, 3], [4]]


def test_422_records_failed_events_with_pinterest_message_and_does_not_retry_them():
    def partial(events):
        return HttpAnswer(status=422, body={"code": 953, "message": "invalid", "details": {
            "num_events_received": 3, "num_events_processed": 2,
            "events": [{"status": "processed"}, {"status": "failed", "error_message": "Invalid event_timestamp"}, {"status": "processed"}]}})

    store = InMemoryDedupStore()
    report = make(ScriptedPinterestApi(partial), store).deliver([message(i) for i in range(3)], plenty)
    assert report.delivered == 2 and report.rejected == 1 and report.failed_message_ids == []
    states = {r.key.split("#")[-1]: (r.state, r.error_message) for r in store.recorded}
    assert states == {"e0": ("delivered", None), "e1": ("rejected", "Invalid event_timestamp"), "e2": ("delivered", None)}


@pytest.mark.parametrize(
    "failure",
    [HttpAnswer(status=503, body={"code": 4197, "message": "ramped down"}), HttpAnswer(status=None, transport_error="timed out"),
     HttpAnswer(status=200, body=None, text="<html>"), HttpAnswer(status=200, body={"events": []})],
)
def test_transient_failures_are_retried_with_backoff_then_returned_as_batch_failures(failure):
    sleeps = []
    api = ScriptedPinterestApi(failure)
    report = make(api, sleeps=sleeps).deliver([message(1), message(2)], plenty)
    assert len(api.calls) == 3
    assert sleeps == [0.5, 1.0]
    assert sorted(report.failed_message_ids) == ["m1", "m2"]
    assert report.delivered == 0


def test_recovery_within_the_invocation():
    api = ScriptedPinterestApi(HttpAnswer(status=429, retry_after=3.0), all_processed)
    sleeps = []
    report = make(api, sleeps=sleeps).deliver([message(1)], plenty)
    assert sleeps == [3.0]  # Retry-After honoured
    assert report.delivered == 1 and report.failed_message_ids == []


def test_no_sleep_past_the_end_of_the_invocation():
    api = ScriptedPinterestApi(HttpAnswer(status=503))
    report = make(api).deliver([message(1)], lambda: 5.2)
    assert len(api.calls) == 1 and report.failed_message_ids == ["m1"]


def test_a_400_is_split_until_the_refused_event_is_alone():
    def refuse_e2(events):
        if any(e["event_id"] == "e2" for e in events):
            return HttpAnswer(status=400, body={"code": 4196, "message": "The request was invalid."})
        return all_processed(events)

    store = InMemoryDedupStore()
    report = make(ScriptedPinterestApi(refuse_e2), store).deliver([message(i) for i in range(5)], plenty)
    assert report.delivered == 4 and report.rejected == 1
    assert [r.error_message for r in store.recorded if r.state == "rejected"] == ["HTTP 400: The request was invalid."]


def test_already_delivered_events_are_not_sent_again():
    store = InMemoryDedupStore()
    api = ScriptedPinterestApi(all_processed)
    make(api, store).deliver([message(1)], plenty)
    report = make(api, store).deliver([message(1, receive_count=2), message(2)], plenty)
    assert [e["event_id"] for e in api.calls[-1][1]] == ["e2"]
    assert report.skipped_already_done == 1


def test_failure_to_record_does_not_resend_what_pinterest_took():
    class BrokenStore(InMemoryDedupStore):
        def record_deliveries(self, records):
            raise RuntimeError("throttled")

    report = make(ScriptedPinterestApi(all_processed), BrokenStore()).deliver([message(1)], plenty)
    assert report.failed_message_ids == [] and report.delivered == 1


class CountingStore(InMemoryDedupStore):
    def __init__(self):
        super().__init__()
        self.state_lookups: list[list[str]] = []

    def delivery_states(self, keys):
        self.state_lookups.append(list(keys))
        return super().delivery_states(keys)


def test_first_receives_are_sent_without_reading_their_state():
    store = CountingStore()
    report = make(ScriptedPinterestApi(all_processed), store).deliver([message(i) for i in range(5)], plenty)
    assert store.state_lookups == [] and report.state_reads == 0 and report.delivered == 5


def test_only_redelivered_messages_are_looked_up_and_a_delivered_one_is_skipped():
    store = CountingStore()
    api = ScriptedPinterestApi(all_processed)
    make(api, store).deliver([message(1)], plenty)  # delivered and recorded, then (say) the invocation died
    report = make(api, store).deliver([message(1, receive_count=2), message(2), message(3, receive_count=3)], plenty)
    assert store.state_lookups == [["549755885175#checkout#e1", "549755885175#checkout#e3"]]
    assert [e["event_id"] for e in api.calls[-1][1]] == ["e2", "e3"]  # e3 was still "queued": sent
    assert report.skipped_already_done == 1 and report.resent_after_redelivery == 1 and report.state_reads == 2


def test_outcomes_are_counted_per_source_and_event_name_with_the_match_keys_of_delivered_events():
    def partial(events):
        return HttpAnswer(status=422, body={"code": 953, "message": "invalid", "details": {
            "num_events_received": 3, "num_events_processed": 2,
            "events": [{"status": "processed"}, {"status": "failed", "error_message": "Invalid event_timestamp"},
                       {"status": "processed"}]}})

    shopify = message(3)
    shopify.event.source = "shopify"
    shopify.event.event["user_data"] = {"em": ["x"], "client_ip_address": "1.2.3.4", "client_user_agent": "ua", "zp": ["z"]}
    report = make(ScriptedPinterestApi(partial)).deliver([message(1), message(2), shopify], plenty)
    assert {group: dict(counts) for group, counts in report.outcomes.items()} == {
        ("api", "checkout"): {"EventsDelivered": 1, "MatchKey_em": 1, "EventsRejectedByPinterest": 1},
        ("shopify", "checkout"): {"EventsDelivered": 1, "MatchKey_em": 1, "MatchKey_ip_ua": 1, "MatchKey_address": 1},
    }
    assert report.notable  # a rejection is worth a log line
    clean = make(ScriptedPinterestApi(all_processed)).deliver([message(4)], plenty)
    assert not clean.notable


def test_a_redriven_message_is_looked_up_although_sqs_counts_its_first_receive():
    store = CountingStore()
    api = ScriptedPinterestApi(all_processed)
    make(api, store).deliver([message(1)], plenty)
    redriven = message(1)
    redriven.redriven = True
    report = make(api, store).deliver([redriven, message(2)], plenty)
    assert store.state_lookups == [["549755885175#checkout#e1"]]
    assert [e["event_id"] for e in api.calls[-1][1]] == ["e2"] and report.skipped_already_done == 1
