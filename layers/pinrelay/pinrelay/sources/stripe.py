"""Stripe Checkout (and Payment Links, which make Checkout Sessions) webhooks -> Pinterest events.

=============================================  ============================================
Stripe event                                   becomes
=============================================  ============================================
``checkout.session.completed``                 ``checkout`` when ``payment_status`` is
                                               ``paid`` or ``no_payment_required``; an
                                               ``unpaid`` session (a delayed method: bank
                                               debit, voucher) is answered "filtered"
``checkout.session.async_payment_succeeded``   ``checkout`` (the delayed payment arrived)
anything else                                  not forwarded (answered 200, ignored)
=============================================  ============================================

One conversion per session, whatever Stripe delivers: the event_id is made from the session
alone (never from the Stripe event's ``evt_`` id, which differs between ``completed`` and
``async_payment_succeeded``), so a repeated delivery, an event arriving out of order, or both
events of one session are the same event to the sender's ledger. The event_id is

1. the session's ``metadata.pinterest_event_id``, when the shop put the browser's event_id there
   (Checkout Sessions created by the shop's server);
2. else ``client_reference_id``, when ``STRIPE_CLIENT_REFERENCE_ID=event_id`` says the shop puts
   the browser's event_id there (Payment Links take it from ``?client_reference_id=`` in the URL);
3. else the session id (``cs_live_...``), which the success page can read from its URL
   (``{CHECKOUT_SESSION_ID}``) and give the Pinterest tag.

Amounts are integers in the currency's minor unit, as Stripe defines it (``from_minor_units``):
two decimals, except Stripe's zero-decimal currencies (JPY, KRW, ...) and three-decimal ones
(KWD, BHD, ...). value = ``amount_subtotal`` - ``total_details.amount_discount`` (after
discounts, before tax and shipping, like Shopify's and WooCommerce's). Line items are not in the
webhook: with a restricted key (optional), ingest queues a ``LineItemsJob`` (the mapped, hashed
event and the session id) and the line-items fetcher (``pinrelay.stripe_fetch``) reads them
(``GET /v1/checkout/sessions/{id}/line_items``) and adds them with ``add_line_items``; without
one, or when Stripe refuses, the conversion goes without contents.

The shopper's consent: what the shop's server put in the session's metadata when it created it
(``pinrelay_consent_marketing``, ``pinrelay_consent_sale_of_data``: ``yes``/``no``;
``pinrelay_consent_region``; ``pinrelay.consent.metadata_consent``), judged by the merchant's
``CONSENT_POLICY`` like every source's. The session's own ``consent.promotions`` is the customer's
answer to the merchant's promotional e-mails, not to ads measurement, and is not read as one.

``livemode: false`` (a test-mode session): sent with Pinterest's ``test=true`` in a request of its
own, or not at all with ``STRIPE_TEST_SESSIONS=skip``. Plain Python, no AWS, no HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pinrelay.consent import METADATA_KEYS, metadata_consent
from pinrelay.events import EventFiltered, EventRejected, PreparedEvent, check_deliverable
from pinrelay.normalise import UserDataBuilder, address_country
from pinrelay.sources import UNMAPPABLE, Contents, not_understood

SOURCE = "stripe"
EVENT_TYPES = frozenset({"checkout.session.completed", "checkout.session.async_payment_succeeded"})
PAID_STATUSES = frozenset({"paid", "no_payment_required"})
# Stripe's minor units (docs.stripe.com/currencies): amounts are integers of the smallest unit;
# these take none or three decimals, every other currency two (ISK, HUF and TWD included: Stripe
# keeps them two-decimal in the API even where only whole units can be charged)
ZERO_DECIMAL_CURRENCIES = frozenset({"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND",
                                     "VUV", "XAF", "XOF", "XPF"})
THREE_DECIMAL_CURRENCIES = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
EVENT_ID_METADATA_KEY = "pinterest_event_id"
CLICK_ID_METADATA_KEYS = ("epik", "_epik")
MAX_EVENT_ID_CHARS = 200  # Stripe's own limit for client_reference_id
ContentIdField = Literal["product", "price"]


def minor_unit_exponent(currency: str) -> int:
    """How many decimals a Stripe amount in ``currency`` has (0, 2 or 3)."""
    code = currency.upper()
    if code in ZERO_DECIMAL_CURRENCIES:
        return 0
    if code in THREE_DECIMAL_CURRENCIES:
        return 3
    return 2


def from_minor_units(amount: int, currency: str) -> str:
    """A Stripe amount as Pinterest's decimal string: 1999 USD -> ``19.99``, 500 JPY -> ``500``,
    12345 KWD -> ``12.345``. TypeError for a value that is not an integer."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError("a Stripe amount is an integer")
    exponent = minor_unit_exponent(currency)
    return format(Decimal(amount).scaleb(-exponent), "f")


