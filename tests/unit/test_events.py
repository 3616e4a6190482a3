import difflib
import hashlib

import pytest

from pinrelay import events
from pinrelay.events import MAX_HINTS_PER_REQUEST, EventRejected, prepare_api_event, prepare_api_events


def h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def event(now, **overrides):
    base = {
        "event_name": "checkout",
        "action_source": "web",
        "event_id": "order-1001",
        "event_time": now,
        "user_data": {"em": "Bob@Example.com", "client_ip_address": "216.3.128.12", "client_user_agent": "Mozilla/5.0"},
        "custom_data": {"value": 72.39, "currency": "usd", "order_id": "1001", "num_items": 2},
    }
    base.update(overrides)
    return base


def test_valid_event_is_hashed_and_money_sent_as_string(now):
    prepared = prepare_api_event(event(now), now)
    assert prepared.event["user_data"] == {
        "em": [h("bob@example.com")], "client_ip_address": "216.3.128.12", "client_user_agent": "Mozilla/5.0"
    }
    assert prepared.event["custom_data"] == {"value": "72.39", "currency": "USD", "order_id": "1001", "num_items": 2}
    assert prepared.dedup_key("123") == "123#checkout#order-1001"


def test_event_time_defaults_to_now(now):
    raw = event(now)
    del raw["event_time"]
    assert prepare_api_event(raw, now).event["event_time"] == now


@pytest.mark.parametrize(
    ("overrides", "reason_part"),
    [
        ({"event_time": -8 * 86400}, "more than 7 days in the past"),
        ({"event_time": 301}, "more than 5 minutes in the future"),
    ],
)
def test_event_time_window(now, overrides, reason_part):
    with pytest.raises(EventRejected) as caught:
        prepare_api_event(event(now, event_time=now + overrides["event_time"]), now)
    assert reason_part in caught.value.reason
    assert caught.value.event_id == "order-1001"


def test_edges_of_the_window_are_accepted(now):
    prepare_api_event(event(now, event_time=now - 7 * 86400), now)
    prepare_api_event(event(now, event_time=now + 300), now)


@pytest.mark.parametrize("missing", ["event_id", "event_name", "action_source", "user_data"])
def test_missing_required_field_is_named(now, missing):
    raw = event(now)
    del raw[missing]
    with pytest.raises(EventRejected) as caught:
        prepare_api_event(raw, now)
    assert caught.value.reason == f"{missing}: Field required"


def test_no_identifier_pinterest_can_match_on(now):
    with pytest.raises(EventRejected) as caught:
        prepare_api_event(event(now, user_data={"fn": "Bob", "client_ip_address": "1.2.3.4"}), now)
    assert "no identifier Pinterest can match on" in caught.value.reason


def test_email_that_cannot_be_normalised_leaves_no_identifier(now):
    with pytest.raises(EventRejected):
        prepare_api_event(event(now, user_data={"em": "   "}), now)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"event_name": "purchase"}, "event_name: not one of Pinterest's event names:"),
        ({"action_source": "email"}, "action_source: Input should be 'app_android', 'app_ios', 'web' or 'offline'"),
        ({"colour": "red"}, "event: an unknown field: Pinterest refuses it"),
        ({"custom_data": {"value": "12,5"}}, "custom_data.value: must be a number or a numeric string"),
        ({"custom_data": {"currency": "dollars"}}, "custom_data.currency: must be a three-letter ISO-4217 code such as USD"),
        ({"event_time": "yesterday"}, "event_time: Input should be a valid integer"),
        ({"user_data": {"em": 5}}, "user_data.em: must be a string or a list of strings"),
    ],
)
def test_field_level_reasons(now, overrides, reason):
    with pytest.raises(EventRejected) as caught:
        prepare_api_event(event(now, **overrides), now)
    assert caught.value.reason.startswith(reason)


def test_already_hashed_email_passes_through(now):
    digest = h("bob@example.com").upper()
    prepared = prepare_api_event(event(now, user_data={"em": [digest]}), now)
    assert prepared.event["user_data"]["em"] == [digest.lower()]


def test_zip_uses_its_own_country_when_lists_are_paired(now):
    prepared = prepare_api_event(
        event(now, user_data={"em": "a@b.co", "zp": ["40202-1234", "SW1A 1AA"], "country": ["US", "GB"]}), now
    )
    assert prepared.event["user_data"]["zp"] == [h("40202"), h("sw1a1aa")]
    assert prepared.event["user_data"]["country"] == [h("us"), h("gb")]


