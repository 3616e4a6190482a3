"""Sender: claim each queued event, deliver it to Pinterest in requests of up to 1000, record
what Pinterest said. No AWS imports.

Every event of a batch ends the invocation with one ``Fate`` (delivered, rejected, duplicate,
uncertain, not sent, held elsewhere, claim failed, given back), returned by the step that decided
it as an ``EventFate``; the batch response, the metrics and the log line are all read from that
one table (``SendReport``).

Per SQS batch:
1. One message per event: a copy of an event in the same batch shares its fate.
2. An event ingest queued ``withheld`` (the shopper's consent keeps it from Pinterest), or whose
   ``event_time`` passed Pinterest's 7 days while it waited, is recorded ``not_sent`` with its
   reason in one conditional write (never over a final state, a live lease, or an attempt that
   may have reached Pinterest) and never posted.
3. Every other event is claimed in the delivery ledger (a conditional write with a lease that
   outlasts this invocation). The claim is what makes delivery exactly-once as Pinterest counts
   it: SQS delivers at least once (a copy may come again with receive count 1, even to two
   invocations at the same time), an ambiguous SendMessageBatch at ingest queues two messages, a
   client's retry queues another. A claim that finds a final state drops the message (a
   duplicate); one that finds a live lease of another invocation returns it to SQS.
4. Web and app events are claimed straight as ``sending`` (the claim keeps the first send's time);
   offline events as ``claimed``, and marked ``sending`` right before each request. A lease that
   ran out on an attempt that may have reached Pinterest is taken over only by a web or app event
   whose first send is inside ``WEB_RESEND_WINDOW_SECONDS`` (Pinterest drops the repeat; counted
   in ``EventsPossiblyResent``); otherwise (every offline event, an older web one) the event is
   recorded ``uncertain`` in one conditional write and never sent again.
5. Post per ad account, <= 1000 events a request, and read what the answer says about the events
   (``judge_answer``): per-event statuses (processed -> delivered, failed -> rejected with
   Pinterest's message); refused as a whole (400, 413: split in halves until the event Pinterest
   refuses is alone); not processed (429, 401/403, 503 with Pinterest's own error body, no
   connection: retried with backoff, 429's ``Retry-After`` also holding back the ad account's
   later requests, 401/403 reading the token again first); unknown (500, 502, 504, 408, other
   5xx, a 422 without per-event details, an unreadable 200, no answer: Pinterest may have
   processed them, so offline events are recorded ``uncertain`` and web ones retried as in 4).
6. No step is started unless it and everything that must follow it end inside the invocation:
   the token read, the mark, the request (whose client enforces a total deadline) and the writes
   after it. Outcomes are written right after each request, conditional on the claim. Events not
   delivered give their lease back (``sending`` if an attempt may have reached Pinterest, else
   ``claimed``) and return to SQS; after maxReceiveCount receives SQS moves them to the DLQ.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from pinrelay.models import QueuedEvent
from pinrelay.ports import (
    FINAL_STATES,
    ClaimRequest,
    ClaimResult,
    Deadline,
    DeliveryLedger,
    HttpAnswer,
    Outcome,
    PinterestApi,
    Settlement,
)
from pinrelay.privacy import match_keys
from pinrelay.windows import WEB_RESEND_WINDOW_SECONDS, too_old

MAX_EVENTS_PER_REQUEST = 1000
LEASE_MARGIN_SECONDS = 30  # a lease outlasts the invocation by this much (clock skew between hosts)
# after these Pinterest has not processed the request; trying it again may help
NOT_PROCESSED_STATUSES = frozenset({401, 403, 404, 409, 425, 429})
SPLIT_STATUSES = frozenset({400, 413})  # the request as a whole was refused: find the event that causes it

TOO_OLD = "too_old"
UNANSWERED = "unanswered"
UNANSWERED_MESSAGE = ("a request with it may have reached Pinterest and its answer was never recorded; offline events "
                      "are never sent twice (Pinterest cannot deduplicate them)")
RESEND_WINDOW_OVER = "resend_window_over"
RESEND_WINDOW_OVER_MESSAGE = (f"a request with it may have reached Pinterest more than {WEB_RESEND_WINDOW_SECONDS // 3600} h "
                              "ago, and Pinterest drops a repeat only for a while after the first: not sent again")
TOO_OLD_MESSAGE = "its event_time was more than 7 days old by the time it left the queue: Pinterest refuses such events"

logger = logging.getLogger(__name__)


# -- what happened to each event ----------------------------------------------------------------


class Fate(StrEnum):
    """What one event came to in one invocation; its value is its name in the log line and the
    console, ``metric`` the metric that counts it, ``returns_to_sqs`` whether its message is a
    batch item failure (SQS hands it out again)."""

    DELIVERED = "delivered"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    UNCERTAIN = "uncertain"
    NOT_SENT = "not_sent"
    HELD_ELSEWHERE = "held_elsewhere"
    CLAIM_FAILED = "claim_failed"
    GIVEN_BACK = "given_back"
    UNRECORDED = "unrecorded"

    @property
    def metric(self) -> str:
        return _FATE_METRICS[self]

    @property
    def returns_to_sqs(self) -> bool:
        return self in _RETURNED


_FATE_METRICS = {
    Fate.DELIVERED: "EventsDelivered",
    Fate.REJECTED: "EventsRejectedByPinterest",
    Fate.DUPLICATE: "EventsDuplicate",  # a copy of an event already delivered, rejected, uncertain or not sent
    Fate.UNCERTAIN: "EventsUncertain",  # may have reached Pinterest, never sent again (`pinrelay uncertain`)
    Fate.NOT_SENT: "EventsNotSent",  # per reason: too_old, or the code ingest withheld it with
    Fate.HELD_ELSEWHERE: "EventsHeldElsewhere",  # another invocation holds its lease: returned to SQS
    Fate.CLAIM_FAILED: "ClaimErrors",  # DynamoDB refused the claim: returned to SQS
    Fate.GIVEN_BACK: "EventsGivenBack",  # Pinterest unavailable, no time left: lease given back, returned to SQS
    # Pinterest answered, the answer could not be written: returned to SQS, so that the next receive
    # settles the item (a web event is sent again inside the resend window, an offline one is uncertain)
    Fate.UNRECORDED: "DeliveryRecordFailures",
}
_RETURNED = frozenset({Fate.HELD_ELSEWHERE, Fate.CLAIM_FAILED, Fate.GIVEN_BACK, Fate.UNRECORDED})


@dataclass(frozen=True, slots=True)
class EventFate:
    """One event's fate in this invocation. ``reason``: rejected: Pinterest's message; not sent and
    uncertain: the short reason code; claim failed and given back: why; unrecorded: the state that
    could not be written. ``copies``: message ids of the same event elsewhere in the batch (they go
    back to SQS with it, or are dropped as duplicates). ``possibly_resent``: a web or app event sent
    again after an attempt whose outcome is unknown."""

    message: QueuedMessage
    fate: Fate
    reason: str | None = None
    copies: tuple[str, ...] = ()
    possibly_resent: bool = False

    @property
    def key(self) -> str:
        return self.message.event.dedup_key


@dataclass(slots=True)
class QueuedMessage:
    message_id: str
    receive_count: int
    event: QueuedEvent


@dataclass(slots=True)
class RequestStats:
    requests: int = 0
    request_sizes: list[int] = field(default_factory=list)
    retries: int = 0
    uncertain_sends: int = 0  # events in requests whose answer did not say whether Pinterest processed them


@dataclass(slots=True)
class SendReport:
    """What one invocation did: one ``EventFate`` per event, and its requests. Everything else is
    read from these: the batch response, the metrics, the log line, the console's table."""

    events: list[EventFate] = field(default_factory=list)
    stats: RequestStats = field(default_factory=RequestStats)

    def message_fates(self) -> list[tuple[str, Fate]]:
        """(message id, fate) for every message of the batch: a copy shares its event's fate when
        that returns it to SQS, else it is a duplicate."""
        out = []
        for event in self.events:
            out.append((event.message.message_id, event.fate))
            copy_fate = event.fate if event.fate.returns_to_sqs else Fate.DUPLICATE
            out.extend((message_id, copy_fate) for message_id in event.copies)
        return out

    @property
    def failed_message_ids(self) -> list[str]:
        """The batch item failures: messages SQS hands out again (an event's copies with it)."""
        return [message_id for event in self.events if event.fate in _RETURNED
                for message_id in (event.message.message_id, *event.copies)]

    def counts(self) -> dict[str, int]:
        """Messages per fate (only fates that occurred), e.g. {"delivered": 998, "duplicate": 2}."""
        counts: Counter[str] = Counter(event.fate.value for event in self.events)
        for event in self.events:
            if event.copies:
                counts[event.fate.value if event.fate in _RETURNED else Fate.DUPLICATE.value] += len(event.copies)
        return dict(counts)

    def count(self, fate: Fate) -> int:
        return self.counts().get(fate.value, 0)

    def not_sent_reasons(self) -> Counter[str]:
        return Counter(event.reason or "unknown" for event in self.events if event.fate is Fate.NOT_SENT)

    @property
    def rejections(self) -> list[tuple[str, str]]:
        """(dedup key, Pinterest's message) of each rejected event."""
        return [(event.key, event.reason or "") for event in self.events if event.fate is Fate.REJECTED]

    @property
    def possibly_resent(self) -> int:
        return sum(event.possibly_resent for event in self.events)

    def outcomes(self) -> dict[tuple[str, str], Counter[str]]:
        """Per (source, event_name): the fate metrics of the messages that ended here (delivered,
        rejected, duplicate, uncertain, not sent), and MatchKey_<key> of the delivered events."""
        groups: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        for event in self.events:
            queued = event.message.event
            counts = groups[queued.source, str(queued.event.get("event_name"))]
            if not event.fate.returns_to_sqs:
                counts[event.fate.metric] += 1
                if event.copies:  # copies of an event that ended here are duplicates
                    counts[Fate.DUPLICATE.metric] += len(event.copies)
            if event.fate is Fate.DELIVERED:
                for key in match_keys(queued.event.get("user_data") or {}):
                    counts[f"MatchKey_{key}"] += 1
        return {group: counts for group, counts in groups.items() if counts}

    def totals(self, unreadable: int = 0) -> dict[str, int]:
        """The totals the alarms read (dimension service only): delivered and rejected always, the
        rest when not zero. ``unreadable``: messages the handler could not parse (returned to SQS).
        Duplicates are counted per source only (``outcomes``), ``EventsNotSent`` per reason
        (``not_sent_reasons``); ``DeliveryRecordFailures`` is the unrecorded fate's."""
        counts = self.counts()
        totals = {Fate.DELIVERED.metric: counts.get(Fate.DELIVERED.value, 0),
                  Fate.REJECTED.metric: counts.get(Fate.REJECTED.value, 0)}
        others = {fate.metric: counts.get(fate.value, 0)
                  for fate in Fate if fate not in (Fate.DELIVERED, Fate.REJECTED, Fate.NOT_SENT, Fate.DUPLICATE)}
        others.update({
            "EventsRetryLater": sum(counts.get(fate.value, 0) for fate in _RETURNED) + unreadable,
            "UnreadableMessages": unreadable,
            "PinterestRequests": self.stats.requests,
            "PinterestRetries": self.stats.retries,
            # web and app events Pinterest may have seen twice (it drops the repeat)
            "EventsPossiblyResent": self.possibly_resent,
            "EventsUncertainSends": self.stats.uncertain_sends,
        })
        totals.update({name: value for name, value in others.items() if value})
        return totals

    @property
    def notable(self) -> bool:
        """Something an operator may want to read about (a clean batch is only metrics)."""
        return bool(set(self.counts()) - {Fate.DELIVERED.value} or self.stats.retries or self.stats.uncertain_sends
                    or self.possibly_resent)

    def log_fields(self) -> dict[str, Any]:
        """The batch's log line: messages per fate, the requests, what went wrong, the rejections."""
        counts = self.counts()
        return {
            "fates": counts,
            "not_sent": dict(self.not_sent_reasons()),
            "requests": self.stats.requests,
            "request_sizes": self.stats.request_sizes,
            "retries": self.stats.retries,
            "failed": sum(counts.get(fate.value, 0) for fate in _RETURNED),
            "possibly_resent": self.possibly_resent,
            "uncertain_sends": self.stats.uncertain_sends,
            "rejections": [{"key": key, "error": error} for key, error in self.rejections[:20]],
            "given_back": sorted({event.reason or "" for event in self.events if event.fate in _RETURNED})[:5],
        }


