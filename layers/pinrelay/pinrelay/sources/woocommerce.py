"""WooCommerce webhooks -> Pinterest events.

``order.created`` and ``order.updated`` become one ``checkout`` event once the order is paid:

* paid: the status is ``processing`` or ``completed``, or ``date_paid`` is set and the status is
  not one that undoes or precedes payment (pending, failed, cancelled, refunded, draft, trash).
  An unpaid order (e.g. ``on-hold`` bank transfer, ``pending``) gives nothing to send (None).
* event_id: a template, default ``{order_id}``; order.created and every later order.updated of
  one order give the same id, so the dedup window answers them as duplicates. A WooCommerce
  order id is the site's own: when several shops share the ad account it is scoped by the site
  (``<site>/<id>``, ``shop_scope``), and so is ``custom_data.order_id``.
* an order paid longer ago than ``max_paid_age_seconds`` (default 24 h, the dedup window) gives
  nothing to send: WooCommerce sends order.updated for every later change (shipped, note,
  refund), and once the dedup entry has expired that would count the order a second time.
* value: the sum of the line items' ``total`` (after discounts, before tax and shipping; fees
  are left out), like Shopify's ``subtotal_price``.
* event_time: ``date_created_gmt`` (UTC), when the shopper placed the order, as the tag on the
  thank-you page saw it.
* content_ids: each line item's ``product_id`` (default), ``variation_id`` (a simple product,
  whose variation_id is 0, gives its product_id) or ``sku``: ``WOOCOMMERCE_CONTENT_ID_FIELD``,
  what the merchant's Pinterest catalog uses as item id.

WooCommerce's webhook ping (``webhook_id=<id>``, form-encoded, unsigned) is recognised by
``is_ping`` and must be answered 200.
"""

from __future__ import annotations

import html
import re
from decimal import Decimal
from typing import Any, Literal

from pinrelay.consent import CONSENT_ATTRIBUTE, order_consent
from pinrelay.events import EventRejected, PreparedEvent, check_deliverable, event_id_from_template, scoped_event_id
from pinrelay.normalise import UserDataBuilder, address_country, routable_ip
from pinrelay.sources import (
    UNMAPPABLE,
    Contents,
    add_address,
    currency_code,
    decimal_or_none,
    entries,
    moment,
    not_understood,
    quantity,
    section,
)

ORDER_TOPICS = frozenset({"order.created", "order.updated"})
PAID_STATUSES = frozenset({"processing", "completed"})
UNPAID_STATUSES = frozenset({"pending", "failed", "cancelled", "refunded", "checkout-draft", "draft", "trash", "auto-draft"})
# WOOCOMMERCE_CONTENT_ID_FIELD: what a line item gives as the Pinterest catalog item id
ContentIdField = Literal["product_id", "variation_id", "sku"]
EVENT_ID_FIELDS = ("order_id", "order_number", "order_key")
DEFAULT_MAX_PAID_AGE_SECONDS = 86_400

_PING = re.compile(rb"\s*webhook_id=(\d{1,20})\s*")
_FORM = "application/x-www-form-urlencoded"


def is_ping(raw_body: bytes, content_type: str | None) -> bool:
    """True for the ping WooCommerce posts when a webhook is created: ``webhook_id=<id>``.

    It is form-encoded (or has no content type) and carries no signature; it must get a 200.
    """
    if content_type:
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type not in (_FORM, "text/plain"):
            return False
    return len(raw_body) <= 64 and _PING.fullmatch(raw_body) is not None


def is_paid(order: dict[str, Any]) -> bool:
    status = str(order.get("status") or "").lower()
    if status in UNPAID_STATUSES:
        return False
    return status in PAID_STATUSES or bool(order.get("date_paid_gmt") or order.get("date_paid"))


def _meta(order: dict[str, Any], warnings: list[str], *keys: str) -> str | None:
    for item in entries(order, "meta_data", warnings)[0]:
        if item.get("key") in keys and isinstance(item.get("value"), str) and item["value"]:
            return item["value"]
    return None


