"""Helpers for the security tests: an in-process LocalStack (moto server, the real handlers behind
the HTTP API emulation), raw HTTP posts, queue draining, and what SQS itself would refuse."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from pinrelay_local.stack import LocalStack

API_KEY = "security-ingest-key-long-enough-to-resist-guessing"
SHOPIFY_SECRET = "security-shopify-secret-long-enough-to-resist-guessing"
WOO_SECRET = 'ud~APec(S,l*s/qLM3S{9M1{Z{_T{M0tO74&kua8BPUe; 5;Qm'

# What SQS accepts in a message body (SendMessage docs): #x9 | #xA | #xD | #x20 to #xD7FF |
# #xE000 to #xFFFD | #x10000 to #x10FFFF. moto does not check this; these tests do.
_SQS_REFUSED = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def sqs_refused_characters(body: str) -> list[str]:
    return sorted({f"U+{ord(c):04X}" for c in _SQS_REFUSED.findall(body)})


def sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def start_stack(*, sender: bool = False, handler_env: dict[str, str] | None = None, **kwargs: Any) -> LocalStack:
    """A started LocalStack on a free port, with the WooCommerce route (added if the stack's
    gateway does not route it) and, unless ``sender``, no event source: what the ingest queues
    stays on the queue for the test to read."""
    # the stack keeps the WooCommerce secret in Secrets Manager, taken from WOOCOMMERCE_WEBHOOK_SECRET
    environ = {**os.environ, "WOOCOMMERCE_WEBHOOK_SECRET": WOO_SECRET}
    environ.pop("PINTEREST_API_URL", None)
    kwargs.setdefault("ingest_api_key", API_KEY)
    kwargs.setdefault("shopify_webhook_secret", SHOPIFY_SECRET)
    kwargs.setdefault("test_mode", False)
    stack = LocalStack(port=0, environ=environ, handler_env=dict(handler_env or {}), **kwargs).start()
    try:
        ingest = stack.gateway.routes[("POST", "/events")]  # the stack's one-at-a-time wrapper
        if ("POST", "/webhooks/woocommerce") not in stack.gateway.routes:
            stack.gateway.add_route("POST", "/webhooks/woocommerce", ingest, function_name="pinrelay-ingest")
        if not sender:
            stack.event_source.stop()
    except BaseException:
        stack.stop()
        raise
    return stack


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    local = start_stack()
    try:
        yield local
    finally:
        local.stop()


def receive_all(sqs: Any, queue_url: str, *, delete: bool = True, visibility: int = 300) -> list[dict[str, Any]]:
    """Every message visible on the queue now (deleted unless ``delete=False``)."""
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=visibility,
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not batch:
            return messages
        messages += batch
        if delete:
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
            )


def drain(stack: LocalStack) -> list[str]:
    """The bodies of every message on the main queue, which is left empty."""
    return [m["Body"] for m in receive_all(stack.sqs, stack.queue_url)]


def deliver(stack: LocalStack, bodies: list[str]) -> list[str]:
    """Hand ``bodies`` to the stack's real sender as one SQS batch; return the event_ids Pinterest
    (the stand-in) received in that invocation: the sender's claim drops copies of delivered events."""
    from pinrelay_local.http_gateway import LambdaContext

    before = len(stack.standin.received)
    records = [{"messageId": str(uuid.uuid4()), "receiptHandle": "r", "body": body, "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {}, "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
                "awsRegion": "us-east-1"} for body in bodies]
    answer = stack.sender_handler.lambda_handler({"Records": records}, LambdaContext("pinrelay-sender", timeout_s=120))
    assert answer == {"batchItemFailures": []}, answer
    return [event["event_id"] for request in stack.standin.received[before:] for event in request["body"]["data"]]


class Answer:
    def __init__(self, response: requests.Response):
        self.status = response.status_code
        self.raw = response.content
        self.headers = response.headers
        try:
            self.json: Any = response.json()
        except ValueError:
            self.json = None

    def __repr__(self) -> str:
        return f"Answer({self.status}, {self.raw[:300]!r})"


def post(
    stack: LocalStack, path: str, body: bytes, headers: dict[str, str] | None = None, timeout: float = 60
) -> Answer:
    return Answer(requests.post(f"{stack.url}{path}", data=body, headers=headers or {}, timeout=timeout))


def post_events(stack: LocalStack, body: bytes | Any, key: str | None = API_KEY, **headers: str) -> Answer:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"content-type": "application/json", **headers}
    if key is not None:
        sent["x-api-key"] = key
    return post(stack, "/events", raw, sent)


def post_shopify(
    stack: LocalStack,
    body: bytes,
    *,
    secret: str = SHOPIFY_SECRET,
    topic: str = "orders/create",
    signature: str | None = None,
    **headers: str,
) -> Answer:
    sent = {
        "content-type": "application/json",
        "x-shopify-topic": topic,
        "x-shopify-hmac-sha256": sign(body, secret) if signature is None else signature,
        "x-shopify-webhook-id": str(uuid.uuid4()),
        "x-shopify-triggered-at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **headers,
    }
    return post(stack, "/webhooks/shopify", body, sent)


def post_woocommerce(
    stack: LocalStack,
    body: bytes,
    *,
    secret: str = WOO_SECRET,
    topic: str = "order.created",
    signature: str | None = None,
    **headers: str,
) -> Answer:
    sent = {
        "content-type": "application/json",
        "x-wc-webhook-topic": topic,
        "x-wc-webhook-signature": sign(body, secret) if signature is None else signature,
        **headers,
    }
    return post(stack, "/webhooks/woocommerce", body, sent)


def assert_json_answer(answer: Answer) -> None:
    """No 5xx; a JSON object; a 4xx says why in ``message``."""
    assert answer.status < 500, answer
    assert answer.headers.get("content-type", "").startswith("application/json"), answer
    assert isinstance(answer.json, dict), answer
    if answer.status >= 400:
        assert isinstance(answer.json.get("message"), str) and answer.json["message"], answer