# -- what an answer says --------------------------------------------------------------------------


class Answer(StrEnum):
    PER_EVENT = "per_event"  # Pinterest said, event by event, processed or failed
    REFUSED_WHOLE = "refused_whole"  # nothing processed: the request as a whole was refused (split it)
    NOT_PROCESSED = "not_processed"  # nothing processed: try again
    UNKNOWN = "unknown"  # Pinterest may have processed any of the events
    UNEXPECTED = "unexpected"  # nothing processed, and trying again now will not help


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


def pinterests_error(body: Any) -> bool:
    """Pinterest's own error body (its ``Error`` schema: an integer code and a message), as
    opposed to a gateway's or a load balancer's page."""
    return isinstance(body, dict) and isinstance(body.get("code"), int) and isinstance(body.get("message"), str)


def judge_answer(answer: HttpAnswer, sent: int) -> tuple[Answer, list[dict[str, Any]] | None]:
    """What ``answer`` says about the ``sent`` events of its request (and their statuses).

    A gateway error is not proof that nothing happened: 500, 502, 504 (and any 5xx but Pinterest's
    own 503 "ramped down"), 408, an unreadable 200, a 422 without per-event details ("not all
    events were processed", which ones unknown) and a request without an answer that may have
    reached Pinterest are unknown, as a lost answer is."""
    status = answer.status
    if status is None:
        return (Answer.UNKNOWN if answer.may_have_arrived else Answer.NOT_PROCESSED), None
    if status in (200, 422):
        statuses = per_event_statuses(answer, sent)
        if statuses is not None:
            return Answer.PER_EVENT, statuses
        return Answer.UNKNOWN, None
    if 200 <= status < 300:
        return Answer.UNKNOWN, None
    if status in SPLIT_STATUSES:
        return Answer.REFUSED_WHOLE, None
    if status in NOT_PROCESSED_STATUSES or (status == 503 and pinterests_error(answer.body)):
        return Answer.NOT_PROCESSED, None
    if status == 408 or status >= 500:
        return Answer.UNKNOWN, None
    return Answer.UNEXPECTED, None


