"""A Checkout Session's line items from Stripe's API (``GET /v1/checkout/sessions/{id}/line_items``).

Called by the Stripe line-items fetcher (functions/stripe_line_items, ``pinrelay.stripe_fetch``)
for the jobs ingest queues, in a batch of up to ten sessions read side by side: one page of up to
100 items a call (``limit=100``, then ``starting_after`` while ``has_more``), each call bounded by
``STRIPE_CALL`` and started only when it and the queueing after it fit in the time left. The key
is a restricted key with read access to Checkout Sessions (``rk_live_...``), sent as a Bearer
token, never logged.

``LineItemsUnavailable`` (Stripe did not answer in time, 429, 5xx: the job goes back to its queue
and is tried again later) is told apart from ``LineItemsRefused`` (the key is refused or
lacks the permission, the session is not in that account or mode: asking again would not help, so
the conversion goes without contents).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pinrelay.adapters.aws import worst_call_seconds
from pinrelay.adapters.http_json import HttpLimits, HttpUnavailable, get_json
from pinrelay.ports import Deadline, LineItemsRefused, LineItemsUnavailable

if TYPE_CHECKING:
    import requests

    from pinrelay.reconcile import ShopOrder

STRIPE_CALL = HttpLimits(connect_timeout=1.0, read_timeout=3.0, max_attempts=2, pause_seconds=0.25,
                         longest_wait_seconds=0.5)
# listing a day of sessions for `pinrelay reconcile-stripe` (no webhook waits on it)
STRIPE_LISTING = HttpLimits(connect_timeout=3.0, read_timeout=20.0, max_attempts=3, pause_seconds=1.0,
                            longest_wait_seconds=5.0)
PAGE_SIZE = 100
MAX_PAGES = 10  # 1000 items: Pinterest's contents are bounded the same way (models.MAX_CONTENTS)


class StripeLineItems:
    def __init__(self, api_key: str, base_url: str = "https://api.stripe.com", session: requests.Session | None = None,
                 limits: HttpLimits = STRIPE_CALL) -> None:
        import requests  # here, not at import: see pinrelay.adapters.http_json

        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        self.limits = limits
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self.requests = 0

    def line_items(self, session_id: str, time_left: Deadline) -> list[dict[str, Any]]:
        url = f"{self.base_url}/v1/checkout/sessions/{quote(session_id, safe='')}/line_items"
        items: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": PAGE_SIZE}
        for _ in range(MAX_PAGES):
            self.requests += 1
            try:
                answer = get_json(self.session, url, headers=self._headers, params=params, limits=self.limits,
                                  time_left=time_left, wait_hint=_retry_after)
            except HttpUnavailable as problem:
                raise LineItemsUnavailable(f"Stripe's line items did not come ({problem})") from None
            if answer.status != 200 or not isinstance(answer.body, dict) or not isinstance(answer.body.get("data"), list):
                raise LineItemsRefused(_refusal(answer.status, answer.body))
            page = [item for item in answer.body["data"] if isinstance(item, dict)]
            items.extend(page)
            if answer.body.get("has_more") is not True or not page or not isinstance(page[-1].get("id"), str):
                return items
            params = {"limit": PAGE_SIZE, "starting_after": page[-1]["id"]}
        return items


def _retry_after(headers: dict[str, str]) -> float | None:
    try:
        return float(headers.get("Retry-After", ""))
    except ValueError:
        return None


def _refusal(status: int, body: Any) -> str:
    """One line on a refused request: the status and Stripe's error code (never its message,
    which may quote the key's prefix or the session)."""
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") or error.get("type") if isinstance(error, dict) else None
    shown = code if isinstance(code, str) and code.replace("_", "").isalnum() else "no error code"
    return f"Stripe answered {status} to the line items request ({shown})"


class StripeCheckoutSessions:
    """``reconcile.OrderSource`` on Stripe: the account's completed Checkout Sessions of a period
    (``GET /v1/checkout/sessions?status=complete&created[gte]=&created[lt]=``, pages of 100), each
    a ``ShopOrder`` named by its session id."""

    def __init__(self, api_key: str, base_url: str = "https://api.stripe.com", session: requests.Session | None = None,
                 limits: HttpLimits = STRIPE_LISTING) -> None:
        import requests  # here, not at import: see pinrelay.adapters.http_json

        self.url = f"{base_url.rstrip('/')}/v1/checkout/sessions"
        self.session = session or requests.Session()
        self.limits = limits
        self._headers = {"Authorization": f"Bearer {api_key}"}

    def orders(self, since: datetime, until: datetime) -> Iterator[ShopOrder]:
        from pinrelay.reconcile import ShopOrder  # here: ingest, which reads line items, never reconciles

        params: dict[str, Any] = {"status": "complete", "limit": PAGE_SIZE, "created[gte]": int(since.timestamp()),
                                  "created[lt]": int(until.timestamp())}
        found: list[dict[str, Any]] = []
        while True:
            try:
                answer = get_json(self.session, self.url, headers=self._headers, params=params, limits=self.limits,
                                  time_left=lambda: float("inf"), wait_hint=_retry_after)
            except HttpUnavailable as problem:
                raise LineItemsUnavailable(f"Stripe's Checkout Sessions could not be listed ({problem})") from None
            if answer.status != 200 or not isinstance(answer.body, dict) or not isinstance(answer.body.get("data"), list):
                raise LineItemsRefused(_refusal(answer.status, answer.body).replace("line items", "sessions list"))
            page = [s for s in answer.body["data"] if isinstance(s, dict) and isinstance(s.get("id"), str)]
            found.extend(page)
            if answer.body.get("has_more") is not True or not page:
                break
            params = {**params, "starting_after": page[-1]["id"]}
        for session in sorted(found, key=lambda s: s.get("created") or 0):  # Stripe lists the newest first
            created = session.get("created")
            yield ShopOrder(order_id=session["id"], name=session["id"], webhook_body=session,
                            created_at=created if isinstance(created, int) and not isinstance(created, bool) else 0)


def worst_line_items_seconds(limits: HttpLimits = STRIPE_CALL) -> float:
    """The longest ``line_items`` takes for a session of one page of items (up to 100)."""
    return limits.worst_call_seconds


def worst_drain_round_seconds() -> float:
    """The longest one round of the line-items fetcher's drain (pinrelay.job_drain) can take:
    ReceiveMessage, the keys read from Secrets Manager (the deployment's key and the account map,
    each at most once a round: the two secrets the fetcher may read, cached between rounds), the
    sessions' line items read side by side, SendMessageBatch of their events, DeleteMessageBatch of
    the jobs, and a second to answer."""
    return 3 * worst_call_seconds("sqs") + 2 * worst_call_seconds("secretsmanager") + worst_line_items_seconds() + 1.0
