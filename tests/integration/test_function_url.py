"""The optional Lambda Function URL in front of the ingest function (template parameter
IngestFunctionUrl): the real ingest lambda_handler, invoked with the events a Function URL with
AuthType NONE sends (payload format 2.0 with routeKey and stage "$default", a
<url-id>.lambda-url.<region>.on.aws domain, no authorizer), against moto server (SQS, DynamoDB,
Secrets Manager) and the Pinterest stand-in. Unlike the HTTP API, a Function URL hands every
method and path to the function, so the function's own routing and authentication are all there is."""

import json
import time
import uuid

import pytest

from pinrelay_local.http_gateway import LambdaContext, build_function_url_event
from tests.conftest import load_fixture, shopify_order
from tests.integration.handler_stack import API_KEY, SHOPIFY_SECRET, WOO_SECRET, api_event, drain, sign

SHOPIFY_USER_AGENT = "Shopify-Captain-Hook"


def call_url(stack, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict, dict]:
    event = build_function_url_event(method=method, raw_path=path, raw_query="", header_pairs=list(headers.items()),
                                     body=body, source_ip="34.123.45.67")
    answer = stack["ingest"].lambda_handler(event, LambdaContext("IngestFunction"))
    return answer["statusCode"], json.loads(answer["body"]), answer.get("headers") or {}


def shopify_headers(body: bytes, secret: str = SHOPIFY_SECRET, topic: str = "orders/create") -> dict[str, str]:
    """The headers a Shopify webhook delivery carries."""
    return {"content-type": "application/json", "user-agent": SHOPIFY_USER_AGENT, "x-shopify-topic": topic,
            "x-shopify-hmac-sha256": sign(body, secret), "x-shopify-shop-domain": "pinrelay-dev.myshopify.com",
            "x-shopify-api-version": "2025-10", "x-shopify-webhook-id": str(uuid.uuid4()),
            "x-shopify-triggered-at": time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())}


def queued(stack) -> int:
    attributes = stack["aws"]["sqs"].get_queue_attributes(QueueUrl=stack["queue_url"], AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def test_the_event_has_the_shape_aws_documents_for_a_function_url():
    event = build_function_url_event(method="POST", raw_path="/webhooks/shopify", raw_query="", header_pairs=[],
                                     body=b"{}", source_ip="34.123.45.67")
    context = event["requestContext"]
    assert event["version"] == "2.0" and event["routeKey"] == context["routeKey"] == context["stage"] == "$default"
    assert context["domainName"] == f"{context['domainPrefix']}.lambda-url.us-east-1.on.aws" == event["headers"]["host"]
    assert context["apiId"] == context["domainPrefix"] and len(context["apiId"]) == 32
    assert context["authorizer"] is None and context["authentication"] is None  # AuthType NONE
    assert event["pathParameters"] is None and event["stageVariables"] is None
    assert context["http"] == {"method": "POST", "path": "/webhooks/shopify", "protocol": "HTTP/1.1", "sourceIp": "34.123.45.67",
                               "userAgent": ""}
    assert event["headers"]["x-forwarded-proto"] == "https" and event["headers"]["x-forwarded-for"] == "34.123.45.67"


def test_signed_shopify_order_is_accepted_and_delivered_once(stack, now):
    body = json.dumps(shopify_order(now)).encode()
    status, answer, headers = call_url(stack, "POST", "/webhooks/shopify", body, shopify_headers(body))
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert answer["accepted"] == 1 and answer["events"][0]["event_id"] == "450789469"
    assert queued(stack) == 1
    # Shopify's retry of the same order through the URL: queued again, sent once
    status, answer, _ = call_url(stack, "POST", "/webhooks/shopify", body, shopify_headers(body))
    assert status == 200 and answer["events"][0]["status"] == "accepted"
    records, result = drain(stack)
    assert len(records) == 2 and result == {"batchItemFailures": []}
    (request,) = stack["standin"].received
    assert request["status"] == 200 and request["body"]["data"][0]["custom_data"]["order_id"] == "450789469"


def test_post_events_with_a_valid_api_key_is_accepted(stack, now):
    body = json.dumps({"data": [api_event(now, "url-1")]}).encode()
    status, answer, _ = call_url(stack, "POST", "/events", body, {"content-type": "application/json", "x-api-key": API_KEY})
    assert status == 202 and answer["accepted"] == 1
    assert queued(stack) == 1


def test_signed_woocommerce_order_is_accepted(stack, now):
    order = load_fixture("woocommerce/woocommerce_order_updated_wcrestdocs.json")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    for key in ("date_created_gmt", "date_modified_gmt", "date_paid_gmt", "date_completed_gmt"):
        order[key] = stamp
    body = json.dumps(order).encode()
    headers = {"content-type": "application/json", "x-wc-webhook-topic": "order.created", "x-wc-webhook-signature": sign(body, WOO_SECRET)}
    status, answer, _ = call_url(stack, "POST", "/webhooks/woocommerce", body, headers)
    assert status == 200 and answer["events"][0]["status"] == "accepted"


@pytest.mark.parametrize("path, headers", [
    ("/webhooks/shopify", lambda body: shopify_headers(body, secret="not-the-secret")),
    ("/webhooks/shopify", lambda body: {k: v for k, v in shopify_headers(body).items() if k != "x-shopify-hmac-sha256"}),
    ("/webhooks/woocommerce", lambda body: {"content-type": "application/json", "x-wc-webhook-topic": "order.created",
                                            "x-wc-webhook-signature": sign(body, "not-the-secret")}),
    ("/events", lambda body: {"content-type": "application/json", "x-api-key": "not-the-key"}),
    ("/events", lambda body: {"content-type": "application/json"}),
], ids=["shopify-bad-hmac", "shopify-no-hmac", "woocommerce-bad-signature", "events-bad-key", "events-no-key"])
def test_bad_signatures_and_keys_get_401_and_nothing_is_queued(stack, now, path, headers):
    body = json.dumps(shopify_order(now) if path.startswith("/webhooks") else api_event(now)).encode()
    assert call_url(stack, "POST", path, body, headers(body))[:2] == (401, {"message": "unauthorized"})
    assert queued(stack) == 0


@pytest.mark.parametrize("method, path", [
    ("POST", "/"), ("GET", "/"), ("POST", "/unknown"), ("POST", "/webhooks"), ("POST", "/webhooks/shopify/extra"),
    ("GET", "/events"), ("PUT", "/webhooks/shopify"), ("POST", "/default/events"),
])
def test_any_other_method_or_path_gets_404(stack, now, method, path):
    """An HTTP API answers these itself; through a Function URL they reach the function, whose
    router answers 404 without reading a secret or the body."""
    body = json.dumps(api_event(now)).encode()
    status, answer, _ = call_url(stack, method, path, body, {"content-type": "application/json", "x-api-key": API_KEY})
    assert status == 404 and answer == {"statusCode": 404, "message": "Not found"}
    assert queued(stack) == 0
