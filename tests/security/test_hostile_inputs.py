"""Hostile bodies posted over HTTP to the real ingest handler (in-process local stack, moto server).

Whatever comes in: no 5xx, a JSON answer (a 4xx says why in ``message``), and nothing queued for an
invalid event. What is queued is what SQS would take (moto does not check the characters SQS
refuses) and what Pinterest's own schema accepts.
"""

from __future__ import annotations

import hashlib
import copy
import json
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pinrelay_local.pinterest_standin import ConversionEventsValidator

from tests.conftest import load_fixture, shopify_order
from tests.security.conftest import (
    API_KEY,
    assert_json_answer,
    drain,
    post,
    post_events,
    post_shopify,
    post_woocommerce,
    sqs_refused_characters,
)

pytestmark = pytest.mark.e2e
MAX_BODY = 1_048_576
VALIDATOR = ConversionEventsValidator()


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def event(event_id: str = "hostile-1", **fields) -> dict:
    base = {
        "event_name": "checkout",
        "action_source": "web",
        "event_id": event_id,
        "event_time": int(time.time()),
        "user_data": {"em": "Hostile.Tester@Example.com"},
        "custom_data": {"value": "1.50", "currency": "USD"},
    }
    base.update(fields)
    return base


def check_queued(bodies: list[str]) -> list[dict]:
    """Each queued body: SQS-safe text, a QueuedEvent, a Pinterest-schema-valid event."""
    events = []
    for body in bodies:
        assert sqs_refused_characters(body) == [], body[:300]
        message = json.loads(body)
        assert set(message) >= {"v", "ad_account_id", "dedup_key", "event"}
        assert VALIDATOR.errors({"data": [message["event"]]}) == [], message["event"]
        events.append(message["event"])
    return events


@pytest.fixture(autouse=True)
def empty_queue(stack):
    drain(stack)
    yield


def refused(stack, body: bytes | object, status: int, message_part: str | None = None, **headers) -> dict:
    answer = post_events(stack, body, **headers)
    assert_json_answer(answer)
    assert answer.status == status, answer
    if message_part is not None:
        assert message_part in answer.json["message"], answer
    assert drain(stack) == []
    return answer.json


# -------------------------------------------------------------------------- not JSON at all
@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"{not json",
        b'{"a":}',
        b"[1,]",
        b"{} trailing",
        b"\x00",
        b"\xff\xfe\xfd",
        b"undefined",
        b"{'single': 'quotes'}",
        b'{"event_id": "x"',
        b"\xef\xbb\xbf" + b"{",
        b"9" * 5000,  # over the int digits limit
    ],
)
def test_malformed_json_is_a_400(stack, body):
    refused(stack, body, 400, "not JSON")


@pytest.mark.parametrize(
    "body",
    [
        b"\xc0\xaf",  # overlong '/'
        b'{"event_id": "\xc0\xaf"}',
        b'{"event_id": "\xe0\x80\xaf"}',  # overlong, 3 bytes
        b'{"event_id": "\xed\xa0\x80"}',  # a surrogate encoded in UTF-8 (CESU-8)
        b'{"event_id": "\xf4\x90\x80\x80"}',  # above U+10FFFF
        b'{"event_id": "caf\xe9"}',  # Latin-1, not UTF-8
    ],
)
def test_invalid_utf8_is_a_400(stack, body):
    refused(stack, body, 400, "not JSON")


@pytest.mark.parametrize(
    "body", [b'"an event"', b"42", b"-1.5e3", b"null", b"true", b"[]", b"[{}]", b"NaN", b"Infinity"]
)
def test_a_body_that_is_not_an_object_is_a_400(stack, body):
    refused(stack, body, 400, "body must be one event object")


@pytest.mark.parametrize("data", [None, {}, "x", 1, [], True])
def test_data_that_is_not_a_non_empty_list_is_a_400(stack, data):
    refused(stack, {"data": data}, 400, "data:")


