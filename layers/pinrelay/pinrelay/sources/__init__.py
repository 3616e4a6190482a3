"""Mappings from what a shop platform sends to Pinterest events (plain Python, no AWS)."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from pinrelay.events import EventRejected
from pinrelay.models import MAX_CONTENTS
from pinrelay.normalise import UserDataBuilder, address_country
from pinrelay.timestamps import epoch_seconds

T = TypeVar("T")
_CURRENCY = re.compile(r"[A-Z]{3}")

# What mapping a well-signed but malformed body may raise (ArithmeticError: int(1e309),
# decimal.Overflow): it becomes a rejected event with the reason, not a 500 the platform retries.
# EventRejected is a ValueError: catch it first where its own reason is wanted.
UNMAPPABLE = (TypeError, ValueError, AttributeError, KeyError, IndexError, ArithmeticError)


def not_understood(topic: str, what: str, exc: BaseException) -> EventRejected:
    """The rejection of a body ``UNMAPPABLE`` stopped: the error's type, never its message (which
    may quote the body)."""
    return EventRejected(f"{topic}: the body is not {what} pinrelay understands ({type(exc).__name__})")


# -- reading one field of a signed body: what cannot be read costs that field, never the order --
# Warnings name the platform's field (a fixed name), never its value; they reach the answer's
# ``warnings`` like a dropped e-mail does.
def unreadable(field: str, exc: BaseException | None = None, lost: str = "left out") -> str:
    cause = f" ({type(exc).__name__})" if exc is not None else ""
    return f"{field}: could not be read{cause}; {lost}"


def read_field(warnings: list[str], field: str, read: Callable[[], T], lost: str = "left out") -> T | None:
    """``read()``, or None with a warning when the body's ``field`` cannot be read."""
    try:
        return read()
    except UNMAPPABLE as exc:
        warnings.append(unreadable(field, exc, lost))
        return None


def section(body: dict[str, Any], key: str, warnings: list[str], where: str = "") -> dict[str, Any]:
    """``body[key]`` when it is an object; ``{}`` when absent or null, and also (with a warning)
    when it is something else."""
    value = body.get(key)
    if value is None or isinstance(value, dict):
        return value or {}
    warnings.append(unreadable(f"{where}{key}", lost="not an object, left out"))
    return {}


def entries(body: dict[str, Any], key: str, warnings: list[str]) -> tuple[list[dict[str, Any]], bool]:
    """The objects of the list ``body[key]`` (line items, attributes), and whether every entry
    could be read: a value that is not a list, and each entry that is not an object, is left out
    with a warning (and what is counted over the list, num_items or value, is then unknown)."""
    value = body.get(key)
    if value is None:
        return [], True
    if not isinstance(value, list):
        warnings.append(unreadable(key, lost="not a list, left out"))
        return [], False
    found = [item for item in value if isinstance(item, dict)]
    if len(found) < len(value):
        warnings.append(unreadable(key, lost=f"{len(value) - len(found)} entries that are not objects left out"))
    return found, len(found) == len(value)


def money_text(value: Any, field: str, warnings: list[str]) -> str | None:
    """An amount as the platform wrote it, when it is a finite decimal number; else None (with a
    warning): Pinterest refuses an event whose value is not a number."""
    if value is None or value == "":
        return None
    text = str(value).strip() if isinstance(value, (str, int, float, Decimal)) and not isinstance(value, bool) else None
    try:
        valid = text is not None and Decimal(text).is_finite()
    except InvalidOperation:
        valid = False
    if not valid:
        warnings.append(unreadable(field, lost="not a number, value not sent"))
        return None
    return text


def currency_code(value: Any, field: str, warnings: list[str]) -> str | None:
    """An ISO 4217 code, upper case; None (with a warning) for anything else."""
    if value is None or value == "":
        return None
    code = str(value).strip().upper() if isinstance(value, str) else ""
    if not _CURRENCY.fullmatch(code):
        warnings.append(unreadable(field, lost="not a currency code, left out"))
        return None
    return code


def moment(value: Any, field: str, warnings: list[str]) -> int | None:
    """Unix seconds of an ISO-8601 timestamp; None when absent, and (with a warning) when it is
    not one."""
    if value is None or value == "":
        return None
    try:
        seconds = epoch_seconds(value) if isinstance(value, str) else None
    except UNMAPPABLE:  # a date out of range
        seconds = None
    if seconds is None:
        warnings.append(unreadable(field, lost="not an ISO-8601 time, the time of receipt used"))
    return seconds


def quantity(value: Any) -> int | None:
    """A line's quantity: a whole number (absent: 0); None when it cannot be read."""
    if value is None or value == "":
        return 0
    try:
        number = int(value) if not isinstance(value, (bool, dict, list)) else None
    except (TypeError, ValueError, OverflowError):
        return None
    return number


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
    ``num_items`` from an order's line items, whichever platform they come from.

    Linear in the number of lines (a 20,000-line order took 2 s of CPU when each id was looked
    up in a list, issue 18). An order of more than ``MAX_CONTENTS`` lines (the most ``POST
    /events`` takes, well past any real basket) keeps every line in ``num_items`` (and the
    source's value), but sends the first ``MAX_CONTENTS`` lines and ids only, with a warning:
    the rest of those two lists is the field's loss, never the order's."""

    def __init__(self, limit: int = MAX_CONTENTS, all_lines_read: bool = True) -> None:
        """``all_lines_read``: False when some lines could not be read (``entries``), so that the
        order's ``num_items`` is not known."""
        self.limit = limit
        self.contents: list[dict[str, Any]] = []
        self._content_ids: dict[str, None] = {}  # ordered, and a look-up in O(1)
        self.num_items: int | None = 0 if all_lines_read else None  # None once a line or its quantity is unreadable
        self.lines = 0
        self.lines_unread_quantity = 0

    @property
    def content_ids(self) -> list[str]:
        return list(self._content_ids)

    def add(self, quantity: int | None, content_id: str | None, details: dict[str, str]) -> None:
        """One line: ``quantity`` (None: it could not be read, and then neither can the order's
        ``num_items``) of catalog item ``content_id`` (None: the line has none) and its
        ``details`` (item_price, item_name...)."""
        self.num_items = None if quantity is None or self.num_items is None else self.num_items + quantity
        self.lines_unread_quantity += quantity is None
        self.lines += 1
        if len(self.contents) >= self.limit:
            return
        item: dict[str, Any] = {} if quantity is None else {"quantity": quantity}
        if content_id is not None:
            item["id"] = content_id
            self._content_ids[content_id] = None
        self.contents.append(item | details)

    def lists(self) -> dict[str, Any]:
        """``content_ids`` and ``contents``, each when it is not empty."""
        found: dict[str, Any] = {}
        if self._content_ids:
            found["content_ids"] = self.content_ids
        if self.contents:
            found["contents"] = self.contents
        return found

    def warnings(self) -> list[str]:
        """What was left out, said as the answer's warnings are."""
        found = []
        if self.num_items is None and self.lines_unread_quantity:
            found.append(unreadable("line_items[].quantity", lost="num_items not sent"))
        if self.lines > self.limit:
            found.append(f"custom_data.contents: the order has {self.lines} line items; the first {self.limit} are "
                         "sent (num_items and value count them all)")
        return found

    def custom_data(self) -> dict[str, Any]:
        """``num_items`` (when every quantity could be read), ``content_ids`` and ``contents``."""
        return ({} if self.num_items is None else {"num_items": self.num_items}) | self.lists()
