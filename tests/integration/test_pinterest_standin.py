"""The Pinterest Conversions API stand-in, exercised over real HTTP (requests -> server on port 0)."""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from pathlib import Path

import pytest
import requests
from openapi_schema_validator import OAS30ReadValidator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from pinrelay_local.pinterest_standin import (
    DEFAULT_OPENAPI_PATH,
    EVENT_NAMES,
    ConversionEventsValidator,
    Fault,
    PinterestStandIn,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "pinterest" / "pinterest_capi_events_create_apidescription.json"
EXAMPLE_422 = DEFAULT_OPENAPI_PATH.parent / "example-422-response.json"
TOKEN = "test-conversion-token"
AD_ACCOUNT = "549755885175"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def sample_event(**overrides) -> dict:
    """The api-description sample data item, with event_time = now."""
    event = copy.deepcopy(json.loads(FIXTURE.read_text())["data"][0])
    event["event_time"] = int(time.time())
    event.update(overrides)
    return event


def body_of(*events) -> dict:
    return {"data": list(events)}


@pytest.fixture
def standin():
    with PinterestStandIn(token=TOKEN) as pin:
        yield pin


@pytest.fixture(scope="module")
def response_validators():
    """Validators for Pinterest's response schemas, to check the stand-in's answers."""
    doc = ConversionEventsValidator().document
    uri = "urn:test:pinterest-openapi"
    registry = Registry().with_resource(uri, Resource.from_contents(doc, default_specification=DRAFT4))

    def make(name):
        return OAS30ReadValidator({"$ref": f"{uri}#/components/schemas/{name}"}, registry=registry)

    return {name: make(name) for name in ("ConversionApiResponse", "DetailedError", "Error")}


def post(pin: PinterestStandIn, body, *, test=False, headers=AUTH, ad_account=AD_ACCOUNT, **kw):
    kw.setdefault("timeout", 10)
    kwargs = {"data": body} if isinstance(body, (str, bytes)) else {"json": body}
    return requests.post(pin.events_url(ad_account, test=test), headers=headers, **kwargs, **kw)


# --------------------------------------------------------------------------------------------
# the validator on its own
# --------------------------------------------------------------------------------------------


def test_validator_accepts_the_sample_and_reports_errors_with_json_paths():
    validator = ConversionEventsValidator()
    assert validator.errors(json.loads(FIXTURE.read_text())) == []
    assert validator.errors(body_of(sample_event())) == []

    bad = sample_event(event_time="yesterday", unexpected=1)
    del bad["user_data"]
    bad["custom_data"]["contents"][0]["quantity"] = "3"
    errors = validator.errors(body_of(sample_event(), bad))
    assert "$.data[1]: 'user_data' is a required property" in errors
    assert "$.data[1].event_time: 'yesterday' is not of type 'integer'" in errors
    assert "$.data[1]: Additional properties are not allowed ('unexpected' was unexpected)" in errors
    assert "$.data[1].custom_data.contents[0].quantity: '3' is not of type 'integer'" in errors

    assert validator.errors({"data": []}) == ["$.data: [] should be non-empty"]
    assert validator.errors([]) == ["$: [] is not of type 'object'"]


def test_validator_requires_an_identifier_in_user_data():
    validator = ConversionEventsValidator()
    # em, hashed_maids, or the pair client_ip_address + client_user_agent (anyOf)
    assert validator.errors(body_of(sample_event(user_data={"em": [sha256("a@b.c")]}))) == []
    assert validator.errors(body_of(sample_event(user_data={"hashed_maids": [sha256("x")]}))) == []
    ok_pair = {"client_ip_address": "216.3.128.12", "client_user_agent": "Mozilla/5.0"}
    assert validator.errors(body_of(sample_event(user_data=ok_pair))) == []
    (error,) = validator.errors(body_of(sample_event(user_data={"client_ip_address": "216.3.128.12"})))
    assert error.startswith("$.data[0].user_data: not valid under any of the given schemas")
    assert "'em' is a required property" in error
    assert "'client_user_agent' is a required property" in error


def test_the_contract_copy_is_unmodified_and_lists_15_event_names():
    copied = DEFAULT_OPENAPI_PATH.read_bytes()
    assert copied.startswith(b"# Verbatim excerpt of pinterest/api-description")
    assert b"MIT License (c) 2021 Pinterest, Inc." in copied
    documented = ConversionEventsValidator().document["components"]["schemas"]["ConversionEvents"][
        "properties"]["data"]["items"]["properties"]["event_name"]["description"]
    for name in ("add_payment_info", "checkout", "watch_video"):
        assert f"`{name}`" in documented
    assert len(EVENT_NAMES) == 22


# --------------------------------------------------------------------------------------------
# answers
# --------------------------------------------------------------------------------------------


def test_valid_sample_is_processed_and_recorded(standin, response_validators):
    assert standin.base_url == f"http://127.0.0.1:{standin.port}/v5"
    event = sample_event()
    response = post(standin, body_of(event))

    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {
        "num_events_received": 1,
        "num_events_processed": 1,
        "events": [{"status": "processed", "error_message": None, "warning_message": None}],
    }
    assert list(response_validators["ConversionApiResponse"].iter_errors(response.json())) == []

    (record,) = standin.received
    assert record["ad_account_id"] == AD_ACCOUNT
    assert record["test"] is False
    assert record["body"] == body_of(event)
    assert record["status"] == 200
    assert record["response"] == response.json()
    assert abs(record["at"] - time.time()) < 5
    assert standin.delivered_events() == [event]
    assert standin.wait_for_events(1, timeout=1) == [event]


def test_test_flag_is_recorded(standin):
    assert post(standin, body_of(sample_event()), test=True).status_code == 200
    assert post(standin, body_of(sample_event()), test=False).status_code == 200
    assert [r["test"] for r in standin.received] == [True, False]
    assert standin.received[0]["path"].endswith("/events?test=true")


def test_unhashed_email_fails_that_event_only_in_request_order(standin, response_validators):
    first = sample_event(event_id="e1")
    unhashed = sample_event(event_id="e2", user_data={"em": ["Jane.Doe@Example.com"]})
    third = sample_event(event_id="e3", event_name="add_to_cart")
    response = post(standin, body_of(first, unhashed, third))

    assert response.status_code == 422, response.text
    payload = response.json()
    assert list(response_validators["DetailedError"].iter_errors(payload)) == []
    assert payload["code"] == 953
    assert payload["message"] == json.loads(EXAMPLE_422.read_text())["message"]
    details = payload["details"]
    assert set(details) == set(json.loads(EXAMPLE_422.read_text())["details"])
    assert list(response_validators["ConversionApiResponse"].iter_errors(details)) == []
    assert details["num_events_received"] == 3
    assert details["num_events_processed"] == 2
    assert [e["status"] for e in details["events"]] == ["processed", "failed", "processed"]
    failed = details["events"][1]
    assert "em" in failed["error_message"]
    assert failed["error_message"].endswith("is not a valid sha256 hash")
    assert "Jane" not in failed["error_message"]  # the stand-in does not echo personal data

    assert standin.received[0]["status"] == 422
    assert [e["event_id"] for e in standin.delivered_events()] == ["e1", "e3"]


@pytest.mark.parametrize("field", ["ph", "external_id", "hashed_maids", "country"])
def test_every_hashed_field_must_be_lowercase_sha256(standin, field):
    user_data = {"em": [sha256("a@b.c")], field: [sha256("x").upper()]}
    response = post(standin, body_of(sample_event(user_data=user_data)))
    assert response.status_code == 422
    assert f"user_data.{field}[0] is not a valid sha256 hash" in response.json()["details"]["events"][0]["error_message"]


def test_too_old_event_fails_with_pinterests_timestamp_message(standin):
    old_time = int(time.time()) - 8 * 24 * 3600
    response = post(standin, body_of(sample_event(event_time=old_time)))
    assert response.status_code == 422
    message = response.json()["details"]["events"][0]["error_message"]
    assert message.startswith("Invalid event_timestamp parameter. Given timestamp is in the past. Current timestamp: ")
    assert message.endswith(f", Given event_timestamp: {old_time}")
    current = int(message.split("Current timestamp: ")[1].split(",")[0])
    assert abs(current - time.time()) < 5
    assert response.json()["details"]["num_events_processed"] == 0
    assert standin.delivered_events() == []

    # six days old is still accepted
    assert post(standin, body_of(sample_event(event_time=int(time.time()) - 6 * 24 * 3600))).status_code == 200


def test_future_event_and_unknown_event_name_fail(standin):
    future = int(time.time()) + 3600
    response = post(standin, body_of(sample_event(event_time=future), sample_event(event_name="purchase")))
    assert response.status_code == 422
    first, second = response.json()["details"]["events"]
    assert "Given timestamp is in the future" in first["error_message"]
    assert first["error_message"].endswith(f"Given event_timestamp: {future}")
    assert "event_name" in second["error_message"]
    # a little clock skew is tolerated; the newer documented names are accepted
    assert post(standin, body_of(sample_event(event_time=int(time.time()) + 60, event_name="start_trial"))).status_code == 200


def test_missing_user_data_is_a_400(standin, response_validators):
    event = sample_event()
    del event["user_data"]
    response = post(standin, body_of(event))
    assert response.status_code == 400
    payload = response.json()
    assert list(response_validators["Error"].iter_errors(payload)) == []
    assert payload["code"] == 4196
    assert payload["message"].startswith("The request was invalid.")
    assert "$.data[0]: 'user_data' is a required property" in payload["message"]
    assert standin.received[0]["status"] == 400
    assert standin.delivered_events() == []


def test_body_that_is_not_json_is_a_400(standin):
    response = post(standin, "data=1", headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"code": 4196, "message": "The request was invalid."}
    assert standin.received[0]["body"] is None


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": f"bearer {TOKEN}"}],
)
def test_wrong_or_missing_token_is_a_401(standin, headers):
    response = post(standin, body_of(sample_event()), headers=headers)
    assert response.status_code == 401
    assert response.json() == {"code": 2, "message": "Authentication failed."}
    assert standin.received[0]["status"] == 401
    assert standin.delivered_events() == []