def test_unknown_top_level_fields_next_to_data_are_a_400(stack):
    refused(stack, {"data": [event()], "extra": 1}, 400, "unknown top-level field")


# -------------------------------------------------------------------------- deep nesting
@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b'{"a":' * 100_000,
        b'{"data": ' + b"[" * 100_000,
        b'{"event_name": "checkout", "custom_data": ' + b'{"x":' * 100_000 + b"1" + b"}" * 100_000 + b"}",
    ],
    ids=["arrays", "objects", "in-data", "closed-objects"],
)
def test_deep_nesting_is_a_400_not_a_recursion_error(stack, body):
    """Python's json raises RecursionError (not ValueError) past ~1000 levels."""
    refused(stack, body, 400)


def test_nesting_json_can_parse_is_rejected_per_event(stack):
    deep = json.loads("[" * 500 + "]" * 500)
    answer = refused(stack, event(custom_data={"contents": deep}), 422)
    assert answer["events"][0]["status"] == "rejected"


def test_deeply_nested_signed_webhooks_are_a_400(stack):
    body = b"[" * 100_000
    for answer in (post_shopify(stack, body), post_woocommerce(stack, body)):
        assert_json_answer(answer)
        assert answer.status == 400, answer
    assert drain(stack) == []


# -------------------------------------------------------------------------- wrong types, huge numbers
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"event_time": "now"}, "event_time"),
        ({"event_time": 1.5}, "event_time"),
        ({"event_time": True}, "event_time"),
        ({"event_time": 10**400}, "event_time"),
        ({"event_time": -(10**400)}, "event_time"),
        ({"event_time": 2**63}, "event_time"),
        ({"event_id": 5}, "event_id"),
        ({"event_id": ""}, "event_id"),
        ({"event_id": " \t"}, "event_id"),
        ({"event_id": "x" * 257}, "event_id"),
        ({"event_name": "purchase"}, "event_name"),
        ({"event_name": ["checkout"]}, "event_name"),
        ({"action_source": "email"}, "action_source"),
        ({"user_data": []}, "user_data"),
        ({"user_data": "someone@example.com"}, "user_data"),
        ({"user_data": {"em": 5}}, "user_data.em"),
        ({"user_data": {"em": [["nested@example.com"]]}}, "user_data.em"),
        ({"user_data": {"em": None}}, "user_data"),  # nothing left to match on
        ({"user_data": {"em": "x@y.z", "unknown": 1}}, "user_data: an unknown field"),  # the key is not echoed
        ({"custom_data": "x"}, "custom_data"),
        ({"custom_data": {"value": True}}, "custom_data.value"),
        ({"custom_data": {"value": "1e309"}}, "custom_data.value"),
        ({"custom_data": {"value": "NaN"}}, "custom_data.value"),
        ({"custom_data": {"value": "-Infinity"}}, "custom_data.value"),
        ({"custom_data": {"value": "1e999999999"}}, "custom_data.value"),
        ({"custom_data": {"value": 1e300}}, "custom_data.value"),
        ({"custom_data": {"value": [1]}}, "custom_data.value"),
        ({"custom_data": {"currency": "dollars"}}, "custom_data.currency"),
        ({"custom_data": {"num_items": "3"}}, "custom_data.num_items"),
        ({"custom_data": {"num_items": 10**400}}, "custom_data.num_items"),
        ({"custom_data": {"contents": [{"quantity": 1e309}]}}, "custom_data.contents[0].quantity"),
        ({"custom_data": {"contents": {"id": "x"}}}, "custom_data.contents"),
        ({"opt_out": "yes"}, "opt_out"),
        ({"device_info": {"battery_level": 101}}, "device_info.battery_level"),
        ({"app_info": {"window_width": -1}}, "app_info.window_width"),
    ],
)
def test_wrong_types_and_huge_numbers_are_rejected_naming_the_field(stack, fields, field):
    body = json.dumps(event(**fields)).replace("Infinity", "1e309").encode()
    answer = refused(stack, body, 422, "no event is valid")
    (result,) = answer["events"]
    assert result["status"] == "rejected" and result["reason"].startswith(field), result


