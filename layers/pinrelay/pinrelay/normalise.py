"""Normalisation and SHA-256 hashing of user data, as Pinterest's field descriptions say.

Every hashed field has a rule (see docs/normalisation.md):

=============  ==============================================================
em             trimmed, lowercase
ph             digits only with country code (E.164 without '+'), via phonenumbers;
               the region comes from the address country
fn, ln         trimmed, lowercase
ct             lowercase, without spaces or punctuation
st             two-letter code, lowercase (US and Canadian names mapped)
zp             US: first 5 digits; elsewhere letters and digits kept, lowercase, no spaces
country        ISO 3166-1 alpha-2, lowercase
ge             f, m or n
db             YYYYMMDD
external_id    trimmed
hashed_maids   trimmed, lowercase
=============  ==============================================================

A value that already is a SHA-256 hex digest (64 hex characters, any case) is kept, lowercased,
never hashed twice. Empty values are dropped. This module imports nothing from AWS.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable, Iterable
from datetime import date

HASHED_FIELDS = ("em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country", "external_id", "hashed_maids")
CLEAR_FIELDS = ("client_ip_address", "client_user_agent", "click_id", "partner_id")

_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_NON_ALNUM = re.compile(r"[\W_]+", re.UNICODE)
_NON_DIGIT = re.compile(r"\D+")
_SUBDIVISION = re.compile(r"([A-Za-z]{2})-(\w{1,3})")
_ANY_DIGIT = re.compile(r"\d")  # any Unicode decimal digit (Arabic-Indic, fullwidth, ...)
_US_ZIP = re.compile(r"\d{5}(-?\d{4})?")
_BIRTH_DATE = re.compile(r"\d{4}\D?\d{2}\D?\d{2}")
# A North-American number as shops write it: ASCII digits with spaces, dashes, dots or brackets,
# '+' only in front (see _nanp_e164).
_NANP_SHAPE = re.compile(r"\+?[0-9 ().\-]{10,40}")
_NANP_PUNCTUATION = str.maketrans("", "", "+ ().-")

US_STATES = {
    "alabama": "al", "alaska": "ak", "arizona": "az", "arkansas": "ar", "california": "ca",
    "colorado": "co", "connecticut": "ct", "delaware": "de", "district of columbia": "dc",
    "florida": "fl", "georgia": "ga", "hawaii": "hi", "idaho": "id", "illinois": "il",
    "indiana": "in", "iowa": "ia", "kansas": "ks", "kentucky": "ky", "louisiana": "la",
    "maine": "me", "maryland": "md", "massachusetts": "ma", "michigan": "mi", "minnesota": "mn",
    "mississippi": "ms", "missouri": "mo", "montana": "mt", "nebraska": "ne", "nevada": "nv",
    "new hampshire": "nh", "new jersey": "nj", "new mexico": "nm", "new york": "ny",
    "north carolina": "nc", "north dakota": "nd", "ohio": "oh", "oklahoma": "ok", "oregon": "or",
    "pennsylvania": "pa", "rhode island": "ri", "south carolina": "sc", "south dakota": "sd",
    "tennessee": "tn", "texas": "tx", "utah": "ut", "vermont": "vt", "virginia": "va",
    "washington": "wa", "west virginia": "wv", "wisconsin": "wi", "wyoming": "wy",
    "puerto rico": "pr", "guam": "gu", "american samoa": "as", "virgin islands": "vi",
    "u.s. virgin islands": "vi", "northern mariana islands": "mp",
    "armed forces americas": "aa", "armed forces europe": "ae", "armed forces pacific": "ap",
}
CA_PROVINCES = {
    "alberta": "ab", "british columbia": "bc", "manitoba": "mb", "new brunswick": "nb",
    "newfoundland and labrador": "nl", "nova scotia": "ns", "ontario": "on",
    "prince edward island": "pe", "quebec": "qc", "québec": "qc", "saskatchewan": "sk",
    "northwest territories": "nt", "nunavut": "nu", "yukon": "yt",
}
_SUBDIVISION_NAMES = {**US_STATES, **CA_PROVINCES}

_GENDERS = {
    "f": "f", "female": "f", "w": "f", "woman": "f",
    "m": "m", "male": "m", "man": "m",
    "n": "n", "non-binary": "n", "nonbinary": "n", "non binary": "n", "x": "n",
}


class NormalisationError(ValueError):
    """A value that cannot be put in the form Pinterest asks for; it is dropped with a warning."""


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_sha256_hex(value: str) -> bool:
    return len(value) == 64 and _SHA256_HEX.fullmatch(value) is not None


def normalise_email(value: str, country: str | None = None) -> str:
    email = value.strip().lower()
    if "@" not in email:
        raise NormalisationError("not an email address")
    return email


def _nanp_e164(raw: str, region: str | None) -> str | None:
    """The E.164 digits phonenumbers gives for a North-American (+1) number in the common shapes,
    without phonenumbers (~1 µs instead of ~25); None for anything else, which then goes through
    phonenumbers. Taken: '+1' and 10 digits; or, with region US or CA, 10 digits or '1' and 10
    digits. The area code must start with 2-9: there phonenumbers strips nothing more and finds
    every 10-digit national number possible. Other shapes (an area code 0xx/1xx, 7 digits, letters,
    extensions, non-ASCII digits or punctuation, '011' or '00' dialling, other regions) are left to
    it: its country-code and national-prefix rules differ there (tests/unit/test_phone_fast_path.py
    checks both agree)."""
    if region not in (None, "US", "CA") or _NANP_SHAPE.fullmatch(raw) is None:
        return None
    digits = raw.translate(_NANP_PUNCTUATION)
    if raw[0] == "+":
        if len(digits) == 11 and digits[0] == "1" and "2" <= digits[1] <= "9":
            return digits
        return None
    if region is None:  # no '+' and no country: phonenumbers refuses it
        return None
    if len(digits) == 10 and "2" <= digits[0] <= "9":
        return "1" + digits
    if len(digits) == 11 and digits[0] == "1" and "2" <= digits[1] <= "9":
        return digits
    return None


def normalise_phone(value: str, country: str | None = None) -> str:
    raw = value.strip()
    region = country.upper() if country else None
    if not raw.startswith("+") and raw.startswith("00"):
        raw = "+" + raw[2:]
    # The one fast path left in ingest: on the bench's workload (phones of five countries) it
    # takes normalising a phone from 25.6 to 11.6 µs on average, ~14 µs of the ~90 µs an event
    # costs, which keeps 1000-event requests clear of the 4x-the-floor target (3.0-3.3x with it,
    # 3.6-4.5x without, in runs of `make bench` on 2026-11-30).
    fast = _nanp_e164(raw, region)
    if fast is not None:
        return fast
    return _phonenumbers_e164(raw, region)


def _phonenumbers_e164(raw: str, region: str | None) -> str:
    import phonenumbers  # deferred: only events with a non-North-American phone pay for it

    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        if region is None and not raw.startswith("+"):
            raise NormalisationError("phone number without country code and no address country to take it from") from exc
        raise NormalisationError("not a phone number") from exc
    if not phonenumbers.is_possible_number(number):
        raise NormalisationError("not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]


def normalise_name(value: str, country: str | None = None) -> str:
    return " ".join(value.split()).lower()


def normalise_city(value: str, country: str | None = None) -> str:
    return _NON_ALNUM.sub("", value.lower())


def normalise_state(value: str, country: str | None = None) -> str:
    text = " ".join(value.split()).lower()
    if len(text) == 2 and text.isalpha():
        return text
    if text in _SUBDIVISION_NAMES:
        return _SUBDIVISION_NAMES[text]
    match = _SUBDIVISION.fullmatch(text)  # ISO 3166-2 such as "US-KY", "JP-13"
    if match:
        return match.group(2).lower()
    state = _NON_ALNUM.sub("", text)
    if not state:
        raise NormalisationError("not a state")
    return state


def ascii_digits(text: str) -> str:
    """Unicode decimal digits as 0-9: Python's regex and int() take them as digits, but Pinterest
    hashes ASCII ones (an Arabic-Indic birth date would otherwise hash as a value that never matches)."""
    return text if text.isascii() else _ANY_DIGIT.sub(lambda match: str(int(match.group())), text)


def normalise_zip(value: str, country: str | None = None) -> str:
    text = ascii_digits(value).strip().lower()
    if country is None and _US_ZIP.fullmatch(text):
        country = "us"
    if country and country.lower() == "us":
        digits = _NON_DIGIT.sub("", text)
        if len(digits) < 5:
            raise NormalisationError("US zip code with fewer than 5 digits")
        return digits[:5]
    zip_code = _NON_ALNUM.sub("", text)
    if not zip_code:
        raise NormalisationError("not a postal code")
    return zip_code


def normalise_country(value: str, country: str | None = None) -> str:
    text = value.strip().lower()
    if len(text) != 2 or not text.isascii() or not text.isalpha():
        raise NormalisationError("not an ISO 3166-1 alpha-2 country code")
    return text


def normalise_gender(value: str, country: str | None = None) -> str:
    key = value.strip().lower()
    if key not in _GENDERS:
        raise NormalisationError("gender must be f, m or n")
    return _GENDERS[key]


def normalise_birth_date(value: str, country: str | None = None) -> str:
    value = ascii_digits(value)
    digits = _NON_DIGIT.sub("", value)
    if len(digits) != 8 or not _BIRTH_DATE.fullmatch(value.strip()):
        raise NormalisationError("birth date must be YYYYMMDD or YYYY-MM-DD")
    try:
        date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError as exc:
        raise NormalisationError("not a calendar date") from exc
    return digits


def normalise_external_id(value: str, country: str | None = None) -> str:
    return value.strip()


def normalise_maid(value: str, country: str | None = None) -> str:
    return value.strip().lower()


NORMALISERS: dict[str, Callable[[str, str | None], str]] = {
    "em": normalise_email,
    "ph": normalise_phone,
    "fn": normalise_name,
    "ln": normalise_name,
    "ge": normalise_gender,
    "db": normalise_birth_date,
    "ct": normalise_city,
    "st": normalise_state,
    "zp": normalise_zip,
    "country": normalise_country,
    "external_id": normalise_external_id,
    "hashed_maids": normalise_maid,
}


class UserDataBuilder:
    """Collects raw user data, normalises and hashes it; raw values are never kept.

    ``add`` takes one raw value with the country of the address it came from (for ph and zp).
    ``build`` returns the Pinterest ``user_data`` object: hashed fields as lists of unique
    lowercase hex digests, clear fields as strings. ``warnings`` names each dropped value's field.
    """

    __slots__ = ("_hashed", "_clear", "warnings")

    def __init__(self) -> None:
        # field -> its digests in order, as a dict used as an ordered set: adding a value stays
        # O(1) however many a field has (a list membership test made one event of 100 000
        # e-mails cost 45 s of CPU)
        self._hashed: dict[str, dict[str, None]] = {}
        self._clear: dict[str, str] = {}
        self.warnings: list[str] = []

    def add(self, field: str, value: str | None, country: str | None = None) -> None:
        """One raw value; a whole number is read as its digits (a phone or zip a platform sent
        as a number), any other value that is not text is dropped with a warning (a source's
        field that cannot be read costs that value, never the event)."""
        if value is None:
            return
        text = _text(value)
        if text is None:
            self.warnings.append(f"user_data.{field}: value dropped, not text")
            return
        text = text.strip()
        if not text:
            return
        if is_sha256_hex(text):  # already hashed by the sender: kept, never hashed twice
            digest = text.lower()
        else:
            try:
                digest = sha256_hex(NORMALISERS[field](text, country))
            except NormalisationError as exc:
                self.warnings.append(f"user_data.{field}: value dropped, {exc}")
                return
        self._hashed.setdefault(field, {})[digest] = None

    def add_all(self, field: str, values: Iterable[str | None], country: str | None = None) -> None:
        for value in values:
            self.add(field, value, country)

    def set_clear(self, field: str, value: str | None) -> None:
        if value is not None:
            text = _text(value)
            if text is None:
                self.warnings.append(f"user_data.{field}: value dropped, not text")
                return
            text = text.strip()
            if text and field not in self._clear:
                self._clear[field] = text

    def build(self) -> dict[str, object]:
        return {**{field: list(values) for field, values in self._hashed.items()}, **self._clear}


def _text(value: object) -> str | None:
    """A raw value as text: text as it is, a whole number as its digits, None for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def routable_ip(value: str | None) -> str | None:
    """The shopper's IP address as Pinterest takes it, or None: empty, not an IP address (nor
    text), or the unspecified address (``0.0.0.0``, ``::``) a platform sends when it has none."""
    if not value or not isinstance(value, str):
        return None
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    return None if address.is_unspecified else str(address)


def address_country(*countries: str | None) -> str | None:
    """The first usable ISO alpha-2 country among the candidates, lowercase."""
    for country in countries:
        if country and isinstance(country, str) and not is_sha256_hex(country.strip()):
            try:
                return normalise_country(country)
            except NormalisationError:
                continue
    return None
