"""From a posted event (or a source's mapping) to a Pinterest-ready, hashed event.

Checks that Pinterest would otherwise fail at delivery are done here, at ingest, with a clear
reason: the 7-day / 5-minute event_time window and an identifier Pinterest can match on.
"""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from pinrelay.consent import OrderConsent, recorded_from_flags
from pinrelay.models import KNOWN_FIELD_NAMES, IncomingEvent
from pinrelay.normalise import CLEAR_FIELDS, HASHED_FIELDS, UserDataBuilder, address_country
from pinrelay.windows import too_far_ahead, too_old

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


class EventFiltered(Exception):
    """Not a conversion by the merchant's rules (a cancelled or test order, a draft order...):
    answered 200 with the reason and counted by ``code`` (the metric's dimension), never sent."""

    def __init__(self, code: str, reason: str, event_id: str | None = None, event_name: str | None = None):
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.event_id = event_id
        self.event_name = event_name


@dataclass(slots=True)
class PreparedEvent:
    """A Pinterest ``ConversionEvents`` data item, normalised and hashed, ready to queue."""

    event: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    test: bool = False  # sent in a request of its own with Pinterest's test=true (not counted)
    # what the order says about consent, for the consent policy (pinrelay.consent); None: nothing
    consent: OrderConsent | None = None

    @property
    def event_id(self) -> str:
        return self.event["event_id"]

    @property
    def event_name(self) -> str:
        return self.event["event_name"]

    @property
    def offline(self) -> bool:
        return self.event.get("action_source") == OFFLINE

    def dedup_key(self, ad_account_id: str) -> str:
        return dedup_key(ad_account_id, self.event_name, self.event_id, self.offline)


OFFLINE = "offline"


def dedup_key(ad_account_id: str, event_name: str, event_id: str, offline: bool = False) -> str:
    """The event's item in the delivery ledger: ``<ad account>#<event_name>#<event_id>``, which is
    what Pinterest deduplicates web and app events on. Offline events, which Pinterest never
    deduplicates (not even against a web event of the same id), have keys of their own,
    ``<ad account>#offline#<event_name>#<event_id>`` (no event is named ``offline``), so that a
    store sale whose id equals a web order's is never taken for its copy."""
    return f"{ad_account_id}#{OFFLINE}#{event_name}#{event_id}" if offline else f"{ad_account_id}#{event_name}#{event_id}"


MAX_REASONS_PER_EVENT = 10  # a reason names at most this many problems, then counts the rest
# "did you mean" look-ups per request: each compares a name with every known one in difflib
# (~0.1 ms), and a 1 MiB body holds ~60,000 names (15 s of CPU before this bound, issue 18)
MAX_HINTS_PER_REQUEST = 50
_LONGEST_HINTED_NAME = 2 * max(len(name) for name in KNOWN_FIELD_NAMES)  # no known name is close to a longer one


class NameHints:
    """The known field name close to an unknown one ("did you mean"), for one request: each
    distinct name is looked up once, at most ``limit`` of them, so the costliest body stays
    within ingest's CPU budget; past the bound, and for names far longer than any known one,
    no hint is given (the field is still refused and counted)."""

    def __init__(self, limit: int = MAX_HINTS_PER_REQUEST) -> None:
        self.limit = limit
        self._found: dict[str, str | None] = {}

    def close_to(self, name: str) -> str | None:
        if name in self._found:
            return self._found[name]
        if len(self._found) >= self.limit or len(name) > _LONGEST_HINTED_NAME:
            return None
        matches = difflib.get_close_matches(name, KNOWN_FIELD_NAMES, 1, 0.75)
        self._found[name] = matches[0] if matches else None
        return self._found[name]


