"""The ingest path as it was before it was made fast (commit ecf4c6c), kept as the reference the
fast paths are compared with: the unsafe-text walk on the raw and on the prepared event, two
model_dumps, a builder with a list for each field, every phone through phonenumbers.
Not a test module (no ``test_`` prefix): the tests in test_ingest_fast_paths.py import it."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from pinrelay.events import (
    UNSAFE_TEXT_REASON,
    EventRejected,
    PreparedEvent,
    _safe_str,
    describe_validation_error,
    unsafe_text_path,
)
from pinrelay.models import IncomingEvent
from pinrelay.normalise import (
    HASHED_FIELDS,
    NORMALISERS,
    NormalisationError,
    _phonenumbers_e164,
    address_country,
    is_sha256_hex,
    sha256_hex,
)
from pinrelay.windows import MAX_EVENT_AGE_SECONDS, MAX_EVENT_AHEAD_SECONDS


def normalise_phone(value: str, country: str | None = None) -> str:
    raw = value.strip()
    region = country.upper() if country else None
    if not raw.startswith("+") and raw.startswith("00"):
        raw = "+" + raw[2:]
    return _phonenumbers_e164(raw, region)


REFERENCE_NORMALISERS = {**NORMALISERS, "ph": normalise_phone}


class UserDataBuilder:
    def __init__(self) -> None:
        self._hashed: dict[str, list[str]] = {}
        self._clear: dict[str, str] = {}
        self.warnings: list[str] = []

    def add(self, field: str, value: str | None, country: str | None = None) -> None:
        if value is None:
            return
        text = value.strip()
        if not text:
            return
        if is_sha256_hex(text):
            digest = text.lower()
        else:
            try:
                digest = sha256_hex(REFERENCE_NORMALISERS[field](text, country))
            except NormalisationError as exc:
                self.warnings.append(f"user_data.{field}: value dropped, {exc}")
                return
        values = self._hashed.setdefault(field, [])
        if digest not in values:
            values.append(digest)

    def add_all(self, field: str, values: Any, country: str | None = None) -> None:
        for value in values:
            self.add(field, value, country)

    def set_clear(self, field: str, value: str | None) -> None:
        if value is not None and value.strip() and field not in self._clear:
            self._clear[field] = value.strip()

    def build(self) -> dict[str, object]:
        return {**self._hashed, **self._clear}


def _as_list(value: Any) -> Any:
    if value is None:
        return []
    return [value] if isinstance(value, str) else value


def hash_raw_user_data(raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
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