def order_user_data(order: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """user_data of an order; an address that is not an object or a value that is not text
    costs that part (a warning says which), never the order."""
    builder = UserDataBuilder()
    billing = section(order, "billing", builder.warnings)
    shipping = section(order, "shipping", builder.warnings)
    country = address_country(billing.get("country"), shipping.get("country"))
    add_address(builder, billing, country, country_field="country", zip_field="postcode")
    add_address(builder, shipping, country, country_field="country", zip_field="postcode")
    customer_id = order.get("customer_id")
    if customer_id not in (None, 0, "0", ""):
        builder.add("external_id", str(customer_id))
    builder.set_clear("client_ip_address", routable_ip(order.get("customer_ip_address")))
    builder.set_clear("client_user_agent", order.get("customer_user_agent") or None)
    builder.set_clear("click_id", _meta(order, builder.warnings, "_epik", "epik"))
    return builder.build(), builder.warnings


def _content_id(line: dict[str, Any], content_id_field: str) -> str | None:
    if content_id_field == "variation_id":
        value = line.get("variation_id") or line.get("product_id")  # simple products: variation_id 0
    else:
        value = line.get(content_id_field)
    if value in (None, "", 0, "0"):
        return None
    return str(value)


def order_custom_data(order: dict[str, Any], content_id_field: str, warnings: list[str] | None = None) -> dict[str, Any]:
    """order_id, num_items, value, currency, content_ids and contents: linear in the lines, the
    first ``MAX_CONTENTS`` of them sent (``pinrelay.sources.Contents``); a line's total that
    cannot be read costs the value, its quantity the num_items."""
    warnings = [] if warnings is None else warnings
    lines, value_known = entries(order, "line_items", warnings)
    found = Contents(all_lines_read=value_known)
    value = Decimal(0)
    for line in lines:
        content_id = _content_id(line, content_id_field)
        details: dict[str, str] = {}
        price = decimal_or_none(line.get("price"))
        if price is not None:
            details["item_price"] = format(price, "f")
        if line.get("name"):
            details["item_name"] = html.unescape(str(line["name"]))
        found.add(quantity(line.get("quantity")), content_id, details)
        total = decimal_or_none(line.get("total"))
        if total is None:
            value_known = False
        else:
            value += total
    warnings.extend(found.warnings())
    lists = found.custom_data()
    custom_data: dict[str, Any] = {"order_id": str(order["id"])}
    if "num_items" in lists:
        custom_data["num_items"] = lists.pop("num_items")
    if found.contents and value_known:
        custom_data["value"] = format(value, "f")
    elif found.contents:
        warnings.append("line_items[].total: could not be read; value not sent")
    currency = currency_code(order.get("currency"), "currency", warnings)
    if currency:
        custom_data["currency"] = currency
    return custom_data | lists


def order_to_event(
    order: dict[str, Any],
    *,
    now: int,
    topic: str,
    content_id_field: ContentIdField = "product_id",
    event_id_template: str = "{order_id}",
    max_paid_age_seconds: int = DEFAULT_MAX_PAID_AGE_SECONDS,
    shop_scope: str | None = None,
) -> PreparedEvent | None:
    """Map an ``order.created`` / ``order.updated`` body to a hashed ``checkout`` event.

    None when there is nothing to send (another topic, an unpaid order, an order paid longer
    ago than ``max_paid_age_seconds``); EventRejected when the order cannot be forwarded.
    """
    if topic not in ORDER_TOPICS:
        return None
    if not isinstance(order, dict) or order.get("id") in (None, "", 0):
        raise EventRejected("order: the body is not a WooCommerce order (no id)")
    if not is_paid(order):
        return None
    warnings: list[str] = []
    created_at = moment(order.get("date_created_gmt"), "date_created_gmt", warnings)
    paid_at = moment(order.get("date_paid_gmt"), "date_paid_gmt", warnings) or created_at
    if paid_at is not None and paid_at < now - max_paid_age_seconds:
        return None
    event_id = scoped_event_id(shop_scope, event_id_from_template(event_id_template, {
        "order_id": str(order["id"]),
        "order_number": str(order.get("number") or ""),
        "order_key": str(order.get("order_key") or ""),
    }))
    user_data, user_data_warnings = order_user_data(order)
    warnings += user_data_warnings
    event: dict[str, Any] = {
        "event_name": "checkout",
        "action_source": "offline" if order.get("created_via") == "pos" else "web",
        "event_id": event_id,
        "event_time": created_at or paid_at or now,
        "user_data": user_data,
        "custom_data": order_custom_data(order, content_id_field, warnings),
    }
    event["custom_data"]["order_id"] = scoped_event_id(shop_scope, event["custom_data"]["order_id"])
    # the shopper's choice, stored in the order's meta by web/woocommerce-consent.php (an unreadable
    # meta_data was already reported once, by the click id's read)
    consent, consent_warnings = order_consent(_meta(order, [], CONSENT_ATTRIBUTE), order.get("created_via"))
    prepared = PreparedEvent(event=event, warnings=warnings + consent_warnings, consent=consent)
    check_deliverable(prepared, now)
    return prepared


def woocommerce_event(topic: str, payload: Any, *, now: int, content_id_field: ContentIdField = "product_id",
                      max_paid_age_seconds: int = DEFAULT_MAX_PAID_AGE_SECONDS,
                      shop_scope: str | None = None) -> PreparedEvent | EventRejected | None:
    """``order_to_event`` for a webhook: the event, None when there is nothing to send, or the
    EventRejected saying why the order cannot be forwarded (a malformed body included)."""
    try:
        return order_to_event(payload, now=now, topic=topic, content_id_field=content_id_field,
                              max_paid_age_seconds=max_paid_age_seconds, shop_scope=shop_scope)
    except EventRejected as rejected:
        return rejected
    except UNMAPPABLE as exc:  # a signed body that is not the order it should be: answer, don't crash
        return not_understood(topic, "a WooCommerce order", exc)