def test_default_token():
    with PinterestStandIn() as pin:
        assert pin.token == "local-conversion-token"
        response = post(pin, body_of(sample_event()), headers={"Authorization": "Bearer local-conversion-token"})
        assert response.status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/v5/ad_accounts/abc/events", "/v5/ad_accounts/1234567890123456789/events", "/v4/ad_accounts/1/events",
     "/v5/ad_accounts/1/events/extra", "/v5/ad_accounts//events", "/"],
)
def test_other_paths_are_404(standin, path):
    response = requests.post(standin.root_url + path, json=body_of(sample_event()), headers=AUTH, timeout=10)
    assert response.status_code == 404
    assert set(response.json()) == {"code", "message"}
    assert standin.received == []


def test_only_post_is_allowed(standin):
    response = requests.get(standin.events_url(AD_ACCOUNT), headers=AUTH, timeout=10)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    # 18 digits is the longest valid ad account id
    assert post(standin, body_of(sample_event()), ad_account="1" * 18).status_code == 200


# --------------------------------------------------------------------------------------------
# fault injection
# --------------------------------------------------------------------------------------------


def test_fault_status_for_n_requests_with_retry_after(standin, response_validators):
    standin.set_fault("status", status=503, retry_after=2, count=2)
    for _ in range(2):
        response = post(standin, body_of(sample_event()))
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "2"
        assert response.json()["code"] == 4197
        assert list(response_validators["Error"].iter_errors(response.json())) == []
    assert standin.fault is None
    assert post(standin, body_of(sample_event())).status_code == 200
    assert [(r["status"], r["fault"]) for r in standin.received] == [(503, "status"), (503, "status"), (200, None)]
    assert len(standin.delivered_events()) == 1


