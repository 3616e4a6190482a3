"""Every order accounted for: a shop's orders against the delivery ledger and the dead-letter queue.

Each order of the shop is mapped as its ``orders/create`` webhook was (the same mapper, with
the deployment's event_id template, content id field and order policy, at the order's own
creation time), which gives its event_id, hence its ledger key
``<ad account>#checkout#<event_id>`` (``#offline#checkout#`` for a point-of-sale order). When
several shops share the ad account, ingest scoped the event ids of a template that is not unique
across Shopify by the shop (``<shop>/<event_id>``); whether they do is in the account map, which
this code does not read, so both keys are looked up and the one the ledger or the dead-letter
queue knows is the order's. Then it is put in exactly one class (``OrderClass``), the first
that applies:

================  ==========================================================================
delivered         the ledger says ``delivered``
rejected by       the ledger says ``rejected`` (Pinterest's message is kept)
Pinterest
uncertain         the ledger says ``uncertain`` (an order whose request got no answer, not sent again)
not sent          the ledger says ``not_sent`` for another reason than consent (too old by the
                  time it left the queue: the reason is kept)
in the DLQ        a message of the dead-letter queue carries its ledger key
not sent:         the ledger says ``not_sent`` with reason ``consent`` (the sender recorded the
consent           marker ingest queued for an order the consent policy withheld), or the consent
                  policy withholds it (``CONSENT_POLICY``, as ingest applies it): not a loss, the
                  shopper's choice
in flight         the ledger says ``claimed`` / ``sending``: a sender holds it, or gave it back
filtered          not a conversion by the policy (cancelled, voided, a draft or test order...)
rejected at       the mapper refuses it (no identifier Pinterest can match on...): ingest
ingest            answered the webhook 200 with that reason and queued nothing
queued            no ledger item, and created less than 15 minutes ago (the queue-age alarm's
                  threshold): ingest writes nothing to the ledger, the sender does when it takes
                  the event from SQS
missing           none of the above: the webhook never arrived, or arrived and was lost
================  ==========================================================================

A ledger item outranks the mapper: an order delivered and cancelled since is ``delivered``.
Ledger items expire with the dedup window (7 days + 5 minutes, then DynamoDB's TTL sweep): for
older orders "missing" may mean "forgotten", which ``OrderVerdict.detail`` says.

No AWS here: the ledger, the dead-letter queue and the shop are ports (``LedgerReader``,
``DeadLetters``, ``OrderSource``), with adapters in ``pinrelay.adapters``.

Stripe and BigCommerce are reconciled the same way, with their own mapper (``reconcile(mapper=...)``):
a Checkout Session as its ``checkout.session.completed`` was mapped (``map_stripe_session``), a
BigCommerce order as the fetcher maps it, in its current status (``map_bigcommerce_order``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from pinrelay.consent import decide_for_event
from pinrelay.events import EventFiltered, EventRejected, dedup_key, scoped_event_id
from pinrelay.sources import UNMAPPABLE, bigcommerce, not_understood, stripe
from pinrelay.sources.shopify import SHOPIFY_TOPICS, ShopifyOptions, order_action_source, unique_across_shops
from pinrelay.windows import EVENT_LIFETIME_SECONDS, MAX_EVENT_AGE_SECONDS

# the queue-age alarm's threshold (EventsQueueAgeAlarm): an order younger than this without a
# ledger item may still be waiting in SQS
QUEUED_GRACE_SECONDS = 15 * 60
# an order is sent again only while Pinterest still takes it (7 days), with a margin for the trip
BACKFILL_MARGIN_SECONDS = 10 * 60


class OrderClass(StrEnum):
    DELIVERED = "delivered"
    REJECTED_BY_PINTEREST = "rejected_by_pinterest"
    UNCERTAIN = "uncertain"
    NOT_SENT = "not_sent"
    NOT_SENT_CONSENT = "not_sent_consent"
    IN_DEAD_LETTER_QUEUE = "in_dead_letter_queue"
    IN_FLIGHT = "in_flight"
    FILTERED = "filtered"
    REJECTED_AT_INGEST = "rejected_at_ingest"
    QUEUED = "queued"
    MISSING = "missing"

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def metric_name(self) -> str:
        return _METRICS[self]

    @property
    def is_conversion_not_delivered(self) -> bool:
        """A conversion Pinterest does not have (yet): everything but delivered, filtered and
        not sent for consent (the merchant's rules and the shopper's choice, not losses)."""
        return self not in (OrderClass.DELIVERED, OrderClass.FILTERED, OrderClass.NOT_SENT_CONSENT)


_LABELS = {
    OrderClass.DELIVERED: "delivered",
    OrderClass.REJECTED_BY_PINTEREST: "rejected by Pinterest",
    OrderClass.UNCERTAIN: "uncertain",
    OrderClass.NOT_SENT: "not sent",
    OrderClass.NOT_SENT_CONSENT: "not sent: consent",
    OrderClass.IN_DEAD_LETTER_QUEUE: "in the DLQ",
    OrderClass.IN_FLIGHT: "in flight",
    OrderClass.FILTERED: "filtered",
    OrderClass.REJECTED_AT_INGEST: "rejected at ingest",
    OrderClass.QUEUED: "still queued",
    OrderClass.MISSING: "missing",
}
# the metrics of the daily reconcile function (namespace Pinrelay, dimension service)
_METRICS = {
    OrderClass.DELIVERED: "OrdersDelivered",
    OrderClass.REJECTED_BY_PINTEREST: "OrdersRejectedByPinterest",
    OrderClass.UNCERTAIN: "OrdersUncertain",
    OrderClass.NOT_SENT: "OrdersNotSent",
    OrderClass.NOT_SENT_CONSENT: "OrdersNotSentConsent",
    OrderClass.IN_DEAD_LETTER_QUEUE: "OrdersInDeadLetterQueue",
    OrderClass.IN_FLIGHT: "OrdersInFlight",
    OrderClass.FILTERED: "OrdersFiltered",
    OrderClass.REJECTED_AT_INGEST: "OrdersRejectedAtIngest",
    OrderClass.QUEUED: "OrdersQueued",
    OrderClass.MISSING: "OrdersMissing",
}


@dataclass(frozen=True, slots=True)
class ShopOrder:
    """One order of the shop: what identifies it to people (``name``, ``order_id``: never
    personal data) and its webhook body (personal data: mapped and hashed, never shown)."""

    order_id: str
    name: str  # "#1042"
    created_at: int  # epoch seconds
    webhook_body: dict[str, Any] = field(repr=False)
    admin_id: str | None = None  # gid://shopify/Order/<n>: where to read its line items again

    @property
    def day(self) -> date:
        return datetime.fromtimestamp(self.created_at, UTC).date()


@dataclass(frozen=True, slots=True)
class OrderVerdict:
    name: str
    order_id: str
    created_at: int
    order_class: OrderClass
    detail: str = ""  # the reason (filtered, rejected at ingest, not sent) or Pinterest's message
    event_id: str | None = None
    ledger_key: str | None = None

    @property
    def day(self) -> date:
        return datetime.fromtimestamp(self.created_at, UTC).date()


class LedgerReader(Protocol):
    def states(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """The ledger items of ``keys`` that exist (consistent reads), by key."""


class DeadLetters(Protocol):
    def dedup_keys(self) -> set[str]:
        """The ledger keys of the messages in the dead-letter queue (left there)."""


class OrderSource(Protocol):
    def orders(self, since: datetime, until: datetime) -> Iterator[ShopOrder]:
        """The shop's orders created in [since, until), oldest first."""


