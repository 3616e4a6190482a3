"""``pinrelay verify``: the synthetic test event, and what Pinterest's answer or the delivery
ledger says about it. No AWS imports (the command in cli/pinrelay_cli/verify.py does the calls).

The event is a ``page_visit`` from the web, not a ``checkout``. It is always sent with Pinterest's
``test=true`` (nothing is recorded), yet should that flag ever be lost on the way (a deployed
ingest older than ``POST /events?test=true``, a proxy dropping the query), a page visit without a
value is harmless, whereas a checkout would count as a sale with revenue in the ad account's
reports and feed the bidding. It still takes the path every event takes: it is validated and its
e-mail normalised and hashed by ingest's own code, claimed in the ledger and posted by the sender.

Its only user data is ``em``, SHA-256 of a fixed address of the reserved ``example.com`` domain:
no one's personal data, and enough for Pinterest to accept the event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pinrelay.events import dedup_key, prepare_api_event
from pinrelay.pinterest_refusals import pinterest_message, refusal
from pinrelay.ports import HttpAnswer
from pinrelay.sender import per_event_statuses
from pinrelay.timestamps import utc_text

VERIFY_EMAIL = "pinrelay-verify@example.com"
VERIFY_EVENT_NAME = "page_visit"
EVENT_ID_PREFIX = "pinrelay-verify-"
FOLLOW_UP = "check the queue age alarm, the DLQ (`pinrelay redrive --dry-run`) and the sender's logs"


def new_event_id() -> str:
    """``pinrelay-verify-<uuid>``: a new id each run, so the ledger never takes it for a copy."""
    return EVENT_ID_PREFIX + uuid.uuid4().hex


def synthetic_event(now: int, event_id: str) -> dict[str, Any]:
    """The test event as Pinterest receives it: built by ingest's own validation and hashing
    (``prepare_api_event``), so ``em`` is the SHA-256 of the normalised test address."""
    raw = {
        "event_name": VERIFY_EVENT_NAME,
        "action_source": "web",
        "event_time": now,
        "event_id": event_id,
        "user_data": {"em": [VERIFY_EMAIL]},
    }
    return prepare_api_event(raw, now).event


def ledger_key(ad_account_id: str, event_id: str) -> str:
    """The event's item in the delivery ledger: ``<ad account>#page_visit#<event_id>``."""
    return dedup_key(ad_account_id, VERIFY_EVENT_NAME, event_id)


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    reason: str  # one line
    temporary: bool = False  # trying again later may give another answer


def judge_pinterest_answer(answer: HttpAnswer, ad_account_id: str) -> Verdict:
    """Pinterest's answer to ``POST /ad_accounts/{id}/events?test=true`` with the one test event."""
    if answer.status in (200, 422):
        statuses = per_event_statuses(answer, 1)
        if statuses is None:
            if answer.status == 422:
                return Verdict(False, f"Pinterest refused the event (422: {pinterest_message(answer.body, answer.text)})")
            return Verdict(False, "Pinterest answered 200 but its answer could not be read", temporary=True)
        status = statuses[0]
        if status.get("status") == "processed":
            return Verdict(True, "Pinterest processed the test event (test=true: it is not recorded)")
        error = " ".join(str(status.get("error_message") or "failed without a message").split())
        return Verdict(False, f"Pinterest refused the event ({answer.status}): {error}")
    problem = refusal(answer.status, answer.body, text=answer.text, ad_account_id=ad_account_id,
                      token_label="the conversion token", retry_after=answer.retry_after,
                      transport_error=answer.transport_error,
                      forbidden_hint=": the token belongs to another ad account, or its user lost access to this one")
    return Verdict(False, problem.reason, problem.temporary)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """What the delivery ledger holds for an event (None: no item). Times are epoch seconds."""

    state: str
    attempts: int = 0
    error_message: str | None = None
    updated_at: int | None = None
    lease_until: int | None = None  # while a sender holds the event
    expires_at: int | None = None  # the end of its dedup window
    reason: str | None = None  # not_sent, uncertain: the short code (too_old, ...)


FINAL_LINES = {
    "delivered": "delivered (Pinterest processed it)",
    "uncertain": "uncertain: a request with it got no answer, and it is not sent again (`pinrelay uncertain`)",
}


def claimed_line(entry: LedgerEntry) -> str:
    """The sender has the event (its item exists): said once, whatever state it is first seen in."""
    if entry.state not in ("claimed", "sending"):
        return "queued → claimed by the sender"
    attempt = f", attempt {entry.attempts}" if entry.attempts > 1 else ""
    return f"queued → claimed by the sender (state {entry.state}{attempt})"


