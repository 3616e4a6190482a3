"""Consent: what the shopper chose, what the order says, and whether pinrelay sends the order.

Plain Python, no AWS: every source calls the same policy (docs/privacy.md).

What a source gives
===================

A source's mapping puts an :class:`OrderConsent` on its ``PreparedEvent`` (``consent``): the
shopper's choice as it was recorded with the order (:class:`RecordedConsent`, or None when the
order carries none) and the order's channel and tags, which the merchant's exceptions select
on. Where the shopper is comes from the event itself: the countries of its addresses
(``user_data.country``, hashed) and the region the capture recorded. A new source (Stripe,
BigCommerce...) builds an ``OrderConsent`` from what its order says and adds its name to
``SOURCES``; nothing else changes. Stripe's comes from the Checkout Session's metadata
(``metadata_consent``); BigCommerce's orders carry no recorded choice, only their channel.

What the policy decides
=======================

``CONSENT_POLICY`` (:meth:`ConsentPolicy.parse`) is one setting: a mode, then optional clauses
separated by ``;``::

    respect                                  the default
    strict; channel:pos=respect; tag:subscription=respect; api=off; ldp=california

=========  ==================================================================================
off        pinrelay's behaviour before consent was captured: every order is sent; LDP only
           from Pinterest's ``opt_out`` field and ``ldp=``
respect    marketing refused: not sent; sale or sharing refused: sent with
           ``opt_out_type=LDP``; no recorded choice: sent as with ``off``
strict     as ``respect``, and an order with no recorded marketing choice is not sent when it
           comes from a region that needs opt-in consent (``OPT_IN_COUNTRIES``: any of its
           address countries, the region the capture recorded, or the capture saying the
           shop's banner asked this shopper to opt in)
=========  ==================================================================================

Clauses: ``<selector>=<mode>`` sets another mode for some orders, the first clause that matches
winning (selectors: a source name from ``SOURCES``; ``channel:<name>``, the order's Shopify
``source_name`` or WooCommerce ``created_via``, e.g. ``pos``; ``tag:<tag>``, a Shopify order tag,
e.g. a subscription app's renewal tag); ``ldp=never|california|always`` is what the retired
``LDP_POLICY`` said, LDP for an event without a recorded sale-or-sharing choice;
``opt_in=+BR,-CH`` adds countries to or removes them from ``OPT_IN_COUNTRIES``.

An order not sent for consent is ``withheld`` with the reason code ``consent``: answered 200
with its reason, counted (``EventsFiltered``, reason ``consent``), and queued as a marker that
holds no personal data, so that the ledger and ``pinrelay status`` show it (``pinrelay.ingest``).

The record the captures write
=============================

The storefront snippet (``web/shopify-theme-epik.js``, which keeps the click id too) and the WooCommerce snippet
(``web/woocommerce-consent.php``) store a small JSON object, the cart attribute / order meta
``_pinrelay_consent`` (``CONSENT_ATTRIBUTE``). No personal data: consent flags and a region.

* ``"via": "shopify"``: Shopify's Customer Privacy API
  (https://shopify.dev/docs/api/customer-privacy): ``marketing``, ``sale_of_data``,
  ``analytics``, ``preferences`` as ``currentVisitorConsent()`` gives them (``"yes"``, ``"no"``,
  ``""`` for no choice yet), ``allowed`` with what ``marketingAllowed()``,
  ``saleOfDataAllowed()``, ``analyticsProcessingAllowed()`` and ``preferencesProcessingAllowed()``
  answered, and ``region``, ``getRegion()`` (e.g. ``"DEBE"``, ``"USCA"``; ``""`` unknown).
* ``"via": "wp-consent-api"``: the WP Consent API plugin
  (https://wordpress.org/plugins/wp-consent-api/): ``type``, ``wp_get_consent_type()``
  (``"optin"`` or ``"optout"``); ``marketing``, ``statistics``, ``preferences``, the visitor's
  cookie for the category (``"allow"``, ``"deny"``, ``""`` none); ``allowed``, what
  ``wp_has_consent(category)`` answered.

A record that cannot be read costs only itself: the order is judged as one without a recorded
choice, with a warning.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from pinrelay.normalise import sha256_hex
from pinrelay.privacy import LdpPolicy

Mode = Literal["off", "respect", "strict"]
MODES: tuple[Mode, ...] = ("off", "respect", "strict")
LDP_POLICIES: tuple[LdpPolicy, ...] = ("never", "california", "always")
# the sources whose events pass through ingest (the metrics' ``source`` dimension); a new source adds its name
SOURCES = frozenset({"api", "shopify", "woocommerce", "offline_csv", "stripe", "bigcommerce"})
# the Shopify cart attribute (an order's note_attributes) and the WooCommerce order meta key
CONSENT_ATTRIBUTE = "_pinrelay_consent"
# the reason code of an order not sent for consent: EventsFiltered's reason, QueuedEvent.withheld
WITHHELD_CONSENT = "consent"
MAX_RECORD_CHARS = 1000

# Where ads measurement needs the shopper's opt-in before it happens (docs/privacy.md, "Regions"):
# the EEA (the GDPR and the ePrivacy Directive's Art. 5(3), through the EEA Agreement in IS, LI,
# NO), with the parts of its states that have ISO 3166-1 codes of their own; the United Kingdom
# (UK GDPR, PECR reg. 6) and Gibraltar; the Crown Dependencies, whose data protection laws follow
# the GDPR; Switzerland (revised FADP; counted as opt-in, as Shopify's banner and most EU
# merchants treat it). Change it per deployment with ``opt_in=+XX,-XX``.
EEA_COUNTRIES = frozenset({
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV",
    "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",  # the EU's 27
    "IS", "LI", "NO",  # the EEA's EFTA states
    "AX", "GF", "GP", "MQ", "RE", "YT", "MF",  # Åland (FI); France's outermost regions
})
OPT_IN_COUNTRIES = EEA_COUNTRIES | {"GB", "GI", "GG", "JE", "IM", "CH"}

_SHOPIFY_CHOICES = {"yes": True, "no": False, "": None}
_WP_CHOICES = {"allow": True, "deny": False, "": None}


class ConsentUnreadable(ValueError):
    """A recorded choice pinrelay cannot read; the message names what, never the value."""


@dataclass(frozen=True, slots=True)
class RecordedConsent:
    """The shopper's choice as it was recorded with the order.

    ``marketing``: True given, False refused, None no choice (the visitor never answered, or
    the platform does not ask where they are). ``sale_of_data``: False when they opted out of
    the sale or sharing of their data (sent with LDP). ``opt_in_asked``: the capture says the
    shop's banner needed this shopper's opt-in (Shopify: marketing not allowed without a
    choice; WP Consent API: consent type ``optin``). ``region``: ISO 3166-1 alpha-2 country
    where the shopper was, when the capture gives it."""

    via: str
    marketing: bool | None = None
    sale_of_data: bool | None = None
    opt_in_asked: bool = False
    region: str | None = None


@dataclass(frozen=True, slots=True)
class OrderConsent:
    """What an order says about consent: the recorded choice (None: no capture on this order),
    and its channel and tags (lowercase), on which the merchant's exceptions select."""

    recorded: RecordedConsent | None = None
    channel: str = ""
    tags: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ConsentDecision:
    """``send`` False: withheld, ``reason`` says why. ``ldp``: True the event carries
    ``opt_out_type=LDP``; False the recorded choice allows sale or sharing; None no recorded
    choice (the policy's ``ldp_without_choice`` and the event's ``opt_out`` decide)."""

    send: bool
    ldp: bool | None = None
    reason: str = ""
    mode: Mode = "respect"


