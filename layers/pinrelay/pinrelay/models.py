"""Pydantic models: what pinrelay accepts at ingest, what it queues, what Pinterest answers.

Field names, types and bounds follow ``ConversionEvents`` in Pinterest's OpenAPI 5.23
(tests/contract holds the schema). Unknown keys are refused (``extra="forbid"``), as Pinterest
refuses them (``additionalProperties: false``).
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, field_validator

# The 15 names of OpenAPI 5.23 (custom included) and the 7 Pinterest documents since.
EVENT_NAMES = frozenset({
    "add_payment_info", "add_to_cart", "add_to_wishlist", "app_install", "checkout", "custom",
    "initiate_checkout", "lead", "page_visit", "search", "signup", "subscribe", "view_category",
    "view_content", "watch_video",
    "app_open", "contact", "customize_product", "find_location", "schedule", "start_trial",
    "submit_application",
})
ActionSource = Literal["app_android", "app_ios", "web", "offline"]

_CURRENCY = re.compile(r"[A-Z]{3}")

# Pinterest matches a person on a few values per field, not thousands: a bound keeps one event's
# hashing cost and its queued size small (a longer list is refused, naming the field).
MAX_VALUES_PER_FIELD = 10
MAX_CONTENTS = 1000  # line items of one order; Shopify allows a few hundred


_TOO_LARGE = Decimal("1e15")


def _decimal_string(value: Any) -> Any:
    """Pinterest takes money as a string parsed into a double: accept numbers, send strings."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("must be a number or a numeric string")
    if isinstance(value, str) and (not value.strip().isascii() or "_" in value):
        # Decimal reads other scripts' digits and underscores ("١٢", "1_000"); a string is sent
        # as it came, and Pinterest's double parser would refuse those
        raise ValueError("must be a number or a numeric string")
    if isinstance(value, (int, float, str)):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError("must be a number or a numeric string") from None
        if not number.is_finite():
            raise ValueError("must be a finite number")
        # copy_abs, not abs(): abs() rounds in the decimal context and raises Overflow for 1e999999999
        if number.copy_abs() >= _TOO_LARGE:
            raise ValueError("is too large")
        return str(value).strip() if isinstance(value, str) else format(number, "f")
    raise ValueError("must be a number or a numeric string")