def describe_validation_error(exc: ValidationError, hints: NameHints | None = None) -> str:
    """The problems of an event, each named by its field; never a value from the event. Unknown
    fields are not named either (their names are the sender's input, which can be anything):
    they are counted where they are, with a known field whose name is close, if there is one
    (``hints``: the request's, bounded)."""
    hints = hints or NameHints()
    problems: dict[str, str] = {}  # location -> message, in the order found
    unknown: dict[str, list[str]] = {}  # location -> the unknown names found there
    for error in exc.errors(include_url=False, include_input=False):
        path = list(error["loc"])
        if error["type"] == "extra_forbidden":
            name = str(path.pop())
            unknown.setdefault(_location(path), []).append(name)
        else:
            problems.setdefault(_location(path), error["msg"].removeprefix("Value error, "))
    for location, names in unknown.items():
        close = {match for name in names[:100] if (match := hints.close_to(name))}
        hint = f" (did you mean {', '.join(sorted(close))}?)" if close else ""
        count = "an unknown field" if len(names) == 1 else f"{len(names)} unknown fields"
        problems.setdefault(location, f"{count}{hint}: Pinterest refuses {'it' if len(names) == 1 else 'them'}")
    parts = [f"{location}: {message}" for location, message in problems.items()]
    if len(parts) > MAX_REASONS_PER_EVENT:
        parts = parts[:MAX_REASONS_PER_EVENT] + [f"and {len(parts) - MAX_REASONS_PER_EVENT} more problems"]
    return "; ".join(parts)


def _location(path: list[Any]) -> str:
    location = ""
    for item in path:
        location += f"[{item}]" if isinstance(item, int) else (f".{item}" if location else str(item))
    return location or "event"


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
                name = key if key in KNOWN_FIELD_NAMES else "(an unknown field)"  # never echo the sender's key
                todo.append((f"{path}.{name}" if path else name, child))
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
    """Normalise and hash a ``user_data`` object given in Pinterest's field names (absent and
    None alike mean no value). Returns it with the warnings."""
    builder = UserDataBuilder()
    countries = _as_list(raw.get("country"))
    default_country = address_country(*countries)
    for name in HASHED_FIELDS:
        values = _as_list(raw.get(name))
        if name in ("ph", "zp") and len(countries) > 1:  # the n-th phone / zip of the n-th address
            for index, value in enumerate(values):
                country = address_country(countries[index]) if index < len(countries) else None
                builder.add(name, value, country or default_country)
        else:
            for value in values:
                builder.add(name, value, default_country)
    for name in CLEAR_FIELDS:
        builder.set_clear(name, raw.get(name))
    return builder.build(), builder.warnings


def json_text_is_clean(text: str) -> bool:
    """True when the JSON text of a request cannot hold ``_UNSAFE_TEXT``: a body decoded as
    strict UTF-8 holds no surrogate, so a lone surrogate can only come from a ``\\u`` escape,
    and U+FFFE / U+FFFF would be in the text as they are (or escaped). One substring search of
    the body in C (~1 µs for 1 MB) spares walking every event of a request that has neither."""
    return "\\u" not in text and "\ufffe" not in text and "\uffff" not in text


def prepare_api_event(raw: Any, now: int, text_checked: bool = False, hints: NameHints | None = None) -> PreparedEvent:
    """Validate one event of ``POST /events`` and turn it into a hashed Pinterest event, or raise
    EventRejected naming the field. ``text_checked``: ``json_text_is_clean`` said so of the
    request's body; ``hints``: the request's "did you mean" look-ups (bounded per request)."""
    if not isinstance(raw, dict):
        raise EventRejected("event: must be a JSON object")
    event_id, event_name = _safe_str(raw.get("event_id")), _safe_str(raw.get("event_name"))
    unsafe = None if text_checked else unsafe_text_path(raw)
    if unsafe:
        raise EventRejected(f"{unsafe}: {UNSAFE_TEXT_REASON}", event_id, event_name)
    try:
        incoming = IncomingEvent.model_validate(raw)
    except ValidationError as exc:
        raise EventRejected(describe_validation_error(exc, hints), event_id, event_name) from None
    # user_data hashed and put back last, as Pinterest's order has it; consent is pinrelay's, not Pinterest's
    event = incoming.model_dump(exclude_none=True, exclude={"user_data", "consent"})
    event["user_data"], warnings = hash_raw_user_data(dict(incoming.user_data))
    event.setdefault("event_time", now)
    prepared = PreparedEvent(event=event, warnings=warnings, consent=stated_consent(incoming))
    # the raw event's text was checked above: validation keeps strings, hashing gives hex
    _check_time_and_match(prepared, now)
    return prepared


def stated_consent(incoming: IncomingEvent) -> OrderConsent | None:
    """The choice an API event (or a CSV row) states in ``consent``; None when it states none."""
    stated = incoming.consent
    if stated is None:
        return None
    recorded = recorded_from_flags("api", stated.marketing, stated.sale_of_data, stated.region)
    return OrderConsent(recorded=recorded) if recorded else None