# --------------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Mapped:
    event_id: str | None
    filtered: str | None = None  # the reason
    rejected: str | None = None  # the reason
    offline: bool = False  # a point-of-sale order: its ledger key is an offline one
    withheld: str | None = None  # the consent policy's reason


def map_as_webhook(order: ShopOrder, rules: ShopifyOptions) -> _Mapped:
    """The ``orders/create`` mapper's verdict on the order at its creation time (when its webhook
    came), and the consent policy's, as ingest decides it."""
    offline = isinstance(order.webhook_body, dict) and order_action_source(order.webhook_body) == "offline"
    try:
        prepared = SHOPIFY_TOPICS["orders/create"](order.webhook_body, order.created_at, rules)
    except EventFiltered as filtered:
        return _Mapped(filtered.event_id, filtered=filtered.reason, offline=offline)
    except EventRejected as rejected:
        return _Mapped(rejected.event_id, rejected=rejected.reason, offline=offline)
    except UNMAPPABLE as exc:
        return _Mapped(None, rejected=not_understood("orders/create", "a Shopify payload", exc).reason)
    decision = decide_for_event(rules.consent, prepared.event, prepared.consent, "shopify")
    return _Mapped(prepared.event_id, offline=prepared.offline, withheld=None if decision.send else decision.reason)