DecimalString = Annotated[str, BeforeValidator(_decimal_string)]
ShortStr = Annotated[str, Field(max_length=100)]
Int64 = Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)]
Count = Annotated[StrictInt, Field(ge=0, le=2**63 - 1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class Content(_Strict):
    id: str | None = None
    item_brand: str | None = None
    item_category: str | None = None
    item_name: str | None = None
    item_price: DecimalString | None = None
    quantity: Int64 | None = None


class CustomData(_Strict):
    content_brand: str | None = None
    content_category: str | None = None
    content_ids: Annotated[list[str], Field(max_length=MAX_CONTENTS)] | None = None
    content_name: str | None = None
    contents: Annotated[list[Content], Field(max_length=MAX_CONTENTS)] | None = None
    currency: str | None = None
    external_measurement_id: str | None = None
    external_measurement_vendor_id: Int64 | None = None
    np: str | None = None
    num_items: Int64 | None = None
    opt_out_type: str | None = None
    order_id: str | None = None
    predicted_ltv: DecimalString | None = None
    search_string: str | None = None
    value: DecimalString | None = None

    @field_validator("currency")
    @classmethod
    def _iso_4217(cls, value: str | None) -> str | None:
        if value is None:
            return None
        code = value.strip().upper()
        if not _CURRENCY.fullmatch(code):
            raise ValueError("must be a three-letter ISO-4217 code such as USD")
        return code


class AppInfo(_Strict):
    app_id: Annotated[str, Field(max_length=200)] | None = None
    app_name: Annotated[str, Field(max_length=200)] | None = None
    app_package_name: Annotated[str, Field(max_length=200)] | None = None
    app_store: ShortStr | None = None
    app_version: ShortStr | None = None
    install_time: Count | None = None
    user_agent: Annotated[str, Field(max_length=16384)] | None = None
    window_height: Annotated[StrictInt, Field(ge=0, le=30720)] | None = None
    window_width: Annotated[StrictInt, Field(ge=0, le=30720)] | None = None


class DeviceInfo(_Strict):
    battery_level: Annotated[StrictInt, Field(ge=0, le=100)] | None = None
    brand: ShortStr | None = None
    carrier: ShortStr | None = None
    cpu_cores: Annotated[StrictInt, Field(ge=0, le=1152)] | None = None
    external_storage_free_space: Annotated[StrictInt, Field(ge=0, le=1048576)] | None = None
    external_storage_size: Annotated[StrictInt, Field(ge=0, le=1048576)] | None = None
    form_factor: Literal["desktop", "laptop", "cellphone", "tablet", "smartwatch", "tv", "vr", "console", "other"] | None = None
    kernel_version: ShortStr | None = None
    languages: Annotated[list[str], Field(max_length=100)] | None = None
    locale: Annotated[str, Field(max_length=35)] | None = None
    model: ShortStr | None = None
    network_type: Literal["wifi", "cellular_2g", "cellular_3g", "cellular_4g", "cellular_5g", "cellular_6g", "ethernet", "unknown"] | None = None
    os_family: Literal["ios", "android", "macos", "windows", "linux", "bsd", "other"] | None = None
    os_name: ShortStr | None = None
    os_release_name: ShortStr | None = None
    os_version: ShortStr | None = None
    screen_density: Annotated[StrictInt, Field(ge=0, le=100000)] | None = None
    screen_height: Annotated[StrictInt, Field(ge=0, le=30720)] | None = None
    screen_width: Annotated[StrictInt, Field(ge=0, le=30720)] | None = None
    storage_free_space: Annotated[StrictInt, Field(ge=0, le=1048576)] | None = None
    storage_size: Annotated[StrictInt, Field(ge=0, le=1048576)] | None = None
    timezone: Annotated[str, Field(max_length=40)] | None = None
    timezone_abbr: Annotated[str, Field(max_length=5)] | None = None
    type: ShortStr | None = None




def _raw_values(value: Any) -> Any:
    """One value or a bounded list of them; one clear reason instead of a union's two."""
    if isinstance(value, list):
        if len(value) > MAX_VALUES_PER_FIELD:
            raise ValueError(f"{len(value)} values; at most {MAX_VALUES_PER_FIELD} per field")
        if all(type(item) is str for item in value):
            return value
    elif type(value) is str:
        return value
    raise ValueError("must be a string or a list of strings")


RawValues = Annotated[str | Annotated[list[str], Field(max_length=MAX_VALUES_PER_FIELD)], BeforeValidator(_raw_values)]


class RawUserData(_Strict):
    """User data as a shop sends it: raw values or SHA-256 hex, a string or a list."""

    em: RawValues | None = None
    ph: RawValues | None = None
    fn: RawValues | None = None
    ln: RawValues | None = None
    ge: RawValues | None = None
    db: RawValues | None = None
    ct: RawValues | None = None
    st: RawValues | None = None
    zp: RawValues | None = None
    country: RawValues | None = None
    external_id: RawValues | None = None
    hashed_maids: RawValues | None = None
    client_ip_address: str | None = None
    client_user_agent: str | None = None
    click_id: str | None = None
    partner_id: str | None = None


class EventConsent(_Strict):
    """What the shopper chose, as the API client recorded it (pinrelay's field, never sent to
    Pinterest; docs/privacy.md): true given, false refused, absent or null no choice. ``region``:
    where the shopper was, ISO 3166-1 alpha-2 or 3166-2 (``DE``, ``US-CA``)."""

    marketing: StrictBool | None = None
    sale_of_data: StrictBool | None = None
    analytics: StrictBool | None = None
    preferences: StrictBool | None = None
    region: Annotated[str, Field(pattern=r"^[A-Za-z]{2}(-?[A-Za-z0-9]{1,3})?$")] | None = None


class IncomingEvent(_Strict):
    """One event posted to ``POST /events``, in Pinterest's own field names (and pinrelay's
    ``consent``, which the consent policy reads and Pinterest never sees)."""

    event_name: str
    action_source: ActionSource
    event_id: Annotated[str, Field(min_length=1, max_length=256)]
    event_time: Int64 | None = None
    user_data: RawUserData
    custom_data: CustomData | None = None
    app_id: str | None = None
    app_info: AppInfo | None = None
    app_name: str | None = None
    app_version: str | None = None
    device_brand: str | None = None
    device_carrier: str | None = None
    device_info: DeviceInfo | None = None
    device_model: str | None = None
    device_type: str | None = None
    event_source_url: str | None = None
    language: str | None = None
    opt_out: StrictBool | None = None
    os_version: str | None = None
    partner_name: str | None = None
    wifi: StrictBool | None = None
    consent: EventConsent | None = None

    @field_validator("event_name")
    @classmethod
    def _known_event_name(cls, value: str) -> str:
        if value not in EVENT_NAMES:  # the value itself is not repeated: it could be anything
            raise ValueError(f"not one of Pinterest's event names: {', '.join(sorted(EVENT_NAMES))}")
        return value

    @field_validator("event_id")
    @classmethod
    def _event_id_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        if has_control_characters(value):
            # ids are shown to operators (logs, `pinrelay rejected`): no terminal escape sequences
            raise ValueError("must not contain control characters")
        return value


def has_control_characters(text: str) -> bool:
    """Unicode control (Cc) or format (Cf) characters: ESC, BEL, the bidi overrides..."""
    return any(unicodedata.category(char) in ("Cc", "Cf") for char in text)


def _field_names(*models: type[BaseModel]) -> frozenset[str]:
    return frozenset(name for model in models for name in model.model_fields)


# every field name pinrelay knows: a key outside it is the sender's input and is never echoed
KNOWN_FIELD_NAMES = _field_names(IncomingEvent, RawUserData, CustomData, Content, AppInfo, DeviceInfo,
                                 EventConsent) | {"data"}


class QueuedEvent(BaseModel):
    """The SQS message body: one hashed Pinterest event and what the sender needs to record it.

    Version 2 (ingest no longer claims the dedup key, the sender does); version 1 messages,
    queued before an upgrade, carry an ``expires_at`` the sender ignores."""

    model_config = ConfigDict(extra="ignore")

    v: Literal[1, 2] = 2
    ad_account_id: Annotated[str, Field(pattern=r"^\d{1,18}$")]
    source: str
    dedup_key: str
    accepted_at: int
    event: dict[str, Any]
    test: bool = False  # a test order or a verify event: Pinterest's test=true, in a request of its own
    # a reason code decided upstream to keep the event from Pinterest (the shopper's consent): the
    # sender records it ``not_sent`` with this reason and never posts it; such a message's event
    # carries only event_name, event_id, action_source and event_time
    withheld: str | None = None

    @property
    def is_offline(self) -> bool:
        """Pinterest cannot deduplicate these: they must never be sent twice."""
        return self.event.get("action_source") == "offline"


class EventResult(BaseModel):
    """The ingest answer for one event. ``withheld``: not sent by the merchant's consent policy
    (``withheld`` holds the reason code, ``consent``; ``reason`` says why)."""

    index: int
    status: Literal["accepted", "duplicate", "rejected", "error", "withheld"]
    event_id: str | None = None
    event_name: str | None = None
    withheld: str | None = None
    reason: str | None = None
    match_keys: list[str] | None = None
    warnings: list[str] | None = None
    # why an "error" was not queued, without the advice around it in ``reason`` (the offline
    # import gives its own advice); not part of the answer
    cause: str | None = Field(default=None, exclude=True)
