"""From a posted event (or a source's mapping) to a Pinterest-ready, hashed event.

Checks that Pinterest would otherwise fail at delivery are done here, at ingest, with a clear
reason: the 7-day / 5-minute event_time window and an identifier Pinterest can match on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from pinrelay.models import IncomingEvent
from pinrelay.normalise import HASHED_FIELDS, UserDataBuilder, address_country

MAX_EVENT_AGE_SECONDS = 7 * 86_400
MAX_EVENT_AHEAD_SECONDS = 300

# A lone surrogate (JSON allows "\ud800") is not text: it cannot be encoded as UTF-8 (hashing) and
# SQS refuses it, as it refuses the non-characters U+FFFE and U+FFFF.
_UNSAFE_TEXT = re.compile("[\ud800-\udfff\ufffe\uffff]")
UNSAFE_TEXT_REASON = "holds a lone surrogate or U+FFFE/U+FFFF, which is not text (SQS refuses it)"


class EventRejected(ValueError):
    """The event cannot be delivered; ``reason`` says why, naming the field."""

    def __init__(self, reason: str, event_id: str | None = None, event_name: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id
        self.event_name = event_name


@dataclass(slots=True)
class PreparedEvent:
    """A Pinterest ``ConversionEvents`` data item, normalised and hashed, ready to queue."""

    event: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    @property
    def event_id(self) -> str:
        return self.event["event_id"]

    @property
    def event_name(self) -> str:
        return self.event["event_name"]

    def dedup_key(self, ad_account_id: str) -> str:
        return dedup_key(ad_account_id, self.event_name, self.event_id)


def dedup_key(ad_account_id: str, event_name: str, event_id: str) -> str:
    return f"{ad_account_id}#{event_name}#{event_id}"


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        location = ""
        for item in error["loc"]:
            location += f"[{item}]" if isinstance(item, int) else (f".{item}" if location else str(item))
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field (Pinterest refuses it)"
        parts.append(f"{location or 'event'}: {message}")
    return "; ".join(parts)


def unsafe_text_path(value: Any) -> str | None:
    """Where in ``value`` (a parsed JSON document) a string or key holds text SQS cannot carry
    (``_UNSAFE_TEXT``), e.g. ``custom_data.contents[0].item_name``; None when there is none.
    Iterative: a document nested as deep as json.loads allows does not exhaust the stack."""
    todo: list[tuple[str, Any]] = [("", value)]
    while todo:
        path, item = todo.pop()
        if isinstance(item, str):
            if _UNSAFE_TEXT.search(item):
                return path or "event"
        elif isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                if isinstance(key, str) and _UNSAFE_TEXT.search(key):
                    return f"{path or 'event'} (a field name)"
                todo.append((f"{path}.{key}" if path else str(key), child))
        elif isinstance(item, list):
            todo.extend((f"{path}[{index}]", child) for index, child in reversed(list(enumerate(item))))
    return None


def _safe_str(value: Any) -> str | None:
    return value if isinstance(value, str) and not _UNSAFE_TEXT.search(value) else None


def _as_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else value


def hash_raw_user_data(raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Normalise and hash a ``user_data`` object given in Pinterest's field names."""
    builder = UserDataBuilder()
    countries = _as_list(raw.get("country"))
    default_country = address_country(*countries)
    for name in HASHED_FIELDS:
        values = _as_list(raw.get(name))
        if name in ("ph", "zp") and len(countries) > 1:
            for index, value in enumerate(values):
                country = address_country(countries[index]) if index < len(countries) else None
                builder.add(name, value, country or default_country)
        else:
            builder.add_all(name, values, default_country)
    for name in ("client_ip_address", "client_user_agent", "click_id", "partner_id"):
        builder.set_clear(name, raw.get(name))
    return builder.build(), builder.warnings


def prepare_api_event(raw: Any, now: int) -> PreparedEvent:
    """Validate one event of ``POST /events`` and turn it into a hashed Pinterest event."""
    if not isinstance(raw, dict):
        raise EventRejected("event: must be a JSON object")
    event_id, event_name = _safe_str(raw.get("event_id")), _safe_str(raw.get("event_name"))
    unsafe = unsafe_text_path(raw)
    if unsafe:
        raise EventRejected(f"{unsafe}: {UNSAFE_TEXT_REASON}", event_id=event_id, event_name=event_name)
    try:
        incoming = IncomingEvent.model_validate(raw)
    except ValidationError as exc:
        raise EventRejected(describe_validation_error(exc), event_id=event_id, event_name=event_name) from None
    event = incoming.model_dump(exclude_none=True, exclude={"user_data"})
    user_data, warnings = hash_raw_user_data(incoming.user_data.model_dump(exclude_none=True))
    event["user_data"] = user_data
    event.setdefault("event_time", now)
    prepared = PreparedEvent(event=event, warnings=warnings)
    check_deliverable(prepared, now)
    return prepared


def check_deliverable(prepared: PreparedEvent, now: int) -> None:
    """Refuse what Pinterest would fail: stale or future event_time, nothing to match on; and
    what SQS would refuse (text that is not text), whatever source mapped the event."""
    event = prepared.event
    unsafe = unsafe_text_path(event)
    if unsafe:
        raise EventRejected(f"{unsafe}: {UNSAFE_TEXT_REASON}", _safe_str(event.get("event_id")),
                            _safe_str(event.get("event_name")))
    event_time = event["event_time"]
    if event_time < now - MAX_EVENT_AGE_SECONDS:
        raise EventRejected(
            f"event_time: {event_time} is more than 7 days in the past (now {now}); Pinterest refuses it",
            prepared.event_id, prepared.event_name,
        )
    if event_time > now + MAX_EVENT_AHEAD_SECONDS:
        raise EventRejected(
            f"event_time: {event_time} is more than 5 minutes in the future (now {now})",
            prepared.event_id, prepared.event_name,
        )
    user_data = event["user_data"]
    if not (
        user_data.get("em")
        or user_data.get("hashed_maids")
        or (user_data.get("client_ip_address") and user_data.get("client_user_agent"))
    ):
        raise EventRejected(
            "user_data: no identifier Pinterest can match on; give em, hashed_maids, "
            "or both client_ip_address and client_user_agent",
            prepared.event_id, prepared.event_name,
        )
