"""functions/ingest/openapi.json is what `python -m pinrelay_tools.openapi` generates from the models
now, is a valid OpenAPI 3.1 document, and describes what the ingest handler accepts and answers;
the local stack serves it at GET /openapi.json."""

import json
from pathlib import Path

import jsonschema
import pytest
from openapi_spec_validator import validate
from pinrelay.ingest import IngestOutcome
from pinrelay.models import EventResult, IncomingEvent
from pinrelay_local.stack import openapi_handler
from pinrelay_tools.openapi import OPENAPI_PATH, build_openapi, main, render

REPO = Path(__file__).resolve().parents[2]


def test_the_committed_document_is_what_the_generator_gives_now():
    assert OPENAPI_PATH == REPO / "functions" / "ingest" / "openapi.json"
    assert OPENAPI_PATH.read_text(encoding="utf-8") == render(), (
        "functions/ingest/openapi.json is stale: run .venv/bin/python -m pinrelay_tools.openapi"
    )
    assert main(["--check"]) == 0


def test_check_fails_on_a_stale_file(tmp_path, capsys):
    stale = tmp_path / "openapi.json"
    stale.write_text("{}\n")
    assert main(["--check", "--output", str(stale)]) == 1
    assert main(["--output", str(stale)]) == 0 and stale.read_text() == render()


def test_it_is_valid_openapi_with_the_three_routes_and_the_api_key_scheme():
    document = json.loads(OPENAPI_PATH.read_text())
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {"/events", "/webhooks/shopify", "/webhooks/woocommerce", "/webhooks/stripe",
                                     "/webhooks/bigcommerce"}
    assert document["components"]["securitySchemes"]["ApiKey"] == {
        **document["components"]["securitySchemes"]["ApiKey"],
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
    }
    events = document["paths"]["/events"]["post"]
    assert events["security"] == [{"ApiKey": []}]
    assert set(events["responses"]) == {"202", "400", "401", "413", "422", "503"}
    shopify = {p["name"] for p in document["paths"]["/webhooks/shopify"]["post"]["parameters"]}
    assert {"X-Shopify-Hmac-Sha256", "X-Shopify-Topic", "X-Shopify-Triggered-At"} <= shopify
    woo = {p["name"] for p in document["paths"]["/webhooks/woocommerce"]["post"]["parameters"]}
    assert {"X-WC-Webhook-Signature", "X-WC-Webhook-Topic"} <= woo
    assert "$defs" not in json.dumps(document)  # every model is under components.schemas


def _validator(document: dict, schema: dict) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({**schema, "components": document["components"]})


def test_request_body_schema_accepts_the_samples_and_refuses_what_the_models_refuse():
    document = build_openapi()
    body = _validator(
        document, document["paths"]["/events"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    )
    for sample in sorted((REPO / "events" / "api").glob("*.json")):
        payload = json.loads(sample.read_text())
        assert body.is_valid(payload), sample
        for item in payload["data"]:
            IncomingEvent.model_validate(item)
            assert body.is_valid(item)
    event = {
        "event_name": "checkout",
        "action_source": "web",
        "event_id": "1",
        "user_data": {"em": "a@b.c"},
        "custom_data": {"value": 19.99, "contents": [{"item_price": "5", "quantity": 1}]},
    }
    IncomingEvent.model_validate(event)
    assert body.is_valid(event) and body.is_valid({"data": [event]})
    assert not body.is_valid({"data": []}) and not body.is_valid({"data": [event] * 1001})
    assert not body.is_valid({**event, "unknown": 1})
    assert not body.is_valid({**event, "event_name": "purchase"})
    assert not body.is_valid({"data": [event], "extra": 1})


def test_answer_schemas_match_what_the_ingest_answers():
    document = build_openapi()
    schemas = document["components"]["schemas"]
    outcome = IngestOutcome(
        [
            EventResult(index=0, status="accepted", event_id="1", event_name="checkout", match_keys=["em"]),
            EventResult(index=1, status="rejected", reason="event_id: Field required"),
            EventResult(index=2, status="withheld", event_id="3", event_name="checkout", withheld="consent",
                        reason="not sent (consent): the shopper refused marketing (the event's consent field)"),
        ]
    )
    answer = outcome.as_json()
    _validator(document, {"$ref": "#/components/schemas/IngestAnswer"}).validate(answer)
    _validator(document, {"$ref": "#/components/schemas/IngestAnswer"}).validate(
        {"message": "no event is valid", **answer}
    )
    _validator(document, {"$ref": "#/components/schemas/Unavailable"}).validate({"message": "retry"})
    _validator(document, {"$ref": "#/components/schemas/WebhookAnswer"}).validate({"message": "pong"})
    _validator(document, {"$ref": "#/components/schemas/Error"}).validate({"message": "unauthorized"})
    with pytest.raises(jsonschema.ValidationError):
        _validator(document, {"$ref": "#/components/schemas/Error"}).validate({})
    assert set(schemas["EventResult"]["properties"]["status"]["enum"]) == {"accepted", "duplicate", "rejected", "error",
                                                                           "withheld"}


def test_the_local_handler_serves_the_committed_file():
    answer = openapi_handler({}, None)
    assert answer["statusCode"] == 200 and answer["headers"]["content-type"] == "application/json"
    assert json.loads(answer["body"]) == json.loads(OPENAPI_PATH.read_text())
