"""Stripe line-items jobs -> each session's line items read from Stripe -> its event on the events queue.

The Stripe line-items fetcher's work (functions/stripe_line_items), as plain Python behind ports.
Ingest answers a paid Checkout Session's webhook at once when the account has a restricted key:
it maps the session to its hashed event as always and queues a job (``sources.stripe.LineItemsJob``)
instead of waiting for Stripe. Here, up to ten jobs of a batch are read side by side (one wait
for Stripe per batch, not per session), each event gets its line items' contents
(``sources.stripe.add_line_items``) and is queued on the events queue by ``IngestService.accept``,
as ingest queues any other event; the sender then claims, dedups and delivers it.

A job ends as ``queued`` (with its contents, or without them when Stripe refused the key or the
session, or no key is set any more; or as the marker of an event the consent policy withholds),
``rejected`` (the event cannot be sent, e.g. too large once the contents are in) or ``retry``:
Stripe did not answer in time (timeout, 429, 5xx), the key could not be read, the events queue did
not take the event, or too little time was left in the invocation. A retried job goes back to
its queue and comes again after the visibility timeout. From its ``CONTENTS_TRIES``-th receive
on, line items that still cannot be read cost the contents, never the conversion: the event goes
without them (code ``without_contents``), while Pinterest still takes it. Only a job the events
queue keeps refusing (or one that cannot be read) reaches the queue's maxReceiveCount and the
line-items dead-letter queue (alarmed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from pinrelay.accounts import AccountMap
from pinrelay.events import PreparedEvent
from pinrelay.ingest import IngestService
from pinrelay.job_batches import parse_jobs, queue_by_account, side_by_side
from pinrelay.ports import Deadline, LineItemsRefused, LineItemsUnavailable, SessionLineItems
from pinrelay.sources.stripe import SOURCE, ContentIdField, LineItemsJob

JobStatus = Literal["queued", "rejected", "retry"]
# the receive from which Stripe's silence costs the contents, not the conversion: the 4th, about
# 18 minutes after the webhook (visibility timeout 6 min), one receive before the queue's
# maxReceiveCount (5, template.yaml) so that the events queue has a try of its own
CONTENTS_TRIES = 4
# whose key a job names: ("deployment", None, None) or ("account_map", ad account, entry name)
KeyOwner = tuple[str, str | None, str | None]


@dataclass(slots=True)
class LineItemsOutcome:
    message_id: str
    status: JobStatus
    reason: str | None = None
    code: str | None = None  # ``without_contents`` (refused, no key), or a withheld event's reason code
    event_id: str | None = None
    session_id: str | None = None


@dataclass(slots=True)
class _Read:
    job: LineItemsJob
    outcome: LineItemsOutcome
    event: PreparedEvent | None = None


def owner_of(job: LineItemsJob) -> KeyOwner:
    return ("deployment", None, None) if job.key == "deployment" else ("account_map", job.ad_account_id, job.route_name)


def mapped_key(accounts: AccountMap, ad_account_id: str, route_name: str | None) -> str | None:
    """The restricted key of the account map entry a job names (its ad account and name); None
    when no entry of that ad account and name has one now, or when entries of it disagree."""
    keys = {route.stripe_api_key.get_secret_value() for route in accounts.accounts
            if route.ad_account_id == ad_account_id and route.name == route_name and route.stripe_api_key is not None}
    return keys.pop() if len(keys) == 1 else None


class StripeLineItemsService:
    """``readers``: the line-items reader of a key owner (``owner_of``), None when that owner has no
    key now (the events go without contents); it raises LineItemsUnavailable when the key cannot
    be read now (Secrets Manager, an invalid account map: the jobs are tried again)."""

    def __init__(self, *, readers: Callable[[KeyOwner], SessionLineItems | None], ingest: IngestService,
                 content_id_field: ContentIdField, fetch_worst_seconds: float, queue_worst_seconds: float,
                 workers: int = 10, answer_margin_seconds: float = 1.0) -> None:
        self.readers = readers
        self.ingest = ingest
        self.content_id_field = content_id_field
        self.fetch_worst_seconds = fetch_worst_seconds
        self.queue_worst_seconds = queue_worst_seconds
        self.workers = workers
        self.answer_margin_seconds = answer_margin_seconds

    def process(self, jobs: list[tuple[str, str]], time_left: Deadline,
                receive_counts: Mapping[str, int] | None = None) -> list[LineItemsOutcome]:
        """Each ``(message id, body)`` job's outcome, in order. ``receive_counts``: how many times
        SQS has handed each message out (ApproximateReceiveCount; 1 when not given)."""
        counts = receive_counts or {}
        parsed = parse_jobs(jobs, LineItemsJob)
        readable = [(message_id, job) for message_id, job in parsed if job is not None]
        readers = self._readers_of({owner_of(job) for _, job in readable})
        read = dict(zip((m for m, _ in readable), side_by_side(
            lambda item: self._read(item[0], item[1], readers[owner_of(item[1])], time_left, counts.get(item[0], 1)),
            readable, self.workers)))
        # consent_known=False: a webhook's event carries no opt_out of Pinterest's (as in ingest)
        queue_by_account(self.ingest, [r for r in read.values() if r.event is not None], source=SOURCE,
                         time_left=time_left, consent_known=False)
        return [read[message_id].outcome if job is not None
                else LineItemsOutcome(message_id, "retry", "unreadable line-items job")  # poison: on to the DLQ
                for message_id, job in parsed]

    def _readers_of(self, owners: set[KeyOwner]) -> dict[KeyOwner, SessionLineItems | Exception | None]:
        """Each key owner's reader once, before the jobs run side by side (its key read once per
        batch); the problem in place of a reader whose key cannot be read now."""
        readers: dict[KeyOwner, SessionLineItems | Exception | None] = {}
        for owner in sorted(owners, key=lambda o: tuple(part or "" for part in o)):
            try:
                readers[owner] = self.readers(owner)
            except LineItemsUnavailable as problem:
                readers[owner] = problem
        return readers

    def _read(self, message_id: str, job: LineItemsJob, reader: SessionLineItems | Exception | None,
              time_left: Deadline, receive_count: int) -> _Read:
        outcome = LineItemsOutcome(message_id, "retry", event_id=str(job.event.get("event_id")), session_id=job.session_id)
        if time_left() < self.fetch_worst_seconds + self.queue_worst_seconds + self.answer_margin_seconds:
            outcome.reason = "no time left in this invocation"
            return _Read(job, outcome)
        line_items = None
        try:
            if isinstance(reader, Exception):
                raise reader
            if reader is None:
                outcome.code, outcome.reason = "without_contents", "no Stripe key for this account now"
            else:
                line_items = reader.line_items(job.session_id, time_left)
        except LineItemsUnavailable as problem:
            if receive_count < CONTENTS_TRIES:
                outcome.reason = str(problem)
                return _Read(job, outcome)
            outcome.code = "without_contents"
            outcome.reason = f"no line items in {receive_count} tries, sent without contents: {problem}"
        except LineItemsRefused as problem:
            outcome.code, outcome.reason = "without_contents", str(problem)
        return _Read(job, outcome, job.prepared(line_items, self.content_id_field))
