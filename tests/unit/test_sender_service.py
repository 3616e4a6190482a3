"""The sender's policy (pinrelay.sender) over the in-memory ledger and a scripted Pinterest."""

import pytest

from pinrelay.models import QueuedEvent
from pinrelay.ports import HttpAnswer
from pinrelay.sender import QueuedMessage, SenderService, chunks, parse_retry_after
from tests.fakes import InMemoryLedger, ScriptedPinterestApi, all_processed

NOW = 2_000_000
ACCOUNT = "549755885175"
WEEK = 7 * 86400 + 300


def message(i, account=ACCOUNT, receive_count=1, action_source="web", message_id=None, source="api"):
    event = {"event_name": "checkout", "action_source": action_source, "event_id": f"e{i}", "event_time": NOW - 60,
             "user_data": {"em": ["x"]}}
    queued = QueuedEvent(ad_account_id=account, source=source, dedup_key=f"{account}#checkout#e{i}", accepted_at=NOW - 5,
                         event=event)
    return QueuedMessage(message_id=message_id or f"m{i}", receive_count=receive_count, event=queued)


class Clock:
    def __init__(self):
        self.now = float(NOW)
        self.sleeps: list[float] = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def make(api, ledger=None, clock=None, test_mode=False, max_attempts=3, request_timeout=10.0):
    clock = clock or Clock()
    return SenderService(
        api=api, ledger=ledger if ledger is not None else InMemoryLedger(), test_mode=test_mode,
        max_attempts=max_attempts, backoff_base_seconds=0.5, backoff_max_seconds=8, clock=clock, sleep=clock.sleep,
        request_timeout_seconds=request_timeout, ledger_call_seconds=12.0, dedup_window_seconds=WEEK,
        offline_dedup_window_seconds=WEEK,
    )


def plenty():
    return 600.0


def sent_ids(api, call=-1):
    return [event["event_id"] for event in api.calls[call][1]]


def partial(events):
    return HttpAnswer(status=422, body={"code": 953, "message": "invalid", "details": {
        "num_events_received": len(events), "num_events_processed": len(events) - 1,
        "events": [{"status": "failed", "error_message": "Invalid event_timestamp"} if e["event_id"] == "e1"
                   else {"status": "processed"} for e in events]}})


# -- requests ------------------------------------------------------------------------------------


def test_chunks_of_at_most_1000_grouped_by_ad_account():
    api = ScriptedPinterestApi(all_processed)
    messages = [message(i) for i in range(2500)] + [message(i, account="42") for i in range(3)]
    report = make(api, test_mode=True).deliver(messages, plenty)
    assert [(account, len(events), test) for account, events, test in api.calls] == [
        (ACCOUNT, 1000, True), (ACCOUNT, 1000, True), (ACCOUNT, 500, True), ("42", 3, True)]
    assert report.delivered == 2503 and report.failed_message_ids == []
    assert chunks(list(range(5)), 2) == [[0, 1], [2, 3], [4]]


def test_422_records_failed_events_with_pinterest_message_and_does_not_retry_them():
    ledger = InMemoryLedger()
    report = make(ScriptedPinterestApi(partial), ledger).deliver([message(i) for i in range(3)], plenty)
    assert report.delivered == 2 and report.rejected == 1 and report.failed_message_ids == []
    items = ledger.states([f"{ACCOUNT}#checkout#e{i}" for i in range(3)])
    assert {key[-2:]: (item["state"], item.get("error_message")) for key, item in items.items()} == {
        "e0": ("delivered", None), "e1": ("rejected", "Invalid event_timestamp"), "e2": ("delivered", None)}


@pytest.mark.parametrize("status", [400, 413, 422])
def test_a_request_refused_as_a_whole_is_split_until_the_refused_event_is_alone(status):
    def refuse_e2(events):
        if any(e["event_id"] == "e2" for e in events):
            return HttpAnswer(status=status, body={"code": 4196, "message": "The request was invalid."})
        return all_processed(events)

    ledger = InMemoryLedger()
    report = make(ScriptedPinterestApi(refuse_e2), ledger).deliver([message(i) for i in range(5)], plenty)
    assert report.delivered == 4 and report.rejected == 1 and report.failed_message_ids == []
    assert ledger.states([f"{ACCOUNT}#checkout#e2"])[f"{ACCOUNT}#checkout#e2"]["error_message"] == \
        f"HTTP {status}: The request was invalid."


