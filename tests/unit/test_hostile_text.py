"""Text that is not text, numbers that break the decimal context, digits that are not 0-9: the
helpers the ingest uses to refuse or normalise them (tests/security has the same over HTTP)."""

import json

import pytest
from pydantic import ValidationError

from pinrelay.events import EventRejected, PreparedEvent, check_deliverable, prepare_api_event, unsafe_text_path
from pinrelay.models import CustomData
from pinrelay.normalise import ascii_digits, normalise_birth_date, normalise_zip, sha256_hex


def test_unsafe_text_path_names_the_field_and_ignores_valid_text():
    assert unsafe_text_path({"em": ["ok", "\U0001f600", "\u202e", "\x00", "\ufffd"]}) is None
    assert unsafe_text_path({"user_data": {"em": ["a@b.c", "\ud800"]}}) == "user_data.em[1]"
    assert (
        unsafe_text_path({"custom_data": {"contents": [{"item_name": "\uffff"}]}})
        == "custom_data.contents[0].item_name"
    )
    assert unsafe_text_path({"custom_data": {"\udfff": 1}}) == "custom_data (a field name)"
    # a key pinrelay does not know is the sender's input: it is not echoed
    assert unsafe_text_path({"maria@example.com": "\ud800"}) == "(an unknown field)"
    assert unsafe_text_path("\ufffe") == "event"


def test_unsafe_text_path_is_iterative():
    deep = json.loads("[" * 900 + '"\\ud800"' + "]" * 900)
    assert unsafe_text_path({"contents": deep}) == "contents" + "[0]" * 900


def test_an_api_event_with_a_lone_surrogate_is_rejected_without_echoing_it(now):
    raw = {
        "event_name": "checkout",
        "action_source": "web",
        "event_id": "\ud800",
        "user_data": {"em": "a@b.c", "fn": "\udc00"},
    }
    with pytest.raises(EventRejected) as rejected:
        prepare_api_event(raw, now)
    assert rejected.value.reason.startswith("event_id: holds a lone surrogate")
    assert rejected.value.event_id is None and rejected.value.event_name == "checkout"


def test_a_mapped_event_with_unsafe_text_is_not_deliverable(now):
    event = {
        "event_name": "checkout",
        "action_source": "web",
        "event_id": "1",
        "event_time": now,
        "user_data": {"em": ["a" * 64]},
        "custom_data": {"contents": [{"item_name": "\uffff"}]},
    }
    with pytest.raises(EventRejected) as rejected:
        check_deliverable(PreparedEvent(event=event), now)
    assert rejected.value.reason.startswith("custom_data.contents[0].item_name: ")


@pytest.mark.parametrize("value", ["1e999999999", "-1e999999999", 10**4000, "9" * 5000])
def test_huge_money_is_too_large_not_a_decimal_overflow(value):
    with pytest.raises(ValidationError) as error:
        CustomData.model_validate({"value": value})
    assert "is too large" in str(error.value)


def test_unicode_digits_are_folded_to_ascii_before_hashing():
    assert ascii_digits("\u0661\u0669\u0668\u0664-\u0660\u0667-\u0661\u0666") == "1984-07-16"
    assert ascii_digits("\uff14\uff10\uff12\uff10\uff12") == "40202"
    assert ascii_digits("SW1A 1AA") == "SW1A 1AA"
    assert normalise_birth_date("\u0661\u0669\u0668\u0664-\u0660\u0667-\u0661\u0666") == "19840716"
    assert normalise_zip("\uff14\uff10\uff12\uff10\uff12-\uff11\uff12\uff13\uff14", "us") == "40202"
    assert normalise_zip("\u0664\u0660\u0662\u0660\u0662") == "40202"  # no country: 5 digits is a US zip
    assert sha256_hex(normalise_birth_date("\u0661\u0669\u0669\u0660\u0660\u0662\u0662\u0668")) == sha256_hex(
        "19900228"
    )