@dataclass(frozen=True)
class StripeOptions:
    """The merchant's settings for Stripe (pinrelay.config: ``STRIPE_*``)."""

    test_sessions: Literal["test", "skip"] = "test"
    client_reference_id: Literal["ignore", "event_id"] = "ignore"
    content_id_field: ContentIdField = "product"
    max_paid_age_seconds: int = 7 * 86_400 + 300  # the sender's dedup window


@dataclass(frozen=True)
class StripeCheckout:
    """A signed Stripe event of a forwarded type: the Checkout Session it carries and when it happened."""

    event_type: str
    session: dict[str, Any]
    created: int  # the Stripe event's creation time: when the payment completed (or arrived)

    @property
    def session_id(self) -> str:
        return str(self.session["id"])


def read_event(payload: Any) -> StripeCheckout | EventRejected | None:
    """The Checkout Session of a ``checkout.session.*`` event pinrelay forwards; None for any other
    event type (answered 200, ignored); EventRejected for a body that is not such an event."""
    if not isinstance(payload, dict) or payload.get("object") != "event":
        return EventRejected("stripe: the body is not a Stripe event")
    event_type = payload.get("type")
    if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
        return None
    data = payload.get("data")
    session = data.get("object") if isinstance(data, dict) else None
    created = payload.get("created")
    if not isinstance(session, dict) or session.get("object") != "checkout.session" or not _text(session.get("id")):
        return EventRejected(f"{event_type}: data.object is not a Checkout Session")
    if _integer(created) is None:
        return EventRejected(f"{event_type}: the event has no created time")
    return StripeCheckout(event_type=event_type, session=session, created=created)


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _currency(value: Any) -> str | None:
    """An ISO 4217 code as Stripe writes it (``usd``), upper case; None for anything else."""
    text = _text(value)
    return text.upper() if text and len(text) == 3 and text.isascii() and text.isalpha() else None


def _metadata(session: dict[str, Any], *keys: str) -> str | None:
    metadata = session.get("metadata")
    if not isinstance(metadata, dict):
        return None
    return next((text for key in keys if (text := _text(metadata.get(key)))), None)


def event_id_of(session: dict[str, Any], options: StripeOptions) -> str:
    """The session's event_id (module docstring): the shop's ``metadata.pinterest_event_id``, else
    its ``client_reference_id`` when configured so, else the session id."""
    for candidate in (_metadata(session, EVENT_ID_METADATA_KEY),
                      _text(session.get("client_reference_id")) if options.client_reference_id == "event_id" else None):
        if candidate and len(candidate) <= MAX_EVENT_ID_CHARS:
            return candidate
    return str(session["id"])


def reason_to_skip(checkout: StripeCheckout, now: int, options: StripeOptions) -> EventFiltered | None:
    """Why this session is not a conversion to send (unpaid, a setup-mode session, a test-mode
    session with ``STRIPE_TEST_SESSIONS=skip``, paid longer ago than the dedup window), or None.
    Decided before anything is read from Stripe's API."""
    session = checkout.session
    event_id = event_id_of(session, options)

    def filtered(code: str, reason: str) -> EventFiltered:
        return EventFiltered(code, reason, event_id=event_id, event_name="checkout")

    if session.get("mode") == "setup":
        return filtered("setup_mode", "a setup-mode session saves a payment method: nothing was bought")
    status = session.get("payment_status")
    if not isinstance(status, str) or status not in PAID_STATUSES:
        shown = status if isinstance(status, str) and status.isidentifier() else "missing"
        return filtered("unpaid", f"payment_status is {shown}: a delayed payment is sent when "
                                  "checkout.session.async_payment_succeeded arrives")
    if session.get("livemode") is False and options.test_sessions == "skip":
        return filtered("test_order", "a test-mode session (STRIPE_TEST_SESSIONS=skip)")
    if checkout.created < now - options.max_paid_age_seconds:
        return filtered("paid_long_ago", "paid longer ago than the dedup window: a late redelivery would count it again")
    return None