# -- the policy ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsentPolicy:
    mode: Mode = "respect"
    exceptions: tuple[tuple[str, Mode], ...] = ()  # (selector, mode), in the order written
    ldp_without_choice: LdpPolicy = "never"
    ldp_given: bool = field(default=False, compare=False)  # ``ldp=`` was written (config checks LDP_POLICY against it)
    opt_in_countries: frozenset[str] = field(default=OPT_IN_COUNTRIES, repr=False)

    @classmethod
    def parse(cls, text: str) -> ConsentPolicy:
        """``CONSENT_POLICY`` -> the policy; ValueError naming the clause that is wrong."""
        clauses = [clause.strip() for clause in text.split(";")]
        first = clauses[0].lower() if clauses else ""
        if first not in MODES:
            raise ValueError(f"CONSENT_POLICY must start with a mode: {', '.join(MODES)} (e.g. 'respect' or "
                             f"'strict; channel:pos=respect')")
        exceptions: list[tuple[str, Mode]] = []
        ldp: LdpPolicy | None = None
        countries = set(OPT_IN_COUNTRIES)
        for number, clause in enumerate(clauses[1:], start=2):
            if not clause:
                continue
            name, equals, value = (part.strip() for part in clause.partition("="))
            name, value = name.lower(), value.strip()
            where = f"CONSENT_POLICY clause {number}"
            if not equals or not name or not value:
                raise ValueError(f"{where}: write <selector>=<mode>, ldp=<policy> or opt_in=+XX,-XX")
            if name == "ldp":
                if value.lower() not in LDP_POLICIES or ldp is not None:
                    raise ValueError(f"{where}: ldp= is one of {', '.join(LDP_POLICIES)}, given once")
                ldp = value.lower()  # type: ignore[assignment]
            elif name == "opt_in":
                _change_countries(countries, value, where)
            else:
                exceptions.append((_selector(name, where), _mode(value, where)))
        return cls(mode=first, exceptions=tuple(exceptions),  # type: ignore[arg-type]
                   ldp_without_choice=ldp or "never", ldp_given=ldp is not None, opt_in_countries=frozenset(countries))

    def mode_for(self, source: str, order: OrderConsent | None) -> Mode:
        """The mode for one order: the first exception that selects it, else the default."""
        order = order or OrderConsent()
        for selector, mode in self.exceptions:
            kind, _, name = selector.partition(":")
            if (kind == "channel" and name == order.channel) or (kind == "tag" and name in order.tags) \
                    or (not name and kind == source):
                return mode
        return self.mode

    def decide(self, order: OrderConsent | None, source: str, countries: Iterable[str] = ()) -> ConsentDecision:
        """Send or withhold one order, and whether its event carries LDP. ``countries``: the
        countries its addresses give, ISO alpha-2 or their SHA-256 (as ``user_data.country``)."""
        mode = self.mode_for(source, order)
        recorded = order.recorded if order else None
        if mode == "off":
            return ConsentDecision(send=True, mode=mode)
        if recorded is not None and recorded.marketing is False:
            where = VIA_NAMES.get(recorded.via, recorded.via)
            return ConsentDecision(send=False, reason=f"the shopper refused marketing ({where})", mode=mode)
        ldp = None if recorded is None or recorded.sale_of_data is None else not recorded.sale_of_data
        if mode == "strict" and (recorded is None or recorded.marketing is None):
            needed = self.opt_in_needed(recorded, countries)
            if needed:
                return ConsentDecision(send=False, reason=f"no recorded marketing consent, and {needed} "
                                                          "(CONSENT_POLICY strict)", mode=mode)
        return ConsentDecision(send=True, ldp=ldp, mode=mode)

    def opt_in_needed(self, recorded: RecordedConsent | None, countries: Iterable[str]) -> str | None:
        """Why the order needs opt-in consent, from what it says; None when nothing says so.
        Never names the country: an address's country is personal data."""
        for country in countries:
            text = str(country).strip()
            if text.upper() in self.opt_in_countries or text.lower() in self._hashed_opt_in_countries:
                return "an address of the order is in a country that needs opt-in consent"
        if recorded is not None and recorded.region in self.opt_in_countries:
            return "the shopper was in a country that needs opt-in consent"
        if recorded is not None and recorded.opt_in_asked:
            return "the shop's consent banner asked this shopper to opt in"
        return None

    @cached_property
    def _hashed_opt_in_countries(self) -> frozenset[str]:
        """The SHA-256 of each opt-in country as ``user_data.country`` holds it (lowercase): hashing
        is deterministic, so a hashed country is recognisable."""
        return frozenset(sha256_hex(code.lower()) for code in self.opt_in_countries)

    def describe(self) -> str:
        """The policy as CONSENT_POLICY text (canonical)."""
        parts = [self.mode, *(f"{selector}={mode}" for selector, mode in self.exceptions),
                 f"ldp={self.ldp_without_choice}"]
        added, removed = self.opt_in_countries - OPT_IN_COUNTRIES, OPT_IN_COUNTRIES - self.opt_in_countries
        if added or removed:
            parts.append("opt_in=" + ",".join([*(f"+{c}" for c in sorted(added)), *(f"-{c}" for c in sorted(removed))]))
        return "; ".join(parts)


