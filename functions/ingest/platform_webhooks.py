"""The Stripe and BigCommerce webhook routes of the ingest function: HTTP in, the source's domain
(pinrelay.sources.stripe / bigcommerce, signatures), an answer out.

``PlatformRoutes`` is built by ingest_handler.py with the handler's own helpers (how it answers,
reads a body, reads secrets and the account map, accepts events, answers a filtered order), so
both routes answer, count and log exactly as the Shopify and WooCommerce ones do.

* ``POST /webhooks/stripe``: ``Stripe-Signature`` checked against every Stripe signing secret
  (the deployment's and the account map's: the one that verifies says whose account it is), the
  paid-only rule and the consent policy, the session mapped to its hashed event; when the account
  has a restricted key (STRIPE_API_KEY_SECRET_NAME, or the account map entry's ``stripe_api_key``)
  the event goes in a line-items job on the line-items queue and the webhook is answered at once
  (the fetcher, functions/stripe_line_items, reads the line items and queues the event); without
  one the event is queued as it is.
* ``POST /webhooks/bigcommerce``: the store the body names (``producer``) picks the secret its
  webhooks send back in ``X-Pinrelay-Secret`` (and, with BIGCOMMERCE_CLIENT_SECRET set, the
  Standard Webhooks signature must verify too); then a fetch job naming the order is queued on the
  fetch queue and the webhook is answered at once: the fetcher reads the order.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import Response
from pinrelay.accounts import AccountMap, AccountRoute
from pinrelay.adapters.aws import client, worst_call_seconds
from pinrelay.adapters.sqs import SqsEventQueue
from pinrelay.config import IngestSettings, SecretRef
from pinrelay.consent import decide_for_event
from pinrelay.events import EventFiltered, EventRejected, PreparedEvent
from pinrelay.ingest import EventResult, IngestOutcome, IngestService
from pinrelay.privacy import match_keys
from pinrelay.sources import bigcommerce, stripe
from pinrelay.sources.signatures import header_secret_matches, verify_standard_webhook, verify_stripe_signature

logger = logging.getLogger(__name__)

# the header a BigCommerce webhook is created with (its "headers" object) and sends back
BIGCOMMERCE_SECRET_HEADER = "x-pinrelay-secret"
UNAUTHORIZED = {"message": "unauthorized"}


@dataclass(frozen=True)
class PlatformRoutes:
    """The ingest handler's helpers these routes answer with (see ingest_handler.py)."""

    answer: Callable[[int, dict[str, Any]], Response]
    read_json: Callable[[bytes], Any]  # -> ingest_handler.Body
    settings: Callable[[], IngestSettings]
    account_map: Callable[[], AccountMap]
    secrets: Callable[[SecretRef | None], list[str]]  # signing secrets: each 32 characters or more
    service: Callable[[], IngestService]
    accept: Callable[[list[PreparedEvent | EventRejected], str, int, AccountRoute | None], Response]
    filtered: Callable[[EventFiltered, str], Response]

    # -- Stripe --------------------------------------------------------------------------------
    def stripe(self, raw: bytes, header: Callable[[str], str | None], time_left: Callable[[], float]) -> Response:
        config = self.settings()
        accounts = self.account_map()
        own = self.secrets(config.stripe_secret_ref)  # each one checked, 32 characters or more (InvalidSecret: 503)
        mapped = accounts.stripe_secrets()
        now = self.service().now()
        position = verify_stripe_signature(raw, header("stripe-signature"), own + [secret for _, secret in mapped], now)
        if position is None:
            return self.answer(401, UNAUTHORIZED)
        route = mapped[position - len(own)][0] if position >= len(own) else None
        body = self.read_json(raw)
        if body.error:
            return body.error
        checkout = stripe.read_event(body.value)
        if checkout is None:
            shown = _shown_type(body.value)
            return self.answer(200, {"message": f"event type {shown} is not forwarded", "ignored": True})
        if isinstance(checkout, EventRejected):
            return self.accept([checkout], stripe.SOURCE, now, route)
        options = config.stripe_options(config.dedup_window_seconds)
        skip = stripe.reason_to_skip(checkout, now, options)
        if skip is not None:
            return self.filtered(skip, stripe.SOURCE)
        event = stripe.stripe_event(checkout, now=now, options=options)
        wanted = route.stripe_api_key is not None if route is not None else config.stripe_api_key_ref is not None
        if not wanted or isinstance(event, EventRejected):
            return self.accept([event], stripe.SOURCE, now, route)
        if not config.stripe_line_items_queue_url:
            logger.warning("stripe line items not read: STRIPE_LINE_ITEMS_QUEUE_URL is not set; the conversion goes "
                           "without contents")
            return self.accept([event], stripe.SOURCE, now, route)
        service = self.service()
        if not decide_for_event(service.consent_policy, event.event, event.consent, stripe.SOURCE).send:
            return self.accept([event], stripe.SOURCE, now, route)  # withheld: its marker, no line items needed
        ad_account_id = route.ad_account_id if route is not None else config.pinterest_ad_account_id
        job = stripe.line_items_job_body(checkout, event, key="account_map" if route is not None else "deployment",
                                         route_name=route.name if route is not None else None,
                                         ad_account_id=ad_account_id, received_at=now)
        refusals = fetch_queue(config.stripe_line_items_queue_url).send([job], time_left)
        if refusals:
            logger.warning("line-items job not queued: answered 503", extra={"reason": refusals[0].reason})
            return self.answer(503, {"message": "the session could not be queued; deliver the webhook again"})
        outcome = IngestOutcome(results=[EventResult(index=0, status="accepted", event_id=event.event_id,
                                                     event_name=event.event_name,
                                                     match_keys=match_keys(event.event["user_data"]),
                                                     warnings=event.warnings or None)])
        return self.answer(200, {"message": "queued: the line items are read from Stripe, then the event is sent",
                                 **outcome.as_json()})

    # -- BigCommerce ---------------------------------------------------------------------------
    def bigcommerce(self, raw: bytes, header: Callable[[str], str | None], time_left: Callable[[], float]) -> Response:
        config = self.settings()
        if not config.bigcommerce_fetch_queue_url:
            return self.answer(404, {"message": "BigCommerce is not set up in this deployment (BigCommerceStoreHash)"})
        body = self.read_json(raw)
        store = bigcommerce.producer_store(body.value) if not body.error else None
        if store is None:  # nothing to pick a secret with: unauthenticated
            return self.answer(401, UNAUTHORIZED)
        route = self.account_map().for_bigcommerce_store(store)
        if route is not None:
            secrets = [secret.get_secret_value() for secret in route.bigcommerce_webhook_secrets]
        elif store == config.bigcommerce_store_hash:
            secrets = self.secrets(config.bigcommerce_secret_ref)
        else:
            logger.warning("bigcommerce webhook refused",
                           extra={"reason": "its store is neither BIGCOMMERCE_STORE_HASH nor in the account map"})
            return self.answer(401, UNAUTHORIZED)
        now = self.service().now()
        if not header_secret_matches(header(BIGCOMMERCE_SECRET_HEADER), secrets):
            return self.answer(401, UNAUTHORIZED)
        keys = [secret.encode("utf-8") for secret in self.secrets(config.bigcommerce_client_secret_ref)]
        if keys and not verify_standard_webhook(raw, header("webhook-id"), header("webhook-timestamp"),
                                                header("webhook-signature"), keys, now):
            return self.answer(401, UNAUTHORIZED)
        notice = bigcommerce.read_webhook(body.value)
        if notice is None:
            scope = body.value.get("scope") if isinstance(body.value, dict) else None
            shown = repr(scope) if isinstance(scope, str) and re.fullmatch(r"[a-z]+(/[a-zA-Z]+){1,4}", scope) else "(not a scope)"
            return self.answer(200, {"message": f"scope {shown} is not forwarded", "ignored": True})
        if isinstance(notice, EventRejected):
            return self.accept([notice], bigcommerce.SOURCE, now, route)
        ad_account_id = route.ad_account_id if route is not None else config.pinterest_ad_account_id
        job = bigcommerce.fetch_job_body(notice, ad_account_id, now)
        refusals = fetch_queue(config.bigcommerce_fetch_queue_url).send([job], time_left)
        if refusals:
            logger.warning("fetch job not queued: answered 503", extra={"reason": refusals[0].reason})
            return self.answer(503, {"message": "the order could not be queued for fetching; deliver the webhook again"})
        return self.answer(200, {"message": "queued: the order is read from the store and sent once it is paid",
                                 "store_hash": notice.store_hash, "order_id": notice.order_id})


def _shown_type(payload: Any) -> str:
    """An event type repeated in an answer only when it looks like one (``charge.succeeded``)."""
    value = payload.get("type") if isinstance(payload, dict) else None
    return repr(value) if isinstance(value, str) and re.fullmatch(r"[a-z_]{1,40}(\.[a-z_]{1,40}){1,4}", value) \
        else "(not an event type)"


@cache
def fetch_queue(queue_url: str) -> SqsEventQueue:
    """The BigCommerce fetch queue or the Stripe line-items queue: jobs, one a webhook."""
    return SqsEventQueue(queue_url, client("sqs"), worst_call_seconds=worst_call_seconds("sqs"))