def test_pinterest_example_event_with_every_field_passes_through_unchanged(now):
    import json
    from tests.conftest import FIXTURES

    example = json.loads((FIXTURES / "pinterest/pinterest_capi_events_create_apidescription.json").read_text())["data"][0]
    example["event_time"] = now
    prepared = prepare_api_event(example, now)
    assert prepared.event == example  # already hashed user data, app and device info: nothing altered
    assert prepared.warnings == []


def test_control_characters_in_an_event_id_are_refused(now):
    for bad in ("order\x1b[2K", "order\x07", "order\u202e", "order\x00", "order\n1"):
        with pytest.raises(EventRejected) as caught:
            prepare_api_event(event(now, event_id=bad), now)
        assert caught.value.reason == "event_id: must not contain control characters"


def test_no_reason_repeats_a_value_or_an_unknown_key_of_the_event(now):
    """Reasons reach logs and answers: they name fields, positions and counts, never what was sent."""
    pii = "maria.garcia@example.com"
    hostile = [
        {"event_name": pii}, {"action_source": pii}, {pii: 1}, {"user_data": {pii: "x", "em": "a@b.c"}},
        {"custom_data": {pii: 1}}, {"custom_data": {"currency": pii}}, {"custom_data": {"value": pii}},
        {"custom_data": {"contents": [{pii: 1}]}}, {"user_data": {"em": [pii] * 11}}, {"event_time": pii},
        {"user_data": {"em": pii + "\ud800"}}, {"custom_data": {pii: "\ud800"}}, {"device_info": {"form_factor": pii}},
    ]
    for overrides in hostile:
        with pytest.raises(EventRejected) as caught:
            prepare_api_event(event(now, **overrides), now)
        assert pii not in caught.value.reason and "maria" not in caught.value.reason, caught.value.reason


def test_many_unknown_fields_make_one_short_reason(now):
    raw = event(now, **{f"field{i}": 1 for i in range(90_000)})
    with pytest.raises(EventRejected) as caught:
        prepare_api_event(raw, now)
    assert caught.value.reason == "event: 90000 unknown fields: Pinterest refuses them"


def test_a_near_miss_field_name_gets_a_hint(now):
    raw = event(now, custom_data={"contents": [{"id": "a", "item_pric": "1.00"}]})
    with pytest.raises(EventRejected) as caught:
        prepare_api_event(raw, now)
    assert caught.value.reason == ("custom_data.contents[0]: an unknown field (did you mean item_price?): "
                                   "Pinterest refuses it")


@pytest.fixture
def difflib_calls(monkeypatch):
    """How many names were looked up in difflib (each look-up compares with every known name)."""
    calls = []
    real = difflib.get_close_matches

    def counting(word, *args, **kwargs):
        calls.append(word)
        return real(word, *args, **kwargs)

    monkeypatch.setattr(events.difflib, "get_close_matches", counting)
    return calls


def test_hints_are_bounded_per_request_however_many_near_misses_it_holds(now, difflib_calls):
    """Issue 18: 540 contents of 100 near-miss names made 54,000 look-ups (6.8 s of CPU) before."""
    near_misses = event(now, custom_data={"contents": [{f"item_pric{i}": 1 for i in range(100)} for _ in range(540)]})
    (rejected,) = prepare_api_events([near_misses], now)
    assert rejected.reason.startswith("custom_data.contents[0]: 100 unknown fields (did you mean item_price?)")
    assert len(difflib_calls) <= MAX_HINTS_PER_REQUEST and len(set(difflib_calls)) == len(difflib_calls)
    difflib_calls.clear()
    spread = [event(now, event_id=f"e{n}", **{f"event_nam{n}x{i}": 1 for i in range(40)}) for n in range(1000)]
    answers = prepare_api_events(spread, now)
    assert len(difflib_calls) == MAX_HINTS_PER_REQUEST  # 40,000 distinct names, a bounded number looked up
    assert answers[0].reason == "event: 40 unknown fields (did you mean event_name?): Pinterest refuses them"
    assert answers[-1].reason == "event: 40 unknown fields: Pinterest refuses them"  # past the bound: no hint


def test_the_same_name_is_looked_up_once_and_a_very_long_one_never(now, difflib_calls):
    repeated = [event(now, event_id=f"e{n}", custom_data={"contents": [{"id": "a", "item_pric": 1}]}) for n in range(500)]
    answers = prepare_api_events(repeated, now)
    assert difflib_calls == ["item_pric"] and all("did you mean item_price?" in a.reason for a in answers)
    difflib_calls.clear()
    prepare_api_events([event(now, **{"item_price" * 10_000: 1})], now)
    assert difflib_calls == []
