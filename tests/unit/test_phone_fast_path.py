"""The North-American fast path of normalise_phone gives exactly what phonenumbers gives.

``_nanp_e164`` answers without phonenumbers for the common +1 shapes and says None for anything
else; ``_phonenumbers_e164`` is the phonenumbers route, the reference. Every area code is tried,
including the invalid ones (0xx, 1xx, N11) where phonenumbers' country-code and national-prefix
rules would differ; random strings over the characters the fast path takes do the rest.
"""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinrelay.normalise import NormalisationError, _nanp_e164, _phonenumbers_e164, normalise_phone

SHAPES = [
    "{a}{b}{c}", "({a}) {b}-{c}", "{a}-{b}-{c}", "{a}.{b}.{c}", "{a} {b} {c}", "1{a}{b}{c}", "1 ({a}) {b}-{c}",
    "1-{a}-{b}-{c}", "+1{a}{b}{c}", "+1 {a} {b} {c}", "+1-{a}-{b}-{c}", "+1 ({a}) {b}-{c}", "+ 1 {a} {b} {c}",
    "({a}){b}{c}", "-{a}-{b}-{c}-", ".({a}).{b}.{c}.", "(((1 {a} {b} {c}", "{a} {b} {c} )",
    # not fast-path shapes, checked to be left alone or to agree
    "+({a}) {b}-{c}", "+{a}{b}{c}", "++1{a}{b}{c}", "{a}{b}", "+1 {a}{b}", "1{a}{b}{c}0", "0{a}{b}{c}",
    "001 {a} {b} {c}", "011 {a} {b} {c}", "{a}{b}{c}(1)", "1 1{a} {b} {c}",
]
REGIONS = [None, "US", "CA"]


def reference(raw: str, region: str | None) -> str | tuple[str, str]:
    """phonenumbers' answer: the E.164 digits, or ("error", why)."""
    try:
        return _phonenumbers_e164(raw, region)
    except NormalisationError as exc:
        return ("error", str(exc))


def reference_normalise_phone(value: str, country: str | None) -> str | tuple[str, str]:
    """normalise_phone as it was before the fast path: everything through phonenumbers."""
    raw = value.strip()
    region = country.upper() if country else None
    if not raw.startswith("+") and raw.startswith("00"):
        raw = "+" + raw[2:]
    return reference(raw, region)


def outcome(value: str, country: str | None) -> str | tuple[str, str]:
    try:
        return normalise_phone(value, country)
    except NormalisationError as exc:
        return ("error", str(exc))


def test_every_area_code_in_every_shape_agrees_with_phonenumbers():
    rng = random.Random(20240601)
    fast = 0
    mismatches = []
    for area in range(1000):
        for shape in SHAPES:
            raw = shape.format(a=f"{area:03d}", b=f"{rng.randint(0, 999):03d}", c=f"{rng.randint(0, 9999):04d}")
            for region in REGIONS:
                got = _nanp_e164(raw, region)
                if got is None:
                    continue
                fast += 1
                if got != reference(raw, region):
                    mismatches.append((raw, region, got, reference(raw, region)))
    assert mismatches == []
    assert fast > 20_000  # the fast path is really taken


@pytest.mark.parametrize("exchange", ["000", "011", "111", "211", "555", "911", "958", "999"])
def test_special_exchanges_agree_with_phonenumbers(exchange):
    for area in ("200", "211", "415", "555", "800", "900", "999"):
        for raw in (f"{area}{exchange}0134", f"1 {area} {exchange} 0134", f"+1 ({area}) {exchange}-0134"):
            for region in REGIONS:
                got = _nanp_e164(raw, region)
                assert got is None or got == reference(raw, region), (raw, region)


@pytest.mark.parametrize(
    ("raw", "country", "e164"),
    [("(415) 555-0134", "us", "14155550134"), ("415.555.0134", "US", "14155550134"),
     ("1-415-555-0134", "us", "14155550134"), ("+1 416 555 0134", "ca", "14165550134"),
     ("+1 (502) 459-2181", None, "15024592181"), ("613-555-0143", "ca", "16135550143"),
     ("001 415 555 0134", None, "14155550134"), ("+1 415 555 0134", "us", "14155550134")],
)
def test_common_north_american_shapes_take_the_fast_path(raw, country, e164):
    region = country.upper() if country else None
    prepared = "+" + raw.strip()[2:] if raw.startswith("00") else raw
    assert _nanp_e164(prepared, region) == e164
    assert normalise_phone(raw, country) == e164 == reference_normalise_phone(raw, country)


@pytest.mark.parametrize(
    ("raw", "country"),
    [("555-0134", "us"),  # 7 digits: phonenumbers finds it possible (local only)
     ("123 456 7890", "us"), ("1 (123) 456-7890", "us"), ("+1 023 456 7890", None),  # area code 0xx / 1xx
     ("4155550134", None),  # no country code, no country
     ("011 44 20 7946 0018", "us"),  # international dialling from the US
     ("415-555-0134 x12", "us"), ("415-555-0134 ext. 12", "us"), ("1-800-FLOWERS", "us"),  # extension, letters
     ("\uff14\uff11\uff15 555 0134", "us"), ("415\u00a0555\u00a00134", "us"),  # fullwidth digits, no-break space
     ("(415) 555-0134", "gb"), ("+1 415 555 0134", "gb"),  # other regions
     ("415 555 0134 555", "us"), ("+44 20 7946 0018", None)],
)
def test_other_shapes_are_left_to_phonenumbers(raw, country):
    region = country.upper() if country else None
    assert _nanp_e164(raw.strip(), region) is None
    assert outcome(raw, country) == reference_normalise_phone(raw, country)


phone_like = st.text(
    alphabet=st.sampled_from(list("0123456789" * 4 + " +().-") + ["x", "/", "\u00a0", "\uff11", "#", "e"]), max_size=45
)
countries = st.sampled_from([None, "us", "US", "ca", "CA", "gb", "de", "fr", "jp", "mx", ""])


@settings(max_examples=1500, deadline=None)
@given(phone_like, countries)
def test_normalise_phone_is_phonenumbers_on_random_strings(value, country):
    assert outcome(value, country) == reference_normalise_phone(value, country)


@st.composite
def nanp_like(draw):
    """A prefix and 9-12 digits with punctuation here and there."""
    text = draw(st.sampled_from(["", "1", "+1", "+", "00", "001", "011"])) + draw(
        st.text(alphabet="0123456789", min_size=9, max_size=12))
    cuts = draw(st.lists(st.tuples(st.integers(0, len(text)), st.sampled_from([" ", "-", ".", "(", ")", " (", ") "])),
                         max_size=4))
    for position, separator in sorted(cuts, reverse=True):
        text = text[:position] + separator + text[position:]
    return text


@settings(max_examples=1000, deadline=None)
@given(nanp_like(), countries)
def test_normalise_phone_is_phonenumbers_on_north_american_looking_numbers(value, country):
    assert outcome(value, country) == reference_normalise_phone(value, country)
