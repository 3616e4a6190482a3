"""What the two job fetchers do alike with a batch of SQS jobs: ``pinrelay.fetch`` (BigCommerce
orders read from their store) and ``pinrelay.stripe_fetch`` (Stripe sessions' line items).

Each parses its jobs (``parse_jobs``: a body that is not a job is kept as None, a poison message
for the DLQ), reads them side by side (``side_by_side``: one wait for the batch, not one a job),
then queues the events it could make on the events queue, one ``IngestService.accept`` per ad
account, and puts each answer on its job's outcome (``queue_by_account``).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from pinrelay.events import PreparedEvent
from pinrelay.ingest import IngestService
from pinrelay.ports import Deadline

JobModel = TypeVar("JobModel", bound=BaseModel)
Item = TypeVar("Item")
Result = TypeVar("Result")


class Outcome(Protocol):
    status: str
    reason: str | None
    code: str | None


class ReadyJob(Protocol):
    """A job whose event is made: ``job.ad_account_id`` is where it goes."""

    job: Any
    outcome: Outcome
    event: PreparedEvent | None


def parse_jobs(jobs: list[tuple[str, str]], model: type[JobModel]) -> list[tuple[str, JobModel | None]]:
    """Each ``(message id, body)`` as ``(message id, job)``; None for a body that is not one."""
    parsed: list[tuple[str, JobModel | None]] = []
    for message_id, body in jobs:
        try:
            parsed.append((message_id, model.model_validate_json(body)))
        except ValidationError:
            parsed.append((message_id, None))
    return parsed


def side_by_side(work: Callable[[Item], Result], items: list[Item], workers: int) -> list[Result]:
    """``work`` on each item, up to ``workers`` at once, the results in the items' order."""
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(items)))) as pool:
        return list(pool.map(work, items))


def queue_by_account(ingest: IngestService, ready: list[ReadyJob], *, source: str, time_left: Deadline,
                     consent_known: bool | None = None) -> None:
    """Queue the ready jobs' events, one ``accept`` per ad account, and put each answer on its job:
    ``queued`` (accepted, a copy, or withheld for consent: its marker is queued, the ledger says
    why), ``rejected``, or left ``retry`` with the queue's cause. An outcome with a ``code`` of its
    own (e.g. Stripe's ``without_contents``) keeps its reason."""
    by_account: dict[str, list[ReadyJob]] = {}
    for item in ready:
        by_account.setdefault(item.job.ad_account_id, []).append(item)
    for ad_account_id, items in by_account.items():
        answer = ingest.accept([item.event for item in items], source=source, ad_account_id=ad_account_id,
                               consent_known=consent_known, time_left=time_left)
        for item, result in zip(items, answer.results):
            outcome = item.outcome
            if result.status in ("accepted", "duplicate"):
                outcome.status = "queued"
                if outcome.code is None:
                    outcome.reason = None
            elif result.status == "withheld":
                outcome.status, outcome.reason, outcome.code = "queued", result.reason, result.withheld
            elif result.status == "rejected":
                outcome.status, outcome.reason = "rejected", result.reason
            else:
                outcome.reason = result.cause or "not queued"
