"""Send a missed Shopify order through ingest again, as the ``orders/create`` webhook it should have been.

Why this path (and not queueing the event on SQS directly): the body posted to
``{IngestApiUrl}/webhooks/shopify`` is the REST-shaped order, signed with the shop's webhook
secret, so the very code that maps webhooks in AWS maps it: the same account routing
(``X-Shopify-Shop-Domain``, the account map), the same event_id template, content id field,
order policy and consent policy, the same checks. The operator needs no AWS permission on the queue,
only the webhook secret, which Shopify signs with anyway. The sender's dedup window (7 days + 5
minutes) makes a second backfill harmless: its copies are dropped before Pinterest.

Ingest refuses a webhook whose ``X-Shopify-Triggered-At`` is missing or older than 5 hours (a
replay guard): a backfill is triggered now, and says so. ``X-Shopify-Webhook-Id`` names the
backfill (the HMAC does not cover it; nothing is derived from it). The post follows no redirect
(the signed order goes to the ingest URL only) and reads ingest's answer with a bound
(``pinrelay.adapters.bounded_http``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pinrelay.adapters.bounded_http import bounded_request
from pinrelay.sources.shopify_graphql import DEFAULT_API_VERSION
from pinrelay.sources.signatures import sign_body

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


class BackfillRefused(RuntimeError):
    """Ingest refused the backfill as a whole (wrong secret, wrong URL): stop, one line."""


@dataclass(frozen=True, slots=True)
class BackfillResult:
    status: str  # queued | rejected | withheld | failed
    detail: str = ""


class ShopifyWebhookBackfill:
    def __init__(
        self,
        ingest_url: str,
        shop_domain: str,
        webhook_secret: str,
        *,
        api_version: str = DEFAULT_API_VERSION,
        session: Any = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        timeout_seconds: float = 30.0,
        attempts: int = 4,
    ) -> None:
        import requests

        self.endpoint = ingest_url.rstrip("/") + "/webhooks/shopify"
        self.shop_domain = shop_domain
        self._secret = webhook_secret
        self.api_version = api_version
        self.session = session or requests.Session()
        self.clock = clock
        self.sleep = sleep
        self.timeout_seconds = timeout_seconds
        self.attempts = attempts
        self._requests_error = requests.RequestException

    def headers(self, raw_body: bytes) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Hmac-Sha256": sign_body(raw_body, self._secret),
            "X-Shopify-Shop-Domain": self.shop_domain,
            "X-Shopify-API-Version": self.api_version,
            "X-Shopify-Webhook-Id": f"pinrelay-backfill-{uuid.uuid4()}",
            "X-Shopify-Triggered-At": datetime.fromtimestamp(self.clock(), UTC).isoformat(timespec="seconds"),
        }

    def send(self, webhook_body: dict[str, Any]) -> BackfillResult:
        raw = json.dumps(webhook_body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        problem = ""
        for attempt in range(self.attempts):
            if attempt:
                self.sleep(min(2.0 ** attempt, 8.0))
            try:
                response = bounded_request(self.session, "POST", self.endpoint, data=raw, headers=self.headers(raw),
                                           timeout=self.timeout_seconds)
            except self._requests_error as exc:
                problem = f"ingest unreachable ({type(exc).__name__})"
                continue
            if response.is_redirect:  # the signed order (personal data) goes to the ingest URL only
                raise BackfillRefused(f"{self.endpoint} answered {response.status_code}, a redirect (to "
                                      f"{response.redirect_host}): not followed; is --url the stack's IngestApiUrl?")
            if response.status_code in RETRYABLE_STATUSES:
                problem = f"ingest answered {response.status_code}"
                continue
            if response.status_code == 401:
                raise BackfillRefused(f"ingest refused the signed webhook (401): check the webhook secret "
                                      f"(--webhook-secret-id, SHOPIFY_WEBHOOK_SECRET) and the shop {self.shop_domain}")
            if response.status_code == 404:
                raise BackfillRefused(f"{self.endpoint} answered 404: is --url the stack's IngestApiUrl?")
            return _result(response)
        return BackfillResult("failed", problem)


def _result(response: Any) -> BackfillResult:
    try:
        answer = response.json()
    except ValueError:
        return BackfillResult("failed", f"ingest answered {response.status_code} without JSON")
    if response.status_code != 200 or not isinstance(answer, dict):
        return BackfillResult("failed", f"ingest answered {response.status_code}")
    events = answer.get("events") or []
    first = events[0] if events and isinstance(events[0], dict) else {}
    if answer.get("accepted"):
        return BackfillResult("queued")
    if answer.get("rejected"):
        return BackfillResult("rejected", str(first.get("reason") or "rejected by ingest"))
    if answer.get("withheld"):  # the consent policy: recorded as not sent, never sent
        return BackfillResult("withheld", str(first.get("reason") or "not sent (consent)"))
    return BackfillResult("failed", str(answer.get("message") or "ingest queued nothing"))
