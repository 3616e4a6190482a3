"""The scheduled drain (pinrelay.job_drain) with an in-memory queue that behaves as SQS does:
received jobs are invisible until deleted or until their visibility timeout, each receive counts,
and a job received past maxReceiveCount goes to the dead-letter queue.

What it must do: take ten jobs a round, delete only the done ones (a ``retry`` stays for a later
run, its receive count one higher), stop when a receive brings fewer than ten, never receive a job
it has no time to do, and lose nothing when the queue fails a receive or a delete."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pinrelay.job_drain import drain
from pinrelay.ports import JobQueueUnavailable, ReceivedJob


class FakeJobQueue:
    """SQS as a drain sees it: visible jobs in order; a received job is in flight until deleted or
    ``expire()`` (its visibility timeout passing); ``max_receives`` then the DLQ."""

    def __init__(self, bodies: list[str], max_receives: int = 5) -> None:
        self.visible = [(f"m{i}", body) for i, body in enumerate(bodies)]
        self.in_flight: dict[str, str] = {}
        self.counts: dict[str, int] = {}
        self.dlq: list[str] = []
        self.deleted: list[str] = []
        self.receives: list[int] = []  # how many jobs each receive brought
        self.max_receives = max_receives
        self.fail_receive = False
        self.fail_delete = False
        self.refuse_delete: set[str] = set()
        self._receipt = 0

    def receive(self, max_jobs: int) -> list[ReceivedJob]:
        if self.fail_receive:
            raise JobQueueUnavailable("ReceiveMessage failed: EndpointConnectionError")
        jobs = []
        while self.visible and len(jobs) < max_jobs:
            message_id, body = self.visible.pop(0)
            if self.counts.get(message_id, 0) >= self.max_receives:
                self.dlq.append(message_id)
                continue
            self.counts[message_id] = self.counts.get(message_id, 0) + 1
            self._receipt += 1
            self.in_flight[message_id] = body
            jobs.append(ReceivedJob(message_id, f"r{self._receipt}", body, self.counts[message_id]))
        self.receives.append(len(jobs))
        return jobs

    def delete(self, jobs: list[ReceivedJob]) -> list[str]:
        if self.fail_delete:
            raise JobQueueUnavailable("DeleteMessageBatch failed: ReadTimeoutError")
        refused = []
        for job in jobs:
            if job.message_id in self.refuse_delete:
                refused.append(job.message_id)
                continue
            self.in_flight.pop(job.message_id)
            self.deleted.append(job.message_id)
        return refused

    def expire(self) -> None:
        """The visibility timeout passes: every job in flight is visible again."""
        self.visible += list(self.in_flight.items())
        self.in_flight.clear()


@dataclass
class Done:
    message_id: str
    status: str


def work_by_body(retry: set[str] = frozenset()):
    """Work that does every job but those whose body is in ``retry``; it records what it was given."""
    seen: list[tuple[list[str], dict[str, int]]] = []

    def work(jobs, time_left, receive_counts):
        seen.append(([body for _, body in jobs], dict(receive_counts)))
        return [Done(message_id, "retry" if body in retry else "queued") for message_id, body in jobs]

    work.seen = seen
    return work


def endless_time() -> float:
    return 1e9


def test_a_backlog_is_taken_ten_jobs_a_receive_and_every_done_job_is_deleted():
    queue = FakeJobQueue([f"job{i}" for i in range(25)])
    report = drain(queue, work_by_body(), time_left=endless_time, round_worst_seconds=50)
    assert queue.receives == [10, 10, 5]  # stops after a short receive: no empty receive to pay for
    assert report.rounds == 3 and report.received == 25 and report.stopped == "drained"
    assert sorted(queue.deleted) == sorted(f"m{i}" for i in range(25)) and not queue.in_flight


def test_an_exactly_full_last_round_ends_with_one_empty_receive():
    queue = FakeJobQueue([f"job{i}" for i in range(20)])
    report = drain(queue, work_by_body(), time_left=endless_time, round_worst_seconds=50)
    assert queue.receives == [10, 10, 0] and report.rounds == 2 and report.stopped == "drained"


def test_an_empty_queue_costs_one_receive():
    queue = FakeJobQueue([])
    report = drain(queue, work_by_body(), time_left=endless_time, round_worst_seconds=50)
    assert queue.receives == [0] and report.rounds == 0 and report.outcomes == []


def test_a_retried_job_stays_on_the_queue_and_comes_back_with_a_higher_receive_count():
    queue = FakeJobQueue(["ok", "slow"])
    work = work_by_body(retry={"slow"})
    drain(queue, work, time_left=endless_time, round_worst_seconds=50)
    assert queue.deleted == ["m0"] and list(queue.in_flight) == ["m1"]
    queue.expire()
    drain(queue, work, time_left=endless_time, round_worst_seconds=50)
    assert work.seen[-1] == (["slow"], {"m1": 2})  # the work sees the receive count (CONTENTS_TRIES)
    assert list(queue.in_flight) == ["m1"]


def test_a_job_retried_every_time_ends_in_the_dead_letter_queue_after_max_receives():
    queue = FakeJobQueue(["poison"], max_receives=5)
    work = work_by_body(retry={"poison"})
    for _ in range(6):
        drain(queue, work, time_left=endless_time, round_worst_seconds=50)
        queue.expire()
    assert [counts for _, counts in work.seen] == [{"m0": n} for n in range(1, 6)]
    assert queue.dlq == ["m0"] and not queue.deleted


def test_no_job_is_received_without_time_for_a_whole_round():
    queue = FakeJobQueue([f"job{i}" for i in range(30)])
    left = iter([60.0, 55.0, 49.0])  # before the 1st, 2nd and 3rd rounds
    report = drain(queue, work_by_body(), time_left=lambda: next(left), round_worst_seconds=50)
    assert queue.receives == [10, 10] and report.stopped == "no time left"
    assert len(queue.visible) == 10 and not queue.in_flight  # the rest untouched: no receive counted on them
    assert all(count == 1 for count in queue.counts.values())


def test_a_receive_that_fails_stops_the_drain_and_loses_nothing():
    queue = FakeJobQueue(["a", "b"])
    queue.fail_receive = True
    report = drain(queue, work_by_body(), time_left=endless_time, round_worst_seconds=50)
    assert report.stopped == "queue unavailable" and "ReceiveMessage" in report.problem
    assert len(queue.visible) == 2 and report.outcomes == []


def test_a_delete_that_fails_leaves_the_done_jobs_to_come_again_and_stops():
    queue = FakeJobQueue([f"job{i}" for i in range(15)])
    queue.fail_delete = True
    report = drain(queue, work_by_body(), time_left=endless_time, round_worst_seconds=50)
    assert report.rounds == 1 and report.stopped == "queue unavailable"
    assert sorted(report.not_deleted) == sorted(f"m{i}" for i in range(10))
    queue.fail_delete = False
    queue.expire()  # they come again and are done again (the sender's ledger keeps one of each event)
    drain(queue, work_by_body(), time_left=endless_time, round_worst_seconds=50)
    assert sorted(queue.deleted) == sorted(f"m{i}" for i in range(15))


def test_a_job_sqs_does_not_delete_is_reported():
    queue = FakeJobQueue(["a", "b"])
    queue.refuse_delete = {"m1"}
    report = drain(queue, work_by_body(), time_left=endless_time, round_worst_seconds=50)
    assert report.not_deleted == ["m1"] and queue.deleted == ["m0"]


@pytest.mark.parametrize("status", ["queued", "rejected"])
def test_any_outcome_but_retry_is_done(status):
    queue = FakeJobQueue(["a"])
    drain(queue, lambda jobs, time_left, counts: [Done(m, status) for m, _ in jobs],
          time_left=endless_time, round_worst_seconds=50)
    assert queue.deleted == ["m0"]