def test_fault_status_until_a_deadline(standin):
    standin.set_fault("status", status=429, duration=0.5)
    response = post(standin, body_of(sample_event()))
    assert response.status_code == 429
    assert response.json()["code"] == 8
    assert "Retry-After" not in response.headers
    time.sleep(0.6)
    assert standin.fault is None
    assert post(standin, body_of(sample_event())).status_code == 200

    standin.fault = Fault("status", status=500, until=time.time() + 60)
    response = post(standin, body_of(sample_event()))
    assert response.status_code == 500
    assert set(response.json()) == {"code", "message"}
    standin.fault = None
    assert post(standin, body_of(sample_event())).status_code == 200


def test_fault_slow(standin):
    standin.set_fault("slow", seconds=1.0, count=1)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        post(standin, body_of(sample_event()), timeout=0.3)
    # the slow request is still answered (and processed) after the delay, as Pinterest would
    events = standin.wait_for_events(1, timeout=5)
    assert time.monotonic() - started >= 1.0
    assert len(events) == 1
    assert standin.received[0]["fault"] == "slow"
    assert post(standin, body_of(sample_event()), timeout=0.5).status_code == 200


def test_fault_not_json(standin):
    standin.set_fault("not_json", count=1)
    response = post(standin, body_of(sample_event()))
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    assert standin.delivered_events() == []
    assert post(standin, body_of(sample_event())).json()["num_events_processed"] == 1


def test_fault_close(standin):
    standin.set_fault("close")
    for _ in range(2):  # stays until cleared
        with pytest.raises(requests.exceptions.ConnectionError):
            post(standin, body_of(sample_event()))
    assert [(r["status"], r["response"], r["fault"]) for r in standin.received] == [(0, None, "close")] * 2
    standin.set_fault(None)
    assert post(standin, body_of(sample_event())).status_code == 200


