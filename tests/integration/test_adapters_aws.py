"""DynamoDeliveryLedger, SqsEventQueue and SqsJobQueue against moto server."""

import json
import time

import pytest

from pinrelay.adapters.dynamodb import DynamoDeliveryLedger
from pinrelay.adapters.sqs import SqsEventQueue, SqsJobQueue, batches_by_size
from pinrelay.ports import ClaimRequest, JobQueueUnavailable, Outcome, ReceivedJob, Settlement

NOW = 1_000_000
WINDOW = 7 * 86400 + 300


def plenty():
    return 600.0


def request(key, state="sending", now=NOW, lease=60, window=WINDOW, resend_hours=24):
    """A web event's claim ("sending": it may take over a lapsed attempt first sent in the last
    ``resend_hours``) or an offline event's ("claimed")."""
    return ClaimRequest(key=key, state=state, lease_until=now + lease, expires_at=now + window, accepted_at=now - 5,
                        resend_after=now - resend_hours * 3600 if state == "sending" else None)


@pytest.fixture
def ledger(aws, dedup_table):
    return DynamoDeliveryLedger(dedup_table, aws["dynamodb"], worst_call_seconds=12)


def item(aws, table, key):
    return aws["dynamodb"].get_item(TableName=table, Key={"pk": {"S": key}}, ConsistentRead=True).get("Item")


def test_a_claim_wins_once_and_a_second_claim_sees_the_live_lease(ledger):
    [first] = ledger.claim([request("a")], "inv-1", NOW, plenty)
    [second] = ledger.claim([request("a")], "inv-2", NOW + 1, plenty)
    assert (first.won, first.prior_state) == (True, None)
    assert (second.won, second.current_state, second.error) == (False, "sending", None)


def test_a_final_state_makes_every_later_claim_a_duplicate(ledger):
    ledger.claim([request("a")], "inv-1", NOW, plenty)
    assert ledger.record([Outcome("a", "delivered", NOW + 1)], "inv-1", plenty) == []
    [again] = ledger.claim([request("a", now=NOW + 86400)], "inv-2", NOW + 86400, plenty)
    assert (again.won, again.current_state) == (False, "delivered")


def test_an_expired_lease_can_be_taken_over_and_reports_what_it_found(ledger):
    ledger.claim([request("a", lease=60)], "dead", NOW, plenty)
    [taken] = ledger.claim([request("a", now=NOW + 61)], "inv-2", NOW + 61, plenty)
    assert (taken.won, taken.prior_state) == (True, "sending")


def test_the_dedup_window_is_checked_in_the_condition_not_left_to_the_ttl_sweep(aws, dedup_table, ledger):
    ledger.claim([request("a", window=100)], "inv-1", NOW, plenty)
    ledger.record([Outcome("a", "delivered", NOW)], "inv-1", plenty)
    # moto, like DynamoDB's late TTL sweep, still holds the expired item: the condition decides
    [later] = ledger.claim([request("a", now=NOW + 100)], "inv-2", NOW + 100, plenty)
    assert (later.won, later.prior_state) == (True, None)
    assert item(aws, dedup_table, "a")["expires_at"]["N"] == str(NOW + 100 + WINDOW)


def test_a_claim_whose_answer_was_lost_is_recognised_as_ours_when_the_sdk_sends_it_again(aws, dedup_table, ledger):
    ledger.claim([request("a", lease=60)], "dead", NOW, plenty)  # a killed invocation left "sending"
    [won] = ledger.claim([request("a", now=NOW + 61)], "inv-2", NOW + 61, plenty)
    # the same write again, as botocore sends it when the answer was lost: the condition now fails
    # on our own claim, and the prior state must still come back as "sending"
    [retried] = ledger.claim([request("a", now=NOW + 61)], "inv-2", NOW + 61, plenty)
    assert won == retried and retried.prior_state == "sending"


def test_many_claims_in_parallel_keep_their_order(ledger):
    ledger.claim([request(f"k{i}") for i in range(0, 40, 2)], "inv-1", NOW, plenty)
    results = ledger.claim([request(f"k{i}") for i in range(40)], "inv-2", NOW, plenty)
    assert [r.key for r in results] == [f"k{i}" for i in range(40)]
    assert [r.won for r in results] == [i % 2 == 1 for i in range(40)]


def test_mark_sending_only_under_our_own_claim_and_it_is_idempotent(ledger):
    ledger.claim([request("mine", state="claimed"), request("theirs", state="claimed")], "inv-1", NOW, plenty)
    ledger.claim([request("theirs", state="claimed", now=NOW + 100)], "inv-x", NOW + 100, plenty)
    assert ledger.mark_sending(["mine", "theirs"], "inv-1", NOW + 1, plenty) == ["theirs"]
    assert ledger.mark_sending(["mine"], "inv-1", NOW + 2, plenty) == []  # a retried write of an applied mark
    assert ledger.states(["mine"])["mine"]["state"] == "sending"


