"""Sender: claim each queued event, deliver it to Pinterest in requests of up to 1000, record
what Pinterest said. No AWS imports.

Per SQS batch:
1. One message per event: a copy of an event in the same batch is dropped with it. An event
   older than Pinterest's 7 days is not sent (Pinterest refuses it; counted).
2. Claim every event in the delivery ledger (a conditional write with a lease that outlasts this
   invocation). The claim is what makes delivery exactly-once as Pinterest counts it: SQS
   delivers at least once (a copy may come again with receive count 1, even to two invocations
   at the same time), an ambiguous SendMessageBatch at ingest queues two messages, a client's
   retry queues another. A claim that finds the event delivered, rejected or uncertain drops
   the message (a duplicate); one that finds a live lease of another invocation returns it to
   SQS, which brings it back once that invocation has recorded the outcome.
3. Web and app events are claimed straight as ``sending``; offline events as ``claimed``, and
   marked ``sending`` right before each request: Pinterest cannot deduplicate offline events,
   so one found ``sending`` (an earlier attempt may have reached Pinterest) is recorded
   ``uncertain`` and never sent again, while one found ``claimed`` is safe to send. A web or app
   event found ``sending`` is sent again (Pinterest drops repeats by event_id) and counted.
4. Post per ad account, <= 1000 events a request; read Pinterest's per-event ``status``:
   processed -> delivered, failed -> rejected with Pinterest's message (never retried). A 400
   (or a 413, or a 422 without per-event details) is split in halves until the event Pinterest
   refuses is alone. 401/403 read the token again before the retry; 429 waits ``Retry-After``
   (for that ad account's later requests too); 5xx, timeouts and connection errors back off.
   A request is only started when it, and the writes after it, end inside the invocation.
5. Outcomes are written right after each request, conditional on the claim. Events not
   delivered in this invocation give their lease back (when no attempt may have reached
   Pinterest) and return to SQS as batch item failures; after maxReceiveCount receives SQS
   moves them to the DLQ.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pinrelay.events import MAX_EVENT_AGE_SECONDS
from pinrelay.models import QueuedEvent
from pinrelay.ports import FINAL_STATES, ClaimRequest, Deadline, DeliveryLedger, HttpAnswer, Outcome, PinterestApi
from pinrelay.privacy import match_keys

MAX_EVENTS_PER_REQUEST = 1000
LEASE_MARGIN_SECONDS = 30  # a lease outlasts the invocation by this much (clock skew between hosts)
RETRYABLE_STATUSES = frozenset({401, 403, 404, 408, 409, 425, 429}) | frozenset(range(500, 600))
SPLIT_STATUSES = frozenset({400, 413, 422})  # the request as a whole was refused: find the event that causes it
UNCERTAIN_REASON = "an earlier request with this event may have reached Pinterest (no answer was recorded); " \
                   "offline events are never sent twice"

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class QueuedMessage:
    message_id: str
    receive_count: int
    event: QueuedEvent


@dataclass(slots=True)
class SendReport:
    """What one invocation did, for the batch response, the metrics and the log line."""

    failed_message_ids: list[str] = field(default_factory=list)  # back to SQS, tried again later
    delivered: int = 0
    rejected: int = 0
    uncertain: int = 0  # offline events recorded uncertain (an earlier request may have reached Pinterest)
    duplicates: int = 0  # copies of events already delivered, rejected or uncertain: dropped
    held_elsewhere: int = 0  # another invocation holds the event's lease: returned to SQS
    too_old: int = 0  # over Pinterest's 7 days by the time they came out of the queue: dropped
    # web and app events sent again after an earlier attempt whose outcome is unknown (Pinterest
    # drops repeats by event_id): found "sending", or sent again after a request with no answer
    possibly_resent: int = 0
    uncertain_sends: int = 0  # events in requests that got no readable answer
    claim_errors: int = 0  # claims DynamoDB could not take: returned to SQS
    record_failures: int = 0  # outcomes that could not be written (Pinterest has the events: not resent)
    requests: int = 0
    request_sizes: list[int] = field(default_factory=list)
    retries: int = 0
    rejections: list[tuple[str, str]] = field(default_factory=list)  # (dedup key, Pinterest's message)
    # per (source, event_name): EventsDelivered, EventsRejectedByPinterest, EventsDuplicate,
    # EventsUncertain and, for delivered events, MatchKey_<key>
    outcomes: defaultdict[tuple[str, str], Counter] = field(default_factory=lambda: defaultdict(Counter))

    @property
    def notable(self) -> bool:
        """Something an operator may want to read about (a clean batch is only metrics)."""
        return bool(self.failed_message_ids or self.rejected or self.uncertain or self.retries or self.duplicates
                    or self.held_elsewhere or self.too_old or self.possibly_resent or self.uncertain_sends
                    or self.claim_errors or self.record_failures)


class _GiveUp(Exception):
    """Stop trying these events in this invocation; SQS brings them back. ``not_before``: when
    the ad account may be sent to again (a 429's Retry-After)."""

    def __init__(self, reason: str, not_before: float = 0.0) -> None:
        super().__init__(reason)
        self.not_before = not_before


@dataclass(slots=True)
class _Chunk:
    """Events of one ad account on their way to Pinterest, and what their attempts showed."""

    ad_account_id: str
    messages: list[QueuedMessage]
    may_have_arrived: bool = False  # some attempt of this invocation may have reached Pinterest
    marked: set[str] = field(default_factory=set)  # offline events marked sending under this lease
    test: bool = False  # test events: posted with Pinterest's test=true, in requests of their own


def parse_retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds, from either of its forms (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


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
        ledger: DeliveryLedger,
        test_mode: bool,
        max_attempts: int,
        backoff_base_seconds: float,
        backoff_max_seconds: float,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        request_timeout_seconds: float,
        ledger_call_seconds: float,
        dedup_window_seconds: int,
        offline_dedup_window_seconds: int,
    ) -> None:
        self.api = api
        self.ledger = ledger
        self.test_mode = test_mode
        self.max_attempts = max_attempts
        self.backoff_base_seconds = backoff_base_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self.clock = clock
        self.sleep = sleep
        self.request_timeout_seconds = request_timeout_seconds
        # what must still fit after a request is started: recording its outcome (one ledger call's
        # worst case; the writes of one request run in parallel) and answering SQS
        self.after_request_seconds = ledger_call_seconds + 2.0
        self.ledger_call_seconds = ledger_call_seconds
        self.dedup_window_seconds = dedup_window_seconds
        self.offline_dedup_window_seconds = offline_dedup_window_seconds
        self._claim_id = ""

    # -- the batch -------------------------------------------------------------------------
    def deliver(self, messages: list[QueuedMessage], time_left: Deadline, claim_id: str | None = None) -> SendReport:
        """Deliver one SQS batch. ``claim_id`` names this invocation in the ledger (new by default):
        the service serves one invocation at a time, as a Lambda container does."""
        report = SendReport()
        if not messages:
            return report
        self._claim_id = claim_id or uuid.uuid4().hex
        now = int(self.clock())
        by_key: dict[str, QueuedMessage] = {}
        copies: dict[str, list[str]] = defaultdict(list)  # other message ids of the same event in this batch
        for message in messages:
            event = message.event
            if now - int(event.event.get("event_time", now)) >= MAX_EVENT_AGE_SECONDS:
                report.too_old += 1
                logger.warning("event over 7 days old dropped: Pinterest refuses it", extra={"key": event.dedup_key})
                continue
            if event.dedup_key in by_key:
                copies[event.dedup_key].append(message.message_id)
                report.duplicates += 1
                self._count(report, message, "EventsDuplicate")
                continue
            by_key[event.dedup_key] = message

        def give_back(keys: list[str]) -> None:  # return to SQS with their copies
            for key in keys:
                report.failed_message_ids.append(by_key[key].message_id)
                report.failed_message_ids.extend(copies.pop(key, []))

        if time_left() < self.ledger_call_seconds + self.request_timeout_seconds + self.after_request_seconds:
            give_back(list(by_key))
            return report
        lease_until = now + math.ceil(time_left()) + LEASE_MARGIN_SECONDS
        requests = [self._claim_request(message, now, lease_until) for message in by_key.values()]
        to_send: dict[tuple[str, bool], list[QueuedMessage]] = defaultdict(list)  # (ad account, test) -> messages
        uncertain: list[Outcome] = []
        for result in self.ledger.claim(requests, self._claim_id, now, time_left):
            message = by_key[result.key]
            if result.error:
                report.claim_errors += 1
                give_back([result.key])
            elif not result.won:
                if result.current_state in FINAL_STATES:
                    report.duplicates += 1
                    self._count(report, message, "EventsDuplicate")
                else:  # another invocation holds a live lease: it is delivering the event now
                    report.held_elsewhere += 1
                    give_back([result.key])
            elif result.prior_state == "sending" and message.event.is_offline:
                uncertain.append(Outcome(result.key, "uncertain", now, UNCERTAIN_REASON))
                report.uncertain += 1
                self._count(report, message, "EventsUncertain")
            else:
                if result.prior_state == "sending":
                    report.possibly_resent += 1
                to_send[message.event.ad_account_id, message.event.test].append(message)
        if uncertain:
            report.record_failures += len(self.ledger.record(uncertain, self._claim_id, time_left))
        not_before: dict[str, float] = defaultdict(float)  # a 429's Retry-After holds back the ad account's later requests
        for (ad_account_id, test), account_messages in to_send.items():
            for part in chunks(account_messages):
                chunk = _Chunk(ad_account_id, part, test=test)
                try:
                    not_before[ad_account_id] = self._send(chunk, report, time_left, not_before[ad_account_id])
                except _GiveUp as stop:
                    logger.warning("pinterest unavailable for %d events: %s", len(chunk.messages), stop)
                    not_before[ad_account_id] = stop.not_before
                    self._release(chunk, report, time_left)
                    give_back([m.event.dedup_key for m in chunk.messages])
        return report

    def _claim_request(self, message: QueuedMessage, now: int, lease_until: int) -> ClaimRequest:
        offline = message.event.is_offline
        window = self.offline_dedup_window_seconds if offline else self.dedup_window_seconds
        return ClaimRequest(key=message.event.dedup_key, state="claimed" if offline else "sending",
                            lease_until=lease_until, expires_at=now + window, accepted_at=message.event.accepted_at)

    # -- one chunk -------------------------------------------------------------------------
    def _send(self, chunk: _Chunk, report: SendReport, time_left: Deadline, not_before: float) -> float:
        """Deliver ``chunk`` (splitting it where Pinterest refuses a request as a whole); return
        the time before which this ad account must not be sent to again. Raises _GiveUp with the
        events not delivered left in ``chunk.messages``."""
        attempt = 0
        fresh_token = False
        while True:
            wait = max(0.0, not_before - self.clock())
            # never start a request whose timeout, and the writes after it, would run past the end
            # of the invocation: Lambda would kill it after Pinterest took the events, unrecorded
            if time_left() - wait < self.request_timeout_seconds + self.after_request_seconds:
                raise _GiveUp("no time left in this invocation for another request", not_before)
            if wait:
                self.sleep(wait)
            if fresh_token:  # after a 401/403 the token may have been rotated: read the secret again
                self.api.forget_token(chunk.ad_account_id)
            # the token first: once an offline event is marked sending, only the request may follow
            not_ready = self.api.prepare(chunk.ad_account_id)
            if not_ready:
                raise _GiveUp(not_ready, not_before)
            self._mark_offline_sending(chunk, report, time_left)
            if attempt and chunk.may_have_arrived:  # sent again after a request with no answer
                report.possibly_resent += len(chunk.messages)
            attempt += 1
            answer = self._post(chunk, report)
            statuses = per_event_statuses(answer, len(chunk.messages)) if answer.status in (200, 422) else None
            if statuses is not None:
                self._record_statuses(chunk, statuses, report, time_left)
                return not_before
            if answer.status in SPLIT_STATUSES:
                return self._split(chunk, answer, report, time_left, not_before)
            if answer.status == 200 or (answer.status is None and answer.may_have_arrived):
                # no answer to read, yet Pinterest may have processed the events
                chunk.may_have_arrived = True
                report.uncertain_sends += len(chunk.messages)
                self._settle_offline_uncertain(chunk, report, time_left)
                if not chunk.messages:
                    return not_before
            elif answer.status is not None and answer.status not in RETRYABLE_STATUSES:
                raise _GiveUp(f"unexpected answer {error_text(answer)}", not_before)
            fresh_token = answer.status in (401, 403)
            delay = min(self.backoff_max_seconds, self.backoff_base_seconds * 2 ** (attempt - 1))
            if answer.retry_after is not None:
                delay = max(delay, answer.retry_after)
            not_before = max(not_before, self.clock() + delay)
            if attempt >= self.max_attempts:
                raise _GiveUp(error_text(answer), not_before)
            report.retries += 1
            logger.info("retrying in %.1fs after %s", delay, error_text(answer))

    def _post(self, chunk: _Chunk, report: SendReport) -> HttpAnswer:
        events = [message.event.event for message in chunk.messages]
        report.requests += 1
        report.request_sizes.append(len(events))
        return self.api.post_events(chunk.ad_account_id, events, self.test_mode or chunk.test)

    def _split(self, chunk: _Chunk, answer: HttpAnswer, report: SendReport, time_left: Deadline, not_before: float) -> float:
        """Pinterest refused the request as a whole: halve it until the event it refuses is alone."""
        if len(chunk.messages) == 1:
            message = chunk.messages[0]
            self._record(chunk, [self._outcome(message, "rejected", error_text(answer), report)], report, time_left)
            return not_before
        middle = len(chunk.messages) // 2
        halves = [_Chunk(chunk.ad_account_id, part, chunk.may_have_arrived, chunk.marked, chunk.test)
                  for part in (chunk.messages[:middle], chunk.messages[middle:])]
        for position, half in enumerate(halves):
            try:
                not_before = self._send(half, report, time_left, not_before)
            except _GiveUp as stop:
                # what was delivered stays delivered; the rest of both halves goes back to SQS
                chunk.messages = half.messages + [m for later in halves[position + 1 :] for m in later.messages]
                chunk.may_have_arrived = any(h.may_have_arrived for h in halves)
                raise stop
        return not_before

    # -- ledger writes -----------------------------------------------------------------------
    def _mark_offline_sending(self, chunk: _Chunk, report: SendReport, time_left: Deadline) -> None:
        """``claimed`` -> ``sending`` for the offline events of the chunk, right before the request.
        An event that cannot be marked is not sent now (still ``claimed``: safe to send later)."""
        keys = [m.event.dedup_key for m in chunk.messages if m.event.is_offline and m.event.dedup_key not in chunk.marked]
        if not keys:
            return
        unmarked = set(self.ledger.mark_sending(keys, self._claim_id, int(self.clock()), time_left))
        chunk.marked.update(key for key in keys if key not in unmarked)
        if unmarked:
            if len(unmarked) == len(chunk.messages):
                raise _GiveUp("the delivery ledger is unavailable")
            # not sent now: still "claimed" (safe to send later); give the lease back and return them to SQS
            left_out = _Chunk(chunk.ad_account_id, [m for m in chunk.messages if m.event.dedup_key in unmarked])
            self._release(left_out, report, time_left)
            report.failed_message_ids.extend(m.message_id for m in left_out.messages)
            chunk.messages = [m for m in chunk.messages if m.event.dedup_key not in unmarked]

    def _settle_offline_uncertain(self, chunk: _Chunk, report: SendReport, time_left: Deadline) -> None:
        """A request with no readable answer may have reached Pinterest: its offline events are
        recorded uncertain now and never sent again; the web and app ones are retried."""
        offline = [m for m in chunk.messages if m.event.is_offline]
        if not offline:
            return
        now = int(self.clock())
        outcomes = []
        for message in offline:
            outcomes.append(Outcome(message.event.dedup_key, "uncertain", now, UNCERTAIN_REASON))
            report.uncertain += 1
            self._count(report, message, "EventsUncertain")
        report.record_failures += len(self.ledger.record(outcomes, self._claim_id, time_left))
        chunk.messages = [m for m in chunk.messages if not m.event.is_offline]

    def _record_statuses(self, chunk: _Chunk, statuses: list[dict[str, Any]], report: SendReport, time_left: Deadline) -> None:
        outcomes = []
        for message, status in zip(chunk.messages, statuses, strict=True):
            if status["status"] == "processed":
                outcomes.append(self._outcome(message, "delivered", None, report))
            else:
                outcomes.append(self._outcome(message, "rejected", status.get("error_message") or "failed without a message", report))
        self._record(chunk, outcomes, report, time_left)

    def _record(self, chunk: _Chunk, outcomes: list[Outcome], report: SendReport, time_left: Deadline) -> None:
        """Record one request's outcomes at once, so a later crash does not resend them. If a
        write fails the events are not sent again: Pinterest has them."""
        failed = self.ledger.record(outcomes, self._claim_id, time_left)
        if failed:
            report.record_failures += len(failed)
            logger.error("could not record %d delivery outcomes; Pinterest has them, they are not resent",
                         len(failed), extra={"keys": failed[:20]})
        chunk.messages = []

    def _release(self, chunk: _Chunk, report: SendReport, time_left: Deadline) -> None:
        """Events not delivered in this invocation give their lease back, so the invocation SQS
        hands them to next may take them at once: as ``claimed`` when no attempt may have reached
        Pinterest (sent again without counting a repeat), else as ``sending`` (the next attempt
        counts a possible repeat). If this write fails the lease simply runs out."""
        if not chunk.messages:
            return
        now = int(self.clock())
        state = "sending" if chunk.may_have_arrived else "claimed"
        outcomes = [Outcome(m.event.dedup_key, state, now) for m in chunk.messages]
        if self.ledger.record(outcomes, self._claim_id, time_left):
            logger.warning("could not give back the lease of %d events; they are tried again once it expires", len(outcomes))

    def _outcome(self, message: QueuedMessage, state: str, error: str | None, report: SendReport) -> Outcome:
        event = message.event.event
        if state == "delivered":
            report.delivered += 1
            counts = self._count(report, message, "EventsDelivered")
            for key in match_keys(event.get("user_data") or {}):
                counts[f"MatchKey_{key}"] += 1
        else:
            report.rejected += 1
            self._count(report, message, "EventsRejectedByPinterest")
            report.rejections.append((message.event.dedup_key, error or ""))
        return Outcome(message.event.dedup_key, state, int(self.clock()), error)  # type: ignore[arg-type]

    @staticmethod
    def _count(report: SendReport, message: QueuedMessage, metric: str) -> Counter:
        counts = report.outcomes[message.event.source, str(message.event.event.get("event_name"))]
        counts[metric] += 1
        return counts