@pytest.mark.parametrize(
    "failure",
    [HttpAnswer(status=503, body={"code": 4197, "message": "ramped down"}), HttpAnswer(status=None, transport_error="timed out"),
     HttpAnswer(status=None, transport_error="refused", may_have_arrived=False),
     HttpAnswer(status=200, body=None, text="<html>"), HttpAnswer(status=200, body={"events": []})],
)
def test_transient_failures_are_retried_with_backoff_then_returned_as_batch_failures(failure):
    clock = Clock()
    api = ScriptedPinterestApi(failure)
    report = make(api, clock=clock).deliver([message(1), message(2)], plenty)
    assert len(api.calls) == 3
    assert clock.sleeps == [0.5, 1.0]
    assert sorted(report.failed_message_ids) == ["m1", "m2"]
    assert report.delivered == 0


def test_recovery_within_the_invocation_honours_retry_after():
    clock = Clock()
    api = ScriptedPinterestApi(HttpAnswer(status=429, retry_after=3.0), all_processed)
    report = make(api, clock=clock).deliver([message(1)], plenty)
    assert clock.sleeps == [3.0]
    assert report.delivered == 1 and report.failed_message_ids == []


def test_a_long_retry_after_holds_back_the_next_request_to_the_same_ad_account():
    clock = Clock()
    messages = [message(i) for i in range(1500)]
    api = ScriptedPinterestApi(all_processed)
    api.script = [HttpAnswer(status=429, retry_after=100.0), all_processed]
    report = make(api, clock=clock, max_attempts=1).deliver(messages, lambda: 600.0 - (clock.now - NOW))
    # the first chunk gave up at once (one attempt); the second waited for Retry-After before posting
    assert clock.sleeps == [pytest.approx(100.0)]
    assert report.delivered == 500 and len(report.failed_message_ids) == 1000


def test_retry_after_as_an_http_date():
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", 1445412480.0) == pytest.approx(30.0)
    assert parse_retry_after("7", 0) == 7.0
    assert parse_retry_after("soon", 0) is None and parse_retry_after(None, 0) is None


def test_no_request_starts_unless_it_and_the_writes_after_it_fit_in_the_invocation():
    api = ScriptedPinterestApi(all_processed)
    report = make(api).deliver([message(1)], lambda: 30.0)  # 12 s claim + 10 s request + 14 s after > 30
    assert api.calls == [] and report.failed_message_ids == ["m1"]


def test_no_backoff_sleep_when_the_retry_would_not_fit_anyway():
    clock = Clock()

    def slow_503(events):
        clock.now += 16  # the request took 16 of the 40 s: 24 s left, a retry after 0.5 s needs 24
        return HttpAnswer(status=503)

    api = ScriptedPinterestApi(slow_503)
    report = make(api, clock=clock).deliver([message(1)], lambda: 40.0 - (clock.now - NOW))
    assert len(api.calls) == 1 and clock.sleeps == [] and report.failed_message_ids == ["m1"]


def test_401_reads_the_token_again_before_the_retry():
    api = ScriptedPinterestApi(HttpAnswer(status=401, body={"message": "Authentication failed."}), all_processed)
    report = make(api).deliver([message(1)], plenty)
    assert api.forgotten == [ACCOUNT] and report.delivered == 1


# -- claims: nothing sent twice ------------------------------------------------------------------


def test_an_event_delivered_before_is_dropped_as_a_duplicate_even_on_a_first_receive():
    ledger = InMemoryLedger()
    api = ScriptedPinterestApi(all_processed)
    make(api, ledger).deliver([message(1)], plenty)
    # SQS hands the same message out again with receive count 1; a second message of the same event
    report = make(api, ledger).deliver([message(1, receive_count=1), message(1, message_id="copy"), message(2)], plenty)
    assert sent_ids(api) == ["e2"]
    assert report.duplicates == 2 and report.failed_message_ids == []
    assert dict(report.outcomes["api", "checkout"]) == {"EventsDuplicate": 2, "EventsDelivered": 1, "MatchKey_em": 1}


def test_a_copy_held_by_another_invocation_goes_back_to_sqs_unsent():
    ledger = InMemoryLedger()
    first = make(ScriptedPinterestApi(all_processed), ledger)
    # invocation A has claimed e1 and is still sending it (its lease runs)
    from pinrelay.ports import ClaimRequest

    ledger.claim([ClaimRequest(f"{ACCOUNT}#checkout#e1", "sending", NOW + 100, NOW + WEEK, NOW)], "A", NOW, plenty)
    api = ScriptedPinterestApi(all_processed)
    report = make(api, ledger).deliver([message(1)], plenty)
    assert api.calls == [] and report.held_elsewhere == 1 and report.failed_message_ids == ["m1"]
    del first


