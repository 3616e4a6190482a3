"""Ingest Lambda: HTTP API (payload 2.0) -> validate, normalise + hash -> dedup -> SQS.

Routes: POST /events (x-api-key), POST /webhooks/shopify (X-Shopify-Hmac-Sha256),
POST /webhooks/woocommerce (X-WC-Webhook-Signature). This module only speaks HTTP and picks the
ad account; the work is in pinrelay.ingest, pinrelay.sources and pinrelay.accounts.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from pydantic import SecretStr

from pinrelay.accounts import (
    AccountMap,
    AccountRoute,
    DefaultAccount,
    InvalidAccountMap,
    key_matches,
    parse_account_map,
    stored_key_digest,
)
from pinrelay.adapters.metrics import emit_filtered_metric, emit_ingest_metrics
from pinrelay.adapters.wiring import aws_ingest_service
from pinrelay.adapters.secrets import SecretUnavailable, secret_value, secret_values
from pinrelay.config import IngestSettings, SecretRef, ingest_settings
from pinrelay.events import EventFiltered, EventRejected, PreparedEvent, json_text_is_clean
from pinrelay.ingest import MAX_EVENTS_PER_REQUEST, IngestOutcome, IngestService
from pinrelay.sources import shopify, woocommerce
from pinrelay.sources.signatures import verify_base64_hmac

MAX_BODY_BYTES = 1_048_576
UNAUTHORIZED = {"message": "unauthorized"}
# What mapping a well-signed but malformed webhook body may raise (ArithmeticError: int(1e309),
# decimal.Overflow); it becomes a rejected event with the reason, not a 500 the platform retries.
UNMAPPABLE = (TypeError, ValueError, AttributeError, KeyError, IndexError, ArithmeticError)

logger = Logger()
# debug=False whatever POWERTOOLS_DEV says: in debug mode the resolver prints every request,
# API keys and personal data included
app = APIGatewayHttpResolver(debug=False)


def settings() -> IngestSettings:
    return ingest_settings()


@cache
def service() -> IngestService:
    shopify.validate_event_id_template(settings().shopify_event_id_template)
    return aws_ingest_service(settings())


def _secrets(ref: SecretRef | None) -> list[str]:
    return secret_values(ref, settings().secrets_max_age_seconds) if ref else []


def _webhook_secrets(route_secrets: list[SecretStr] | None, default: SecretRef | None) -> list[str]:
    """A mapped shop signs with its own secrets only; any other shop with the deployment's."""
    if route_secrets is not None:
        return [secret.get_secret_value() for secret in route_secrets]
    return _secrets(default)


def account_map() -> AccountMap:
    """The account map (empty without one), checked against the default account: its shop
    allow-lists and, when the map has entries, its API keys and webhook secrets (read only then).
    An invalid map answers 503 to every request that consults it, with a log line saying what is
    wrong: routing a mapped shop to the default account instead would send its orders to the wrong
    ad account, which cannot be undone; Shopify and API clients retry a 503."""
    config = settings()
    raw = secret_value(config.account_map_ref, config.secrets_max_age_seconds) if config.account_map_ref else ""
    default = DefaultAccount(shopify_shop_domains=config.shopify_shop_domains,
                             woocommerce_sources=config.woocommerce_sources)
    try:
        accounts = parse_account_map(raw, default)
        if accounts.accounts:  # no entry may reuse a key or webhook secret of the default account
            default = default.with_credentials(
                api_key_digests=[stored_key_digest(key) for key in _secrets(config.ingest_api_key_ref)],
                shopify_webhook_secrets=_secrets(config.shopify_secret_ref),
                woocommerce_webhook_secrets=_secrets(config.woocommerce_secret_ref),
            )
            accounts = parse_account_map(raw, default)
    except InvalidAccountMap as problem:
        logger.error("account map invalid: requests are answered 503 until it is fixed", extra={"error": str(problem)})
        raise SecretUnavailable("the account map is invalid") from None
    return accounts


def _json(status: int, body: dict) -> Response:
    return Response(status_code=status, content_type="application/json", body=json.dumps(body, separators=(",", ":")))


def _raw_body() -> bytes:
    event = app.current_event
    body = event.body or ""
    return base64.b64decode(body) if event.is_base64_encoded else body.encode("utf-8")


def _header(name: str) -> str | None:
    return (app.current_event.headers or {}).get(name)


