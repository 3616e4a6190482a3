"""Interfaces the domain needs from the outside world; adapters implement them.

Kept as Protocols so the domain is tested with in-memory fakes in microseconds and with the
real adapters (DynamoDB, SQS, HTTP) against moto server and a real HTTP server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

# The delivery ledger's states (one DynamoDB item per event, key ``<ad account>#<event_name>#<event_id>``):
#   claimed    a sender holds the event's lease; nothing of it can have reached Pinterest yet
#   sending    a sender holds (or held) the lease and a request with the event may have reached
#              Pinterest; ``first_sent_at`` keeps when the first such request went out
#   delivered  Pinterest processed it                      } final: a later copy of the event is
#   rejected   Pinterest refused it (message kept)         } a duplicate and is dropped
#   uncertain  a request with it may or may not have reached Pinterest, and it is not sent again:
#              an offline event (Pinterest cannot deduplicate those) or a web/app event past
#              the window in which Pinterest drops a repeat (``pinrelay uncertain`` lists them)
#   not_sent   never sent, for a reason decided before any request (``reason``: a short code,
#              ``too_old``, or the code ingest queued the event ``withheld`` with;
#              ``error_message``: the same in words)
LedgerState = Literal["claimed", "sending", "delivered", "rejected", "uncertain", "not_sent"]
FINAL_STATES: frozenset[str] = frozenset({"delivered", "rejected", "uncertain", "not_sent"})

Deadline = Callable[[], float]  # seconds left in the invocation


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    key: str
    state: Literal["claimed", "sending"]  # offline events are claimed first, web and app ones go straight to sending
    lease_until: int  # after this (epoch s) another invocation may take the event over
    expires_at: int  # end of the dedup window (the TTL attribute)
    accepted_at: int
    # web and app events: an item a dead attempt left "sending" is taken over (and the event sent
    # again) only if that attempt's first send came after this (epoch s), inside the window in
    # which Pinterest drops the repeat. None (offline events): never taken over.
    resend_after: int | None = None


@dataclass(frozen=True, slots=True)
class Settlement:
    """A final state written without a claim, in one conditional write: ``not_sent`` (an event
    never to be sent: written only where no attempt can have reached Pinterest and no final state
    is recorded) or ``uncertain`` (an item whose lease lapsed while a request with it may have
    reached Pinterest: written only on such an item)."""

    key: str
    state: Literal["not_sent", "uncertain"]
    reason: str  # a short machine code: too_old, the code an event was withheld with, unanswered...
    message: str  # the same for people (``pinrelay status``)
    at: int
    expires_at: int
    accepted_at: int


@dataclass(frozen=True, slots=True)
class ClaimResult:
    """What one claim (or settlement) found.

    ``won``: this invocation holds the lease (a settlement: wrote its state); ``prior_state`` is
    what the item said before (None: no item, or one whose dedup window had ended). Not won:
    ``current_state`` is the item's state; a final one means a duplicate, ``claimed``/``sending``
    a lease someone else still holds, unless ``lapsed``: the lease has run out on an attempt that
    may have reached Pinterest and this write may not take it over (an offline event, a web event
    past its resend window, a ``not_sent``). ``error``: the write could not be made (AWS
    unavailable, out of time)."""

    key: str
    won: bool
    prior_state: str | None = None
    current_state: str | None = None
    error: str | None = None
    lapsed: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    key: str
    # claimed / sending: give the lease back (the next invocation may take the event at once),
    # saying whether a request with the event may have reached Pinterest
    state: Literal["delivered", "rejected", "uncertain", "claimed", "sending"]
    updated_at: int
    error_message: str | None = None
    reason: str | None = None  # uncertain: a short code (unanswered)


class DeliveryLedger(Protocol):
    """Where each event's delivery is claimed and recorded (DynamoDB). Every write is
    conditional, so a write whose answer was lost can be retried safely and a late writer never
    overwrites a newer claim. No call is started when ``time_left`` could not cover its worst case."""

    def claim(self, requests: list[ClaimRequest], claim_id: str, now: int, time_left: Deadline) -> list[ClaimResult]:
        """Claim each key: won when the key is new, past its dedup window, given back, or held by
        an expired lease on which no attempt may have reached Pinterest (or, for a web or app
        event, one whose first send is after ``resend_after``)."""

    def settle(self, settlements: list[Settlement], claim_id: str, now: int, time_left: Deadline) -> list[ClaimResult]:
        """Write each settlement's final state where its condition holds (see ``Settlement``)."""

    def mark_sending(self, keys: list[str], claim_id: str, now: int, time_left: Deadline) -> list[str]:
        """``claimed`` -> ``sending`` just before a request; return the keys that could NOT be marked."""

    def record(self, outcomes: list[Outcome], claim_id: str, time_left: Deadline) -> list[str]:
        """Write each outcome under this invocation's claim; return the keys whose outcome could not be written."""

    def states(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """The items of ``keys`` (for operators and tests)."""


@dataclass(frozen=True, slots=True)
class QueueRefusal:
    """A message SQS did not take: ``sender_fault`` True means SQS refused that message itself
    (too large, invalid), so sending it again cannot help; False means try again later."""

    position: int
    sender_fault: bool
    reason: str


class EventQueue(Protocol):
    def send(self, bodies: list[str], time_left: Deadline | None = None) -> list[QueueRefusal]:
        """Queue one message per body; return the ones not queued (an empty list: all queued)."""


@dataclass(frozen=True, slots=True)
class ReceivedJob:
    """A message a fetcher took from its job queue itself: its body, the handle that deletes it,
    and ``receive_count``, how many times SQS has handed it out (ApproximateReceiveCount)."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int


class JobQueueUnavailable(RuntimeError):
    """The job queue did not answer a receive or a delete (after the SDK's retries). What was not
    deleted comes back after the visibility timeout."""


class JobQueue(Protocol):
    """A queue of jobs its fetcher drains itself (``adapters.sqs.SqsJobQueue``)."""

    def receive(self, max_jobs: int) -> list[ReceivedJob]:
        """Up to ``max_jobs`` jobs, each now invisible to other receivers for the visibility
        timeout; an empty list when the queue has none. Raises JobQueueUnavailable."""

    def delete(self, jobs: list[ReceivedJob]) -> list[str]:
        """Delete the jobs; return the message ids SQS did not delete. Raises JobQueueUnavailable."""


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """What came back from one Pinterest call; ``status`` is None when no answer came.

    ``may_have_arrived``: with no readable answer, whether the request may still have reached
    Pinterest (a read timeout, a connection dropped after sending, an unreadable 200) or surely
    did not (connection refused, connect timeout)."""

    status: int | None
    body: Any = None  # parsed JSON, or None
    text: str = ""
    retry_after: float | None = None
    transport_error: str | None = None
    may_have_arrived: bool = True


class PinterestApi(Protocol):
    def prepare(self, ad_account_id: str) -> str | None:
        """Get ready to post for this ad account (read its token); None when ready, else why not.
        Called before an offline event is marked sending, so that nothing but the request itself
        stands between the mark and Pinterest."""

    def post_events(self, ad_account_id: str, events: list[dict[str, Any]], test: bool) -> HttpAnswer: ...

    def forget_token(self, ad_account_id: str) -> None:
        """Drop a cached token (after 401/403) so the next request reads the secret again."""


@dataclass(frozen=True, slots=True)
class FetchedOrder:
    """A BigCommerce order as its store's API gave it: the order, its products, its shipping addresses."""

    order: dict[str, Any]
    products: list[dict[str, Any]]
    shipping_addresses: list[dict[str, Any]]


class OrderUnavailable(RuntimeError):
    """A store's API did not give the order now (timeout, 5xx, 429, a refused token): the fetch job
    goes back to its queue. The message names the store and the cause, never the order's data."""


class LineItemsUnavailable(RuntimeError):
    """Stripe gave no usable answer in time (timeout, 429, 5xx) or the key could not be read now:
    the line-items job goes back to its queue and is tried again later."""


class LineItemsRefused(RuntimeError):
    """Stripe refused the request (key, permission, session): asking again would not help, so the
    conversion goes without contents."""


class SessionLineItems(Protocol):
    """A Checkout Session's line items from Stripe's API (``adapters.stripe_api.StripeLineItems``)."""

    def line_items(self, session_id: str, time_left: Deadline) -> list[dict[str, Any]]:
        """Raise LineItemsUnavailable or LineItemsRefused when they cannot be had."""


class StoreOrders(Protocol):
    """One BigCommerce store's orders (adapters.bigcommerce_api). No call is started when
    ``time_left`` could not cover its worst case."""

    def fetch(self, order_id: int, time_left: Deadline) -> FetchedOrder | None:
        """The order with its products and shipping addresses; None when the store has no such
        order (404). Raises OrderUnavailable."""