def final_line(entry: LedgerEntry) -> str | None:
    """The last line of a run for a final state; None while the sender is still on it."""
    if entry.state == "rejected":
        return "rejected: " + " ".join((entry.error_message or "without a message").split())
    if entry.state == "not_sent":
        return not_sent_line(entry)
    return FINAL_LINES.get(entry.state)


def not_sent_line(entry: LedgerEntry) -> str:
    """``not sent: <why>`` for any reason the sender recorded (too_old, or a code ingest withheld the
    event with): its message when it has one, else its code."""
    why = " ".join((entry.error_message or "").split()) or (entry.reason or "no reason recorded")
    return f"not sent: {why}"


def not_delivered_line(timeout_seconds: float, entry: LedgerEntry | None, ad_account_id: str = "") -> str:
    if entry is None:
        where = "no sender has claimed it yet"
        if ad_account_id:
            where += f"; if the API key sends to another ad account than {ad_account_id}, give it with --ad-account"
    else:
        attempts = f", {entry.attempts} attempt(s)" if entry.attempts else ""
        where = f"the sender took it (state {entry.state}{attempts}) but has recorded no answer from Pinterest"
    return f"not delivered within {timeout_seconds:g} s ({where}): {FOLLOW_UP}"


# --------------------------------------------------------------------------------------------
# ``pinrelay status``: one event's fate, from its ledger item and the dead-letter queue
# --------------------------------------------------------------------------------------------
NOT_CLAIMED = ("not in the delivery ledger: no sender has claimed it. It may still wait in the queue (EventsQueueAgeAlarm; "
               "a Stripe session with line items first waits up to a minute in the line-items queue), "
               "ingest may have refused or filtered it (its answer gave the reason; neither is stored), it may have gone "
               "to another ad account or under another event_name, or its record ended with its dedup window")


def status_line(entry: LedgerEntry | None, *, in_dead_letters: bool, now: int,
                in_fetch_dead_letters: bool = False, in_line_items_dead_letters: bool = False) -> tuple[bool, str]:
    """(delivered, one line saying where the event is and what to do) for ``pinrelay status``;
    ``in_fetch_dead_letters``: a BigCommerce order whose fetch job is in the fetch DLQ;
    ``in_line_items_dead_letters``: a Stripe session whose line-items job is in the line-items DLQ."""
    if entry is None:
        if in_line_items_dead_letters:
            return False, ("its Stripe line-items job is in the line-items dead-letter queue: the events queue did "
                           "not take its event, or the job could not be read (see the line-items fetcher's log); "
                           "redrive StripeLineItemsDeadLetterQueue to StripeLineItemsQueue once it is fixed")
        if in_fetch_dead_letters:
            return False, ("its BigCommerce fetch job is in the fetch dead-letter queue: the store's API did not "
                           "answer or refused the token (see the fetcher's log); redrive "
                           "BigCommerceFetchDeadLetterQueue to BigCommerceFetchQueue once it is fixed")
        if in_dead_letters:
            return False, ("in the dead-letter queue, never claimed: `pinrelay redrive` puts it back "
                           "(the sender claims each event first, so nothing is sent twice)")
        return False, NOT_CLAIMED
    at = f" on {utc_text(entry.updated_at)}" if entry.updated_at else ""
    tries = f" after {entry.attempts} attempt(s)" if entry.attempts > 1 else ""
    ended = (f" (its dedup window ended {utc_text(entry.expires_at)}: a copy sent now is sent again)"
             if entry.expires_at and entry.expires_at <= now else "")
    if entry.state == "delivered":
        return True, f"delivered: Pinterest processed it{at}{tries}{ended}"
    if entry.state == "rejected":
        message = " ".join((entry.error_message or "without a message").split())
        return False, f"rejected by Pinterest{at}{tries}: {message}{ended}"
    if entry.state == "uncertain":
        return False, (f"uncertain{at}: a request with it got no answer and it is never sent again; check Pinterest, "
                       f"then `pinrelay uncertain --release` if Pinterest does not have it{ended}")
    if entry.state == "not_sent":
        return False, f"{not_sent_line(entry)}{at}{ended}"
    if entry.state in ("claimed", "sending"):
        if entry.lease_until and entry.lease_until > now:
            return False, f"being sent: a sender holds it until {utc_text(entry.lease_until)} (attempt {entry.attempts or 1})"
        where = ("in the dead-letter queue: `pinrelay redrive` puts it back" if in_dead_letters
                 else "back in the queue for another try")
        return False, f"not delivered yet, {where} ({entry.attempts} attempt(s) so far, the last{at})"
    return False, f"state {entry.state}{at}"