def test_an_outcome_is_written_only_by_the_claim_holder(aws, dedup_table, ledger):
    ledger.claim([request("a")], "inv-1", NOW, plenty)
    assert ledger.record([Outcome("a", "delivered", NOW + 1)], "somebody-else", plenty) == ["a"]
    assert ledger.record([Outcome("a", "rejected", NOW + 1, "Invalid event_timestamp")], "inv-1", plenty) == []
    stored = item(aws, dedup_table, "a")
    assert stored["state"]["S"] == "rejected" and stored["error_message"]["S"] == "Invalid event_timestamp"
    assert "lease_until" not in stored and stored["attempts"]["N"] == "1"


def test_giving_a_lease_back_lets_the_next_claim_take_it_at_once(ledger):
    ledger.claim([request("a", lease=600)], "inv-1", NOW, plenty)
    ledger.record([Outcome("a", "claimed", NOW + 5)], "inv-1", plenty)
    [next_claim] = ledger.claim([request("a", now=NOW + 6)], "inv-2", NOW + 6, plenty)
    assert (next_claim.won, next_claim.prior_state) == (True, "claimed")


def test_items_queued_by_the_previous_design_are_claimable(aws, dedup_table, ledger):
    aws["dynamodb"].put_item(TableName=dedup_table, Item={
        "pk": {"S": "old"}, "state": {"S": "queued"}, "expires_at": {"N": str(NOW + 86400)}, "claim_id": {"S": "ingest"}})
    [won] = ledger.claim([request("old")], "inv-1", NOW, plenty)
    assert won.won and won.prior_state == "queued"


def test_no_call_is_started_without_time_for_its_worst_case(ledger):
    [result] = ledger.claim([request("a")], "inv-1", NOW, lambda: 5.0)
    assert (result.won, result.error) == (False, "OutOfTime")
    assert ledger.states(["a"]) == {}


def test_an_offline_claim_never_takes_over_a_lapsed_attempt_it_reports_it_lapsed(ledger):
    ledger.claim([request("a", state="claimed")], "dead", NOW, plenty)
    assert ledger.mark_sending(["a"], "dead", NOW + 1, plenty) == []
    [found] = ledger.claim([request("a", state="claimed", now=NOW + 61)], "inv-2", NOW + 61, plenty)
    assert (found.won, found.current_state, found.lapsed) == (False, "sending", True)
    assert ledger.states(["a"])["a"]["claim_id"] == "dead"  # unchanged: the attempt is not forgotten


def test_a_lapsed_attempt_is_settled_uncertain_in_one_write_and_only_while_it_is_lapsed(ledger):
    ledger.claim([request("a", state="claimed", lease=60)], "dead", NOW, plenty)
    ledger.mark_sending(["a"], "dead", NOW + 1, plenty)
    uncertain = Settlement("a", "uncertain", "unanswered", "may have reached Pinterest", NOW + 30, NOW + WINDOW, NOW)
    [early] = ledger.settle([uncertain], "inv-2", NOW + 30, plenty)  # the lease still runs
    assert (early.won, early.current_state, early.lapsed) == (False, "sending", False)
    [settled] = ledger.settle([uncertain], "inv-2", NOW + 61, plenty)
    [again] = ledger.settle([uncertain], "inv-2", NOW + 61, plenty)  # botocore's retry of an applied write
    assert settled.won and again.won
    stored = ledger.states(["a"])["a"]
    assert (stored["state"], stored["reason"], stored["prior_state"], stored["first_sent_at"]) == (
        "uncertain", "unanswered", "sending", NOW + 1)


def test_a_web_claim_takes_over_a_lapsed_attempt_only_inside_the_resend_window(ledger):
    ledger.claim([request("a", lease=60)], "dead", NOW, plenty)
    [late] = ledger.claim([request("a", now=NOW + 25 * 3600)], "inv-2", NOW + 25 * 3600, plenty)
    assert (late.won, late.lapsed) == (False, True)
    [inside] = ledger.claim([request("a", now=NOW + 23 * 3600)], "inv-3", NOW + 23 * 3600, plenty)
    assert (inside.won, inside.prior_state) == (True, "sending")
    assert ledger.states(["a"])["a"]["first_sent_at"] == NOW  # the first send's time is kept