def ledger_keys(ad_account_id: str, shop: str, mapped: _Mapped, rules: ShopifyOptions) -> list[str]:
    """Where the order's ledger item may be: its key, and, for an event_id template that is not
    unique across Shopify, the key of its id scoped by the shop (several shops on the ad account)."""
    if not mapped.event_id:
        return []
    ids = [mapped.event_id]
    if not unique_across_shops(rules.event_id_template):
        ids.insert(0, scoped_event_id(shop, mapped.event_id))
    return [dedup_key(ad_account_id, "checkout", event_id, mapped.offline) for event_id in ids]


def map_stripe_session(order: ShopOrder, options: stripe.StripeOptions) -> _Mapped:
    """A Checkout Session (``webhook_body``) as its ``checkout.session.completed`` was mapped, at its
    creation time; its line items are not needed for the verdict."""
    checkout = stripe.StripeCheckout("checkout.session.completed", order.webhook_body, order.created_at)
    try:
        skip = stripe.reason_to_skip(checkout, order.created_at, options)
        if skip is not None:
            return _Mapped(skip.event_id, filtered=skip.reason)
        prepared = stripe.stripe_event(checkout, now=order.created_at, options=options)
    except UNMAPPABLE as exc:
        return _Mapped(None, rejected=not_understood("checkout.session.completed", "a Checkout Session", exc).reason)
    if isinstance(prepared, EventRejected):
        return _Mapped(prepared.event_id, rejected=prepared.reason)
    return _Mapped(prepared.event_id)


def map_bigcommerce_order(order: ShopOrder, store: str, options: bigcommerce.BigCommerceOptions) -> _Mapped:
    """A BigCommerce order (``webhook_body``: the Orders V2 order) as the fetcher maps it, in the
    status it has now, at its creation time (a paid order of last week is not "too old")."""
    found = bigcommerce.bigcommerce_event(order.webhook_body, [], [], store=store, now=order.created_at, options=options)
    if isinstance(found, EventFiltered):
        return _Mapped(found.event_id, filtered=found.reason)
    if isinstance(found, EventRejected):
        return _Mapped(found.event_id, rejected=found.reason)
    return _Mapped(found.event_id)


def classify(order: ShopOrder, mapped: _Mapped, ledger_item: dict[str, Any] | None, in_dead_letter_queue: bool,
             now: int, ledger_key: str | None = None) -> OrderVerdict:
    def verdict(order_class: OrderClass, detail: str = "") -> OrderVerdict:
        return OrderVerdict(order.name, order.order_id, order.created_at, order_class, detail, mapped.event_id,
                            ledger_key)

    item = ledger_item or {}
    state = item.get("state")
    if state == "delivered":
        return verdict(OrderClass.DELIVERED)
    if state == "rejected":
        return verdict(OrderClass.REJECTED_BY_PINTEREST, str(item.get("error_message") or ""))
    if state == "uncertain":
        return verdict(OrderClass.UNCERTAIN, "recorded uncertain: check it in Events Manager (pinrelay uncertain)")
    if state == "not_sent" and item.get("reason") == "consent":
        return verdict(OrderClass.NOT_SENT_CONSENT, mapped.withheld or "recorded not sent in the ledger: consent")
    if state == "not_sent":
        return verdict(OrderClass.NOT_SENT, str(item.get("error_message") or item.get("reason") or ""))
    if in_dead_letter_queue:
        return verdict(OrderClass.IN_DEAD_LETTER_QUEUE, "pinrelay redrive --dry-run, then pinrelay redrive")
    if state is not None:  # claimed, sending (or an item of the older design, "queued")
        return verdict(OrderClass.IN_FLIGHT, f"ledger state {state}")
    if mapped.filtered is not None:
        return verdict(OrderClass.FILTERED, mapped.filtered)
    if mapped.rejected is not None:
        return verdict(OrderClass.REJECTED_AT_INGEST, mapped.rejected)
    if mapped.withheld is not None:
        return verdict(OrderClass.NOT_SENT_CONSENT, mapped.withheld)
    if now - order.created_at < QUEUED_GRACE_SECONDS:
        return verdict(OrderClass.QUEUED, "created less than 15 minutes ago: may still be in the events queue")
    if now - order.created_at > EVENT_LIFETIME_SECONDS:
        return verdict(OrderClass.MISSING, "older than the ledger remembers (7 days + 5 minutes): may have been "
                                           "delivered; too old to send again")
    if not backfillable(order.created_at, now):
        return verdict(OrderClass.MISSING, "too old to send again (Pinterest takes events up to 7 days old)")
    return verdict(OrderClass.MISSING)


