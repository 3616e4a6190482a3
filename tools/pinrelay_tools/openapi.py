"""The OpenAPI document of pinrelay's ingest API, generated from the pydantic models.

``python -m pinrelay_tools.openapi`` (re)writes ``functions/ingest/openapi.json``, the copy
shipped in the repository (and served by the local stack at ``GET /openapi.json``);
tests/contract/test_openapi_document.py checks that the committed file equals what
``build_openapi()`` gives now, so a change to the models without regenerating fails the tests.
``--check`` exits 1 when the file is stale.

The request body of ``POST /events`` is ``IncomingEvent`` (``pinrelay.models``) or
``{"data": [IncomingEvent, ...]}`` with 1 to 1000 events; its schema is pydantic's own
``model_json_schema`` with ``$defs`` moved to ``components.schemas``, plus what the validators
check but pydantic cannot express (the names of ``event_name``; money given as a number or a
string). The answers are those of ``functions/ingest/ingest_handler.py``: per-event
``EventResult`` items in the shape of ``pinrelay.ingest.IngestOutcome.as_json``.

Nothing here is shipped to Lambda except the generated JSON file.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
OPENAPI_PATH = REPO_ROOT / "functions" / "ingest" / "openapi.json"
OPENAPI_VERSION = "3.1.0"
API_VERSION = "1.0.0"
REF = "#/components/schemas/{model}"

MONEY_FIELDS = {"CustomData": ("value", "predicted_ltv"), "Content": ("item_price",)}


def _ensure_layer_on_path() -> None:
    layer = str(REPO_ROOT / "layers" / "pinrelay")
    try:
        import pinrelay.models  # noqa: F401
    except ImportError:
        sys.path.insert(0, layer)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _money(schema: dict[str, Any]) -> dict[str, Any]:
    """``DecimalString``: a number or a numeric string, sent to Pinterest as a string."""
    out = {k: v for k, v in schema.items() if k != "anyOf"}
    out["anyOf"] = [{"type": "string"}, {"type": "number"}, {"type": "null"}]
    out["description"] = (
        "A number or a numeric string (finite, absolute value below 1e15); sent to Pinterest as a string."
    )
    return out


def model_schemas() -> dict[str, dict[str, Any]]:
    """components.schemas for the request: IncomingEvent and every model it uses."""
    _ensure_layer_on_path()
    from pinrelay.models import EVENT_NAMES, IncomingEvent

    schema = IncomingEvent.model_json_schema(ref_template=REF, mode="validation")
    defs: dict[str, dict[str, Any]] = schema.pop("$defs", {})
    components = {name: defs[name] for name in sorted(defs)}
    components["IncomingEvent"] = schema

    event = components["IncomingEvent"]
    event["properties"]["event_name"] = {
        **event["properties"]["event_name"],
        "enum": sorted(EVENT_NAMES),
        "description": "One of Pinterest's event names.",
    }
    event["properties"]["event_id"]["description"] = (
        "Your id of the event; with event_name and the ad account, the dedup key (24 h window)."
    )
    event["properties"]["event_time"]["description"] = (
        "Unix seconds; at most 7 days old and 5 minutes ahead. Default: the time of receipt."
    )
    for model, fields in MONEY_FIELDS.items():
        for field in fields:
            components[model]["properties"][field] = _money(components[model]["properties"][field])
    components["CustomData"]["properties"]["currency"]["description"] = "ISO 4217 code, e.g. USD."
    components["RawUserData"]["description"] = (
        "Raw values (normalised and SHA-256 hashed by pinrelay) or SHA-256 hex digests (kept as they are). "
        "An event needs em, hashed_maids, or both client_ip_address and client_user_agent."
    )
    return components


def answer_schemas() -> dict[str, dict[str, Any]]:
    """components.schemas for the answers (EventResult, the ingest answer, errors)."""
    _ensure_layer_on_path()
    from pinrelay.models import EventResult

    result = EventResult.model_json_schema(ref_template=REF, mode="serialization")
    result.pop("$defs", None)
    counts = {
        "accepted": {"type": "integer", "minimum": 0},
        "duplicates": {"type": "integer", "minimum": 0},
        "rejected": {"type": "integer", "minimum": 0},
        "withheld": {"type": "integer", "minimum": 0},
        "errors": {"type": "integer", "minimum": 0},
        "events": {"type": "array", "items": _ref("EventResult")},
    }
    return {
        "EventResult": result,
        "IngestAnswer": {
            "title": "IngestAnswer",
            "description": "One result per event, in request order (pinrelay.ingest.IngestOutcome.as_json).",
            "type": "object",
            "properties": {"message": {"type": "string"}, **counts},
            "required": ["accepted", "duplicates", "rejected", "withheld", "errors", "events"],
        },
        "Error": {
            "title": "Error",
            "type": "object",
            "properties": {"message": {"type": "string"}},
            "required": ["message"],
        },
        "Unavailable": {
            "title": "Unavailable",
            "description": "SQS could not take some events now: retry the whole request; the events queued "
            "the first time are delivered once (the sender drops the copies). Carries the per-event results.",
            "type": "object",
            "properties": {"message": {"type": "string"}, **counts},
            "required": ["message"],
        },
        "WebhookAnswer": {
            "title": "WebhookAnswer",
            "description": "The order's event (accepted, rejected with the reason, or withheld by the consent "
            "policy with the reason), or a topic "
            "that is not forwarded / an order not paid yet (ignored), or the WooCommerce ping (pong).",
            "type": "object",
            "properties": {"message": {"type": "string"}, "ignored": {"type": "boolean"}, **counts},
        },
        "EventBatch": {
            "title": "EventBatch",
            "type": "object",
            "properties": {
                "data": {"type": "array", "minItems": 1, "maxItems": 1000, "items": _ref("IncomingEvent")},
            },
            "required": ["data"],
            "additionalProperties": False,
        },
    }


def _json_response(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _header(name: str, description: str, required: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": required,
        "description": description,
        "schema": {"type": "string"},
    }


def _webhook_responses() -> dict[str, Any]:
    return {
        "200": _json_response("The webhook was verified and handled (see WebhookAnswer).", "WebhookAnswer"),
        "400": _json_response("Verified, but the body is not JSON.", "Error"),
        "401": _json_response('Missing, wrong or stale signature: {"message": "unauthorized"}.', "Error"),
        "413": _json_response("Body over 1 MB.", "Error"),
        "503": _json_response("AWS could not take the event now; the platform retries.", "Unavailable"),
    }


def build_openapi() -> dict[str, Any]:
    schemas = {**model_schemas(), **answer_schemas()}
    events_body = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"oneOf": [_ref("IncomingEvent"), _ref("EventBatch")]},
            }
        },
    }
    raw_order = {
        "type": "object",
        "description": "The platform's order JSON, exactly as signed (the signature covers the raw bytes).",
        "additionalProperties": True,
    }
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "pinrelay ingest API",
            "version": API_VERSION,
            "description": "Conversion events in, Pinterest API for Conversions out. Generated by "
            "`python -m pinrelay_tools.openapi` from pinrelay's pydantic models.",
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "servers": [
            {"url": "http://127.0.0.1:3000", "description": "make local"},
            {
                "url": "https://{api_id}.execute-api.{region}.amazonaws.com",
                "description": "the stack's IngestApiUrl",
                "variables": {"api_id": {"default": "abc123"}, "region": {"default": "us-east-1"}},
            },
        ],
        "paths": {
            "/events": {
                "post": {
                    "operationId": "postEvents",
                    "summary": 'Post one event, or {"data": [...]} with up to 1000 events',
                    "security": [{"ApiKey": []}],
                    "requestBody": events_body,
                    "responses": {
                        "202": _json_response(
                            "Per-event results: accepted, duplicate or rejected (with the reason).", "IngestAnswer"
                        ),
                        "400": _json_response('The body is not JSON, or not an event / {"data": [...]}.', "Error"),
                        "401": _json_response(
                            'Missing or wrong key: {"message": "unauthorized"}, no hint which.', "Error"
                        ),
                        "413": _json_response("Body over 1 MB, or more than 1000 events.", "Error"),
                        "422": _json_response("No event in the request is valid; nothing was queued.", "IngestAnswer"),
                        "503": _json_response("AWS could not take the events now: retry.", "Unavailable"),
                    },
                }
            },
            "/webhooks/shopify": {
                "post": {
                    "operationId": "postShopifyWebhook",
                    "summary": "Shopify webhook (orders/create, checkouts/create, carts/create, carts/update)",
                    "security": [],
                    "parameters": [
                        _header(
                            "X-Shopify-Hmac-Sha256",
                            "Base64 HMAC-SHA256 of the raw body with the app's "
                            "client secret (or the store's webhook key).",
                        ),
                        _header("X-Shopify-Topic", "e.g. orders/create; other topics are answered 200 and ignored."),
                        _header("X-Shopify-Shop-Domain", "Routes the shop to its ad account (account map).", False),
                        _header("X-Shopify-Webhook-Id", "Shopify's delivery id.", False),
                        _header(
                            "X-Shopify-Triggered-At",
                            "ISO 8601; a webhook older than WEBHOOK_MAX_AGE_SECONDS (5 h) is refused as a replay.",
                            False,
                        ),
                    ],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": raw_order}}},
                    "responses": _webhook_responses(),
                }
            },
            "/webhooks/woocommerce": {
                "post": {
                    "operationId": "postWooCommerceWebhook",
                    "summary": "WooCommerce webhook (order.created, order.updated); the unsigned ping gets 200",
                    "security": [],
                    "parameters": [
                        _header(
                            "X-WC-Webhook-Signature", "Base64 HMAC-SHA256 of the raw body with the webhook's secret."
                        ),
                        _header("X-WC-Webhook-Topic", "order.created or order.updated; others are ignored."),
                        _header(
                            "X-WC-Webhook-Source", "The shop's URL; routes it to its ad account (account map).", False
                        ),
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": raw_order},
                            "application/x-www-form-urlencoded": {
                                "schema": {
                                    "type": "object",
                                    "description": "WooCommerce's ping when a webhook is created: webhook_id=<id>.",
                                    "properties": {"webhook_id": {"type": "integer", "minimum": 0}},
                                    "required": ["webhook_id"],
                                    "additionalProperties": False,
                                }
                            },
                        },
                    },
                    "responses": _webhook_responses(),
                }
            },
            "/webhooks/stripe": {
                "post": {
                    "operationId": "postStripeWebhook",
                    "summary": "Stripe webhook (checkout.session.completed, checkout.session.async_payment_succeeded)",
                    "security": [],
                    "parameters": [
                        _header("Stripe-Signature", "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<raw body>\"> with "
                                "the endpoint's signing secret (whsec_...); a t more than 300 s away is refused."),
                    ],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "additionalProperties": True,
                        "description": "A Stripe event, exactly as signed; other event types are answered 200 and ignored."}}}},
                    "responses": {**_webhook_responses(),
                                  "503": _json_response("AWS, or Stripe's API for the line items, could not answer now; "
                                                        "Stripe delivers the event again.", "Unavailable")},
                }
            },
            "/webhooks/bigcommerce": {
                "post": {
                    "operationId": "postBigCommerceWebhook",
                    "summary": "BigCommerce webhook (store/order/created, statusUpdated, updated): queued for the "
                               "fetcher, which reads the order",
                    "security": [],
                    "parameters": [
                        _header("X-Pinrelay-Secret", "The secret the webhook was created with in its headers "
                                "(at least 32 characters), checked against the store the body names."),
                        _header("webhook-id", "Standard Webhooks message id (required with BIGCOMMERCE_CLIENT_SECRET).",
                                False),
                        _header("webhook-timestamp", "Standard Webhooks timestamp (unix seconds).", False),
                        _header("webhook-signature", "Standard Webhooks signature(s): v1,<base64 HMAC-SHA256 of "
                                "\"<id>.<timestamp>.<raw body>\"> with the client secret.", False),
                    ],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "additionalProperties": True,
                        "description": 'BigCommerce\'s thin payload: {"scope", "store_id", "producer": "stores/<hash>", '
                                       '"data": {"type": "order", "id"}, "hash", "created_at"}.'}}}},
                    "responses": {**_webhook_responses(),
                                  "404": _json_response("BigCommerce is not set up in this deployment.", "Error"),
                                  "503": _json_response("The fetch job could not be queued now; BigCommerce retries.",
                                                        "Unavailable")},
                }
            },
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "ApiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "x-api-key",
                    "description": "A key whose SHA-256 is in the ingest key secret (`sha256:<hex>`, one per line "
                    "or comma; several during a rotation) or in the account map.",
                }
            },
        },
    }


def render(document: dict[str, Any] | None = None) -> str:
    """The file's exact text: sorted keys would scramble the document's reading order, so
    insertion order is kept; two-space indent, ASCII only, trailing newline."""
    return json.dumps(copy.deepcopy(document or build_openapi()), indent=2, ensure_ascii=True) + "\n"


def write(path: Path = OPENAPI_PATH) -> bool:
    """Write the document; True when the file changed."""
    text = render()
    old = path.read_text(encoding="utf-8") if path.exists() else None
    if old == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pinrelay_tools.openapi", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file is out of date")
    parser.add_argument("--output", type=Path, default=OPENAPI_PATH, help=f"default {OPENAPI_PATH}")
    args = parser.parse_args(argv)
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != render():
            print(f"{args.output} is out of date: run python -m pinrelay_tools.openapi", file=sys.stderr)
            return 1
        return 0
    changed = write(args.output)
    print(f"{'wrote' if changed else 'unchanged'} {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