# where a recorded choice came from, as a withheld event's reason names it
VIA_NAMES = {"shopify": "Shopify Customer Privacy API", "wp-consent-api": "WP Consent API",
             "api": "the event's consent field", "offline_csv": "the consent_marketing column",
             "stripe": "the Checkout Session's pinrelay_consent_marketing metadata"}


def _mode(value: str, where: str) -> Mode:
    mode = value.lower()
    if mode not in MODES:
        raise ValueError(f"{where}: the mode is one of {', '.join(MODES)}")
    return mode  # type: ignore[return-value]


def _selector(name: str, where: str) -> str:
    kind, colon, rest = name.partition(":")
    if colon and kind in ("channel", "tag") and rest.strip():
        return f"{kind}:{rest.strip()}"
    if not colon and name in SOURCES:
        return name
    raise ValueError(f"{where}: the selector is a source ({', '.join(sorted(SOURCES))}), channel:<name> or tag:<tag>")


def _change_countries(countries: set[str], value: str, where: str) -> None:
    for item in value.split(","):
        item = item.strip().upper()
        if len(item) != 3 or item[0] not in "+-" or not item[1:].isascii() or not item[1:].isalpha():
            raise ValueError(f"{where}: opt_in= lists ISO 3166-1 alpha-2 codes, each after + or - (e.g. +BR,-CH)")
        (countries.add if item[0] == "+" else countries.discard)(item[1:])