def backfillable(created_at: int, now: int) -> bool:
    """Whether Pinterest would still take the order's event when sent now."""
    return now - created_at <= MAX_EVENT_AGE_SECONDS - BACKFILL_MARGIN_SECONDS


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ReconcileReport:
    shop: str
    since: datetime
    until: datetime
    generated_at: int
    ad_account_id: str
    verdicts: list[OrderVerdict] = field(default_factory=list)
    orders: dict[str, ShopOrder] = field(default_factory=dict, repr=False)  # by order id, for --backfill
    dead_letter_messages: int = 0

    def days(self) -> list[date]:
        """Every UTC day of [since, until), even one without orders."""
        first, last = self.since.astimezone(UTC).date(), (self.until.astimezone(UTC) - timedelta(microseconds=1)).date()
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]

    def counts_by_day(self) -> dict[date, Counter[OrderClass]]:
        counts: dict[date, Counter[OrderClass]] = {day: Counter() for day in self.days()}
        for verdict in self.verdicts:
            counts.setdefault(verdict.day, Counter())[verdict.order_class] += 1
        return dict(sorted(counts.items()))

    def totals(self) -> Counter[OrderClass]:
        return Counter(verdict.order_class for verdict in self.verdicts)

    def of_class(self, *classes: OrderClass) -> list[OrderVerdict]:
        return [verdict for verdict in self.verdicts if verdict.order_class in classes]

    def to_backfill(self, now: int) -> list[ShopOrder]:
        """The missing orders Pinterest would still take, oldest first."""
        return [self.orders[v.order_id] for v in self.of_class(OrderClass.MISSING)
                if v.order_id in self.orders and backfillable(v.created_at, now)]


def reconcile(
    source: OrderSource,
    ledger: LedgerReader,
    dead_letters: DeadLetters,
    *,
    shop: str,
    since: datetime,
    until: datetime,
    ad_account_id: str,
    rules: ShopifyOptions = ShopifyOptions(),
    clock: Callable[[], float],
    batch_size: int = 100,
    mapper: Callable[[ShopOrder], _Mapped] | None = None,
) -> ReconcileReport:
    """Read the shop's orders of [since, until), look each up (100 keys per ledger read), and
    classify them. The dead-letter queue is read once, after the orders, so that an event moved
    there while the orders were read is seen. ``mapper``: how an order becomes its verdict
    (default: a Shopify order, with ``rules``, looked up under its shop-scoped key too)."""
    mapped_orders: list[tuple[ShopOrder, _Mapped, list[str]]] = []
    for order in source.orders(since, until):
        if mapper is None:
            mapped = map_as_webhook(order, rules)
            candidates = ledger_keys(ad_account_id, shop, mapped, rules)
        else:
            mapped = mapper(order)
            candidates = [dedup_key(ad_account_id, "checkout", mapped.event_id, mapped.offline)] if mapped.event_id else []
        mapped_orders.append((order, mapped, candidates))
    keys = sorted({key for _, _, candidates in mapped_orders for key in candidates})
    items: dict[str, dict[str, Any]] = {}
    for start in range(0, len(keys), batch_size):
        items.update(ledger.states(keys[start : start + batch_size]))
    in_dead_letter_queue = dead_letters.dedup_keys()
    now = int(clock())
    report = ReconcileReport(shop=shop, since=since, until=until, generated_at=now, ad_account_id=ad_account_id,
                             dead_letter_messages=len(in_dead_letter_queue))
    for order, mapped, candidates in mapped_orders:
        known = [key for key in candidates if key in items or key in in_dead_letter_queue]
        key = known[0] if known else (candidates[-1] if candidates else None)  # unknown: the unscoped key
        report.verdicts.append(classify(order, mapped, items.get(key) if key else None,
                                        key in in_dead_letter_queue if key else False, now, key))
        report.orders[order.order_id] = order
    return report
