"""BigCommerce fetch jobs -> orders read from the store -> hashed events on the events queue.

The fetcher function's work (functions/bigcommerce_fetch), as plain Python behind ports: each
job (``sources.bigcommerce.FetchJob``, queued by ingest for an order webhook) names a store and an
order. The order, its products and its shipping addresses are read from the store
(``ports.StoreOrders``), mapped by ``sources.bigcommerce`` (paid-status rule, normalised and
hashed user data) and queued on the events queue by ``IngestService.accept``, as ingest queues
any other event: the sender then claims and delivers it, and drops the repeats of one order
(every webhook of an order gives the same event_id).

A job ends as ``queued`` (or a copy of another job of the same batch, or the marker of an order the
merchant's consent policy withholds: ``pinrelay.consent``), ``filtered`` (not paid,
not a conversion by the merchant's rules, or no longer in the store), ``rejected`` (the order
cannot be sent, e.g. nothing Pinterest can match on) or ``retry``: the store's API did not answer
in time, refused the token, or the events queue did not take the event. A retried job goes back
to its queue and comes again after the visibility timeout, up to its maxReceiveCount, then lands
in the fetch dead-letter queue (alarmed): an order is never lost because its store was slow or down.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pinrelay.events import EventFiltered, EventRejected, PreparedEvent
from pinrelay.ingest import IngestService
from pinrelay.job_batches import parse_jobs, queue_by_account, side_by_side
from pinrelay.ports import Deadline, OrderUnavailable, StoreOrders
from pinrelay.sources.bigcommerce import SOURCE, BigCommerceOptions, FetchJob, bigcommerce_event

logger = logging.getLogger(__name__)

JobStatus = Literal["queued", "filtered", "rejected", "retry"]


class StoreNotConfigured(LookupError):
    """No API token for the job's store (neither BIGCOMMERCE_STORE_HASH nor the store tokens map)."""


@dataclass(slots=True)
class JobOutcome:
    message_id: str
    status: JobStatus
    reason: str | None = None
    code: str | None = None  # a filtered order's reason code (the EventsFiltered dimension)
    event_id: str | None = None
    store_hash: str | None = None
    order_id: int | None = None


@dataclass(slots=True)
class _Mapped:
    job: FetchJob
    outcome: JobOutcome
    event: PreparedEvent | None = None


class BigCommerceFetchService:
    def __init__(self, *, stores: Callable[[str], StoreOrders], ingest: IngestService, options: BigCommerceOptions,
                 fetch_worst_seconds: float, queue_worst_seconds: float, workers: int = 10,
                 answer_margin_seconds: float = 1.0) -> None:
        self.stores = stores
        self.ingest = ingest
        self.options = options
        self.fetch_worst_seconds = fetch_worst_seconds
        self.queue_worst_seconds = queue_worst_seconds
        self.workers = workers
        self.answer_margin_seconds = answer_margin_seconds

    def process(self, jobs: list[tuple[str, str]], time_left: Deadline) -> list[JobOutcome]:
        """Each ``(message id, body)`` job's outcome, in order."""
        parsed = parse_jobs(jobs, FetchJob)
        readable = [(message_id, job) for message_id, job in parsed if job is not None]
        stores = self._stores_of({job.store_hash for _, job in readable})
        mapped = dict(zip((m for m, _ in readable), side_by_side(
            lambda item: self._fetch_and_map(item[0], item[1], stores[item[1].store_hash], time_left),
            readable, self.workers)))
        queue_by_account(self.ingest, [m for m in mapped.values() if m.event is not None], source=SOURCE,
                         time_left=time_left)
        return [mapped[message_id].outcome if job is not None
                else JobOutcome(message_id, "retry", "unreadable fetch job")  # a poison message: on to the DLQ
                for message_id, job in parsed]

    def _stores_of(self, store_hashes: set[str]) -> dict[str, StoreOrders | Exception]:
        """Each store once, before the jobs run side by side: its token is read once per batch,
        not by ten threads at once on a cold cache. The problem in place of a store that has none."""
        stores: dict[str, StoreOrders | Exception] = {}
        for store_hash in sorted(store_hashes):
            try:
                stores[store_hash] = self.stores(store_hash)
            except (OrderUnavailable, StoreNotConfigured) as problem:
                stores[store_hash] = problem
        return stores

    def _fetch_and_map(self, message_id: str, job: FetchJob, store: StoreOrders | Exception,
                       time_left: Deadline) -> _Mapped:
        outcome = JobOutcome(message_id, "retry", store_hash=job.store_hash, order_id=job.order_id)
        if time_left() < self.fetch_worst_seconds + self.queue_worst_seconds + self.answer_margin_seconds:
            outcome.reason = "no time left in this invocation"
            return _Mapped(job, outcome)
        try:
            if isinstance(store, Exception):
                raise store
            fetched = store.fetch(job.order_id, time_left)
        except (OrderUnavailable, StoreNotConfigured) as problem:
            outcome.reason = str(problem)
            return _Mapped(job, outcome)
        if fetched is None:
            outcome.status, outcome.code = "filtered", "order_not_found"
            outcome.reason = "the store has no such order (deleted since the webhook)"
            return _Mapped(job, outcome)
        now = self.ingest.now()
        mapped = bigcommerce_event(fetched.order, fetched.products, fetched.shipping_addresses,
                                   store=job.store_hash, now=now, options=self.options)
        if isinstance(mapped, EventFiltered):
            outcome.status, outcome.code, outcome.reason, outcome.event_id = "filtered", mapped.code, mapped.reason, mapped.event_id
            return _Mapped(job, outcome)
        if isinstance(mapped, EventRejected):
            outcome.status, outcome.reason, outcome.event_id = "rejected", mapped.reason, mapped.event_id
            return _Mapped(job, outcome)
        outcome.event_id = mapped.event_id
        return _Mapped(job, outcome, mapped)