def test_bad_fault_is_refused(standin):
    with pytest.raises(ValueError):
        standin.set_fault("explode")
    with pytest.raises(TypeError):
        standin.set_fault("status", colour="red")


# --------------------------------------------------------------------------------------------
# control endpoints (for a separate process)
# --------------------------------------------------------------------------------------------


def test_control_endpoints(standin):
    control = standin.root_url + "/_standin"
    assert post(standin, body_of(sample_event(event_id="c1")), test=True).status_code == 200

    received = requests.get(control + "/received", timeout=10).json()
    assert len(received) == 1
    assert received[0]["ad_account_id"] == AD_ACCOUNT
    assert received[0]["test"] is True
    assert received[0]["body"]["data"][0]["event_id"] == "c1"
    assert received[0]["status"] == 200

    answer = requests.post(control + "/fault", json={"mode": "status", "status": 503, "retry_after": "1", "count": 1}, timeout=10)
    assert answer.status_code == 200
    assert answer.json()["fault"]["mode"] == "status"
    assert standin.fault.count == 1
    assert post(standin, body_of(sample_event())).status_code == 503
    assert post(standin, body_of(sample_event())).status_code == 200

    requests.post(control + "/fault", json={"mode": "close"}, timeout=10)
    with pytest.raises(requests.exceptions.ConnectionError):
        post(standin, body_of(sample_event()))
    assert requests.post(control + "/fault", json={"mode": None}, timeout=10).json() == {"fault": None}
    assert standin.fault is None

    assert requests.post(control + "/fault", json={"mode": "nope"}, timeout=10).status_code == 400
    assert requests.post(control + "/fault", data="not json", timeout=10).status_code == 400

    assert requests.post(control + "/clear", timeout=10).json() == {"cleared": 4}
    assert standin.received == []
    assert requests.get(control + "/received", timeout=10).json() == []
    assert requests.get(control + "/nothing", timeout=10).status_code == 404


# --------------------------------------------------------------------------------------------
# helpers and lifecycle
# --------------------------------------------------------------------------------------------


def test_wait_for_events_waits_for_a_later_delivery_and_times_out(standin):
    with pytest.raises(TimeoutError):
        standin.wait_for_events(1, timeout=0.2)
    sender = threading.Timer(0.3, lambda: post(standin, body_of(sample_event(), sample_event())))
    sender.start()
    try:
        assert len(standin.wait_for_events(2, timeout=5)) == 2
    finally:
        sender.join()
    assert standin.clear() == 1
    assert standin.received == [] and standin.delivered_events() == []


def test_concurrent_requests_are_all_recorded(standin):
    threads = [threading.Thread(target=post, args=(standin, body_of(sample_event(event_id=f"t{i}")))) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(e["event_id"] for e in standin.wait_for_events(10, timeout=5)) == sorted(f"t{i}" for i in range(10))


def test_verbose_logs_one_line_per_request_to_stderr(capfd):
    with PinterestStandIn(token=TOKEN) as quiet:
        post(quiet, body_of(sample_event()))
    assert capfd.readouterr().err == ""
    with PinterestStandIn(token=TOKEN, verbose=True) as loud:
        post(loud, body_of(sample_event()))
        post(loud, body_of(sample_event()), headers={})
    captured = capfd.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 2
    assert f"POST /v5/ad_accounts/{AD_ACCOUNT}/events -> 200" in lines[0]
    assert "-> 401" in lines[1]


def test_stop_closes_the_port():
    pin = PinterestStandIn(token=TOKEN).start()
    url = pin.events_url(AD_ACCOUNT)
    pin.stop()
    pin.stop()  # idempotent
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(url, json=body_of(sample_event()), headers=AUTH, timeout=2)
    with pytest.raises(RuntimeError):
        pin.base_url


def test_a_schema_invalid_body_from_pinrelays_sender_is_recorded_for_the_session_check():
    from pinrelay_local.pinterest_standin import SENDER_SCHEMA_VIOLATIONS

    with PinterestStandIn(token=TOKEN) as pin:
        response = requests.post(pin.events_url("123"), json={"data": [{"event_name": "checkout"}]}, timeout=5,
                                 headers={"Authorization": f"Bearer {TOKEN}", "User-Agent": "pinrelay/0.1.0"})
        assert response.status_code == 400
    assert SENDER_SCHEMA_VIOLATIONS and SENDER_SCHEMA_VIOLATIONS[-1]["body"] == {"data": [{"event_name": "checkout"}]}
    SENDER_SCHEMA_VIOLATIONS.clear()  # it was this test's own, deliberate