def test_1e309_and_nan_literals_are_rejected_not_queued(stack):
    for literal in (b"1e309", b"-1e309", b"NaN", b"Infinity"):
        body = json.dumps(event(custom_data={"value": "__V__"})).encode().replace(b'"__V__"', literal)
        answer = refused(stack, body, 422)
        assert answer["events"][0]["reason"].startswith("custom_data.value")


def test_tiny_and_long_numbers_in_valid_ranges_are_queued_as_strings(stack):
    answer = post_events(stack, event(custom_data={"value": 1e-300, "currency": "usd"}))
    assert answer.status == 202, answer
    (queued,) = check_queued(drain(stack))
    assert queued["custom_data"]["currency"] == "USD" and isinstance(queued["custom_data"]["value"], str)


# -------------------------------------------------------------------------- odd Unicode
LONE_SURROGATE_EVENTS = {
    "em": '{"event_name":"checkout","action_source":"web","event_id":"s1","user_data":{"em":"\\ud800@x.com"}}',
    "em-list": '{"event_name":"checkout","action_source":"web","event_id":"s2",'
    '"user_data":{"em":["a@x.com","\\udfff"]}}',
    "fn": '{"event_name":"checkout","action_source":"web","event_id":"s3","user_data":{"em":"a@x.com","fn":"\\udbff"}}',
    "event_id": '{"event_name":"checkout","action_source":"web","event_id":"\\ud800","user_data":{"em":"a@x.com"}}',
    "user_agent": '{"event_name":"checkout","action_source":"web","event_id":"s5",'
    '"user_data":{"client_ip_address":"1.2.3.4","client_user_agent":"\\udfff"}}',
    "item_name": '{"event_name":"checkout","action_source":"web","event_id":"s6","user_data":{"em":"a@x.com"},'
    '"custom_data":{"contents":[{"item_name":"\\ud83d"}]}}',
    "reversed-pair": '{"event_name":"checkout","action_source":"web","event_id":"s7","user_data":{"em":"a@x.com"},'
    '"event_source_url":"\\ude00\\ud83d"}',
    "key": '{"event_name":"checkout","action_source":"web","event_id":"s8","user_data":{"em":"a@x.com","\\ud800":"x"}}',
    "U+FFFF": '{"event_name":"checkout","action_source":"web","event_id":"s9","user_data":{"em":"a@x.com"},'
    '"custom_data":{"content_name":"\\uffff"}}',
    "U+FFFE raw": '{"event_name":"checkout","action_source":"web","event_id":"s10","user_data":{"em":"a@x.com"},'
    '"language":"\ufffe"}',
}


@pytest.mark.parametrize("body", LONE_SURROGATE_EVENTS.values(), ids=LONE_SURROGATE_EVENTS.keys())
def test_lone_surrogates_and_non_characters_are_rejected_not_queued(stack, body):
    """A lone surrogate is not text: hashing it (UTF-8) and SQS (which refuses it, as it refuses
    U+FFFE/U+FFFF) would fail; the event is rejected with the field named, nothing is queued."""
    answer = refused(stack, body.encode("utf-8"), 422, "no event is valid")
    assert answer["events"][0]["status"] == "rejected", answer


def test_a_lone_surrogate_in_one_event_of_a_batch_rejects_only_that_event(stack):
    good = json.dumps(event("batch-good"))
    bad = LONE_SURROGATE_EVENTS["em"]
    answer = post_events(stack, f'{{"data":[{good},{bad}]}}'.encode())
    assert answer.status == 202, answer
    assert [e["status"] for e in answer.json["events"]] == ["accepted", "rejected"]
    assert [e["event_id"] for e in check_queued(drain(stack))] == ["batch-good"]