# -- reading what was recorded ------------------------------------------------------------------


def read_recorded_consent(text: Any) -> RecordedConsent:
    """The ``_pinrelay_consent`` value a capture stored; ConsentUnreadable when it cannot be read."""
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_RECORD_CHARS:
        raise ConsentUnreadable("not a consent record")
    try:
        record = json.loads(text)
    except ValueError:
        raise ConsentUnreadable("not JSON") from None
    if not isinstance(record, dict) or record.get("v") != 1:
        raise ConsentUnreadable("not a version 1 consent record")
    if record.get("via") == "shopify":
        return _from_shopify(record)
    if record.get("via") == "wp-consent-api":
        return _from_wp_consent_api(record)
    raise ConsentUnreadable("via is neither shopify nor wp-consent-api")


def _choice(record: dict[str, Any], key: str, values: dict[str, bool | None]) -> bool | None:
    value = record.get(key, "")
    if not isinstance(value, str) or value not in values:
        raise ConsentUnreadable(f"{key} is not one of {', '.join(repr(v) for v in values)}")
    return values[value]


def _allowed(record: dict[str, Any], key: str) -> bool | None:
    allowed = record.get("allowed") or {}
    value = allowed.get(key) if isinstance(allowed, dict) else None
    return value if isinstance(value, bool) else None


def _from_shopify(record: dict[str, Any]) -> RecordedConsent:
    """``currentVisitorConsent()`` says what the shopper chose; the ``...Allowed()`` answers add
    what Shopify applies without a choice: sale or sharing not allowed (an opt-out region's
    default, Global Privacy Control) is an opt-out; marketing not allowed without a choice means
    the banner needs this shopper's opt-in."""
    marketing = _choice(record, "marketing", _SHOPIFY_CHOICES)
    sale_of_data = _choice(record, "sale_of_data", _SHOPIFY_CHOICES)
    if sale_of_data is None and _allowed(record, "sale_of_data") is False:
        sale_of_data = False
    region = record.get("region", "")
    country = region[:2].upper() if isinstance(region, str) and region[:2].isascii() and region[:2].isalpha() else None
    return RecordedConsent(via="shopify", marketing=marketing, sale_of_data=sale_of_data,
                           opt_in_asked=marketing is None and _allowed(record, "marketing") is False, region=country)


