"""The sender's policy (pinrelay.sender) over the in-memory ledger and a scripted Pinterest."""

import pytest

from pinrelay.models import QueuedEvent
from pinrelay.ports import HttpAnswer
from pinrelay.ports import ClaimRequest, ClaimResult
from pinrelay.sender import Fate, QueuedMessage, SenderService, chunks, judge_answer, parse_retry_after
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


RAMPED_DOWN = HttpAnswer(status=503, body={"code": 4197, "message": "The endpoint has been ramped down"})


def make(api, ledger=None, clock=None, test_mode=False, max_attempts=3, request_timeout=10.0, prepare=0.0):
    clock = clock or Clock()
    return SenderService(
        api=api, ledger=ledger if ledger is not None else InMemoryLedger(), test_mode=test_mode,
        max_attempts=max_attempts, backoff_base_seconds=0.5, backoff_max_seconds=8, clock=clock, sleep=clock.sleep,
        request_timeout_seconds=request_timeout, ledger_call_seconds=12.0, prepare_seconds=prepare,
        dedup_window_seconds=WEEK, offline_dedup_window_seconds=WEEK,
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
    assert report.count(Fate.DELIVERED) == 2503 and report.failed_message_ids == []
    assert chunks(list(range(5)), 2) == [[0, 1], [2, 3], [4]]


def test_422_records_failed_events_with_pinterest_message_and_does_not_retry_them():
    ledger = InMemoryLedger()
    report = make(ScriptedPinterestApi(partial), ledger).deliver([message(i) for i in range(3)], plenty)
    assert report.count(Fate.DELIVERED) == 2 and report.count(Fate.REJECTED) == 1 and report.failed_message_ids == []
    assert report.rejections == [(f"{ACCOUNT}#checkout#e1", "Invalid event_timestamp")]
    items = ledger.states([f"{ACCOUNT}#checkout#e{i}" for i in range(3)])
    assert {key[-2:]: (item["state"], item.get("error_message")) for key, item in items.items()} == {
        "e0": ("delivered", None), "e1": ("rejected", "Invalid event_timestamp"), "e2": ("delivered", None)}


@pytest.mark.parametrize("status", [400, 413])
def test_a_request_refused_as_a_whole_is_split_until_the_refused_event_is_alone(status):
    def refuse_e2(events):
        if any(e["event_id"] == "e2" for e in events):
            return HttpAnswer(status=status, body={"code": 4196, "message": "The request was invalid."})
        return all_processed(events)

    ledger = InMemoryLedger()
    report = make(ScriptedPinterestApi(refuse_e2), ledger).deliver([message(i) for i in range(5)], plenty)
    assert report.count(Fate.DELIVERED) == 4 and report.count(Fate.REJECTED) == 1 and report.failed_message_ids == []
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
    assert report.counts() == {"given_back": 2}


def test_recovery_within_the_invocation_honours_retry_after():
    clock = Clock()
    api = ScriptedPinterestApi(HttpAnswer(status=429, retry_after=3.0), all_processed)
    report = make(api, clock=clock).deliver([message(1)], plenty)
    assert clock.sleeps == [3.0]
    assert report.count(Fate.DELIVERED) == 1 and report.failed_message_ids == []


def test_a_long_retry_after_holds_back_the_next_request_to_the_same_ad_account():
    clock = Clock()
    messages = [message(i) for i in range(1500)]
    api = ScriptedPinterestApi(all_processed)
    api.script = [HttpAnswer(status=429, retry_after=100.0), all_processed]
    report = make(api, clock=clock, max_attempts=1).deliver(messages, lambda: 600.0 - (clock.now - NOW))
    # the first chunk gave up at once (one attempt); the second waited for Retry-After before posting
    assert clock.sleeps == [pytest.approx(100.0)]
    assert report.count(Fate.DELIVERED) == 500 and len(report.failed_message_ids) == 1000


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
    assert api.forgotten == [ACCOUNT] and report.count(Fate.DELIVERED) == 1


# -- claims: nothing sent twice ------------------------------------------------------------------


def test_an_event_delivered_before_is_dropped_as_a_duplicate_even_on_a_first_receive():
    ledger = InMemoryLedger()
    api = ScriptedPinterestApi(all_processed)
    make(api, ledger).deliver([message(1)], plenty)
    # SQS hands the same message out again with receive count 1; a second message of the same event
    report = make(api, ledger).deliver([message(1, receive_count=1), message(1, message_id="copy"), message(2)], plenty)
    assert sent_ids(api) == ["e2"]
    assert report.counts() == {"duplicate": 2, "delivered": 1} and report.failed_message_ids == []
    assert dict(report.outcomes()["api", "checkout"]) == {"EventsDuplicate": 2, "EventsDelivered": 1, "MatchKey_em": 1}


def test_a_copy_held_by_another_invocation_goes_back_to_sqs_unsent():
    ledger = InMemoryLedger()
    # invocation A has claimed e1 and is still sending it (its lease runs)
    ledger.claim([ClaimRequest(f"{ACCOUNT}#checkout#e1", "sending", NOW + 100, NOW + WEEK, NOW)], "A", NOW, plenty)
    api = ScriptedPinterestApi(all_processed)
    report = make(api, ledger).deliver([message(1)], plenty)
    assert api.calls == [] and report.count(Fate.HELD_ELSEWHERE) == 1 and report.failed_message_ids == ["m1"]


def test_copies_in_one_batch_are_sent_once():
    api = ScriptedPinterestApi(all_processed)
    report = make(api).deliver([message(1), message(1, message_id="m1-copy")], plenty)
    assert sent_ids(api) == ["e1"] and report.counts() == {"delivered": 1, "duplicate": 1}
    assert report.failed_message_ids == []


def test_copies_go_back_with_their_event_when_it_cannot_be_sent():
    api = ScriptedPinterestApi(HttpAnswer(status=503))
    report = make(api).deliver([message(1), message(1, message_id="m1-copy")], plenty)
    assert sorted(report.failed_message_ids) == ["m1", "m1-copy"]


def test_a_web_event_found_sending_is_sent_again_and_counted():
    ledger = InMemoryLedger()
    # an invocation claimed it and died (its request may have reached Pinterest); the lease has run out
    ledger.claim([ClaimRequest(f"{ACCOUNT}#checkout#e1", "sending", NOW - 1, NOW + WEEK, NOW)], "dead", NOW - 200, plenty)
    api = ScriptedPinterestApi(all_processed)
    report = make(api, ledger).deliver([message(1)], plenty)
    assert sent_ids(api) == ["e1"] and report.possibly_resent == 1 and report.count(Fate.DELIVERED) == 1
    assert report.totals()["EventsPossiblyResent"] == 1


def test_an_offline_event_found_sending_is_recorded_uncertain_and_never_sent_again():
    ledger = InMemoryLedger()
    key = f"{ACCOUNT}#checkout#e1"
    ledger.claim([ClaimRequest(key, "claimed", NOW - 1, NOW + WEEK, NOW)], "dead", NOW - 200, plenty)
    ledger.mark_sending([key], "dead", NOW - 199, plenty)
    api = ScriptedPinterestApi(all_processed)
    report = make(api, ledger).deliver([message(1, action_source="offline")], plenty)
    assert api.calls == [] and report.count(Fate.UNCERTAIN) == 1 and report.failed_message_ids == []
    assert (ledger.items[key]["state"], ledger.items[key]["reason"]) == ("uncertain", "unanswered")
    again = make(api, ledger).deliver([message(1, action_source="offline")], plenty)
    assert api.calls == [] and again.counts() == {"duplicate": 1}


def test_an_offline_event_claimed_but_never_marked_sending_is_sent():
    ledger = InMemoryLedger()
    key = f"{ACCOUNT}#checkout#e1"
    ledger.claim([ClaimRequest(key, "claimed", NOW - 1, NOW + WEEK, NOW)], "dead", NOW - 200, plenty)
    api = ScriptedPinterestApi(all_processed)
    report = make(api, ledger).deliver([message(1, action_source="offline")], plenty)
    assert sent_ids(api) == ["e1"] and report.count(Fate.DELIVERED) == 1 and report.possibly_resent == 0


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
    assert report.counts() == {"uncertain": 1, "delivered": 1} and report.possibly_resent == 1
    assert ledger.items[f"{ACCOUNT}#checkout#e1"]["state"] == "uncertain"


def test_an_offline_event_is_retried_after_an_answer_that_says_it_was_not_processed():
    ledger = InMemoryLedger()
    api = ScriptedPinterestApi(RAMPED_DOWN, HttpAnswer(status=429, body={"code": 8, "message": "rate limit"}),
                               HttpAnswer(status=None, transport_error="refused", may_have_arrived=False), all_processed)
    report = make(api, ledger, max_attempts=4).deliver([message(1, action_source="offline")], plenty)
    assert len(api.calls) == 4 and report.counts() == {"delivered": 1}


def test_given_up_events_give_their_lease_back_unless_an_attempt_may_have_arrived():
    ledger = InMemoryLedger()
    make(ScriptedPinterestApi(RAMPED_DOWN), ledger).deliver([message(1, action_source="offline"), message(2)], plenty)
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
    assert api.calls == [] and sorted(report.failed_message_ids) == ["m1", "m2"] and report.count(Fate.CLAIM_FAILED) == 2


@pytest.mark.parametrize("action_source, then", [("web", "delivered"), ("offline", "uncertain")])
def test_an_answer_that_cannot_be_written_goes_back_to_sqs_and_the_next_receive_settles_it(action_source, then):
    ledger = InMemoryLedger()
    ledger.fail_records = True
    api = ScriptedPinterestApi(all_processed)
    first = make(api, ledger).deliver([message(1, action_source=action_source)], plenty)
    assert first.counts() == {"unrecorded": 1} and first.failed_message_ids == ["m1"]
    assert first.totals()["DeliveryRecordFailures"] == 1 and first.events[0].reason == "delivered"
    ledger.fail_records = False
    later = Clock()
    later.now = NOW + 800  # SQS brings it back after its visibility timeout
    second = make(api, ledger, clock=later).deliver([message(1, action_source=action_source)], plenty)
    assert second.counts() == {then: 1} and ledger.items[f"{ACCOUNT}#checkout#e1"]["state"] == then
    # a web event is sent again (Pinterest drops the repeat, counted); an offline one never
    assert len(api.calls) == (2 if action_source == "web" else 1) and second.possibly_resent == (action_source == "web")


def test_the_dedup_window_of_offline_events_outlives_their_seven_days():
    ledger = InMemoryLedger()
    make(ScriptedPinterestApi(all_processed), ledger).deliver([message(1, action_source="offline")], plenty)
    assert ledger.items[f"{ACCOUNT}#checkout#e1"]["expires_at"] == NOW + WEEK


def test_outcomes_are_counted_per_source_and_event_name_with_the_match_keys_of_delivered_events():
    shopify = message(3, source="shopify")
    shopify.event.event["user_data"] = {"em": ["x"], "client_ip_address": "1.2.3.4", "client_user_agent": "ua", "zp": ["z"]}
    report = make(ScriptedPinterestApi(partial)).deliver([message(1), message(2), shopify], plenty)
    assert {group: dict(counts) for group, counts in report.outcomes().items()} == {
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
    assert report.count(Fate.DELIVERED) == 3


# -- what each answer says (finding 1: a gateway error is not proof that nothing happened) -------

GATEWAY = [HttpAnswer(status=500, body=None, text="<html>Internal Server Error</html>"),
           HttpAnswer(status=502, body=None, text="<html>Bad Gateway</html>"),
           HttpAnswer(status=504, body=None, text="<html>Gateway Timeout</html>"),
           HttpAnswer(status=503, body=None, text="upstream connect error"),
           HttpAnswer(status=408, body=None),
           HttpAnswer(status=422, body={"code": 953, "message": "Not all events were processed."}),
           HttpAnswer(status=202, body=None)]


@pytest.mark.parametrize("answer", GATEWAY, ids=lambda a: str(a.status))
def test_an_answer_that_may_follow_processing_makes_an_offline_event_uncertain_never_sent_again(answer):
    ledger = InMemoryLedger()
    api = ScriptedPinterestApi(answer, all_processed)
    report = make(api, ledger).deliver([message(1, action_source="offline")], plenty)
    assert len(api.calls) == 1 and report.counts() == {"uncertain": 1} and report.failed_message_ids == []
    assert ledger.items[f"{ACCOUNT}#checkout#e1"]["state"] == "uncertain"
    assert report.stats.uncertain_sends == 1


@pytest.mark.parametrize("answer", GATEWAY, ids=lambda a: str(a.status))
def test_after_such_an_answer_a_web_event_is_sent_again_and_counted(answer):
    api = ScriptedPinterestApi(answer, all_processed)
    report = make(api).deliver([message(1)], plenty)
    assert len(api.calls) == 2 and report.counts() == {"delivered": 1} and report.possibly_resent == 1


@pytest.mark.parametrize("answer, kind", [
    (RAMPED_DOWN, "not_processed"), (HttpAnswer(status=429, retry_after=1.0), "not_processed"),
    (HttpAnswer(status=401, body={"code": 2, "message": "Authentication failed."}), "not_processed"),
    (HttpAnswer(status=403, body={"code": 29, "message": "not permitted"}), "not_processed"),
    (HttpAnswer(status=None, transport_error="refused", may_have_arrived=False), "not_processed"),
    (HttpAnswer(status=None, transport_error="timed out"), "unknown"),
    (HttpAnswer(status=200, body=None, text="<html>"), "unknown"),
    (HttpAnswer(status=503, body={"message": "no code"}), "unknown"),
    (HttpAnswer(status=400, body={"code": 4196, "message": "invalid"}), "refused_whole"),
    (HttpAnswer(status=413), "refused_whole"),
    (HttpAnswer(status=418), "unexpected"),
])
def test_what_each_answer_says_about_the_events_of_its_request(answer, kind):
    assert judge_answer(answer, 1)[0] == kind


def test_pinterests_own_503_is_not_processed_so_an_offline_event_is_tried_again_and_delivered():
    ledger = InMemoryLedger()
    api = ScriptedPinterestApi(RAMPED_DOWN, all_processed)
    report = make(api, ledger).deliver([message(1, action_source="offline")], plenty)
    assert len(api.calls) == 2 and report.counts() == {"delivered": 1}


# -- sequences of invocations (finding 2: a takeover never forgets an attempt) ---------------------


def record_writes(ledger):
    """Every UpdateItem the ledger sends from now on (its arguments), applied or not."""
    writes, update = [], ledger.table.update_item

    def recording(**kwargs):
        writes.append(kwargs)
        return update(**kwargs)

    ledger.table.update_item = recording
    return writes


def offline_left_sending(ledger, key=f"{ACCOUNT}#checkout#e1"):
    """Invocation 1 claimed the offline event, marked it sending, posted it and died."""
    ledger.claim([ClaimRequest(key, "claimed", NOW - 1, NOW + WEEK, NOW)], "dead", NOW - 200, plenty)
    assert ledger.mark_sending([key], "dead", NOW - 199, plenty) == []
    return key


def test_a_claim_never_takes_a_lapsed_offline_sending_item_it_settles_it_uncertain_in_one_write():
    ledger = InMemoryLedger()
    key = offline_left_sending(ledger)
    writes = record_writes(ledger)
    report = make(ScriptedPinterestApi(all_processed), ledger).deliver([message(1, action_source="offline")], plenty)
    assert report.counts() == {"uncertain": 1}
    # the failed claim changed nothing; the one write that did goes straight from sending to uncertain
    assert len(writes) == 2 and ledger.items[key]["prior_state"] == "sending"


def test_an_offline_event_found_sending_stays_sending_until_its_uncertain_state_is_written():
    ledger = InMemoryLedger()
    key = offline_left_sending(ledger)
    # invocation 2: its claim fails (the item is not claimable) and DynamoDB refuses the settlement
    real_settle = ledger.settle
    ledger.settle = lambda settlements, *args: [ClaimResult(s.key, False, error="ThrottlingException") for s in settlements]
    api = ScriptedPinterestApi(all_processed)
    second = make(api, ledger).deliver([message(1, action_source="offline")], plenty)
    assert second.counts() == {"claim_failed": 1} and ledger.items[key]["state"] == "sending"
    ledger.settle = real_settle
    third = make(api, ledger).deliver([message(1, action_source="offline")], plenty)
    assert api.calls == [] and third.counts() == {"uncertain": 1}


def test_a_claimed_item_a_takeover_of_sending_left_behind_before_this_version_is_uncertain_too():
    ledger = InMemoryLedger()
    key = offline_left_sending(ledger)
    item = ledger.table.items[key]
    item.update(state={"S": "claimed"}, prior_state={"S": "sending"})  # what the takeover used to write
    api = ScriptedPinterestApi(all_processed)
    report = make(api, ledger).deliver([message(1, action_source="offline")], plenty)
    assert api.calls == [] and report.counts() == {"uncertain": 1}


def test_a_web_event_given_back_after_a_takeover_stays_sending_though_this_invocation_sent_nothing():
    ledger = InMemoryLedger()
    key = f"{ACCOUNT}#checkout#e1"
    ledger.claim([ClaimRequest(key, "sending", NOW - 1, NOW + WEEK, NOW, NOW - 86400)], "dead", NOW - 200, plenty)
    make(ScriptedPinterestApi(RAMPED_DOWN), ledger).deliver([message(1)], plenty)
    assert ledger.items[key]["state"] == "sending" and ledger.items[key]["first_sent_at"] == NOW - 200


# -- the web resend window (finding 3) ----------------------------------------------------------


@pytest.mark.parametrize("hours_ago, resent", [(23, True), (25, False), (24 * 6, False)])
def test_a_web_event_whose_outcome_is_unknown_is_resent_only_inside_the_resend_window(hours_ago, resent):
    ledger = InMemoryLedger()
    key = f"{ACCOUNT}#checkout#e1"
    first = NOW - hours_ago * 3600
    ledger.claim([ClaimRequest(key, "sending", first + 60, first + WEEK, first, first - 86400)], "dead", first, plenty)
    ledger.fail_records = True  # Pinterest's 200 could not be written: the item stays sending
    api = ScriptedPinterestApi(all_processed)
    report = make(api, ledger).deliver([message(1)], plenty)
    if resent:
        assert sent_ids(api) == ["e1"] and report.possibly_resent == 1
    else:
        assert api.calls == [] and report.counts() == {"uncertain": 1}
        assert (ledger.items[key]["state"], ledger.items[key]["reason"]) == ("uncertain", "resend_window_over")


def test_the_first_send_time_is_kept_across_takeovers():
    ledger = InMemoryLedger()
    key = f"{ACCOUNT}#checkout#e1"
    ledger.claim([ClaimRequest(key, "sending", NOW - 100, NOW + WEEK, NOW, NOW - 86400)], "dead", NOW - 3600, plenty)
    make(ScriptedPinterestApi(HttpAnswer(status=None, transport_error="timed out")), ledger).deliver([message(1)], plenty)
    assert ledger.items[key]["first_sent_at"] == NOW - 3600 and ledger.items[key]["state"] == "sending"


# -- time (finding 4) --------------------------------------------------------------------------


def test_the_token_read_is_budgeted_before_anything_is_claimed_marked_or_sent():
    api = ScriptedPinterestApi(all_processed)
    ledger = InMemoryLedger()
    # 12 s claims + 14 s token + 12 s mark + 10 s request + 14 s after = 62 s: 61 is not enough
    report = make(api, ledger, prepare=14.0).deliver([message(1, action_source="offline")], lambda: 61.0)
    assert api.calls == [] and ledger.items == {} and report.counts() == {"given_back": 1}
    assert make(api, ledger, prepare=14.0).deliver([message(2, action_source="offline")], lambda: 62.0).counts() == {
        "delivered": 1}


def test_every_step_before_the_request_taking_its_worst_case_still_ends_inside_the_invocation():
    clock = Clock()
    ledger = InMemoryLedger()
    real = {name: getattr(ledger, name) for name in ("claim", "mark_sending", "record")}
    for name in real:  # each ledger call takes its worst case (12 s)
        setattr(ledger, name, (lambda call: lambda *a: (call(*a), setattr(clock, "now", clock.now + 12))[0])(real[name]))
    api = ScriptedPinterestApi(lambda events: (setattr(clock, "now", clock.now + 10), all_processed(events))[1])
    api.prepare = lambda ad_account_id: setattr(clock, "now", clock.now + 14)  # two cold secret reads
    report = make(api, ledger, clock=clock, prepare=14.0).deliver(
        [message(1, action_source="offline")], lambda: 62.0 - (clock.now - NOW))
    assert report.counts() == {"delivered": 1} and clock.now - NOW <= 62.0 - 2.0  # 2 s left to answer SQS


# -- not sent (finding 5, and events withheld upstream) ------------------------------------------


def too_old_message(i, action_source="web"):
    old = message(i, action_source=action_source)
    old.event.event["event_time"] = NOW - 7 * 86400 - 1
    return old


@pytest.mark.parametrize("action_source", ["web", "offline"])
def test_an_event_that_passed_seven_days_in_the_queue_is_recorded_not_sent_in_one_write(action_source):
    ledger = InMemoryLedger()
    api = ScriptedPinterestApi(all_processed)
    report = make(api, ledger).deliver([too_old_message(1, action_source), message(2)], plenty)
    assert sent_ids(api) == ["e2"] and report.counts() == {"not_sent": 1, "delivered": 1}
    assert report.not_sent_reasons() == {"too_old": 1} and report.failed_message_ids == []
    item = ledger.items[f"{ACCOUNT}#checkout#e1"]
    assert (item["state"], item["reason"]) == ("not_sent", "too_old") and "7 days" in item["error_message"]
    assert item["expires_at"] == NOW + WEEK and "lease_until" not in item
    assert dict(report.outcomes()["api", "checkout"]) == {"EventsNotSent": 1, "EventsDelivered": 1, "MatchKey_em": 1}


def test_not_sent_never_overwrites_a_final_state_even_one_past_its_window():
    ledger = InMemoryLedger()
    make(ScriptedPinterestApi(all_processed), ledger).deliver([message(1)], plenty)
    later = Clock()
    later.now = NOW + WEEK + 10  # the dedup window has ended; DynamoDB's TTL sweep has not run yet
    copy = message(1)
    report = make(ScriptedPinterestApi(all_processed), ledger, clock=later).deliver([copy], plenty)
    assert report.counts() == {"duplicate": 1} and ledger.items[f"{ACCOUNT}#checkout#e1"]["state"] == "delivered"


def test_a_too_old_event_an_earlier_attempt_may_have_sent_is_uncertain_not_not_sent():
    ledger = InMemoryLedger()
    offline_left_sending(ledger)
    api = ScriptedPinterestApi(all_processed)
    report = make(api, ledger).deliver([too_old_message(1, "offline")], plenty)
    assert api.calls == [] and report.counts() == {"uncertain": 1}


def test_a_too_old_copy_of_an_event_another_invocation_is_sending_goes_back_to_sqs():
    ledger = InMemoryLedger()
    ledger.claim([ClaimRequest(f"{ACCOUNT}#checkout#e1", "sending", NOW + 100, NOW + WEEK, NOW)], "A", NOW, plenty)
    report = make(ScriptedPinterestApi(all_processed), ledger).deliver([too_old_message(1)], plenty)
    assert report.counts() == {"held_elsewhere": 1} and report.failed_message_ids == ["m1"]


def withheld(i, code="consent"):
    queued = QueuedEvent(ad_account_id=ACCOUNT, source="shopify", dedup_key=f"{ACCOUNT}#checkout#e{i}", accepted_at=NOW - 5,
                         event={"event_name": "checkout", "event_id": f"e{i}", "action_source": "web",
                                "event_time": NOW - 60}, withheld=code)
    return QueuedMessage(message_id=f"w{i}", receive_count=1, event=queued)


def test_an_event_withheld_upstream_is_recorded_not_sent_with_its_reason_and_never_posted():
    ledger = InMemoryLedger()
    api = ScriptedPinterestApi(all_processed)
    writes = record_writes(ledger)
    report = make(api, ledger).deliver([withheld(1), withheld(1)], plenty)
    assert api.calls == [] and len(writes) == 1
    assert report.counts() == {"not_sent": 1, "duplicate": 1} and report.not_sent_reasons() == {"consent": 1}
    item = ledger.items[f"{ACCOUNT}#checkout#e1"]
    assert (item["state"], item["reason"]) == ("not_sent", "consent") and "consent" in item["error_message"]
    again = make(api, ledger).deliver([withheld(1)], plenty)
    assert again.counts() == {"duplicate": 1}


def test_a_withheld_copy_of_a_delivered_event_leaves_it_delivered():
    ledger = InMemoryLedger()
    make(ScriptedPinterestApi(all_processed), ledger).deliver([message(1)], plenty)
    report = make(ScriptedPinterestApi(all_processed), ledger).deliver([withheld(1)], plenty)
    assert report.counts() == {"duplicate": 1} and ledger.items[f"{ACCOUNT}#checkout#e1"]["state"] == "delivered"


# -- the fate table ----------------------------------------------------------------------------


def test_every_message_has_one_fate_and_the_batch_response_metrics_and_log_are_read_from_them():
    ledger = InMemoryLedger()
    ledger.claim([ClaimRequest(f"{ACCOUNT}#checkout#e5", "sending", NOW + 100, NOW + WEEK, NOW)], "A", NOW, plenty)
    messages = [message(1), message(1, message_id="m1-copy"), message(2), too_old_message(3), withheld(4), message(5)]
    report = make(ScriptedPinterestApi(partial), ledger).deliver(messages, plenty)
    assert report.counts() == {"delivered": 1, "duplicate": 1, "rejected": 1, "not_sent": 2, "held_elsewhere": 1}
    assert sum(report.counts().values()) == len(messages)
    assert report.failed_message_ids == ["m5"]
    assert report.totals() == {"EventsDelivered": 1, "EventsRejectedByPinterest": 1, "EventsHeldElsewhere": 1,
                               "EventsRetryLater": 1, "PinterestRequests": 1}
    assert report.totals(unreadable=2)["EventsRetryLater"] == 3
    fields = report.log_fields()
    assert fields["fates"] == report.counts() and fields["not_sent"] == {"too_old": 1, "consent": 1}
    assert fields["rejections"] == [{"key": f"{ACCOUNT}#checkout#e1", "error": "Invalid event_timestamp"}]
    assert report.notable
