"""Mappings from what a shop platform sends to Pinterest events (plain Python, no AWS)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from pinrelay.events import EventRejected
from pinrelay.normalise import UserDataBuilder, address_country

# What mapping a well-signed but malformed body may raise (ArithmeticError: int(1e309),
# decimal.Overflow): it becomes a rejected event with the reason, not a 500 the platform retries.
# EventRejected is a ValueError: catch it first where its own reason is wanted.
UNMAPPABLE = (TypeError, ValueError, AttributeError, KeyError, IndexError, ArithmeticError)


def not_understood(topic: str, what: str, exc: BaseException) -> EventRejected:
    """The rejection of a body ``UNMAPPABLE`` stopped: the error's type, never its message (which
    may quote the body)."""
    return EventRejected(f"{topic}: the body is not {what} pinrelay understands ({type(exc).__name__})")


def decimal_or_none(value: Any) -> Decimal | None:
    """A platform's amount (a decimal string or a number) as a finite Decimal; None when it is
    absent or cannot be read (it then costs its field, never the order)."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def add_address(builder: UserDataBuilder, address: dict[str, Any], fallback_country: str | None, *,
                country_field: str, zip_field: str) -> None:
    """An address that carries its e-mail and phone (WooCommerce's billing and shipping,
    BigCommerce's billing and shipping addresses), its country in ``country_field`` (ISO alpha-2)
    and its postal code in ``zip_field``; ``country`` only when the address names one."""
    country = address_country(address.get(country_field)) or fallback_country
    builder.add("em", address.get("email"))
    builder.add("ph", address.get("phone"), country)
    builder.add("fn", address.get("first_name"))
    builder.add("ln", address.get("last_name"))
    builder.add("ct", address.get("city"))
    builder.add("st", address.get("state"))
    builder.add("zp", address.get(zip_field), country)
    if address_country(address.get(country_field)):
        builder.add("country", country)


class Contents:
    """Pinterest's ``contents``, ``content_ids`` (each id once, in order of first sight) and
    ``num_items`` from an order's line items, whichever platform they come from."""

    def __init__(self) -> None:
        self.contents: list[dict[str, Any]] = []
        self.content_ids: list[str] = []
        self.num_items = 0

    def add(self, quantity: int, content_id: str | None, details: dict[str, str]) -> None:
        """One line: ``quantity`` of catalog item ``content_id`` (None: the line has none) and
        its ``details`` (item_price, item_name...)."""
        self.num_items += quantity
        item: dict[str, Any] = {"quantity": quantity}
        if content_id is not None:
            item["id"] = content_id
            if content_id not in self.content_ids:
                self.content_ids.append(content_id)
        self.contents.append(item | details)

    def lists(self) -> dict[str, Any]:
        """``content_ids`` and ``contents``, each when it is not empty."""
        found: dict[str, Any] = {}
        if self.content_ids:
            found["content_ids"] = self.content_ids
        if self.contents:
            found["contents"] = self.contents
        return found