def error_text(answer: HttpAnswer) -> str:
    if answer.transport_error:
        return answer.transport_error
    if isinstance(answer.body, dict) and answer.body.get("message"):
        return f"HTTP {answer.status}: {answer.body['message']}"
    return f"HTTP {answer.status}"


# -- the service -------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class _Pending:
    """A claimed event on its way to Pinterest in this invocation."""

    message: QueuedMessage
    prior_sending: bool = False  # an earlier invocation's request with it may have reached Pinterest
    marked: bool = False  # an offline event marked sending under this claim
    may_have_arrived: bool = False  # a request of this invocation with it may have reached Pinterest
    resent: bool = False  # sent again after an attempt whose outcome is unknown

    @property
    def key(self) -> str:
        return self.message.event.dedup_key

    @property
    def offline(self) -> bool:
        return self.message.event.is_offline


@dataclass(slots=True)
class _Sent:
    """What delivering one chunk came to: its events' fates, when the ad account may be sent to
    again, and whether Pinterest (or time) stopped it, so the rest of a split is not tried."""

    fates: list[EventFate]
    not_before: float
    stopped: bool = False


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
        prepare_seconds: float,
        dedup_window_seconds: int,
        offline_dedup_window_seconds: int,
    ) -> None:
        """``request_timeout_seconds``: the longest a Pinterest call takes, answer included (the
        client's total deadline); ``ledger_call_seconds``: one ledger call's worst case;
        ``prepare_seconds``: ``api.prepare``'s worst case (the token's secret reads)."""
        self.api = api
        self.ledger = ledger
        self.test_mode = test_mode
        self.max_attempts = max_attempts
        self.backoff_base_seconds = backoff_base_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self.clock = clock
        self.sleep = sleep
        self.request_timeout_seconds = request_timeout_seconds
        self.ledger_call_seconds = ledger_call_seconds
        self.prepare_seconds = prepare_seconds
        # what must still fit after a request is started: recording its outcome (one ledger call's
        # worst case; the writes of one request run in parallel) and answering SQS
        self.after_request_seconds = ledger_call_seconds + 2.0
        self.dedup_window_seconds = dedup_window_seconds
        self.offline_dedup_window_seconds = offline_dedup_window_seconds
        self._claim_id = ""

    def _attempt_seconds(self, mark: bool) -> float:
        """The worst case of one attempt from its start: the token, the offline events' mark, the
        request, the writes after it. Once an event is marked nothing but the request may follow,
        so no attempt starts that could not end."""
        return (self.prepare_seconds + (self.ledger_call_seconds if mark else 0.0) + self.request_timeout_seconds
                + self.after_request_seconds)

    # -- the batch -------------------------------------------------------------------------
    def deliver(self, messages: list[QueuedMessage], time_left: Deadline, claim_id: str | None = None) -> SendReport:
        """Deliver one SQS batch. ``claim_id`` names this invocation in the ledger (new by default):
        the service serves one invocation at a time, as a Lambda container does."""
        report = SendReport()
        if not messages:
            return report
        self._claim_id = claim_id or uuid.uuid4().hex
        events: dict[str, QueuedMessage] = {}
        copies: dict[str, list[str]] = defaultdict(list)  # other message ids of the same event in this batch
        for message in messages:
            key = message.event.dedup_key
            if key in events:
                copies[key].append(message.message_id)
            else:
                events[key] = message
        fates = {fate.key: fate for fate in self._decide(list(events.values()), time_left, report.stats)}
        report.events = [replace(fates[key], copies=tuple(copies[key])) if key in copies else fates[key] for key in events]
        return report

    def _decide(self, messages: list[QueuedMessage], time_left: Deadline, stats: RequestStats) -> list[EventFate]:
        now = int(self.clock())
        if time_left() < self.ledger_call_seconds + self._attempt_seconds(any(m.event.is_offline for m in messages)):
            return [EventFate(m, Fate.GIVEN_BACK, "no time left in this invocation") for m in messages]
        fates, pending = self._take(messages, now, time_left)
        groups: dict[tuple[str, bool], list[_Pending]] = defaultdict(list)  # (ad account, test) -> events
        for item in pending:
            groups[item.message.event.ad_account_id, item.message.event.test].append(item)
        not_before: dict[str, float] = defaultdict(float)  # a 429's Retry-After holds back the ad account's later requests
        for (ad_account_id, test), group in groups.items():
            for part in chunks(group):
                sent = self._send(ad_account_id, test, part, time_left, not_before[ad_account_id], stats)
                not_before[ad_account_id] = sent.not_before
                fates += sent.fates
        return fates

    def _take(self, messages: list[QueuedMessage], now: int, time_left: Deadline) -> tuple[list[EventFate], list[_Pending]]:
        """Record ``not_sent`` the events never to be sent, claim the others, settle the lapsed
        attempts ``uncertain``: the fates decided here, and the events this invocation now holds."""
        by_key = {m.event.dedup_key: m for m in messages}
        settlements, requests = [], []
        lease_until = now + math.ceil(time_left()) + LEASE_MARGIN_SECONDS
        for message in messages:
            queued = message.event
            if queued.withheld:
                settlements.append(self._settlement(message, "not_sent", queued.withheld,
                                                    f"withheld before sending ({queued.withheld}): never sent to Pinterest", now))
            elif too_old(int(queued.event.get("event_time", now)), now):
                settlements.append(self._settlement(message, "not_sent", TOO_OLD, TOO_OLD_MESSAGE, now))
            else:
                requests.append(self._claim_request(message, now, lease_until))
        fates: list[EventFate] = []
        pending: list[_Pending] = []
        lapsed: list[QueuedMessage] = []
        taken_over: list[_Pending] = []
        reasons = {settlement.key: settlement.reason for settlement in settlements}
        results = self.ledger.settle(settlements, self._claim_id, now, time_left) if settlements else []
        results += self.ledger.claim(requests, self._claim_id, now, time_left) if requests else []
        for result in results:
            message = by_key[result.key]
            if result.won and result.key in reasons:
                fates.append(EventFate(message, Fate.NOT_SENT, reasons[result.key]))
            elif result.won and message.event.is_offline and result.prior_state == "sending":
                # a ledger never lets an offline claim take over "sending"; should one, the event is
                # still never sent again
                taken_over.append(_Pending(message, prior_sending=True))
            elif result.won:
                pending.append(_Pending(message, prior_sending=result.prior_state == "sending"))
            elif result.lapsed:
                lapsed.append(message)
            else:
                fates.append(self._not_taken(message, result))
        if lapsed:  # an attempt may have reached Pinterest, and this event may not be sent again
            fates += self._settle_lapsed(lapsed, now, time_left)
        return fates + self._record_uncertain(taken_over, time_left), pending

    def _claim_request(self, message: QueuedMessage, now: int, lease_until: int) -> ClaimRequest:
        offline = message.event.is_offline
        window = self.offline_dedup_window_seconds if offline else self.dedup_window_seconds
        return ClaimRequest(key=message.event.dedup_key, state="claimed" if offline else "sending",
                            lease_until=lease_until, expires_at=now + window, accepted_at=message.event.accepted_at,
                            resend_after=None if offline else now - WEB_RESEND_WINDOW_SECONDS)

    def _settlement(self, message: QueuedMessage, state: str, reason: str, text: str, now: int) -> Settlement:
        window = self.offline_dedup_window_seconds if message.event.is_offline else self.dedup_window_seconds
        return Settlement(message.event.dedup_key, state, reason, text, now, now + window,  # type: ignore[arg-type]
                          message.event.accepted_at)

    @staticmethod
    def _not_taken(message: QueuedMessage, result: ClaimResult) -> EventFate:
        """A claim or settlement that did not get the event (and found no lapsed attempt)."""
        if result.error:
            return EventFate(message, Fate.CLAIM_FAILED, result.error)
        if result.current_state in FINAL_STATES:
            return EventFate(message, Fate.DUPLICATE)
        # another invocation holds a live lease: it is delivering the event now
        return EventFate(message, Fate.HELD_ELSEWHERE, "another invocation holds it")

    def _settle_lapsed(self, messages: list[QueuedMessage], now: int, time_left: Deadline) -> list[EventFate]:
        """Items whose lease ran out on an attempt that may have reached Pinterest, which these
        events may not repeat (offline, or web past the resend window): ``uncertain``, in one
        conditional write from the lapsed state."""
        settlements = [self._settlement(m, "uncertain", *((UNANSWERED, UNANSWERED_MESSAGE) if m.event.is_offline
                                                          else (RESEND_WINDOW_OVER, RESEND_WINDOW_OVER_MESSAGE)), now)
                       for m in messages]
        by_key = {m.event.dedup_key: m for m in messages}
        fates = []
        for settlement, result in zip(settlements, self.ledger.settle(settlements, self._claim_id, now, time_left),
                                      strict=True):
            message = by_key[result.key]
            if result.won:
                fates.append(EventFate(message, Fate.UNCERTAIN, settlement.reason))
            elif result.lapsed:  # still lapsed: the write did not happen (it cannot have been taken meanwhile)
                fates.append(EventFate(message, Fate.CLAIM_FAILED, "the uncertain state could not be written"))
            else:
                fates.append(self._not_taken(message, result))
        return fates

    # -- one chunk -------------------------------------------------------------------------
    def _send(self, ad_account_id: str, test: bool, pending: list[_Pending], time_left: Deadline, not_before: float,
              stats: RequestStats) -> _Sent:
        """Deliver the events of one ad account (splitting them where Pinterest refuses a request
        as a whole); every one of them comes back with its fate."""
        fates: list[EventFate] = []
        attempt = 0
        fresh_token = False
        while True:
            wait = max(0.0, not_before - self.clock())
            mark = any(p.offline and not p.marked for p in pending)
            # never start an attempt whose token read, mark, request and the writes after it could
            # run past the end of the invocation: Lambda would kill it mid-way, unrecorded
            if time_left() - wait < self._attempt_seconds(mark):
                return _Sent(fates + self._give_back(pending, "no time left in this invocation", time_left), not_before,
                             stopped=True)
            if wait:
                self.sleep(wait)
            if fresh_token:  # after a 401/403 the token may have been rotated: read the secret again
                self.api.forget_token(ad_account_id)
            # the token first: once an offline event is marked sending, only the request may follow
            not_ready = self.api.prepare(ad_account_id)
            if not_ready:
                return _Sent(fates + self._give_back(pending, not_ready, time_left), not_before, stopped=True)
            if mark:
                unmarked = self._mark(pending, time_left)
                if unmarked:  # not sent now: still "claimed", safe to send later
                    fates += self._give_back(unmarked, "the delivery ledger did not take the mark", time_left)
                    pending = [p for p in pending if p not in unmarked]
                    if not pending:
                        return _Sent(fates, not_before, stopped=True)
                # the marks of many events run in waves: if they took longer than one call, the
                # request may no longer fit; nothing has been sent, so they go back as "claimed"
                if time_left() < self.request_timeout_seconds + self.after_request_seconds:
                    return _Sent(fates + self._give_back(pending, "no time left after the mark", time_left),
                                 not_before, stopped=True)
            for item in pending:
                item.resent = item.resent or item.prior_sending or item.may_have_arrived
            attempt += 1
            answer = self._post(ad_account_id, test, pending, stats)
            kind, statuses = judge_answer(answer, len(pending))
            if kind is Answer.PER_EVENT:
                return _Sent(fates + self._record_statuses(pending, statuses or [], time_left), not_before)
            if kind is Answer.REFUSED_WHOLE:
                return self._split(ad_account_id, test, pending, answer, time_left, not_before, stats, fates)
            if kind is Answer.UNEXPECTED:
                logger.warning("unexpected answer for %d events: %s", len(pending), error_text(answer))
                return _Sent(fates + self._give_back(pending, f"unexpected answer {error_text(answer)}", time_left),
                             not_before, stopped=True)
            if kind is Answer.UNKNOWN:
                # Pinterest may have processed them: offline events are recorded uncertain now and
                # never sent again; web and app ones are retried (Pinterest drops the repeat)
                stats.uncertain_sends += len(pending)
                fates += self._record_uncertain([p for p in pending if p.offline], time_left)
                pending = [p for p in pending if not p.offline]
                for item in pending:
                    item.may_have_arrived = True
                if not pending:
                    return _Sent(fates, not_before)
            fresh_token = answer.status in (401, 403)
            delay = min(self.backoff_max_seconds, self.backoff_base_seconds * 2 ** (attempt - 1))
            if answer.retry_after is not None:
                delay = max(delay, answer.retry_after)
            not_before = max(not_before, self.clock() + delay)
            if attempt >= self.max_attempts:
                logger.warning("pinterest unavailable for %d events: %s", len(pending), error_text(answer))
                return _Sent(fates + self._give_back(pending, error_text(answer), time_left), not_before, stopped=True)
            stats.retries += 1
            logger.info("retrying in %.1fs after %s", delay, error_text(answer))

    def _post(self, ad_account_id: str, test: bool, pending: list[_Pending], stats: RequestStats) -> HttpAnswer:
        events = [item.message.event.event for item in pending]
        stats.requests += 1
        stats.request_sizes.append(len(events))
        return self.api.post_events(ad_account_id, events, self.test_mode or test)

    def _split(self, ad_account_id: str, test: bool, pending: list[_Pending], answer: HttpAnswer, time_left: Deadline,
               not_before: float, stats: RequestStats, fates: list[EventFate]) -> _Sent:
        """Pinterest refused the request as a whole: halve it until the event it refuses is alone."""
        if len(pending) == 1:
            return _Sent(fates + self._record_final(pending, ["rejected"], [error_text(answer)], time_left), not_before)
        middle = len(pending) // 2
        for position, half in enumerate((pending[:middle], pending[middle:])):
            sent = self._send(ad_account_id, test, half, time_left, not_before, stats)
            fates = fates + sent.fates
            not_before = sent.not_before
            if sent.stopped:  # what was delivered stays delivered; the rest goes back to SQS untried
                rest = pending[middle:] if position == 0 else []
                return _Sent(fates + self._give_back(rest, "not tried after the other half stopped", time_left),
                             not_before, stopped=True)
        return _Sent(fates, not_before)

    # -- ledger writes -----------------------------------------------------------------------
    def _mark(self, pending: list[_Pending], time_left: Deadline) -> list[_Pending]:
        """``claimed`` -> ``sending`` for the offline events not marked yet, right before the
        request; return the ones that could not be marked."""
        todo = [p for p in pending if p.offline and not p.marked]
        unmarked = set(self.ledger.mark_sending([p.key for p in todo], self._claim_id, int(self.clock()), time_left))
        for item in todo:
            item.marked = item.key not in unmarked
        return [p for p in todo if not p.marked]

    def _record_statuses(self, pending: list[_Pending], statuses: list[dict[str, Any]], time_left: Deadline) -> list[EventFate]:
        states = ["delivered" if status["status"] == "processed" else "rejected" for status in statuses]
        errors = [None if state == "delivered" else status.get("error_message") or "failed without a message"
                  for state, status in zip(states, statuses, strict=True)]
        return self._record_final(pending, states, errors, time_left)

    def _record_uncertain(self, pending: list[_Pending], time_left: Deadline) -> list[EventFate]:
        return self._record_final(pending, ["uncertain"] * len(pending), [UNANSWERED_MESSAGE] * len(pending), time_left,
                                  reason=UNANSWERED)

    def _record_final(self, pending: list[_Pending], states: list[str], errors: list[str | None], time_left: Deadline,
                      reason: str | None = None) -> list[EventFate]:
        """Record one request's outcomes at once, so a later crash does not resend them. An event
        whose outcome cannot be written (after the ledger's own retries) goes back to SQS
        ``unrecorded``: its item still says ``sending``, and the next receive settles it as any
        lapsed attempt (a web event is sent again inside the resend window, Pinterest dropping the
        repeat; an offline one is recorded uncertain)."""
        if not pending:
            return []
        now = int(self.clock())
        outcomes = [Outcome(item.key, state, now, error, reason)  # type: ignore[arg-type]
                    for item, state, error in zip(pending, states, errors, strict=True)]
        failed = set(self.ledger.record(outcomes, self._claim_id, time_left))
        if failed:
            logger.error("could not record %d delivery outcomes; back to the queue to be settled by the next receive",
                         len(failed), extra={"keys": sorted(failed)[:20]})
        fate_of = {"delivered": Fate.DELIVERED, "rejected": Fate.REJECTED, "uncertain": Fate.UNCERTAIN}
        return [EventFate(item.message, Fate.UNRECORDED if item.key in failed else fate_of[state],
                          state if item.key in failed else error if state == "rejected" else reason,
                          possibly_resent=item.resent and not item.offline)
                for item, state, error in zip(pending, states, errors, strict=True)]

    def _give_back(self, pending: list[_Pending], why: str, time_left: Deadline) -> list[EventFate]:
        """Events not delivered in this invocation give their lease back, so the invocation SQS
        hands them to next may take them at once: as ``sending`` when a request with them may have
        reached Pinterest (in this invocation or an earlier one: the next claim checks the resend
        window), else as ``claimed``. If this write fails the lease simply runs out."""
        if not pending:
            return []
        now = int(self.clock())
        outcomes = [Outcome(item.key, self._given_back_state(item), now) for item in pending]
        if self.ledger.record(outcomes, self._claim_id, time_left):
            logger.warning("could not give back the lease of %d events; they are tried again once it expires", len(outcomes))
        return [EventFate(item.message, Fate.GIVEN_BACK, why, possibly_resent=item.resent and not item.offline)
                for item in pending]

    @staticmethod
    def _given_back_state(item: _Pending) -> str:
        """``sending`` when a request with the event may have reached Pinterest, else ``claimed``."""
        return "sending" if item.may_have_arrived or item.prior_sending else "claimed"
