"""Ingest answers exactly what the reference path answered (tests/unit/_reference.py, the code
before the plain-code rewrite): the same prepared events, key order included, the same warnings,
the same rejections naming the same field; batch and single preparation alike; message JSON and
match keys too. And the one request-level shortcut kept, ``json_text_is_clean``, never spares the check of an event that needs it. The
bench's workload through the same paths: tests/bench/test_workload_as_reference.py."""

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinrelay.events import (
    EventRejected,
    hash_raw_user_data,
    json_text_is_clean,
    prepare_api_event,
    prepare_api_events,
    unsafe_text_path,
)
from pinrelay.ingest import queued_message_body
from pinrelay.models import EVENT_NAMES
from pinrelay.normalise import UserDataBuilder
from pinrelay.privacy import _ADDRESS_FIELDS, match_keys
from tests.unit import _reference as reference

NOW = int(time.time())
SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Text that trips the unsafe-text check (lone surrogates, U+FFFE, U+FFFF), text whose UTF-8 shares
# their lead bytes (Hangul ED 80-9F, U+F000-U+FFFD: EF ..), and ordinary text.
HOSTILE = ["\ud800", "\udbff", "\udc00", "\udfff", "\ufffe", "\uffff"]
LOOKALIKE = ["한", "국", "\ud7a3", "\ufffd", "\uff21", "\uffe0", "\uf8ff", "\U0001f600", "\u202e", "\x00", "é"]
characters = st.one_of(st.characters(codec="utf-8", exclude_characters="\ufffe\uffff"), st.sampled_from(LOOKALIKE))
plain_texts = st.one_of(st.text(characters, max_size=12),
                        st.sampled_from(["", " ", "US", "ca", "a@b.co", "12.50", "1e400"]))
hostile_texts = st.tuples(plain_texts, st.sampled_from(HOSTILE), plain_texts).map("".join)
texts = plain_texts  # events are made of these; mutated() and json_values bring the hostile ones
any_texts = st.one_of(plain_texts, hostile_texts)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), any_texts)
json_values = st.recursive(
    scalars, lambda children: st.lists(children, max_size=3) | st.dictionaries(any_texts, children, max_size=3),
    max_leaves=8,
)


def phones():
    return st.one_of(
        st.sampled_from(["(415) 555-0134", "+1 416 555 0134", "020 7946 0018", "030 901820", "+81 3-1234-5678",
                         "555-0134", "1 (123) 456-7890", "12", "+1-800-FLOWERS", "0049 30 901820"]),
        st.text(alphabet="0123456789 +().-", min_size=7, max_size=18),
    )


def user_values(field_values):
    return st.one_of(field_values, st.lists(field_values, max_size=3))


USER_DATA = {
    "em": st.sampled_from([" Jane.Doe@Example.com ", "bob@example.com", "bob@example.com", "not-an-email", "A" * 64,
                           "e" * 63]),
    "ph": phones(),
    "fn": st.sampled_from(["Jane", " Léon ", "", "Ünal"]),
    "ln": texts,
    "ge": st.sampled_from(["f", "Female", "x", "unknown"]),
    "db": st.sampled_from(["1990-02-28", "19900230", "١٩٨٤-٠٧-١٦"]),
    "ct": st.sampled_from(["St. Louis", "München", "Toronto"]),
    "st": st.sampled_from(["California", "KY", "US-KY", "Île-de-France"]),
    "zp": st.sampled_from(["94103-1234", "SW1A 1AA", "1234", "40202"]),
    "country": st.sampled_from(["US", "ca", "GB", "United States", "de", "b" * 64]),
    "external_id": texts,
    "hashed_maids": st.sampled_from(["AEBE52E7-03EE-455A-B3C4-E57283966239", "f" * 64]),
}
CLEAR = {"client_ip_address": st.sampled_from(["203.0.113.7", " 2001:db8::1 ", ""]),
         "client_user_agent": st.sampled_from(["Mozilla/5.0", "UA \ufffd"]), "click_id": texts, "partner_id": texts}
OPTIONAL_USER_DATA = {**{name: user_values(values) for name, values in USER_DATA.items() if name != "em"}, **CLEAR}

user_data = st.one_of(
    st.fixed_dictionaries({"em": user_values(USER_DATA["em"])}, optional=OPTIONAL_USER_DATA),
    st.fixed_dictionaries({}, optional={"em": user_values(USER_DATA["em"]), **OPTIONAL_USER_DATA}),
)
prices = st.one_of(st.floats(), st.integers(-(10**16), 10**16), texts,
                   st.sampled_from(["12.50", "72.39", " 1e3 ", "-0.5"]))
contents = st.lists(st.fixed_dictionaries({}, optional={
    "id": texts, "item_price": prices, "quantity": st.integers(0, 5), "item_name": texts}), max_size=3)
custom_data = st.fixed_dictionaries({}, optional={
    "value": prices, "currency": st.sampled_from(["USD", "eur", " gbp ", "EURO", "\ufffe"]), "order_id": texts,
    "contents": contents, "content_ids": st.lists(texts, max_size=3), "opt_out_type": st.sampled_from(["LDP", ""]),
    "num_items": st.integers(0, 9)})
api_events = st.fixed_dictionaries(
    {"event_name": st.sampled_from(sorted(EVENT_NAMES)),
     "action_source": st.sampled_from(["web", "app_ios", "offline"]),
     "event_id": st.one_of(*[st.from_regex(r"[a-z0-9-]{1,12}", fullmatch=True)] * 4, plain_texts, hostile_texts),
     "user_data": user_data},
    optional={"event_time": st.integers(NOW - 8 * 86_400, NOW + 600), "custom_data": custom_data,
              "opt_out": st.booleans(), "language": texts, "event_source_url": texts},
)