def _answer(outcome: IngestOutcome, source: str, webhook: bool = False) -> Response:
    # Only what did not go to the queue is counted here (rejected, not queued, repeated within the
    # request): the sender counts every queued event's fate (delivered, duplicate, rejected by
    # Pinterest) once per batch, so a clean webhook writes no metrics line (docs/cost-and-speed.md).
    emit_ingest_metrics([result for result in outcome.results if result.status != "accepted"], source)
    # one line per request costs more in CloudWatch Logs than the Lambda time of a webhook:
    # INFO only when something needs a look (a rejection or an error), DEBUG otherwise
    log = logger.info if outcome.count("rejected") or outcome.failed else logger.debug
    log(
        "ingested",
        extra={
            "source": source,
            "accepted": outcome.count("accepted"),
            "duplicates": outcome.count("duplicate"),
            "rejected": outcome.count("rejected"),
            "errors": outcome.count("error"),
            "rejections": [r.reason for r in outcome.results if r.status == "rejected"][:10],
        },
    )
    if outcome.failed:
        return _json(503, {"message": "some events could not be queued; retry the request", **outcome.as_json()})
    if not outcome.any_valid and not webhook:
        return _json(422, {"message": "no event is valid", **outcome.as_json()})
    # webhooks get 200 even when their event is rejected: the platforms retry non-2xx answers
    # and disable subscriptions that keep failing; the reason is in the body, logs and metrics.
    return _json(200 if webhook else 202, outcome.as_json())


def _time_left() -> float:
    """Seconds left before Lambda ends this invocation (the queue starts no call that could not end before it)."""
    return app.lambda_context.get_remaining_time_in_millis() / 1000


def _accept(prepared: list[PreparedEvent | EventRejected], source: str, now: int, route: AccountRoute | None,
            webhook: bool, consent_known: bool | None = None) -> Response:
    outcome = service().accept(prepared, source=source, now=now, ad_account_id=route.ad_account_id if route else None,
                               consent_known=consent_known, time_left=_time_left)
    return _answer(outcome, source, webhook)


@dataclass(frozen=True)
class Body:
    """A request body read as JSON: the value, or the answer to give instead; ``text_clean``:
    its text cannot hold characters SQS refuses (``events.json_text_is_clean``)."""

    value: object = None
    error: Response | None = None
    text_clean: bool = False


def _read_json(raw: bytes) -> Body:
    if len(raw) > MAX_BODY_BYTES:
        return Body(error=_json(413, {"message": f"body over {MAX_BODY_BYTES} bytes; split it into several requests"}))
    try:
        # strict UTF-8: json.loads(bytes) would decode surrogates encoded in UTF-8 ('surrogatepass')
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return Body(error=_json(400, {"message": "body is not JSON: it is not UTF-8"}))
    try:
        return Body(json.loads(text), text_clean=json_text_is_clean(text))
    except RecursionError:  # json raises it, not ValueError, past ~1000 levels of [ or {
        return Body(error=_json(400, {"message": "body is not JSON pinrelay can read: nested too deeply"}))
    except ValueError:
        return Body(error=_json(400, {"message": "body is not JSON"}))


@app.exception_handler(SecretUnavailable)
def secrets_unavailable(exc: SecretUnavailable) -> Response:
    """Keys and signing secrets cannot be checked: nothing was queued, the caller may retry."""
    logger.error("secret unavailable", extra={"error": str(exc)})
    return _json(503, {"message": "temporarily unavailable; retry the request"})


@app.post("/events")
def post_events() -> Response:
    given = _header("x-api-key") or ""
    route = account_map().for_api_key(given)
    default_keys = [stored_key_digest(key) for key in _secrets(settings().ingest_api_key_ref)]
    if route is None and not key_matches(given, default_keys):
        return _json(401, UNAUTHORIZED)
    body = _read_json(_raw_body())
    if body.error:
        return body.error
    payload = body.value
    if isinstance(payload, dict) and "data" in payload:
        events = payload["data"]
        if not isinstance(events, list) or not events:
            return _json(400, {"message": "data: must be a non-empty list of events"})
        if len(events) > MAX_EVENTS_PER_REQUEST:
            return _json(413, {"message": f"data: {len(events)} events; at most {MAX_EVENTS_PER_REQUEST} per request"})
        if set(payload) != {"data"}:
            extra = len(set(payload) - {"data"})  # counted, not named: the names are the sender's input
            return _json(400, {"message": f"{extra} unknown top-level field(s): a batch is {{\"data\": [events]}} only"})
    elif isinstance(payload, dict):
        events = [payload]
    else:
        return _json(400, {"message": 'body must be one event object or {"data": [events]}'})
    # ?test=true: the events reach Pinterest with its test flag, in requests of their own (pinrelay verify)
    test = (app.current_event.get_query_string_value("test") or "").lower() == "true"
    outcome = service().ingest_api_events(events, source="api", ad_account_id=route.ad_account_id if route else None,
                                          time_left=_time_left, test=test, text_checked=body.text_clean)
    return _answer(outcome, "api")


def _shown_topic(topic: str) -> str:
    """A topic header repeated in an answer only when it looks like one (``orders/paid``): the
    header is not signed, it could carry anything."""
    return repr(topic) if re.fullmatch(r"[a-z_]{1,40}[/.][a-z_]{1,40}", topic) else "(not a topic name)"