def test_copies_in_one_batch_are_sent_once():
    api = ScriptedPinterestApi(all_processed)
    report = make(api).deliver([message(1), message(1, message_id="m1-copy")], plenty)
    assert sent_ids(api) == ["e1"] and report.duplicates == 1 and report.failed_message_ids == []


def test_copies_go_back_with_their_event_when_it_cannot_be_sent():
    api = ScriptedPinterestApi(HttpAnswer(status=503))
    report = make(api).deliver([message(1), message(1, message_id="m1-copy")], plenty)
    assert sorted(report.failed_message_ids) == ["m1", "m1-copy"]


def test_a_web_event_found_sending_is_sent_again_and_counted():
    ledger = InMemoryLedger()
    from pinrelay.ports import ClaimRequest

    # an invocation claimed it and died (its request may have reached Pinterest); the lease has run out
    ledger.claim([ClaimRequest(f"{ACCOUNT}#checkout#e1", "sending", NOW - 1, NOW + WEEK, NOW)], "dead", NOW - 200, plenty)
    api = ScriptedPinterestApi(all_processed)
    report = make(api, ledger).deliver([message(1)], plenty)
    assert sent_ids(api) == ["e1"] and report.possibly_resent == 1 and report.delivered == 1


def test_an_offline_event_found_sending_is_recorded_uncertain_and_never_sent_again():
    ledger = InMemoryLedger()
    from pinrelay.ports import ClaimRequest

    key = f"{ACCOUNT}#checkout#e1"
    ledger.claim([ClaimRequest(key, "claimed", NOW - 1, NOW + WEEK, NOW)], "dead", NOW - 200, plenty)
    ledger.mark_sending([key], "dead", NOW - 199, plenty)
    api = ScriptedPinterestApi(all_processed)
    report = make(api, ledger).deliver([message(1, action_source="offline")], plenty)
    assert api.calls == [] and report.uncertain == 1 and report.failed_message_ids == []
    assert ledger.states([key])[key]["state"] == "uncertain"
    again = make(api, ledger).deliver([message(1, action_source="offline")], plenty)
    assert api.calls == [] and again.duplicates == 1


def test_an_offline_event_claimed_but_never_marked_sending_is_sent():
    ledger = InMemoryLedger()
    from pinrelay.ports import ClaimRequest

    key = f"{ACCOUNT}#checkout#e1"
    ledger.claim([ClaimRequest(key, "claimed", NOW - 1, NOW + WEEK, NOW)], "dead", NOW - 200, plenty)
    api = ScriptedPinterestApi(all_processed)
    report = make(api, ledger).deliver([message(1, action_source="offline")], plenty)
    assert sent_ids(api) == ["e1"] and report.delivered == 1 and report.possibly_resent == 0


def test_offline_events_are_marked_sending_right_before_their_request_and_web_ones_are_not():
    ledger = InMemoryLedger()
    seen = {}

    def look(events):
        seen.update({k[-2:]: v["state"] for k, v in ledger.states([f"{ACCOUNT}#checkout#{e['event_id']}" for e in events]).items()})
        return all_processed(events)

    make(ScriptedPinterestApi(look), ledger).deliver([message(1, action_source="offline"), message(2)], plenty)
    assert seen == {"e1": "sending", "e2": "sending"}
    assert {k[-2:]: v["state"] for k, v in ledger.items.items()} == {"e1": "delivered", "e2": "delivered"}


def test_an_offline_event_in_a_request_without_an_answer_is_recorded_uncertain_while_web_ones_are_retried():
    ledger = InMemoryLedger()
    api = ScriptedPinterestApi(HttpAnswer(status=None, transport_error="timed out"), all_processed)
    report = make(api, ledger).deliver([message(1, action_source="offline"), message(2)], plenty)
    assert [sent_ids(api, 0), sent_ids(api, 1)] == [["e1", "e2"], ["e2"]]
    assert report.uncertain == 1 and report.delivered == 1 and report.possibly_resent == 1
    assert ledger.items[f"{ACCOUNT}#checkout#e1"]["state"] == "uncertain"


def test_an_offline_event_is_retried_after_an_answer_that_says_it_was_not_processed():
    ledger = InMemoryLedger()
    api = ScriptedPinterestApi(HttpAnswer(status=503), HttpAnswer(status=None, transport_error="refused", may_have_arrived=False),
                               all_processed)
    report = make(api, ledger).deliver([message(1, action_source="offline")], plenty)
    assert len(api.calls) == 3 and report.delivered == 1 and report.uncertain == 0


