"""Schemathesis against the local stack, from the committed functions/ingest/openapi.json.

Every operation is fuzzed with data valid for the schema (positive) and data that breaks it
(negative), ~100 examples each, with the stack's real x-api-key: no 5xx, status codes, content
types and bodies as documented, and the key really required (``ignored_auth`` sends the request
again without it and with a wrong one). Afterwards nothing invalid may have been queued: every
message the sender received (every message on the queue), every message left on the queue or in
the DLQ and every request that reached the Pinterest stand-in is valid for Pinterest's own schema.
"""

from __future__ import annotations

import json

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from pinrelay.models import QueuedEvent
from pinrelay_local.pinterest_standin import ConversionEventsValidator
from pinrelay_local.stack import OPENAPI_PATH, openapi_handler
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_schema_conformance,
    status_code_conformance,
)

from tests.security.conftest import API_KEY, receive_all, sqs_refused_characters, start_stack

pytestmark = pytest.mark.e2e

SCHEMA = schemathesis.openapi.from_path(OPENAPI_PATH)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    ignored_auth,
]
MAX_EXAMPLES = 100


def fuzz(operation, mode: GenerationMode, base_url: str, statuses: dict[int, int]) -> None:
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        response = case.call_and_validate(base_url=base_url, headers={"x-api-key": API_KEY}, checks=CHECKS, timeout=30)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    run()


def test_fuzzing_the_ingest_api_finds_no_server_error_and_queues_nothing_invalid():
    stack = start_stack(sender=True, sender_window_s=0.2, max_receive_count=2, visibility_timeout_s=2)
    seen_bodies: list[str] = []
    sender = stack.sender_handler
    original = sender.lambda_handler

    def recording_sender(event, context):  # every message on the queue passes through here
        seen_bodies.extend(record["body"] for record in event["Records"])
        return original(event, context)

    sender.lambda_handler = recording_sender
    statuses: dict[str, dict[int, int]] = {}
    try:
        # GET /openapi.json as stack.py is to serve it (the route is added here if it does not yet)
        if ("GET", "/openapi.json") not in stack.gateway.routes:
            stack.gateway.add_route("GET", "/openapi.json", openapi_handler)
        served = requests.get(f"{stack.url}/openapi.json", timeout=10)
        assert served.status_code == 200 and served.json() == json.loads(OPENAPI_PATH.read_text())
        for result in SCHEMA.get_all_operations():
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                fuzz(operation, mode, stack.url, statuses.setdefault(f"{operation.label} {mode.value}", {}))
        assert stack.wait_until_drained(timeout=60), stack.queue_depth()
        left = [m["Body"] for m in receive_all(stack.sqs, stack.queue_url)]
        dead = [m["Body"] for m in receive_all(stack.sqs, stack.dlq_url)]
    finally:
        stack.stop()
        sender.lambda_handler = original

    print(json.dumps(statuses, indent=1, sort_keys=True))
    # the fuzzing reached past validation: events were accepted and delivered, not only refused
    posted = statuses[f"POST /events {GenerationMode.POSITIVE.value}"]
    assert posted.get(202, 0) > 0, statuses
    assert seen_bodies, "nothing was queued: the fuzzing never got an event accepted"

    validator = ConversionEventsValidator()
    for body in seen_bodies + left + dead:
        assert sqs_refused_characters(body) == [], body[:500]
        message = QueuedEvent.model_validate_json(body)
        assert validator.errors({"data": [message.event]}) == [], message.event
    delivered = [r for r in stack.standin.received if r["body"] is not None]
    assert delivered, "nothing reached the Pinterest stand-in"
    for request in delivered:
        assert validator.errors(request["body"]) == [], request["body"]
        assert request["status"] in (200, 422), request  # 400 would mean pinrelay sent a malformed body
