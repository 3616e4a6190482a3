"""BigCommerce order webhooks -> a fetch job -> the order -> a Pinterest ``checkout`` event.

BigCommerce's webhooks are thin: ``{"scope": "store/order/created", "store_id": "1025646",
"producer": "stores/<store hash>", "data": {"type": "order", "id": 250}, "hash": "...",
"created_at": 1561479335}``. Ingest checks the webhook and queues a **fetch job** naming the store
and the order (``fetch_job_body``: no personal data) on a queue of its own, and answers at once
(BigCommerce blocks a destination for minutes when fewer than 90 % of its deliveries in two
minutes succeed). The fetcher reads the order, its products and its shipping addresses with the
store's API token (``GET /stores/{hash}/v2/orders/{id}``, ``.../products``,
``.../shipping_addresses``) and maps them here (``order_to_event``).

=================================  ==================================================================
scope                              what happens
=================================  ==================================================================
``store/order/created``            a fetch job: BigCommerce also fires it for incomplete orders
``store/order/statusUpdated``      (status 0) and failed or unprocessed payments, so the order is
``store/order/updated``            sent only when the fetch finds it in a paid status
                                   (``BIGCOMMERCE_PAID_STATUS_IDS``, default 2, 3, 8, 9, 10, 11)
anything else                      not forwarded (answered 200, ignored)
=================================  ==================================================================

Once per order whatever arrives: the event_id is made from the store hash and the order id
(``BIGCOMMERCE_EVENT_ID_TEMPLATE``, default ``{store_hash}-{order_id}``: order ids are per store,
so two stores sharing an ad account never collide), so every webhook of one order (created,
statusUpdated, updated, and BigCommerce's redeliveries, which repeat ``hash``) gives the same
event, and the sender's ledger drops the repeats.

value = ``subtotal_ex_tax`` - ``discount_amount`` (after discounts, before tax and shipping, as for
the other platforms), in ``default_currency_code`` (the transactional currency the shopper pays
in). Plain Python, no AWS, no HTTP.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pinrelay.consent import OrderConsent
from pinrelay.events import (
    EventFiltered,
    EventRejected,
    PreparedEvent,
    check_deliverable,
    check_event_id_template,
    event_id_from_template,
)
from pinrelay.normalise import UserDataBuilder, address_country, routable_ip
from pinrelay.sources import UNMAPPABLE, Contents, add_address, decimal_or_none, not_understood

SOURCE = "bigcommerce"
ORDER_SCOPES = frozenset({"store/order/created", "store/order/updated", "store/order/statusUpdated"})
# BigCommerce's order statuses (Orders V2, GET /order_statuses)
STATUS_NAMES = {0: "Incomplete", 1: "Pending", 2: "Shipped", 3: "Partially Shipped", 4: "Refunded", 5: "Cancelled",
                6: "Declined", 7: "Awaiting Payment", 8: "Awaiting Pickup", 9: "Awaiting Shipment", 10: "Completed",
                11: "Awaiting Fulfillment", 12: "Manual Verification Required", 13: "Disputed", 14: "Partially Refunded"}
# paid: shipped or partially shipped, awaiting pickup / shipment / fulfillment, completed
DEFAULT_PAID_STATUS_IDS = (2, 3, 8, 9, 10, 11)
EVENT_ID_FIELDS = ("store_hash", "order_id")
STORE_HASH = re.compile(r"^[A-Za-z0-9]{1,64}$")
MAX_ORDER_ID = 2**53
FETCH_JOB_VERSION = 1
ContentIdField = Literal["product_id", "variant_id", "sku"]


def validate_event_id_template(template: str) -> str:
    """The template, or ValueError naming BIGCOMMERCE_EVENT_ID_TEMPLATE (read by pinrelay.config)."""
    check_event_id_template(template, EVENT_ID_FIELDS, "BIGCOMMERCE_EVENT_ID_TEMPLATE")
    if "{order_id}" not in template:
        raise ValueError("BIGCOMMERCE_EVENT_ID_TEMPLATE: it must name {order_id}, or orders of one store share an event_id")
    return template


def store_hash(value: str) -> str:
    """A store hash as configured and compared (``abc123``: the part after ``/stores/`` of the API path)."""
    text = value.strip()
    if not STORE_HASH.match(text):
        raise ValueError("is not a BigCommerce store hash: write the letters and digits after /stores/ in the "
                         "store's API path, like abc123")
    return text


# -------------------------------------------------------------------------------- the webhook
@dataclass(frozen=True)
class OrderNotice:
    """A signed order webhook: which order of which store changed."""

    scope: str
    store_hash: str
    order_id: int
    webhook_hash: str | None  # BigCommerce repeats it on a redelivery of the same event


def producer_store(payload: Any) -> str | None:
    """The store hash a webhook body names (``"producer": "stores/<hash>"``), or None."""
    producer = payload.get("producer") if isinstance(payload, dict) else None
    if not isinstance(producer, str) or not producer.startswith("stores/"):
        return None
    found = producer.removeprefix("stores/")
    return found if STORE_HASH.match(found) else None


def read_webhook(payload: Any) -> OrderNotice | EventRejected | None:
    """The order a webhook names; None for a scope pinrelay does not forward (answered 200,
    ignored); EventRejected for a body that is not a BigCommerce order webhook."""
    if not isinstance(payload, dict):
        return EventRejected("bigcommerce: the body is not a webhook")
    scope = payload.get("scope")
    if not isinstance(scope, str) or scope not in ORDER_SCOPES:
        return None
    data = payload.get("data")
    order_id = data.get("id") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("type") != "order" or isinstance(order_id, bool) \
            or not isinstance(order_id, int) or not 0 < order_id < MAX_ORDER_ID:
        return EventRejected(f"{scope}: data is not an order with a numeric id")
    store = producer_store(payload)
    if store is None:
        return EventRejected(f"{scope}: producer does not name a store (stores/<store hash>)")
    webhook_hash = payload.get("hash")
    return OrderNotice(scope=scope, store_hash=store, order_id=order_id,
                       webhook_hash=webhook_hash if isinstance(webhook_hash, str) else None)


# -------------------------------------------------------------------------------- the fetch job
class FetchJob(BaseModel):
    """What ingest queues for the fetcher: the order to read and where its event goes. No
    personal data (the order is read by the fetcher, never carried)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = FETCH_JOB_VERSION
    store_hash: str = Field(pattern=STORE_HASH.pattern)
    order_id: int = Field(gt=0, lt=MAX_ORDER_ID)
    scope: str
    ad_account_id: str = Field(pattern=r"^\d{1,18}$")
    received_at: int