def _too_old(triggered_at: str | None, now: int) -> bool:
    """Replay guard: a webhook whose trigger time is missing or outside the window is refused
    (Shopify always sends it; a replay without it would pass any window)."""
    if not triggered_at:
        return True
    try:
        stamp = datetime.fromisoformat(triggered_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return True
    return not (now - settings().webhook_max_age_seconds <= stamp <= now + 300)


@app.post("/webhooks/shopify")
def post_shopify_webhook() -> Response:
    raw = _raw_body()
    accounts = account_map()
    route = accounts.for_shopify_shop(_header("x-shopify-shop-domain"))
    secrets = _webhook_secrets(route.shopify_webhook_secrets if route else None, settings().shopify_secret_ref)
    if not verify_base64_hmac(raw, _header("x-shopify-hmac-sha256"), secrets):
        return _json(401, UNAUTHORIZED)
    now = service().now()
    if _too_old(_header("x-shopify-triggered-at"), now):
        return _json(401, UNAUTHORIZED)
    topic = _header("x-shopify-topic") or ""
    if topic not in shopify.SHOPIFY_TOPICS:
        return _json(200, {"message": f"topic {_shown_topic(topic)} is not forwarded", "ignored": True})
    body = _read_json(raw)
    if body.error:
        return body.error
    payload = body.value
    if mismatch := accounts.shopify_shop_mismatch(route, _header("x-shopify-shop-domain"), payload):
        logger.warning("shopify webhook refused", extra={"reason": mismatch})
        return _json(401, UNAUTHORIZED)
    try:
        results = shopify.shopify_events(topic, payload, now=now, options=shopify_options())
    except UNMAPPABLE as exc:  # e.g. OverflowError for a quantity of 1e309: answer, don't crash
        results = [EventRejected(f"{topic}: the body is not a Shopify payload pinrelay understands ({type(exc).__name__})")]
    filtered = [item for item in results if isinstance(item, EventFiltered)]
    if filtered:
        return _filtered(filtered[0], "shopify")
    return _accept(results, "shopify", now, route, webhook=True, consent_known=False)


@cache
def shopify_options() -> shopify.ShopifyOptions:
    config = settings()
    return shopify.ShopifyOptions(event_id_template=config.shopify_event_id_template,
                                  content_id_field=config.shopify_content_id_field, policy=config.order_policy())


def _filtered(not_a_sale: EventFiltered, source: str) -> Response:
    """An order that is not a conversion by the merchant's rules: 200 with the reason, counted by reason."""
    emit_filtered_metric(source, not_a_sale.code)
    logger.info("order filtered", extra={"source": source, "reason": not_a_sale.code, "event_id": not_a_sale.event_id})
    return _json(200, {"message": f"not forwarded: {not_a_sale.reason}", "filtered": not_a_sale.code,
                       "event_id": not_a_sale.event_id, "ignored": True})


@app.post("/webhooks/woocommerce")
def post_woocommerce_webhook() -> Response:
    raw = _raw_body()
    if woocommerce.is_ping(raw, _header("content-type")):
        return _json(200, {"message": "pong"})
    accounts = account_map()
    route = accounts.for_woocommerce_source(_header("x-wc-webhook-source"))
    secrets = _webhook_secrets(route.woocommerce_webhook_secrets if route else None, settings().woocommerce_secret_ref)
    if not verify_base64_hmac(raw, _header("x-wc-webhook-signature"), secrets):
        return _json(401, UNAUTHORIZED)
    topic = _header("x-wc-webhook-topic") or ""
    if topic not in woocommerce.ORDER_TOPICS:
        return _json(200, {"message": f"topic {_shown_topic(topic)} is not forwarded", "ignored": True})
    body = _read_json(raw)
    if body.error:
        return body.error
    payload = body.value
    if mismatch := accounts.woocommerce_source_mismatch(route, _header("x-wc-webhook-source"), payload):
        logger.warning("woocommerce webhook refused", extra={"reason": mismatch})
        return _json(401, UNAUTHORIZED)
    now = service().now()
    try:
        event = woocommerce.order_to_event(payload, now=now, topic=topic, content_id_field=settings().shopify_content_id_field,
                                           max_paid_age_seconds=settings().dedup_window_seconds)
    except EventRejected as rejected:
        event = rejected
    except UNMAPPABLE as exc:  # a signed body that is not the order it should be: answer, don't crash
        event = EventRejected(f"{topic}: the body is not a WooCommerce order pinrelay understands ({type(exc).__name__})")
    if event is None:
        return _json(200, {"message": "order not paid yet: nothing to send", "ignored": True})
    return _accept([event], "woocommerce", now, route, webhook=True, consent_known=False)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False)
def lambda_handler(event: dict, context) -> dict:
    return app.resolve(event, context)