def test_not_sent_is_written_where_nothing_was_sent_and_never_over_a_final_state_or_a_lease(ledger):
    def not_sent(key, now):
        return Settlement(key, "not_sent", "too_old", "over 7 days old", now, now + WINDOW, NOW)

    assert ledger.settle([not_sent("new", NOW)], "inv-1", NOW, plenty)[0].won
    assert ledger.states(["new"])["new"]["state"] == "not_sent"
    ledger.claim([request("live")], "other", NOW, plenty)
    [live] = ledger.settle([not_sent("live", NOW + 1)], "inv-1", NOW + 1, plenty)
    assert (live.won, live.current_state, live.lapsed) == (False, "sending", False)
    ledger.record([Outcome("live", "delivered", NOW + 2)], "other", plenty)
    [final] = ledger.settle([not_sent("live", NOW + WINDOW + 10)], "inv-1", NOW + WINDOW + 10, plenty)
    assert (final.won, final.current_state) == (False, "delivered")
    ledger.claim([request("given-back", state="claimed")], "other", NOW, plenty)
    ledger.record([Outcome("given-back", "claimed", NOW + 1)], "other", plenty)
    assert ledger.settle([not_sent("given-back", NOW + 2)], "inv-1", NOW + 2, plenty)[0].won


def test_queue_sends_ten_per_call_one_message_per_body(aws, queue_url):
    calls = []
    aws["sqs"].meta.events.register("before-call.sqs.SendMessageBatch", lambda **kw: calls.append(1))
    queue = SqsEventQueue(queue_url, aws["sqs"], worst_call_seconds=12)
    bodies = [json.dumps({"n": i}) for i in range(23)]
    assert queue.send(bodies, plenty) == []
    assert len(calls) == 3
    received = []
    while True:
        got = aws["sqs"].receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            break
        received += [json.loads(m["Body"])["n"] for m in got]
    assert sorted(received) == list(range(23))


def test_batches_are_split_by_bytes_as_well_as_by_count():
    bodies = ["a" * 400_000, "b" * 400_000, "c" * 400_000, "d" * 10]
    assert batches_by_size(bodies) == [[0, 1], [2, 3]]
    assert batches_by_size(["x"] * 25) == [list(range(10)), list(range(10, 20)), list(range(20, 25))]
    assert batches_by_size(["é" * 600_000, "é" * 10]) == [[0], [1]]  # UTF-8 bytes, not characters


def test_large_messages_reach_the_queue_in_byte_sized_batches(aws, queue_url):
    queue = SqsEventQueue(queue_url, aws["sqs"], worst_call_seconds=12)
    assert queue.send(["x" * 300_000 for _ in range(7)], plenty) == []
    attributes = aws["sqs"].get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "7"


def test_a_message_the_queue_refuses_is_reported_as_the_senders_fault(aws):
    small = aws["sqs"].create_queue(QueueName="small-max", Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
    queue = SqsEventQueue(small, aws["sqs"], worst_call_seconds=12)
    refusals = queue.send(["ok", "x" * 2000, "ok too"], plenty)
    assert [(r.position, r.sender_fault) for r in refusals] == [(1, True)]


def test_a_queue_that_fails_reports_every_body_of_the_failed_calls(aws):
    queue = SqsEventQueue("http://127.0.0.1:1/000000000000/missing", aws["sqs"], worst_call_seconds=12)
    refusals = queue.send([str(i) for i in range(12)], plenty)
    assert [r.position for r in refusals] == list(range(12)) and not any(r.sender_fault for r in refusals)


def test_no_send_is_started_without_time_for_its_worst_case(aws, queue_url):
    queue = SqsEventQueue(queue_url, aws["sqs"], worst_call_seconds=12)
    refusals = queue.send(["a", "b"], lambda: 10.0)
    assert [r.position for r in refusals] == [0, 1] and refusals[0].reason == "no time left in this invocation"


def test_an_outcome_dynamodb_refuses_for_a_moment_is_written_on_a_later_round(aws, dedup_table):
    class FlakyClient:
        """moto's client, refusing the first two UpdateItems (as DynamoDB throttling past botocore's retries)."""

        def __init__(self, client):
            self.client, self.refusals, self.exceptions = client, 2, client.exceptions

        def update_item(self, **kwargs):
            if self.refusals:
                self.refusals -= 1
                raise RuntimeError("ProvisionedThroughputExceededException")
            return self.client.update_item(**kwargs)

    DynamoDeliveryLedger(dedup_table, aws["dynamodb"], worst_call_seconds=12).claim([request("a")], "inv-1", NOW, plenty)
    sleeps = []
    flaky = DynamoDeliveryLedger(dedup_table, FlakyClient(aws["dynamodb"]), worst_call_seconds=12, sleep=sleeps.append)
    assert flaky.record([Outcome("a", "delivered", NOW + 1)], "inv-1", plenty) == []
    assert sleeps == [1.0, 2.0] and item(aws, dedup_table, "a")["state"]["S"] == "delivered"
    # without time for another round, the refused write is reported, not waited for
    DynamoDeliveryLedger(dedup_table, aws["dynamodb"], worst_call_seconds=12).claim([request("b")], "inv-1", NOW, plenty)
    late = DynamoDeliveryLedger(dedup_table, FlakyClient(aws["dynamodb"]), worst_call_seconds=12, sleep=sleeps.append)
    assert late.record([Outcome("b", "delivered", NOW + 1)], "inv-1", lambda: 13.5) == ["b"]


# -- SqsJobQueue: a fetcher draining its own job queue (pinrelay.job_drain) -------------------------


def send_jobs(aws, queue_url, bodies):
    for start in range(0, len(bodies), 10):
        aws["sqs"].send_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start:start + 10])])


