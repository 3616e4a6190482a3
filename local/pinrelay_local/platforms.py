"""Stripe and BigCommerce in the local stack: their settings, the stand-ins seeded from the samples
in events/webhooks, and the signed webhooks `make post-samples` posts (as Stripe and BigCommerce
send them). Nothing here is shipped to Lambda.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from pathlib import Path
from typing import Any

from pinrelay.sources.signatures import standard_webhook_signature, stripe_signature_header

from pinrelay_local.platform_standins import (
    BIGCOMMERCE_STORE,
    BIGCOMMERCE_TOKEN,
    STRIPE_KEY,
    BigCommerceStandIn,
    StripeStandIn,
    example_orders,
    stripe_fixtures,
    stripe_line_item,
)

# the local values (each at least 32 characters, as pinrelay requires of a signing secret)
LOCAL_PLATFORM_DEFAULTS: dict[str, str] = {
    "STRIPE_WEBHOOK_SECRET": "whsec_pinrelay_local_stripe_endpoint_secret_0001",
    "STRIPE_API_KEY": STRIPE_KEY,
    "BIGCOMMERCE_WEBHOOK_SECRET": "pinrelay-local-bigcommerce-webhook-secret-0001",
    "BIGCOMMERCE_CLIENT_SECRET": "pinrelay-local-bigcommerce-client-secret-0001",
    "BIGCOMMERCE_API_TOKEN": BIGCOMMERCE_TOKEN,
    "BIGCOMMERCE_STORE_HASH": BIGCOMMERCE_STORE,
}
PLATFORM_SECRET_NAMES = {
    "STRIPE_WEBHOOK_SECRET": "pinrelay/local/stripe-webhook-secret",
    "STRIPE_API_KEY": "pinrelay/local/stripe-api-key",
    "BIGCOMMERCE_WEBHOOK_SECRET": "pinrelay/local/bigcommerce-webhook-secret",
    "BIGCOMMERCE_CLIENT_SECRET": "pinrelay/local/bigcommerce-client-secret",
    "BIGCOMMERCE_API_TOKEN": "pinrelay/local/bigcommerce-api-token",
}
FETCH_QUEUE_NAME = "pinrelay-bigcommerce-fetch"
FETCH_MAPPING = "BigCommerceFetchEventSourceMapping"
FETCH_DLQ_NAME = "pinrelay-bigcommerce-fetch-dlq"
LINE_ITEMS_QUEUE_NAME = "pinrelay-stripe-line-items"
LINE_ITEMS_DLQ_NAME = "pinrelay-stripe-line-items-dlq"
BIGCOMMERCE_SECRET_HEADER = "X-Pinrelay-Secret"


def stripe_sample_files(events_dir: Path) -> list[Path]:
    return sorted((events_dir / "webhooks").glob("stripe_*.json"))


def sample_line_items(session: dict[str, Any]) -> list[dict[str, Any]]:
    """What a sample session bought, for the stand-in: fixtures3's product, one line of its subtotal."""
    product = stripe_fixtures()["item"]["price"]["product"]
    amount = session.get("amount_subtotal") or 0
    return [stripe_line_item(1, 1, amount, session.get("currency") or "usd", product, "T-shirt")]


def start_stripe(events_dir: Path, key: str = STRIPE_KEY) -> StripeStandIn:
    """The Stripe stand-in with the sessions of the samples and their line items."""
    standin = StripeStandIn(key=key).start()
    for file in stripe_sample_files(events_dir):
        session = json.loads(file.read_text(encoding="utf-8"))["data"]["object"]
        standin.add_session(session, sample_line_items(session))
    return standin


def start_bigcommerce(store: str = BIGCOMMERCE_STORE, token: str = BIGCOMMERCE_TOKEN) -> BigCommerceStandIn:
    """The BigCommerce stand-in with the docs' orders (``example_orders``) in ``store``."""
    standin = BigCommerceStandIn({store: token}).start()
    for bundle in example_orders().values():
        standin.put_order(store, bundle)
    return standin


# -------------------------------------------------------------------------------- signed webhooks
def stripe_webhook(event: dict[str, Any], secret: str, now: float | None = None) -> tuple[bytes, dict[str, str]]:
    """A Stripe event as Stripe posts it: its ``created`` moved to now, signed with ``secret``."""
    stamp = int(time.time() if now is None else now)
    payload = copy.deepcopy(event)
    payload["created"] = stamp
    raw = json.dumps(payload, indent=2).encode("utf-8")  # Stripe sends pretty-printed JSON
    return raw, {"Content-Type": "application/json; charset=utf-8", "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                 "Stripe-Signature": stripe_signature_header(raw, secret, stamp)}


def bigcommerce_webhook(notice: dict[str, Any], store: str, secret: str, client_secret: str | None,
                        now: float | None = None) -> tuple[bytes, dict[str, str]]:
    """A BigCommerce webhook as BigCommerce posts it: ``producer`` naming ``store``, ``created_at``
    now, the custom header the hook was created with, and the Standard Webhooks signature."""
    stamp = int(time.time() if now is None else now)
    payload = copy.deepcopy(notice)
    payload["producer"] = f"stores/{store}"
    payload["created_at"] = stamp
    raw = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    headers = {"Content-Type": "application/json", BIGCOMMERCE_SECRET_HEADER: secret}
    if client_secret:
        message_id = str(uuid.uuid4())
        headers.update({"webhook-id": message_id, "webhook-timestamp": str(stamp),
                        "webhook-signature": standard_webhook_signature(raw, message_id, stamp, client_secret.encode())})
    return raw, headers


def fetch_event_source(template: Path, mapping: str = FETCH_MAPPING) -> tuple[int, float]:
    """(batch size, batching window in seconds) of the BigCommerce fetch queue's event source, as
    template.yaml sets them."""
    from pinrelay_tools.template import load_template

    properties = load_template(template)["Resources"][mapping]["Properties"]
    return int(properties["BatchSize"]), float(properties.get("MaximumBatchingWindowInSeconds", 0))