def test_given_up_events_give_their_lease_back_unless_an_attempt_may_have_arrived():
    ledger = InMemoryLedger()
    make(ScriptedPinterestApi(HttpAnswer(status=503)), ledger).deliver(
        [message(1, action_source="offline"), message(2)], plenty)
    # after two backoff sleeps (0.5 s + 1 s) the leases end now: the next receive may send them at once
    assert {k[-2:]: (v["state"], v["lease_until"]) for k, v in ledger.items.items()} == {
        "e1": ("claimed", NOW + 1), "e2": ("claimed", NOW + 1)}
    ledger2 = InMemoryLedger()
    make(ScriptedPinterestApi(HttpAnswer(status=None, transport_error="timed out")), ledger2).deliver([message(2)], plenty)
    given_back = ledger2.items[f"{ACCOUNT}#checkout#e2"]
    assert (given_back["state"], given_back["lease_until"]) == ("sending", NOW + 1)  # the next attempt counts a possible repeat


def test_an_offline_event_that_cannot_be_marked_sending_is_not_sent():
    ledger = InMemoryLedger()
    ledger.fail_marks = True
    api = ScriptedPinterestApi(all_processed)
    report = make(api, ledger).deliver([message(1, action_source="offline"), message(2)], plenty)
    assert sent_ids(api) == ["e2"] and report.failed_message_ids == ["m1"]
    assert ledger.items[f"{ACCOUNT}#checkout#e1"]["state"] == "claimed"


def test_claims_dynamodb_refuses_go_back_to_sqs():
    ledger = InMemoryLedger()
    ledger.fail_claims = True
    api = ScriptedPinterestApi(all_processed)
    report = make(api, ledger).deliver([message(1), message(2)], plenty)
    assert api.calls == [] and sorted(report.failed_message_ids) == ["m1", "m2"] and report.claim_errors == 2


def test_a_failed_write_of_outcomes_is_counted_and_the_events_are_not_sent_again():
    ledger = InMemoryLedger()
    ledger.fail_records = True
    report = make(ScriptedPinterestApi(all_processed), ledger).deliver([message(1)], plenty)
    assert report.failed_message_ids == [] and report.delivered == 1 and report.record_failures == 1


def test_events_older_than_seven_days_are_not_sent():
    old = message(1)
    old.event.event["event_time"] = NOW - 7 * 86400
    api = ScriptedPinterestApi(all_processed)
    report = make(api).deliver([old, message(2)], plenty)
    assert sent_ids(api) == ["e2"] and report.too_old == 1 and report.failed_message_ids == []


def test_the_dedup_window_of_offline_events_outlives_their_seven_days():
    ledger = InMemoryLedger()
    make(ScriptedPinterestApi(all_processed), ledger).deliver([message(1, action_source="offline")], plenty)
    assert ledger.items[f"{ACCOUNT}#checkout#e1"]["expires_at"] == NOW + WEEK


def test_outcomes_are_counted_per_source_and_event_name_with_the_match_keys_of_delivered_events():
    shopify = message(3, source="shopify")
    shopify.event.event["user_data"] = {"em": ["x"], "client_ip_address": "1.2.3.4", "client_user_agent": "ua", "zp": ["z"]}
    report = make(ScriptedPinterestApi(partial)).deliver([message(1), message(2), shopify], plenty)
    assert {group: dict(counts) for group, counts in report.outcomes.items()} == {
        ("api", "checkout"): {"EventsDelivered": 1, "MatchKey_em": 1, "EventsRejectedByPinterest": 1},
        ("shopify", "checkout"): {"EventsDelivered": 1, "MatchKey_em": 1, "MatchKey_ip_ua": 1, "MatchKey_address": 1},
    }
    assert report.notable
    clean = make(ScriptedPinterestApi(all_processed)).deliver([message(4)], plenty)
    assert not clean.notable


def test_when_the_token_cannot_be_read_nothing_is_marked_or_sent_and_the_lease_is_given_back():
    ledger = InMemoryLedger()
    api = ScriptedPinterestApi(all_processed)
    api.not_ready = "the conversion token could not be read (GetParameterError)"
    report = make(api, ledger).deliver([message(1, action_source="offline")], plenty)
    assert api.calls == [] and report.failed_message_ids == ["m1"]
    item = ledger.items[f"{ACCOUNT}#checkout#e1"]
    assert item["state"] == "claimed" and item["lease_until"] == NOW  # never marked sending: safe to send later


def test_test_events_go_in_requests_of_their_own_with_pinterests_test_flag():
    api = ScriptedPinterestApi(all_processed)
    test_order = message(2)
    test_order.event.test = True
    report = make(api).deliver([message(1), test_order, message(3)], plenty)
    assert sorted((test, [e["event_id"] for e in events]) for _, events, test in api.calls) == [
        (False, ["e1", "e3"]), (True, ["e2"])]
    assert report.delivered == 3