def test_nul_rtl_marks_and_emoji_are_text_and_queued_safely(stack):
    fields = {
        "user_data": {
            "em": "\u202eRTL.Tester@Example.com\u200f",
            "fn": "\U0001f600 Emoji",
            "ln": "\u05e9\u05dc\u05d5\u05dd",
            "ct": "\u0645\u062f\u064a\u0646\u0629",
            "external_id": "id\x00with-nul",
        },
        "custom_data": {
            "content_name": "\x00\x01\x1f\u2028\u2029\U0010fffd",
            "contents": [{"item_name": "\U0001f4a9\u200d"}],
        },
        "event_source_url": "https://shop.example/\u202e",
    }
    answer = post_events(stack, event("unicode\U0001f600", **fields))
    assert_json_answer(answer)
    assert answer.status == 202 and answer.json["accepted"] == 1, answer
    (queued,) = check_queued(drain(stack))
    assert queued["event_id"] == "unicode\U0001f600"
    assert queued["custom_data"]["content_name"] == "\x00\x01\x1f\u2028\u2029\U0010fffd"
    # hashed, never the raw value
    assert all(
        re.fullmatch("[0-9a-f]{64}", digest)
        for field in ("em", "fn", "ln", "ct", "external_id")
        for digest in queued["user_data"][field]
    )
    assert "\U0001f600 Emoji" not in json.dumps(queued, ensure_ascii=False)


def test_control_characters_in_an_event_id_are_refused_as_they_would_reach_operators_terminals(stack):
    for event_id in ("unicode\x00", "order\u202e1", "order\x1b[2K"):
        answer = post_events(stack, event(event_id))
        assert answer.status == 422 and answer.json["events"][0]["reason"] == "event_id: must not contain control characters"
    assert drain(stack) == []


def test_unicode_digits_in_birth_dates_and_zips_hash_as_ascii_digits(stack):
    """Arabic-Indic digits are digits to Python's regex and int(): the hash must be of 0-9."""
    arabic = str.maketrans("0123456789", "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669")
    fullwidth = str.maketrans("0123456789", "\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19")
    user_data = {
        "em": "digits@example.com",
        "db": "1990-02-28".translate(arabic),
        "zp": "40202-1234".translate(fullwidth),
        "country": "US",
    }
    answer = post_events(stack, event("digits", user_data=user_data))
    assert answer.status == 202, answer
    (queued,) = check_queued(drain(stack))
    assert queued["user_data"]["db"] == [sha("19900228")]
    assert queued["user_data"]["zp"] == [sha("40202")]


# -------------------------------------------------------------------------- sizes and counts
def padded(payload: dict, size: int) -> bytes:
    raw = json.dumps(payload).encode()
    assert len(raw) < size
    return raw[:-1] + b" " * (size - len(raw)) + raw[-1:]


def test_a_body_of_exactly_1_mb_is_read_and_1_mb_plus_1_byte_is_a_413(stack):
    answer = post_events(stack, padded(event("one-mb"), MAX_BODY))
    assert answer.status == 202, answer
    assert len(drain(stack)) == 1
    refused(stack, padded(event("one-mb-plus-one"), MAX_BODY + 1), 413, "body over")


def test_oversized_webhooks_are_a_413(stack):
    body = padded({"id": 1}, MAX_BODY + 1)
    for answer in (post_shopify(stack, body), post_woocommerce(stack, body)):
        assert_json_answer(answer)
        assert answer.status == 413, answer
    assert drain(stack) == []