def prepare_api_events(raws: Iterable[Any], now: int, text_checked: bool = False) -> list[PreparedEvent | EventRejected]:
    """``prepare_api_event`` for each event of a request, in order, a rejection in place of each
    event it refuses; the request's "did you mean" hints are bounded together (``NameHints``)."""
    prepared: list[PreparedEvent | EventRejected] = []
    hints = NameHints()
    for raw in raws:
        try:
            prepared.append(prepare_api_event(raw, now, text_checked, hints))
        except EventRejected as rejected:
            prepared.append(rejected)
    return prepared


def has_match_identifier(user_data: dict[str, Any]) -> bool:
    """Pinterest's rule: em, hashed_maids, or client_ip_address together with client_user_agent."""
    return bool(
        user_data.get("em")
        or user_data.get("hashed_maids")
        or (user_data.get("client_ip_address") and user_data.get("client_user_agent"))
    )


def template_fields(template: str) -> list[str]:
    """The values an event_id template names, as ``str.format_map`` reads it (``{{`` and ``}}``
    are literal braces; ``{name[0]}`` names ``name``); ValueError for a lone brace."""
    return [re.split(r"[.\[]", name, maxsplit=1)[0]
            for _, name, _, _ in string.Formatter().parse(template) if name is not None]


def check_event_id_template(template: str, fields: Iterable[str], setting: str) -> None:
    """Raise ValueError, naming ``setting``, when ``template`` cannot be filled from ``fields``
    (the values a source has for every order): a field it does not know, a lone brace, a
    positional ``{}``, a format spec the values do not take, or no field at all (every order
    would get the same event_id, and all but the first would be dropped as its copies).
    Checked when the settings are read."""
    known = tuple(fields)
    try:
        named = template_fields(template)
        template.format_map(dict.fromkeys(known, "x"))
    except KeyError as missing:
        raise ValueError(f"{setting}: {{{missing.args[0]}}} is not one of "
                         f"{', '.join('{' + name + '}' for name in known)}") from None
    except (ValueError, IndexError, AttributeError) as problem:
        raise ValueError(f"{setting}: {template!r} is not a template pinrelay can fill ({problem})") from None
    if not named:
        raise ValueError(f"{setting}: {template!r} names no field, so every order would get the same event_id; "
                         f"use one of {', '.join('{' + name + '}' for name in known)}")


def event_id_from_template(template: str, values: dict[str, str]) -> str:
    """A source's event_id from its configured template; an empty result is refused."""
    event_id = template.format_map(values)
    if not event_id:
        raise EventRejected(f"event_id: the template {template!r} gives an empty id for this order")
    return event_id


def scoped_event_id(shop: str | None, event_id: str) -> str:
    """``<shop>/<event_id>`` when a shop scopes the id (several shops on one ad account:
    ``pinrelay.accounts.AccountMap.shop_scope``), else the id itself."""
    return f"{shop}/{event_id}" if shop else event_id


def check_deliverable(prepared: PreparedEvent, now: int) -> None:
    """Refuse what Pinterest would fail: stale or future event_time, nothing to match on; and
    what SQS would refuse (text that is not text), whatever source mapped the event."""
    event = prepared.event
    unsafe = unsafe_text_path(event)
    if unsafe:
        raise EventRejected(f"{unsafe}: {UNSAFE_TEXT_REASON}", _safe_str(event.get("event_id")),
                            _safe_str(event.get("event_name")))
    _check_time_and_match(prepared, now)


def _check_time_and_match(prepared: PreparedEvent, now: int) -> None:
    event = prepared.event
    event_time = event["event_time"]
    if too_old(event_time, now):
        raise EventRejected(
            f"event_time: {event_time} is more than 7 days in the past (now {now}); Pinterest refuses it",
            prepared.event_id, prepared.event_name,
        )
    if too_far_ahead(event_time, now):
        raise EventRejected(
            f"event_time: {event_time} is more than 5 minutes in the future (now {now})",
            prepared.event_id, prepared.event_name,
        )
    if not has_match_identifier(event["user_data"]):
        raise EventRejected(
            "user_data: no identifier Pinterest can match on; give em, hashed_maids, "
            "or both client_ip_address and client_user_agent",
            prepared.event_id, prepared.event_name,
        )
