"""Shopify webhooks -> Pinterest events.

``orders/create`` becomes a ``checkout`` event. Its event_id comes from a template (default
``{order_id}``) so that it can equal the event_id the Pinterest tag sent from the thank-you page;
Pinterest then counts the order once.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pinrelay.events import EventRejected, PreparedEvent, check_deliverable
from pinrelay.normalise import UserDataBuilder, address_country

ORDER_TOPICS = frozenset({"orders/create"})
EVENT_ID_FIELDS = ("order_id", "order_number", "name", "checkout_token", "cart_token", "confirmation_number", "webhook_id")


def event_id_values(order: dict[str, Any], webhook_id: str | None) -> dict[str, str]:
    return {
        "order_id": str(order.get("id") or ""),
        "order_number": str(order.get("order_number") or ""),
        "name": str(order.get("name") or ""),
        "checkout_token": str(order.get("checkout_token") or ""),
        "cart_token": str(order.get("cart_token") or ""),
        "confirmation_number": str(order.get("confirmation_number") or ""),
        "webhook_id": webhook_id or "",
    }


def validate_event_id_template(template: str) -> None:
    """Raise ValueError when the template names a field pinrelay cannot fill."""
    template.format_map({name: "x" for name in EVENT_ID_FIELDS})


def _epoch(timestamp: str | None) -> int | None:
    if not timestamp:
        return None
    try:
        return int(datetime.fromisoformat(timestamp).timestamp())
    except ValueError:
        return None


def click_id_from_order(order: dict[str, Any]) -> str | None:
    """The ``epik`` query parameter of the landing page, else an ``_epik`` cart attribute."""
    landing_site = order.get("landing_site")
    if landing_site:
        values = parse_qs(urlsplit(landing_site).query).get("epik")
        if values and values[0]:
            return values[0]
    for attribute in order.get("note_attributes") or []:
        if attribute.get("name") in ("_epik", "epik") and attribute.get("value"):
            return str(attribute["value"])
    return None


def _routable_ip(value: str | None) -> str | None:
    if not value:
        return None
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    return None if address.is_unspecified else str(address)


def _add_address(builder: UserDataBuilder, address: dict[str, Any] | None) -> None:
    if not address:
        return
    country = address_country(address.get("country_code"))
    builder.add("fn", address.get("first_name"))
    builder.add("ln", address.get("last_name"))
    builder.add("ph", address.get("phone"), country)
    builder.add("ct", address.get("city"))
    builder.add("st", address.get("province_code") or address.get("province"))
    builder.add("zp", address.get("zip"), country)
    builder.add("country", country)


def order_user_data(order: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    customer = order.get("customer") or {}
    billing = order.get("billing_address") or {}
    shipping = order.get("shipping_address") or {}
    default_address = customer.get("default_address") or {}
    country = address_country(
        billing.get("country_code"), shipping.get("country_code"), default_address.get("country_code")
    )
    builder = UserDataBuilder()
    builder.add_all("em", (order.get("email"), order.get("contact_email"), customer.get("email")))
    builder.add_all("ph", (order.get("phone"), customer.get("phone")), country)
    builder.add("fn", customer.get("first_name"))
    builder.add("ln", customer.get("last_name"))
    if customer.get("id") is not None:
        builder.add("external_id", str(customer["id"]))
    for address in (billing, shipping, default_address):
        _add_address(builder, address)
    client = order.get("client_details") or {}
    builder.set_clear("client_ip_address", _routable_ip(client.get("browser_ip") or order.get("browser_ip")))
    builder.set_clear("client_user_agent", client.get("user_agent"))
    builder.set_clear("click_id", click_id_from_order(order))
    return builder.build(), builder.warnings


def order_custom_data(order: dict[str, Any], content_id_field: str) -> dict[str, Any]:
    contents: list[dict[str, Any]] = []
    content_ids: list[str] = []
    num_items = 0
    for line in order.get("line_items") or []:
        quantity = int(line.get("quantity") or 0)
        num_items += quantity
        content_id = line.get(content_id_field)
        item: dict[str, Any] = {"quantity": quantity}
        if content_id is not None and content_id != "":
            item["id"] = str(content_id)
            if item["id"] not in content_ids:
                content_ids.append(item["id"])
        if line.get("price") is not None:
            item["item_price"] = str(line["price"])
        if line.get("title"):
            item["item_name"] = str(line["title"])
        if line.get("vendor"):
            item["item_brand"] = str(line["vendor"])
        contents.append(item)
    custom_data: dict[str, Any] = {"order_id": str(order["id"]), "num_items": num_items}
    value = order.get("subtotal_price") if order.get("subtotal_price") is not None else order.get("total_price")
    if value is not None:
        custom_data["value"] = str(value)
    if order.get("currency"):
        custom_data["currency"] = str(order["currency"]).upper()
    if content_ids:
        custom_data["content_ids"] = content_ids
    if contents:
        custom_data["contents"] = contents
    return custom_data


def order_to_event(
    order: dict[str, Any],
    *,
    now: int,
    event_id_template: str = "{order_id}",
    content_id_field: str = "product_id",
    webhook_id: str | None = None,
) -> PreparedEvent:
    """Map an ``orders/create`` body to a hashed ``checkout`` event, or raise EventRejected."""
    if not isinstance(order, dict) or order.get("id") is None:
        raise EventRejected("order: the body is not a Shopify order (no id)")
    event_id = event_id_template.format_map(event_id_values(order, webhook_id))
    if not event_id:
        raise EventRejected(f"event_id: the template {event_id_template!r} gives an empty id for this order")
    user_data, warnings = order_user_data(order)
    event: dict[str, Any] = {
        "event_name": "checkout",
        "action_source": "offline" if order.get("source_name") == "pos" else "web",
        "event_id": event_id,
        "event_time": _epoch(order.get("created_at")) or now,
        "user_data": user_data,
        "custom_data": order_custom_data(order, content_id_field),
    }
    if order.get("customer_locale"):
        event["language"] = str(order["customer_locale"])[:2].lower()
    prepared = PreparedEvent(event=event, warnings=warnings)
    check_deliverable(prepared, now)
    return prepared
