"""Ingest Lambda: HTTP API (payload 2.0) -> validate, normalise + hash -> dedup -> SQS.

Routes: POST /events (x-api-key), POST /webhooks/shopify (X-Shopify-Hmac-Sha256),
POST /webhooks/woocommerce (X-WC-Webhook-Signature), POST /webhooks/stripe (Stripe-Signature) and
POST /webhooks/bigcommerce (X-Pinrelay-Secret; the order is fetched later), the last two in
platform_webhooks.py. This module only speaks HTTP and picks the ad account; the work is in
pinrelay.ingest, pinrelay.sources and pinrelay.accounts.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Container
from dataclasses import dataclass, replace
from functools import cache
from operator import attrgetter
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from pinrelay.accounts import (
    AccountMap,
    AccountRoute,
    DefaultAccount,
    DefaultShopsSeen,
    InvalidAccountMap,
    check_account_map,
    key_matches,
    stored_key_digest,
)
from pinrelay.adapters.metrics import emit_filtered_metric, emit_ingest_metrics, emit_unlisted_shops_metric
from pinrelay.adapters.secrets import InvalidSecret, SecretUnavailable, api_key_values, secret_value, secret_values
from pinrelay.adapters.wiring import aws_ingest_service
from pinrelay.config import IngestSettings, SecretRef, ingest_settings
from pinrelay.events import EventFiltered, EventRejected, PreparedEvent, json_text_is_clean
from pinrelay.ingest import MAX_EVENTS_PER_REQUEST, IngestOutcome, IngestService
from pinrelay.sources import shopify, woocommerce
from pinrelay.sources.signatures import verify_base64_hmac
from pinrelay.timestamps import parse_moment
from platform_webhooks import PlatformRoutes
from pydantic import SecretStr

MAX_BODY_BYTES = 1_048_576
UNAUTHORIZED = {"message": "unauthorized"}

logger = Logger()
# debug=False whatever POWERTOOLS_DEV says: in debug mode the resolver prints every request,
# API keys and personal data included
app = APIGatewayHttpResolver(debug=False)


def settings() -> IngestSettings:
    return ingest_settings()


@cache
def service() -> IngestService:
    return aws_ingest_service(settings())


def _secrets(ref: SecretRef | None) -> list[str]:
    return secret_values(ref, settings().secrets_max_age_seconds) if ref else []


def _api_keys() -> list[str]:
    """The deployment's own ingest keys as stored (``sha256:<hex>``, or plain locally)."""
    return api_key_values(settings().ingest_api_key_ref, settings().secrets_max_age_seconds)


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
                             woocommerce_sources=config.woocommerce_sources, ad_account_id=config.pinterest_ad_account_id,
                             bigcommerce_store_hash=config.bigcommerce_store_hash)
    try:
        accounts = check_account_map(raw, default, lambda: (
            _api_keys(), _secrets(config.shopify_secret_ref),
            _secrets(config.woocommerce_secret_ref), _secrets(config.stripe_secret_ref),
            _secrets(config.bigcommerce_secret_ref),
        ))
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
    # Only what did not go to the queue to be sent is counted here (rejected, not queued, repeated
    # within the request, withheld for consent: EventsFiltered): the sender counts every queued
    # event's fate (delivered, duplicate, rejected by Pinterest) once per batch, so a clean webhook
    # writes no metrics line (docs/cost-and-speed.md).
    emit_ingest_metrics([result for result in outcome.results if result.status != "accepted"], source)
    # one line per request costs more in CloudWatch Logs than the Lambda time of a webhook:
    # INFO only when something needs a look (a rejection, an error, an event withheld), DEBUG otherwise
    log = logger.info if outcome.count("rejected") or outcome.count("withheld") or outcome.failed else logger.debug
    log(
        "ingested",
        extra={
            "source": source,
            "accepted": outcome.count("accepted"),
            "duplicates": outcome.count("duplicate"),
            "rejected": outcome.count("rejected"),
            "withheld": outcome.count("withheld"),
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


@app.exception_handler(InvalidSecret)
def secret_refused(exc: InvalidSecret) -> Response:
    """A key or signing secret is set in a form pinrelay refuses (too short to resist guessing, a
    JSON list written wrongly): nothing is checked against it; the log names the setting."""
    logger.error("secret refused: requests that need it are answered 503 until it is fixed", extra={"error": str(exc)})
    return _json(503, {"message": "temporarily unavailable; retry the request"})


@app.post("/events")
def post_events() -> Response:
    given = _header("x-api-key") or ""
    route = account_map().for_api_key(given)
    default_keys = [stored_key_digest(key) for key in _api_keys()]
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
    moment = parse_moment(triggered_at)
    if moment is None:
        return True
    return not (now - settings().webhook_max_age_seconds <= moment.timestamp() <= now + 300)


@dataclass(frozen=True)
class Platform:
    """What sets one webhook platform apart: its headers, the topics forwarded, and where the
    account map and the settings keep its shops and secrets."""

    source: str  # the metrics' and logs' source
    shop_header: str
    signature_header: str
    topic_header: str
    topics: Container[str]
    route_for: Callable[[AccountMap, str | None], AccountRoute | None]
    shop_mismatch: Callable[[AccountMap, AccountRoute | None, str | None, Any], str | None]
    route_secrets: Callable[[AccountRoute], list[SecretStr]]
    default_secret: Callable[[IngestSettings], SecretRef | None]
    triggered_at_header: str | None = None  # the replay guard's header, when the platform sends one


SHOPIFY = Platform("shopify", "x-shopify-shop-domain", "x-shopify-hmac-sha256", "x-shopify-topic", shopify.SHOPIFY_TOPICS,
                   AccountMap.for_shopify_shop, AccountMap.shopify_shop_mismatch,
                   attrgetter("shopify_webhook_secrets"), attrgetter("shopify_secret_ref"),
                   triggered_at_header="x-shopify-triggered-at")
WOOCOMMERCE = Platform("woocommerce", "x-wc-webhook-source", "x-wc-webhook-signature", "x-wc-webhook-topic",
                       woocommerce.ORDER_TOPICS, AccountMap.for_woocommerce_source, AccountMap.woocommerce_source_mismatch,
                       attrgetter("woocommerce_webhook_secrets"), attrgetter("woocommerce_secret_ref"))


@dataclass(frozen=True)
class Webhook:
    """A webhook that passed every check: signed by its shop's secret, fresh, of a forwarded
    topic, JSON, naming no other shop than the one it is routed by. ``shop_scope``: its shop,
    when several shops share its ad account (``AccountMap.shop_scope``)."""

    route: AccountRoute | None
    topic: str
    payload: Any
    now: int
    shop_scope: str | None = None


def _open_webhook(platform: Platform, raw: bytes) -> Webhook | Response:
    """The webhook, or the answer to give instead: 401 (signature, replay guard, a body naming
    another shop), 200 for a topic that is not forwarded, 4xx for a body that is not JSON."""
    accounts = account_map()
    shop = _header(platform.shop_header)
    route = platform.route_for(accounts, shop)
    secrets = _webhook_secrets(platform.route_secrets(route) if route else None, platform.default_secret(settings()))
    if not verify_base64_hmac(raw, _header(platform.signature_header), secrets):
        return _json(401, UNAUTHORIZED)
    now = None
    if platform.triggered_at_header:
        now = service().now()
        if _too_old(_header(platform.triggered_at_header), now):
            return _json(401, UNAUTHORIZED)
    topic = _header(platform.topic_header) or ""
    if topic not in platform.topics:
        return _json(200, {"message": f"topic {_shown_topic(topic)} is not forwarded", "ignored": True})
    body = _read_json(raw)
    if body.error:
        return body.error
    if mismatch := platform.shop_mismatch(accounts, route, shop, body.value):
        logger.warning(f"{platform.source} webhook refused", extra={"reason": mismatch})
        return _json(401, UNAUTHORIZED)
    scope = accounts.shop_scope(platform.source, route, shop, body.value)
    if route is None and scope is None and default_shops_seen().second_shop(
            platform.source, accounts.shop_key(platform.source, shop, body.value)):
        logger.error("two shops reach the default account and pinrelay counts one (no shop list for their platform): "
                     "their order numbers share the ad account's event ids; list every shop (ShopifyShopDomains, "
                     "WooCommerceSources)", extra={"source": platform.source})
        emit_unlisted_shops_metric(platform.source)
    return Webhook(route, topic, body.value, service().now() if now is None else now, scope)


@app.post("/webhooks/shopify")
def post_shopify_webhook() -> Response:
    webhook = _open_webhook(SHOPIFY, _raw_body())
    if isinstance(webhook, Response):
        return webhook
    options = replace(shopify_options(), shop_scope=webhook.shop_scope) if webhook.shop_scope else shopify_options()
    results = shopify.shopify_events(webhook.topic, webhook.payload, now=webhook.now, options=options)
    filtered = [item for item in results if isinstance(item, EventFiltered)]
    if filtered:
        return _filtered(filtered[0], SHOPIFY.source)
    return _accept(results, SHOPIFY.source, webhook.now, webhook.route, webhook=True, consent_known=False)


@cache
def default_shops_seen() -> DefaultShopsSeen:
    return DefaultShopsSeen()


@cache
def shopify_options() -> shopify.ShopifyOptions:
    return settings().shopify_options()


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
    webhook = _open_webhook(WOOCOMMERCE, raw)
    if isinstance(webhook, Response):
        return webhook
    event = woocommerce.woocommerce_event(webhook.topic, webhook.payload, now=webhook.now,
                                          content_id_field=settings().woocommerce_content_id_field,
                                          max_paid_age_seconds=settings().dedup_window_seconds,
                                          shop_scope=webhook.shop_scope)
    if event is None:
        return _json(200, {"message": "order not paid yet: nothing to send", "ignored": True})
    return _accept([event], WOOCOMMERCE.source, webhook.now, webhook.route, webhook=True, consent_known=False)


platforms = PlatformRoutes(
    answer=_json, read_json=_read_json, settings=settings, account_map=account_map, secrets=_secrets,
    service=service,
    accept=lambda prepared, source, now, route: _accept(prepared, source, now, route, webhook=True, consent_known=False),
    filtered=_filtered,
)


@app.post("/webhooks/stripe")
def post_stripe_webhook() -> Response:
    return platforms.stripe(_raw_body(), _header, _time_left)


@app.post("/webhooks/bigcommerce")
def post_bigcommerce_webhook() -> Response:
    return platforms.bigcommerce(_raw_body(), _header, _time_left)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False)
def lambda_handler(event: dict, context) -> dict:
    return app.resolve(event, context)