@st.composite
def mutated(draw):
    """An event, sometimes with one value (or an unknown field) set to any JSON value or hostile text."""
    event = draw(api_events)
    if draw(st.integers(0, 2)) == 0:
        target = draw(st.sampled_from([event, event["user_data"], event.get("custom_data", event)]))
        name = draw(st.sampled_from([*sorted(target), "colour"]))
        target[name] = draw(st.one_of(json_values, hostile_texts))
    return event


def outcome(prepare, raw):
    try:
        prepared = prepare(raw, NOW)
    except EventRejected as rejected:
        return ("rejected", rejected.reason, rejected.event_id, rejected.event_name)
    return ("prepared", repr(prepared.event), prepared.warnings)  # repr: key order and types too


def batch_outcomes(raws):
    return [("rejected", item.reason, item.event_id, item.event_name) if isinstance(item, EventRejected)
            else ("prepared", repr(item.event), item.warnings) for item in prepare_api_events(raws, NOW)]


@SETTINGS
@given(st.one_of(mutated(), api_events, json_values))
def test_one_event_is_prepared_or_rejected_as_before(raw):
    assert outcome(prepare_api_event, raw) == outcome(reference.prepare_api_event, raw)


@SETTINGS
@given(st.lists(st.one_of(mutated(), api_events, json_values), max_size=6))
def test_a_batch_is_prepared_event_by_event_as_before(raws):
    assert batch_outcomes(raws) == [outcome(reference.prepare_api_event, raw) for raw in raws]


@SETTINGS
@given(st.lists(user_data, max_size=5))
def test_user_data_is_hashed_as_before(raws):
    assert [hash_raw_user_data(raw) for raw in raws] == [reference.hash_raw_user_data(raw) for raw in raws]


def test_a_bad_value_warns_and_is_dropped():
    builder = UserDataBuilder()
    builder.add("ph", "12", "us")
    builder.add("em", "not-an-email")
    assert builder.build() == {}
    assert builder.warnings == ["user_data.ph: value dropped, not a possible phone number",
                                "user_data.em: value dropped, not an email address"]


@SETTINGS
@given(api_events)
def test_a_clean_event_gives_a_clean_prepared_event(raw):
    try:
        prepared = prepare_api_event(raw, NOW)
    except EventRejected:
        return
    assert unsafe_text_path(prepared.event) is None


@SETTINGS
@given(api_events)
def test_the_queue_message_is_the_json_it_was(raw):
    try:
        prepared = prepare_api_event(raw, NOW)
    except EventRejected:
        return
    offline = "offline#" if prepared.event["action_source"] == "offline" else ""  # offline keys are their own
    expected = json.dumps({"v": 2, "ad_account_id": "549755885175", "source": "api",
                           "dedup_key": f"549755885175#{offline}{prepared.event_name}#{prepared.event_id}", "accepted_at": NOW,
                           "event": prepared.event}, separators=(",", ":"), ensure_ascii=False)
    assert queued_message_body("549755885175", "api", NOW, prepared) == expected


def reference_match_keys(user_data):
    keys = [key for key in ("em", "ph", "external_id", "click_id") if user_data.get(key)]
    if user_data.get("client_ip_address") and user_data.get("client_user_agent"):
        keys.append("ip_ua")
    if user_data.get("hashed_maids"):
        keys.append("hashed_maids")
    if any(user_data.get(field) for field in _ADDRESS_FIELDS):
        keys.append("address")
    return keys


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from([*USER_DATA, *CLEAR, "x"]), st.sampled_from([[], "", ["h"], "v"])))
def test_match_keys_are_as_before(user_data):
    assert match_keys(user_data) == reference_match_keys(user_data)


json_trees = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@SETTINGS
@given(json_trees)
def test_the_message_encoder_reads_back_as_what_json_dumps_writes(tree):
    """Whatever an event carries (floats, big ints, any text), the queue gets the same JSON value."""
    from pinrelay.events import PreparedEvent

    try:
        expected = json.dumps(tree, separators=(",", ":"), ensure_ascii=False)
    except UnicodeEncodeError:
        return
    written = queued_message_body("1", "api", NOW, PreparedEvent({"event_id": "e", "event_name": "checkout", "x": tree}))
    assert json.loads(written)["event"]["x"] == json.loads(expected)


@SETTINGS
@given(st.one_of(json_values, api_events, st.lists(api_events, max_size=3)))
def test_a_body_the_text_check_passes_holds_no_unsafe_text(value):
    """A body decoded as strict UTF-8 and found clean by one substring search needs no walk."""
    for ensure_ascii in (False, True):
        try:
            text = json.dumps(value, ensure_ascii=ensure_ascii)
            text.encode("utf-8")  # what a client can send at all: UTF-8 has no lone surrogates
        except (UnicodeEncodeError, ValueError):
            continue
        if json_text_is_clean(text):
            assert unsafe_text_path(json.loads(text)) is None, text


@pytest.mark.parametrize("text", ['{"a":"\\ud800"}', '{"\\udfff":1}', '{"a":"x\ufffe"}', '["\\uffff"]'])
def test_the_text_check_sends_escapes_and_non_characters_to_the_walk(text):
    assert not json_text_is_clean(text)
    assert unsafe_text_path(json.loads(text)) is not None