def on_queue(aws, queue_url) -> tuple[int, int]:
    """(visible, in flight), as SQS counts them."""
    attributes = aws["sqs"].get_queue_attributes(QueueUrl=queue_url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_a_receive_takes_at_most_max_jobs_with_bodies_and_handles_and_hides_them(aws, queue_url):
    bodies = [f"job {n}" for n in range(13)]
    send_jobs(aws, queue_url, bodies)
    queue = SqsJobQueue(queue_url, aws["sqs"])
    first, second, third = queue.receive(10), queue.receive(2), queue.receive(10)
    assert [len(first), len(second), len(third)] == [10, 2, 1]
    jobs = first + second + third
    assert all(isinstance(job, ReceivedJob) and job.receipt_handle and job.receive_count == 1 for job in jobs)
    assert sorted(job.body for job in jobs) == sorted(bodies) and len({job.message_id for job in jobs}) == 13
    assert on_queue(aws, queue_url) == (0, 13)  # in flight until deleted or their visibility timeout


def test_each_receive_of_a_job_counts_one_more(aws, queue_url):
    aws["sqs"].send_message(QueueUrl=queue_url, MessageBody="job")
    queue = SqsJobQueue(queue_url, aws["sqs"])
    received = []
    for _ in range(3):
        (job,) = queue.receive(10)
        received.append(job)
        # the visibility timeout passes
        aws["sqs"].change_message_visibility(QueueUrl=queue_url, ReceiptHandle=job.receipt_handle, VisibilityTimeout=0)
    assert [job.receive_count for job in received] == [1, 2, 3]
    assert len({job.message_id for job in received}) == 1 and len({job.receipt_handle for job in received}) == 3


def test_an_empty_queue_gives_no_jobs_after_a_long_poll(aws, queue_url):
    queue = SqsJobQueue(queue_url, aws["sqs"])
    started = time.monotonic()
    assert queue.receive(10) == []
    assert time.monotonic() - started >= 0.9  # WaitTimeSeconds 1: every SQS server asked, not a sample


def test_delete_removes_the_jobs_ten_a_call(aws, queue_url):
    send_jobs(aws, queue_url, [f"job {n}" for n in range(12)])
    queue = SqsJobQueue(queue_url, aws["sqs"])
    jobs = queue.receive(10) + queue.receive(10)
    calls = []
    aws["sqs"].meta.events.register("before-call.sqs.DeleteMessageBatch", lambda **kw: calls.append(1))
    assert queue.delete(jobs) == []
    assert len(calls) == 2 and on_queue(aws, queue_url) == (0, 0)
    assert queue.receive(10) == []


def test_a_receipt_handle_sqs_does_not_take_is_reported_and_the_other_jobs_are_deleted(aws, queue_url):
    send_jobs(aws, queue_url, [f"job {n}" for n in range(11)])
    queue = SqsJobQueue(queue_url, aws["sqs"])
    jobs = queue.receive(10) + queue.receive(10)
    refused = ReceivedJob("refused-job", "not-a-receipt-handle", "job", 1)
    # SQS answers ReceiptHandleIsInvalid for that entry alone (in the second call of ten)
    assert queue.delete([*jobs[:10], refused, jobs[10]]) == ["refused-job"]
    assert on_queue(aws, queue_url) == (0, 0)


def test_a_queue_that_does_not_exist_is_unavailable_to_receive_and_delete(aws, queue_url):
    missing = SqsJobQueue(queue_url + "-missing", aws["sqs"])
    with pytest.raises(JobQueueUnavailable, match="ReceiveMessage failed: QueueDoesNotExist"):
        missing.receive(10)
    with pytest.raises(JobQueueUnavailable, match="DeleteMessageBatch failed: QueueDoesNotExist"):
        missing.delete([ReceivedJob("m1", "a-receipt-handle", "job", 1)])