def test_exactly_1000_events_are_queued_and_1001_are_a_413(stack):
    now = int(time.time())
    events = [event(f"bulk-{i}", event_time=now) for i in range(1000)]
    # SendMessageBatch attempts, retries included: on a loaded machine moto may answer a call of
    # the 100 after the SDK's read timeout, and the SDK's retry queues those 10 again (as in AWS)
    from pinrelay.adapters.aws import client

    attempts: list[str] = []
    sqs = client("sqs")
    count = lambda **_: attempts.append("attempt")  # noqa: E731
    sqs.meta.events.register("request-created.sqs.SendMessageBatch", count)
    try:
        answer = post_events(stack, {"data": events})
    finally:
        sqs.meta.events.unregister("request-created.sqs.SendMessageBatch", count)
    assert answer.status == 202, answer
    assert answer.json["accepted"] == 1000 and len(answer.json["events"]) == 1000
    retries = len(attempts) - 100
    visible, in_flight = stack.queue_depth()
    assert in_flight == 0 and 1000 <= visible <= 1000 + 10 * retries, (visible, retries)
    sample = stack.sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10)["Messages"]
    assert {e["event_id"] for e in check_queued([m["Body"] for m in sample])} <= {f"bulk-{i}" for i in range(1000)}
    stack.sqs.purge_queue(QueueUrl=stack.queue_url)  # reading all 1000 back from moto takes ~10 s
    assert drain(stack) == []
    events.append(event("bulk-1000", event_time=now))
    refused(stack, {"data": events}, 413, "at most 1000")


def test_1001_invalid_events_are_a_413_before_any_validation(stack):
    refused(stack, {"data": [{}] * 1001}, 413)


# -------------------------------------------------------------------------- duplicate keys
def test_duplicate_keys_last_one_wins_consistently(stack):
    body = (
        b'{"event_id":"first","event_name":"checkout","action_source":"web","event_time":'
        + str(int(time.time())).encode()
        + b',"user_data":{"em":"a@x.com","em":"dup.keys@example.com"},"event_id":"last"}'
    )
    answer = post_events(stack, body)
    assert answer.status == 202 and answer.json["events"][0]["event_id"] == "last", answer
    (queued,) = check_queued(drain(stack))
    assert queued["event_id"] == "last" and queued["user_data"]["em"] == [sha("dup.keys@example.com")]


def test_duplicate_data_keys_last_one_wins(stack):
    refused(stack, b'{"data": [{"event_id": "x"}], "data": []}', 400, "data:")


# -------------------------------------------------------------------------- headers
@pytest.mark.parametrize(
    "headers",
    [
        {"content-type": "text/plain"},
        {"content-type": "application/x-www-form-urlencoded"},
        {"content-type": ""},
        {"content-encoding": "gzip"},
        {"x-api-key": API_KEY + "\t"},
    ],
)
def test_odd_headers_do_not_crash(stack, headers):
    answer = post_events(stack, event("headers"), **headers)
    assert_json_answer(answer)
    drain(stack)


def test_non_ascii_key_header_is_a_401(stack):
    answer = post(stack, "/events", b"{}", {"x-api-key": "cl\u00e9".encode("latin-1").decode("latin-1")})
    assert answer.status == 401 and answer.json == {"message": "unauthorized"}


# -------------------------------------------------------------------------- hypothesis
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
event_fields = st.sampled_from(
    [
        "event_name",
        "action_source",
        "event_id",
        "event_time",
        "user_data",
        "custom_data",
        "opt_out",
        "app_info",
        "device_info",
        "language",
        "partner_name",
        "wifi",
    ]
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.one_of(
        json_values,
        st.dictionaries(event_fields, json_values, max_size=6),
        st.builds(lambda field, value: {**event("hyp"), field: value}, event_fields, json_values),
        st.builds(lambda items: {"data": items}, st.lists(json_values, min_size=1, max_size=5)),
    )
)
def test_any_json_value_gets_an_answer_and_only_valid_events_are_queued(stack, payload):
    raw = json.dumps(payload).encode()
    answer = post_events(stack, raw)
    assert_json_answer(answer)
    queued = check_queued(drain(stack))
    accepted = [e for e in (answer.json.get("events") or []) if e["status"] == "accepted"]
    assert len(queued) == len(accepted)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=300))