def _split_name(name: str | None) -> tuple[str | None, str | None]:
    """``Jenny Rosen`` -> (``Jenny``, ``Rosen``); one word gives nothing (first or last? unknown)."""
    words = (name or "").split()
    return (words[0], words[-1]) if len(words) >= 2 else (None, None)


def _add_address(builder: UserDataBuilder, address: Any, fallback_country: str | None) -> None:
    if not isinstance(address, dict):
        return
    country = address_country(address.get("country")) or fallback_country
    builder.add("ct", address.get("city"))
    builder.add("st", address.get("state"))
    builder.add("zp", address.get("postal_code"), country)
    if address_country(address.get("country")):
        builder.add("country", country)


def _shipping(session: dict[str, Any]) -> dict[str, Any]:
    """The shipping details, wherever this API version keeps them."""
    collected = session.get("collected_information")
    for found in ((collected or {}).get("shipping_details") if isinstance(collected, dict) else None,
                  session.get("shipping_details"), session.get("shipping")):
        if isinstance(found, dict):
            return found
    return {}


def session_user_data(session: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    details = session.get("customer_details") if isinstance(session.get("customer_details"), dict) else {}
    shipping = _shipping(session)
    address = details.get("address") if isinstance(details.get("address"), dict) else {}
    shipping_address = shipping.get("address") if isinstance(shipping.get("address"), dict) else {}
    country = address_country(address.get("country"), shipping_address.get("country"))
    builder = UserDataBuilder()
    builder.add_all("em", (details.get("email"), session.get("customer_email")))
    builder.add("ph", details.get("phone"), country)
    for name in (details.get("name"), details.get("individual_name"), shipping.get("name")):
        first, last = _split_name(name if isinstance(name, str) else None)
        builder.add("fn", first)
        builder.add("ln", last)
    _add_address(builder, address, country)
    _add_address(builder, shipping_address, country)
    customer = session.get("customer")
    customer_id = customer.get("id") if isinstance(customer, dict) else customer
    if _text(customer_id):
        builder.add("external_id", customer_id)
    builder.set_clear("click_id", _metadata(session, *CLICK_ID_METADATA_KEYS))
    return builder.build(), builder.warnings


def _content_id(item: dict[str, Any], field: ContentIdField) -> str | None:
    price = item.get("price") if isinstance(item.get("price"), dict) else {}
    if field == "price":
        return _text(price.get("id"))
    product = price.get("product")
    return _text(product.get("id") if isinstance(product, dict) else product)


def line_item_contents(items: list[dict[str, Any]], currency: str | None, field: ContentIdField) -> dict[str, Any]:
    """``content_ids``, ``contents`` and ``num_items`` from the session's line items (``item``
    objects of ``GET /v1/checkout/sessions/{id}/line_items``)."""
    found = Contents()
    for item in items:
        quantity = _integer(item.get("quantity"))
        quantity = 1 if quantity is None else quantity
        details: dict[str, str] = {}
        price = item.get("price") if isinstance(item.get("price"), dict) else {}
        unit = _integer(price.get("unit_amount"))
        item_currency = _currency(item.get("currency")) or currency
        if unit is not None and item_currency:
            details["item_price"] = from_minor_units(unit, item_currency)
        if _text(item.get("description")):
            details["item_name"] = item["description"].strip()
        found.add(quantity, _content_id(item, field), details)
    return {"num_items": found.num_items, **found.lists()}


def session_custom_data(session: dict[str, Any], line_items: list[dict[str, Any]] | None,
                        field: ContentIdField) -> dict[str, Any]:
    currency = _currency(session.get("currency"))
    custom_data: dict[str, Any] = {"order_id": str(session["id"])}
    subtotal = _integer(session.get("amount_subtotal"))
    totals = session.get("total_details") if isinstance(session.get("total_details"), dict) else {}
    discount = _integer(totals.get("amount_discount") if totals.get("amount_discount") is not None else 0)
    if currency and subtotal is not None and discount is not None:  # an unreadable amount costs the value only
        custom_data["value"] = from_minor_units(subtotal - discount, currency)
    if currency:
        custom_data["currency"] = currency
    if line_items:
        add_line_items(custom_data, line_items, field)
    return custom_data


def add_line_items(custom_data: dict[str, Any], line_items: list[dict[str, Any]], field: ContentIdField) -> None:
    """Put the line items' ``num_items``, ``content_ids`` and ``contents`` in a session's
    ``custom_data`` (its ``currency`` prices the items that name none)."""
    custom_data.update(line_item_contents(line_items, _currency(custom_data.get("currency")), field))


def checkout_event(checkout: StripeCheckout, *, now: int, options: StripeOptions = StripeOptions(),
                   line_items: list[dict[str, Any]] | None = None) -> PreparedEvent:
    """The hashed ``checkout`` event of a paid session (``reason_to_skip`` said it is one); raise
    EventRejected when it cannot be sent (nothing to match on, older than 7 days)."""
    session = checkout.session
    user_data, warnings = session_user_data(session)
    event: dict[str, Any] = {
        "event_name": "checkout",
        "action_source": "web",
        "event_id": event_id_of(session, options),
        "event_time": checkout.created,
        "user_data": user_data,
        "custom_data": session_custom_data(session, line_items, options.content_id_field),
    }
    locale = _text(session.get("locale"))
    if locale and locale[:2].isalpha() and locale[:2].isascii():
        event["language"] = locale[:2].lower()
    consent, consent_warnings = metadata_consent(session.get("metadata"), SOURCE)
    prepared = PreparedEvent(event=event, warnings=warnings + consent_warnings, consent=consent,
                             test=session.get("livemode") is False)
    check_deliverable(prepared, now)
    return prepared


def stripe_event(checkout: StripeCheckout, *, now: int, options: StripeOptions = StripeOptions(),
                 line_items: list[dict[str, Any]] | None = None) -> PreparedEvent | EventRejected:
    """``checkout_event``, with a malformed session answered as an EventRejected, never a 500."""
    try:
        return checkout_event(checkout, now=now, options=options, line_items=line_items)
    except EventRejected as rejected:
        return rejected
    except UNMAPPABLE as exc:
        return not_understood(checkout.event_type, "a Checkout Session", exc)


# -------------------------------------------------------------------------------- line-items jobs
LINE_ITEMS_JOB_VERSION = 1
KeyKind = Literal["deployment", "account_map"]


class LineItemsJob(BaseModel):
    """What ingest queues for the line-items fetcher when the account has a restricted key: the
    session's event as ingest mapped it (normalised and hashed, as the events queue carries it),
    the session to read, and whose key reads it: ``deployment`` (STRIPE_API_KEY_SECRET_NAME) or
    ``account_map`` (the entry of ``ad_account_id`` and ``route_name``), never the key itself.
    ``consent_metadata``: the session's ``pinrelay_consent_*`` values (yes/no and a region code),
    from which the fetcher reads the shopper's choice again for the consent policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = LINE_ITEMS_JOB_VERSION
    session_id: str = Field(min_length=1, max_length=255)
    key: KeyKind
    route_name: str | None = None
    ad_account_id: str = Field(pattern=r"^\d{1,18}$")
    received_at: int
    event: dict[str, Any]
    warnings: list[str] = Field(default_factory=list)
    test: bool = False
    consent_metadata: dict[str, str] = Field(default_factory=dict)

    def prepared(self, line_items: list[dict[str, Any]] | None, field: ContentIdField) -> PreparedEvent:
        """The job's event, with the line items' contents when there are any, ready for ``IngestService.accept``."""
        event = {**self.event, "custom_data": dict(self.event.get("custom_data") or {})}
        if line_items:
            add_line_items(event["custom_data"], line_items, field)
        consent, _ = metadata_consent(self.consent_metadata, SOURCE)  # its warnings are in self.warnings already
        return PreparedEvent(event=event, warnings=list(self.warnings), test=self.test, consent=consent)


def line_items_job_body(checkout: StripeCheckout, event: PreparedEvent, *, key: KeyKind, route_name: str | None,
                        ad_account_id: str, received_at: int) -> str:
    """The SQS message of one line-items job (``LineItemsJob``)."""
    metadata = checkout.session.get("metadata")
    consent = {name: value[:64] for name in METADATA_KEYS.values()
               if isinstance(metadata, dict) and isinstance(value := metadata.get(name), str)}
    job = LineItemsJob(session_id=checkout.session_id, key=key, route_name=route_name, ad_account_id=ad_account_id,
                       received_at=received_at, event=event.event, warnings=event.warnings, test=event.test,
                       consent_metadata=consent)
    return job.model_dump_json()
