"""A fetcher that drains its job queue itself, on a schedule, ten jobs a round.

The Stripe line-items fetcher (functions/stripe_line_items) runs once a minute and takes the jobs
ingest queued since, instead of being fed by Lambda's SQS event source. Why: at webhook rates
(5 a second) the event source's long polls hand out one message per ReceiveMessage, one billed
request per job; drained once a minute, a receive takes ten (docs/cost-and-speed.md measures it).
The cost is latency: a session's event waits up to a minute for its line items.

A round: receive up to ``max_jobs`` jobs (each invisible to other receivers for the queue's
visibility timeout), do them (``work``: each job's outcome, in order), delete the ones that are
done. A job whose outcome is ``retry`` is left alone: SQS hands it out again after the visibility
timeout, with its ApproximateReceiveCount one higher, and after the queue's maxReceiveCount moves
it to the dead-letter queue, as with the event source.

The drain starts a round only when the invocation has time for its worst case
(``round_worst_seconds``: the receive, the work, the delete), so a job is received only when it
can be done: a kill at the timeout cannot take receives from it. It stops when a receive brings
fewer than ``max_jobs`` (the queue is empty as far as SQS shows; what came meanwhile waits for
the next run), when the queue does not answer, or when the time left is too short.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

from pinrelay.ports import Deadline, JobQueue, JobQueueUnavailable, ReceivedJob


class JobOutcome(Protocol):
    message_id: str
    status: str  # "retry": leave the job on its queue; any other status: the job is done


Outcome = TypeVar("Outcome", bound=JobOutcome)
Work = Callable[[list[tuple[str, str]], Deadline, Mapping[str, int]], list[Outcome]]
StopReason = Literal["drained", "no time left", "queue unavailable"]


@dataclass
class DrainReport:
    rounds: int = 0
    received: int = 0
    outcomes: list = field(default_factory=list)  # every job's outcome, in the order done
    not_deleted: list[str] = field(default_factory=list)  # done jobs SQS did not delete: they come again
    stopped: StopReason = "drained"
    problem: str | None = None  # the queue's error, when it did not answer


def drain(queue: JobQueue, work: Work, *, time_left: Deadline, round_worst_seconds: float,
          max_jobs: int = 10) -> DrainReport:
    """Receive, do and delete jobs, a round at a time, until the queue shows no more or the time
    left could not cover another round."""
    report = DrainReport()
    while True:
        if time_left() < round_worst_seconds:
            report.stopped = "no time left"
            return report
        try:
            jobs = queue.receive(max_jobs)
        except JobQueueUnavailable as problem:
            report.stopped, report.problem = "queue unavailable", str(problem)
            return report
        if not jobs:
            return report
        report.rounds += 1
        report.received += len(jobs)
        outcomes = work([(job.message_id, job.body) for job in jobs], time_left,
                        {job.message_id: job.receive_count for job in jobs})
        report.outcomes += outcomes
        done = _done(jobs, outcomes)
        try:
            report.not_deleted += queue.delete(done) if done else []
        except JobQueueUnavailable as problem:
            # the done jobs come back after the visibility timeout and are done again: their
            # events reach the events queue twice, and the sender's ledger keeps one
            report.not_deleted += [job.message_id for job in done]
            report.stopped, report.problem = "queue unavailable", str(problem)
            return report
        if len(jobs) < max_jobs:
            return report


def _done(jobs: list[ReceivedJob], outcomes: list[JobOutcome]) -> list[ReceivedJob]:
    status = {outcome.message_id: outcome.status for outcome in outcomes}
    return [job for job in jobs if status.get(job.message_id, "retry") != "retry"]