def fetch_job_body(notice: OrderNotice, ad_account_id: str, received_at: int) -> str:
    """The SQS message of one fetch job (``FetchJob``)."""
    return json.dumps({"v": FETCH_JOB_VERSION, "store_hash": notice.store_hash, "order_id": notice.order_id,
                       "scope": notice.scope, "ad_account_id": ad_account_id, "received_at": received_at},
                      separators=(",", ":"))


# -------------------------------------------------------------------------------- the order
@dataclass(frozen=True)
class BigCommerceOptions:
    """The merchant's settings for BigCommerce (pinrelay.config: ``BIGCOMMERCE_*``)."""

    event_id_template: str = "{store_hash}-{order_id}"
    content_id_field: ContentIdField = "product_id"
    paid_status_ids: frozenset[int] = frozenset(DEFAULT_PAID_STATUS_IDS)
    skip_order_sources: frozenset[str] = frozenset()  # e.g. "manual": orders typed in the control panel
    max_paid_age_seconds: int = 7 * 86_400 + 300  # the sender's dedup window


def order_time(value: Any) -> int | None:
    """Epoch seconds of an Orders V2 date (RFC 2822: ``Tue, 05 Mar 2019 21:40:11 +0000``)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return int(parsedate_to_datetime(value.strip()).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def event_id_of(order: dict[str, Any], store: str, options: BigCommerceOptions) -> str:
    return event_id_from_template(options.event_id_template, {"store_hash": store, "order_id": str(order["id"])})


def reason_to_skip(order: dict[str, Any], store: str, now: int, options: BigCommerceOptions) -> EventFiltered | None:
    """Why this order is not a conversion to send now, or None: not (or no longer) in a paid
    status, created in the control panel (``BIGCOMMERCE_SKIP_ORDER_SOURCES``), archived or deleted,
    or created longer ago than the dedup window."""
    event_id = event_id_of(order, store, options)

    def filtered(code: str, reason: str) -> EventFiltered:
        return EventFiltered(code, reason, event_id=event_id, event_name="checkout")

    status_id = order.get("status_id")
    if isinstance(status_id, bool) or not isinstance(status_id, int) or status_id not in options.paid_status_ids:
        name = STATUS_NAMES.get(status_id, "unknown") if isinstance(status_id, int) else "missing"
        shown = status_id if isinstance(status_id, int) and not isinstance(status_id, bool) else "?"
        return filtered("unpaid", f"status {shown} ({name}) is not one of BIGCOMMERCE_PAID_STATUS_IDS: "
                                  "it is sent when a webhook finds it paid")
    if order.get("is_deleted") is True:
        return filtered("deleted", "the order was deleted (archived)")
    source = str(order.get("order_source") or "").strip().lower()
    if source and source in options.skip_order_sources:
        return filtered("source_name", f"created by {source} (BIGCOMMERCE_SKIP_ORDER_SOURCES)")
    created = order_time(order.get("date_created"))
    if created is not None and created < now - options.max_paid_age_seconds:
        return filtered("paid_long_ago", "created longer ago than the dedup window: a late status change would "
                                         "count it again")
    return None


def order_user_data(order: dict[str, Any], shipping_addresses: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    billing = order.get("billing_address") if isinstance(order.get("billing_address"), dict) else {}
    shipping = [address for address in shipping_addresses if isinstance(address, dict)]
    country = address_country(billing.get("country_iso2"), *(address.get("country_iso2") for address in shipping))
    builder = UserDataBuilder()
    add_address(builder, billing, country, country_field="country_iso2", zip_field="zip")
    for address in shipping:
        add_address(builder, address, country, country_field="country_iso2", zip_field="zip")
    customer_id = order.get("customer_id")
    if customer_id not in (None, 0, "0", "") and not isinstance(customer_id, bool):
        builder.add("external_id", str(customer_id))
    builder.set_clear("client_ip_address", routable_ip(order.get("ip_address") or order.get("ip_address_v6") or None))
    return builder.build(), builder.warnings


def _content_id(product: dict[str, Any], field: ContentIdField) -> str | None:
    value = product.get(field)
    if value in (None, "", 0, "0") or isinstance(value, bool):
        return None
    return str(value)


def order_custom_data(order: dict[str, Any], products: list[dict[str, Any]], field: ContentIdField) -> dict[str, Any]:
    found = Contents()
    for product in products:
        if not isinstance(product, dict) or product.get("parent_order_product_id"):
            continue  # a bundle's parts: the bundle itself is the line
        quantity = product.get("quantity")
        quantity = quantity if isinstance(quantity, int) and not isinstance(quantity, bool) else 1
        details: dict[str, str] = {}
        price = decimal_or_none(product.get("price_ex_tax"))
        if price is not None:
            details["item_price"] = format(price, "f")
        if isinstance(product.get("name"), str) and product["name"].strip():
            details["item_name"] = product["name"].strip()
        if isinstance(product.get("brand"), str) and product["brand"].strip():
            details["item_brand"] = product["brand"].strip()
        found.add(quantity, _content_id(product, field), details)
    custom_data: dict[str, Any] = {"order_id": str(order["id"])}
    if products:
        custom_data["num_items"] = found.num_items
    subtotal, discount = decimal_or_none(order.get("subtotal_ex_tax")), decimal_or_none(order.get("discount_amount") or "0")
    currency = order.get("default_currency_code") or order.get("currency_code")
    code = currency.strip().upper() if isinstance(currency, str) else ""
    if len(code) == 3 and code.isascii() and code.isalpha():
        custom_data["currency"] = code
        if subtotal is not None and discount is not None:  # an unreadable amount costs the value only
            custom_data["value"] = format(subtotal - discount, "f")
    return custom_data | found.lists()


def order_to_event(order: dict[str, Any], products: list[dict[str, Any]], shipping_addresses: list[dict[str, Any]], *,
                   store: str, now: int, options: BigCommerceOptions = BigCommerceOptions()) -> PreparedEvent:
    """The hashed ``checkout`` event of a fetched order; raise EventFiltered when it is not a
    conversion to send (``reason_to_skip``), EventRejected when it cannot be sent."""
    if not isinstance(order, dict) or isinstance(order.get("id"), bool) or not isinstance(order.get("id"), int):
        raise EventRejected("order: the answer is not a BigCommerce order (no id)")
    skip = reason_to_skip(order, store, now, options)
    if skip:
        raise skip
    user_data, warnings = order_user_data(order, shipping_addresses)
    event: dict[str, Any] = {
        "event_name": "checkout",
        "action_source": "web",
        "event_id": event_id_of(order, store, options),
        "event_time": order_time(order.get("date_created")) or now,
        "user_data": user_data,
        "custom_data": order_custom_data(order, products, options.content_id_field),
    }
    locale = order.get("customer_locale")
    if isinstance(locale, str) and len(locale) >= 2 and locale[:2].isascii() and locale[:2].isalpha():
        event["language"] = locale[:2].lower()
    # BigCommerce keeps the storefront's cookie-consent choice in the browser, not on the order: no
    # recorded choice; the policy judges by the order's countries, and ``channel:<order_source>``
    # (www, manual, external, ...) selects an exception (docs/privacy.md)
    consent = OrderConsent(channel=str(order.get("order_source") or "").strip().lower())
    prepared = PreparedEvent(event=event, warnings=warnings, consent=consent)
    check_deliverable(prepared, now)
    return prepared


def bigcommerce_event(order: Any, products: list[Any], shipping_addresses: list[Any], *, store: str, now: int,
                      options: BigCommerceOptions = BigCommerceOptions()) -> PreparedEvent | EventRejected | EventFiltered:
    """``order_to_event``, with what cannot be sent answered, never raised (a malformed answer included)."""
    try:
        return order_to_event(order, products, shipping_addresses, store=store, now=now, options=options)
    except (EventRejected, EventFiltered) as not_sent:
        return not_sent
    except UNMAPPABLE as exc:
        return not_understood("store/order", "a BigCommerce order", exc)
