"""Golden vectors for each user_data rule: the expected normal form is written out by hand and
hashed here with hashlib, independently of pinrelay's own hashing."""

import hashlib

import pytest

from pinrelay.normalise import NORMALISERS, NormalisationError, UserDataBuilder, address_country, routable_ip


def h(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.mark.parametrize(
    ("field", "raw", "country", "normal"),
    [
        ("em", "  Bob.Norman@Mail.Example.COM ", None, "bob.norman@mail.example.com"),
        ("ph", "+1(502)-459-2181", None, "15024592181"),
        ("ph", "555-625-1199", "us", "15556251199"),
        ("ph", "020 7946 0018", "gb", "442079460018"),
        ("ph", "0049 30 901820", None, "4930901820"),
        ("ph", "030 901820", "de", "4930901820"),
        ("ph", "+81 3-1234-5678", None, "81312345678"),
        ("ph", "(613) 555-0143", "ca", "16135550143"),
        ("fn", "  Léon ", None, "léon"),
        ("ln", "O'Brien", None, "o'brien"),
        ("ct", "St. Louis", None, "stlouis"),
        ("ct", "München", None, "münchen"),
        ("ct", "Winston-Salem", None, "winstonsalem"),
        ("st", "Kentucky", None, "ky"),
        ("st", "KY", None, "ky"),
        ("st", "British Columbia", None, "bc"),
        ("st", "JP-13", "jp", "13"),
        ("zp", "40202-1234", "us", "40202"),
        ("zp", "402021234", None, "40202"),
        ("zp", "SW1A 1AA", "gb", "sw1a1aa"),
        ("zp", "K1A 0B1", "ca", "k1a0b1"),
        ("zp", "10115", "de", "10115"),
        ("zp", "100-0001", "jp", "1000001"),
        ("country", "US", None, "us"),
        ("ge", "Female", None, "f"),
        ("ge", "M", None, "m"),
        ("ge", "non-binary", None, "n"),
        ("db", "1990-02-28", None, "19900228"),
        ("db", "19900228", None, "19900228"),
        ("external_id", "  cust-42 ", None, "cust-42"),
        ("hashed_maids", " AEBE52E7-03EE-455A-B3C4-E57283966239 ", None, "aebe52e7-03ee-455a-b3c4-e57283966239"),
    ],
)
def test_rule_gives_the_normal_form(field, raw, country, normal):
    assert NORMALISERS[field](raw, country) == normal
    builder = UserDataBuilder()
    builder.add(field, raw, country)
    assert builder.build() == {field: [h(normal)]}


@pytest.mark.parametrize(
    ("field", "raw"),
    [("em", "not-an-email"), ("country", "United States"), ("ge", "unknown"), ("db", "28/02/1990"),
     ("db", "1990-02-30"), ("ph", "12"), ("ph", "5556251199")],
)
def test_values_that_cannot_be_normalised_are_dropped_with_a_warning_naming_the_field(field, raw):
    with pytest.raises(NormalisationError):
        NORMALISERS[field](raw, None)
    builder = UserDataBuilder()
    builder.add(field, raw)
    assert builder.build() == {}
    assert builder.warnings and builder.warnings[0].startswith(f"user_data.{field}:")
    assert raw not in builder.warnings[0]  # the raw value never appears in a message


def test_already_hashed_values_are_kept_lowercased_not_hashed_twice():
    digest = h("bob@example.com")
    builder = UserDataBuilder()
    builder.add("em", digest.upper())
    builder.add("em", "BOB@example.com")  # same person, raw: same digest, kept once
    assert builder.build() == {"em": [digest]}


def test_empty_values_are_dropped_not_hashed():
    builder = UserDataBuilder()
    builder.add("em", "   ")
    builder.add("fn", "")
    builder.add("ln", None)
    assert builder.build() == {}
    assert builder.warnings == []


def test_several_emails_each_hashed_in_order():
    builder = UserDataBuilder()
    builder.add_all("em", ["A@x.com", "b@x.com", "a@X.com"])
    assert builder.build() == {"em": [h("a@x.com"), h("b@x.com")]}


def test_clear_fields_stay_clear_and_first_wins():
    builder = UserDataBuilder()
    builder.set_clear("client_ip_address", " 216.3.128.12 ")
    builder.set_clear("client_ip_address", "10.0.0.1")
    builder.set_clear("client_user_agent", "Mozilla/5.0")
    assert builder.build() == {"client_ip_address": "216.3.128.12", "client_user_agent": "Mozilla/5.0"}


@pytest.mark.parametrize(
    ("raw", "sent"),
    [
        ("216.3.128.12", "216.3.128.12"),
        (" 216.3.128.12 ", "216.3.128.12"),
        ("2001:DB8::1", "2001:db8::1"),  # written the one way
        ("0.0.0.0", None),  # Shopify's sample order (fixtures): no address known
        ("::", None),
        ("", None),  # WooCommerce's sample orders (fixtures)
        (None, None),
        ("not an address", None),
        ("216.3.128.12, 10.0.0.1", None),  # a forwarded-for list is not one address
    ],
)
def test_routable_ip(raw, sent):
    assert routable_ip(raw) == sent


def test_address_country_takes_the_first_usable_code():
    assert address_country(None, "Canada", "CA", "US") == "ca"
    assert address_country(h("us")) is None


ADDRESSES = {
    # country: (raw user_data, expected normal forms)
    "US": ({"ph": "(502) 459-2181", "ct": "Louisville", "st": "Kentucky", "zp": "40202-3411", "country": "US"},
           {"ph": "15024592181", "ct": "louisville", "st": "ky", "zp": "40202", "country": "us"}),
    "GB": ({"ph": "020 7946 0018", "ct": "London", "st": "ENG", "zp": "SW1A 1AA", "country": "GB"},
           {"ph": "442079460018", "ct": "london", "st": "eng", "zp": "sw1a1aa", "country": "gb"}),
    "CA": ({"ph": "613-555-0143", "ct": "Saint-Jean-sur-Richelieu", "st": "Québec", "zp": "J3B 1A1", "country": "ca"},
           {"ph": "16135550143", "ct": "saintjeansurrichelieu", "st": "qc", "zp": "j3b1a1", "country": "ca"}),
    "DE": ({"ph": "030 901820", "ct": "Frankfurt am Main", "st": "HE", "zp": "60311", "country": "DE"},
           {"ph": "4930901820", "ct": "frankfurtammain", "st": "he", "zp": "60311", "country": "de"}),
    "JP": ({"ph": "03-1234-5678", "ct": "Chiyoda-ku", "st": "JP-13", "zp": "100-0001", "country": "JP"},
           {"ph": "81312345678", "ct": "chiyodaku", "st": "13", "zp": "1000001", "country": "jp"}),
}


@pytest.mark.parametrize("country", sorted(ADDRESSES))
def test_whole_addresses_by_country(country):
    from pinrelay.events import hash_raw_user_data

    raw, normal = ADDRESSES[country]
    hashed, warnings = hash_raw_user_data({"em": "someone@example.com", **raw})
    assert warnings == []
    assert {field: hashed[field] for field in normal} == {field: [h(value)] for field, value in normal.items()}


@pytest.mark.parametrize(
    ("raw", "normal"),
    [("+44 20 7946 0018", "442079460018"), ("0044 20 7946 0018", "442079460018"), ("+1-415-555-0134", "14155550134"),
     ("+49 (0)30 901820", "4930901820"), ("+81 90-1234-5678", "819012345678")],
)
def test_international_phone_formats_need_no_country(raw, normal):
    assert NORMALISERS["ph"](raw, None) == normal