def test_any_bytes_get_an_answer(stack, raw):
    answer = post_events(stack, raw)
    assert_json_answer(answer)
    check_queued(drain(stack))


def _replace_at(document, path: list, value):
    target = document
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return document


def _paths(document, prefix=()):
    yield list(prefix)
    if isinstance(document, dict):
        for key, value in document.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from _paths(value, (*prefix, index))


def _woo_order() -> dict:
    order = load_fixture("woocommerce/woocommerce_order_updated_wcrestdocs.json")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    for key in ("date_created_gmt", "date_modified_gmt", "date_paid_gmt", "date_completed_gmt"):
        order[key] = stamp
    return order


SHOPIFY_PATHS = [p for p in _paths(shopify_order()) if p]
WOO_PATHS = [p for p in _paths(_woo_order()) if p]
odd_values = st.one_of(
    json_values, st.sampled_from([1e308, -1e308, 10**30, -1, 0, "", "NaN", "1e309", "\u202e", [], {}])
)


@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(["shopify", "woocommerce"]), st.data())
def test_signed_webhooks_with_mangled_fields_never_crash(stack, platform, data):
    """A signed body (the platform's, or anyone holding the secret) with any field replaced by
    any JSON value: an answer, never a 5xx; an order that cannot be mapped is rejected with a
    reason (200, so the platform does not retry it forever)."""
    if platform == "shopify":
        document, paths, poster = shopify_order(), SHOPIFY_PATHS, post_shopify
    else:
        document, paths, poster = _woo_order(), WOO_PATHS, post_woocommerce
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        try:
            # a copy: the sampled [] and {} are shared objects, and one put in twice made the body circular
            _replace_at(document, path, copy.deepcopy(data.draw(odd_values)))
        except (KeyError, IndexError, TypeError):
            pass  # an earlier replacement removed this path
    body = json.dumps(document).replace("Infinity", "1e309").encode()
    answer = poster(stack, body)
    assert_json_answer(answer)
    assert answer.status in (200, 400), answer
    check_queued(drain(stack))


@pytest.mark.parametrize(
    ("platform", "document"),
    [
        (
            "shopify",
            {"id": 1, "created_at": "2020-01-01T00:00:00Z", "line_items": [{"quantity": "__INF__"}]},
        ),  # OverflowError
        ("shopify", {"id": 2, "line_items": [{"quantity": "three"}]}),  # ValueError
        ("shopify", {"id": 3, "customer": "someone"}),  # AttributeError
        ("woocommerce", {"id": 1, "status": "processing", "line_items": "x"}),  # AttributeError
        ("woocommerce", {"id": 2, "status": "processing", "line_items": [{"quantity": "three"}]}),  # ValueError
        (
            "woocommerce",
            {"id": 3, "status": "processing", "line_items": [{"total": "1e999999999"}, {"total": "1e999999999"}]},
        ),
        ("woocommerce", {"id": 4, "status": "processing", "billing": ["x"]}),  # AttributeError
        ("woocommerce", {"id": 5, "status": "processing", "line_items": [{"quantity": "__INF__"}]}),  # OverflowError
    ],
)
def test_signed_bodies_that_are_not_orders_are_rejected_with_a_reason_not_a_500(stack, platform, document):
    """The platform (or whoever holds the secret) signed it: 200 with the reason, so the platform
    does not retry it for days and then disable the webhook; nothing queued."""
    body = json.dumps(document).replace('"__INF__"', "1e309").encode()
    answer = (post_shopify if platform == "shopify" else post_woocommerce)(stack, body)
    assert_json_answer(answer)
    assert answer.status == 200 and answer.json["rejected"] == 1, answer
    assert answer.json["events"][0]["status"] == "rejected" and answer.json["events"][0]["reason"], answer
    assert drain(stack) == []
