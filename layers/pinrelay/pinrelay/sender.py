"""Sender: deliver queued events to Pinterest in requests of up to 1000. No AWS imports.

Policy, per SQS batch:
- group by ad account, skip events already delivered or rejected (looked up only for messages
  SQS redelivers or ``pinrelay redrive`` put back: a first receive cannot have been sent
  before), chunk to <= 1000 events, POST each chunk;
- 200 / 422: read the per-event ``status`` (same order as sent): processed -> delivered,
  failed -> rejected with Pinterest's message, never retried;
- 400 for a chunk: Pinterest refused the whole request, so split it in halves until the event
  it refuses is alone, and record that one as rejected;
- 429, 5xx, 401/403/404, timeouts, connection errors, an unreadable answer: retried with
  exponential backoff (``Retry-After`` honoured) while the invocation has time, then the
  messages are returned as batch item failures; SQS redelivers them and, after
  maxReceiveCount receives, moves them to the DLQ.

Outcomes are recorded right after each request (not once at the end of the invocation), and a
request is only started when its timeout still fits in the invocation: an invocation that dies
or times out later cannot make SQS redeliver events Pinterest already took and pinrelay already
recorded. What remains is the short gap between Pinterest's answer and the DynamoDB write of
that one request (a crash there resends those events once), and requests whose outcome is
unknown (timeout, connection dropped, unreadable 200): both are counted
(``resent_after_redelivery``, ``uncertain_sends``) and harmless to Pinterest, which
deduplicates by event_id (README, "Delivery guarantees").
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pinrelay.models import QueuedEvent
from pinrelay.ports import DedupStore, DeliveryRecord, HttpAnswer, PinterestApi
from pinrelay.privacy import match_keys

MAX_EVENTS_PER_REQUEST = 1000
RECORD_MARGIN_SECONDS = 5.0  # kept free at the end of an invocation to record outcomes and answer SQS
RETRYABLE_STATUSES = frozenset({401, 403, 404, 408, 409, 425, 429}) | frozenset(range(500, 600))

logger = logging.getLogger(__name__)


REDRIVEN_ATTRIBUTE = "pinrelay_redriven"  # set by `pinrelay redrive`: SQS counts receives from 1 again


@dataclass(slots=True)
class QueuedMessage:
    message_id: str
    receive_count: int
    event: QueuedEvent
    redriven: bool = False  # put back from the DLQ as a new message: it may have been sent before

    @property
    def maybe_sent_before(self) -> bool:
        return self.receive_count > 1 or self.redriven


@dataclass(slots=True)
class SendReport:
    failed_message_ids: list[str] = field(default_factory=list)
    delivered: int = 0
    rejected: int = 0
    skipped_already_done: int = 0
    requests: int = 0
    request_sizes: list[int] = field(default_factory=list)
    retries: int = 0
    rejections: list[tuple[str, str]] = field(default_factory=list)  # (dedup key, Pinterest's message)
    # events sent again after SQS redelivered their message while still "queued": a previous
    # invocation may have reached Pinterest and died before recording (upper bound of duplicates)
    resent_after_redelivery: int = 0
    # events in attempts whose outcome is unknown (timeout, connection dropped, unreadable 200):
    # Pinterest may have processed them; the retry then is a duplicate Pinterest drops by event_id
    uncertain_sends: int = 0
    record_failures: int = 0  # outcomes that could not be written to DynamoDB (events not resent)
    state_reads: int = 0  # dedup keys whose delivery state was read (redelivered messages only)
    # per (source, event_name): "EventsDelivered", "EventsRejectedByPinterest" and, for delivered
    # events, "MatchKey_<key>" (what Pinterest got to match on)
    outcomes: defaultdict[tuple[str, str], Counter] = field(default_factory=lambda: defaultdict(Counter))

    @property
    def notable(self) -> bool:
        """Something an operator may want to read about (a clean batch is only metrics)."""
        return bool(self.failed_message_ids or self.rejected or self.retries or self.skipped_already_done
                    or self.resent_after_redelivery or self.uncertain_sends or self.record_failures)


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def chunks(items: list[Any], size: int = MAX_EVENTS_PER_REQUEST) -> list[list[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def per_event_statuses(answer: HttpAnswer, sent: int) -> list[dict[str, Any]] | None:
    """The ``events`` list of a 200 or 422 answer, or None if it does not match what was sent."""
    body = answer.body
    if not isinstance(body, dict):
        return None
    events = body.get("events")
    if events is None and isinstance(body.get("details"), dict):
        events = body["details"].get("events")
    if not isinstance(events, list) or len(events) != sent:
        return None
    if not all(isinstance(item, dict) and item.get("status") in ("processed", "failed") for item in events):
        return None
    return events


def error_text(answer: HttpAnswer) -> str:
    if answer.transport_error:
        return answer.transport_error
    if isinstance(answer.body, dict) and answer.body.get("message"):
        return f"HTTP {answer.status}: {answer.body['message']}"
    return f"HTTP {answer.status}"


class SenderService:
    def __init__(
        self,
        *,
        api: PinterestApi,
        store: DedupStore,
        test_mode: bool,
        max_attempts: int,
        backoff_base_seconds: float,
        backoff_max_seconds: float,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        request_timeout_seconds: float = 0.0,
    ) -> None:
        self.api = api
        self.store = store
        self.test_mode = test_mode
        self.max_attempts = max_attempts
        self.backoff_base_seconds = backoff_base_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self.clock = clock
        self.sleep = sleep
        self.request_timeout_seconds = request_timeout_seconds

    def deliver(self, messages: list[QueuedMessage], remaining_seconds: Callable[[], float]) -> SendReport:
        report = SendReport()
        if not messages:
            return report
        # a message received for the first time cannot have been sent before (ingest claimed its
        # dedup key once); only redelivered or redriven ones may already be delivered or rejected
        redelivered = sorted({m.event.dedup_key for m in messages if m.maybe_sent_before})
        states = self.store.delivery_states(redelivered) if redelivered else {}
        report.state_reads = len(redelivered)
        by_account: dict[str, list[QueuedMessage]] = {}
        seen: set[str] = set()
        for message in messages:
            key = message.event.dedup_key
            if states.get(key) in ("delivered", "rejected") or key in seen:
                report.skipped_already_done += 1
                continue
            seen.add(key)
            if message.maybe_sent_before:
                report.resent_after_redelivery += 1
            by_account.setdefault(message.event.ad_account_id, []).append(message)
        for ad_account_id, account_messages in by_account.items():
            for chunk in chunks(account_messages):
                done: set[str] = set()
                try:
                    self._send_chunk(ad_account_id, chunk, report, remaining_seconds, done)
                except _Retryable as exc:
                    logger.warning("pinterest unavailable for %d events: %s", len(chunk) - len(done), exc)
                    # parts of a split chunk may already be delivered and recorded: return only the rest
                    report.failed_message_ids.extend(m.message_id for m in chunk if m.message_id not in done)
        return report

    def _send_chunk(
        self,
        ad_account_id: str,
        chunk: list[QueuedMessage],
        report: SendReport,
        remaining_seconds: Callable[[], float],
        done: set[str],
    ) -> None:
        answer = self._post_with_retries(ad_account_id, chunk, report, remaining_seconds)
        now = int(self.clock())
        if answer.status == 400:
            if len(chunk) == 1:
                self._store([self._record(chunk[0], "rejected", now, error_text(answer), report)], chunk, done, report)
                return
            middle = len(chunk) // 2
            self._send_chunk(ad_account_id, chunk[:middle], report, remaining_seconds, done)
            self._send_chunk(ad_account_id, chunk[middle:], report, remaining_seconds, done)
            return
        statuses = per_event_statuses(answer, len(chunk))
        assert statuses is not None  # _post_with_retries only returns readable answers or 400
        records = []
        for message, status in zip(chunk, statuses, strict=True):
            if status["status"] == "processed":
                records.append(self._record(message, "delivered", now, None, report))
            else:
                reason = status.get("error_message") or "failed without a message"
                records.append(self._record(message, "rejected", now, reason, report))
        self._store(records, chunk, done, report)

    def _store(self, records: list[DeliveryRecord], chunk: list[QueuedMessage], done: set[str], report: SendReport) -> None:
        """Record one request's outcomes at once, so a later crash does not resend them."""
        done.update(m.message_id for m in chunk)
        try:
            self.store.record_deliveries(records)
        except Exception:  # the events did reach Pinterest: do not send them again
            report.record_failures += len(records)
            logger.exception(
                "could not record %d delivery outcomes; Pinterest has them, they are not resent",
                len(records),
                extra={"keys": [record.key for record in records[:20]]},
            )

    def _record(self, message: QueuedMessage, state: str, now: int, error: str | None, report: SendReport) -> DeliveryRecord:
        event = message.event.event
        counts = report.outcomes[message.event.source, str(event.get("event_name"))]
        if state == "delivered":
            report.delivered += 1
            counts["EventsDelivered"] += 1
            for key in match_keys(event.get("user_data") or {}):
                counts[f"MatchKey_{key}"] += 1
        else:
            report.rejected += 1
            counts["EventsRejectedByPinterest"] += 1
            report.rejections.append((message.event.dedup_key, error or ""))
        return DeliveryRecord(
            key=message.event.dedup_key,
            state=state,  # type: ignore[arg-type]
            attempts=message.receive_count,
            accepted_at=message.event.accepted_at,
            expires_at=message.event.expires_at,
            updated_at=now,
            error_message=error,
        )

    def _post_with_retries(
        self, ad_account_id: str, chunk: list[QueuedMessage], report: SendReport, remaining_seconds: Callable[[], float]
    ) -> HttpAnswer:
        events = [message.event.event for message in chunk]
        for attempt in range(1, self.max_attempts + 1):
            # never start a request whose timeout would run past the end of the invocation: Lambda
            # would kill it after Pinterest took the events and before they are recorded
            if remaining_seconds() < self.request_timeout_seconds + RECORD_MARGIN_SECONDS:
                raise _Retryable("no time left in this invocation for another request")
            report.requests += 1
            report.request_sizes.append(len(events))
            answer = self.api.post_events(ad_account_id, events, self.test_mode)
            try:
                return self._readable(answer, len(events))
            except _Retryable as exc:
                if answer.status is None or answer.status in (200, 422):
                    report.uncertain_sends += len(events)  # no answer, or one we cannot read
                if attempt == self.max_attempts:
                    raise
                delay = min(self.backoff_max_seconds, self.backoff_base_seconds * 2 ** (attempt - 1))
                if exc.retry_after is not None:
                    if exc.retry_after > self.backoff_max_seconds * 4:
                        # longer than we wait inside an invocation: SQS brings the messages back
                        # after the visibility timeout, instead of retrying before Pinterest allows
                        raise
                    delay = max(delay, exc.retry_after)
                # keep time to answer SQS: never sleep into the end of the invocation
                if remaining_seconds() - delay < RECORD_MARGIN_SECONDS:
                    raise
                report.retries += 1
                logger.info("retrying in %.1fs after %s", delay, exc)
                self.sleep(delay)
        raise AssertionError("unreachable")

    @staticmethod
    def _readable(answer: HttpAnswer, sent: int) -> HttpAnswer:
        if answer.status is None or answer.status in RETRYABLE_STATUSES:
            raise _Retryable(error_text(answer), answer.retry_after)
        if answer.status == 400:
            return answer
        if answer.status in (200, 422) and per_event_statuses(answer, sent) is not None:
            return answer
        raise _Retryable(f"unexpected answer {error_text(answer)}")