def _from_wp_consent_api(record: dict[str, Any]) -> RecordedConsent:
    """The WP Consent API has no sale-of-data category: its ``marketing`` category is the one
    both opt-in banners (EU) and opt-out banners (US "Do not sell or share") set. So under
    ``optin`` a denied marketing is a refusal; under ``optout`` it is an opt-out of sale or
    sharing (sent with LDP, as Shopify's ``sale_of_data: no``)."""
    consent_type = record.get("type")
    marketing = _choice(record, "marketing", _WP_CHOICES)
    if consent_type == "optin":
        return RecordedConsent(via="wp-consent-api", marketing=marketing, opt_in_asked=marketing is None)
    if consent_type == "optout":
        if marketing is False:
            return RecordedConsent(via="wp-consent-api", sale_of_data=False)
        return RecordedConsent(via="wp-consent-api", marketing=marketing, sale_of_data=marketing)
    raise ConsentUnreadable("type is neither optin nor optout")


def recorded_from_flags(via: str, marketing: bool | None, sale_of_data: bool | None,
                        region: str | None = None) -> RecordedConsent | None:
    """A choice stated by an API client or a CSV row; None when it states nothing."""
    code = region.strip()[:2] if region else ""
    country = code.upper() if len(code) == 2 and code.isascii() and code.isalpha() else None
    if marketing is None and sale_of_data is None and country is None:
        return None
    return RecordedConsent(via=via, marketing=marketing, sale_of_data=sale_of_data, region=country)


# flat key-value consent, as a shop's server writes it into an order's metadata (Stripe's Checkout
# Session metadata: string values, keys up to 40 characters): docs/privacy.md, "Stripe"
METADATA_KEYS = {"marketing": "pinrelay_consent_marketing", "sale_of_data": "pinrelay_consent_sale_of_data",
                 "region": "pinrelay_consent_region"}
_METADATA_CHOICES = {"yes": True, "true": True, "no": False, "false": False, "": None}


def metadata_consent(metadata: Any, via: str) -> tuple[OrderConsent | None, list[str]]:
    """The choice a shop's server stated in an order's metadata (``METADATA_KEYS``: ``yes``/``no``,
    empty or absent for no recorded choice, and an ISO region); None when it states none. A value
    that cannot be read costs that value (no recorded choice for it), with a warning: the platform
    cannot be asked again, and a choice is never guessed either way."""
    if not isinstance(metadata, dict):
        return None, []
    warnings: list[str] = []
    choices: dict[str, bool | None] = {}
    for name in ("marketing", "sale_of_data"):
        value = metadata.get(METADATA_KEYS[name])
        text = value.strip().lower() if isinstance(value, str) else None
        if value is not None and text not in _METADATA_CHOICES:
            warnings.append(f"metadata.{METADATA_KEYS[name]}: not yes or no; the order is treated as one "
                            "without a recorded choice for it")
        choices[name] = _METADATA_CHOICES.get(text or "")
    region = metadata.get(METADATA_KEYS["region"])
    recorded = recorded_from_flags(via, choices["marketing"], choices["sale_of_data"],
                                   region if isinstance(region, str) else None)
    return (OrderConsent(recorded=recorded) if recorded else None), warnings


def order_consent(record: Any, channel: Any = "", tags: Iterable[str] = ()) -> tuple[OrderConsent, list[str]]:
    """An order's consent from its ``_pinrelay_consent`` value (None: the order has none), its
    channel and tags; with the warning when the record cannot be read (it then counts as none)."""
    warnings: list[str] = []
    recorded = None
    if record is not None:
        try:
            recorded = read_recorded_consent(record)
        except ConsentUnreadable as problem:
            warnings.append(f"{CONSENT_ATTRIBUTE}: {problem}; the order is treated as one without a recorded choice")
    channel_name = str(channel or "").strip().lower()
    return OrderConsent(recorded=recorded, channel=channel_name,
                        tags=frozenset(tag.strip().lower() for tag in tags if tag and tag.strip())), warnings


def decide_for_event(policy: ConsentPolicy, event: dict[str, Any], order: OrderConsent | None,
                     source: str) -> ConsentDecision:
    """``policy.decide`` for a mapped event: the countries are its (hashed) ``user_data.country``."""
    countries = (event.get("user_data") or {}).get("country") or []
    return policy.decide(order, source, [countries] if isinstance(countries, str) else countries)
