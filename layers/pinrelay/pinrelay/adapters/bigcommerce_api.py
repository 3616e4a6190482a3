"""One BigCommerce store's orders (``ports.StoreOrders``) from its REST API, Orders V2.

``GET {base}/stores/{store_hash}/v2/orders/{id}``, then, at the same time, ``.../orders/{id}/products``
(pages of 250: ``?limit=250&page=N``) and ``.../orders/{id}/shipping_addresses``, with the store's API account
token in ``X-Auth-Token`` (scope Orders: read-only). BigCommerce answers 204 with no body for a
collection that is empty (a digital order's shipping addresses) and 404 for an order that is not
there. Each call is bounded by ``BIGCOMMERCE_CALL`` and tried again on a connection error, 429
(after ``X-Rate-Limit-Time-Reset-Ms``, when short) or 5xx; ``worst_fetch_seconds`` is the longest a
fetch of one order can take, which the fetcher checks against the time Lambda leaves it.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pinrelay.adapters.http_json import HttpLimits, HttpUnavailable, JsonAnswer, get_json
from pinrelay.ports import Deadline, FetchedOrder, OrderUnavailable
from pinrelay.reconcile import ShopOrder
from pinrelay.sources.bigcommerce import order_time

if TYPE_CHECKING:
    import requests

BIGCOMMERCE_CALL = HttpLimits(connect_timeout=2.0, read_timeout=6.0, max_attempts=2, pause_seconds=0.5,
                              longest_wait_seconds=3.0)
ORDERS_PER_PAGE = 250
PRODUCTS_PER_PAGE = 250
MAX_PRODUCT_PAGES = 4  # 1000 lines: Pinterest's contents are bounded the same way (models.MAX_CONTENTS)
CALLS_PER_FETCH = 3  # the order, a page of products, the shipping addresses
ROUNDS_PER_FETCH = 2  # the order, then its products and shipping addresses at the same time


def worst_fetch_seconds(limits: HttpLimits = BIGCOMMERCE_CALL) -> float:
    """The longest ``fetch`` takes for an order of one page of products."""
    return ROUNDS_PER_FETCH * limits.worst_call_seconds


class BigCommerceStore:
    def __init__(self, store_hash: str, token: str, base_url: str = "https://api.bigcommerce.com",
                 session: requests.Session | None = None, limits: HttpLimits = BIGCOMMERCE_CALL) -> None:
        import requests  # here, not at import: see pinrelay.adapters.http_json

        self.store_hash = store_hash
        self.root = f"{base_url.rstrip('/')}/stores/{store_hash}/v2/orders"
        self.session = session or requests.Session()
        self.limits = limits
        self._headers = {"X-Auth-Token": token}
        self.requests = 0  # counted from two threads at once: a figure for tests, not a ledger

    def _get(self, path: str, time_left: Deadline, params: dict[str, Any] | None = None) -> JsonAnswer:
        self.requests += 1
        try:
            answer = get_json(self.session, f"{self.root}{path}", headers=self._headers, params=params,
                              limits=self.limits, time_left=time_left, wait_hint=_reset_wait)
        except HttpUnavailable as problem:
            raise OrderUnavailable(f"BigCommerce store {self.store_hash} did not answer ({problem})") from None
        if answer.status in (401, 403):
            raise OrderUnavailable(f"BigCommerce refused the API token of store {self.store_hash} ({answer.status}): "
                                   "check the token and its Orders read-only scope")
        return answer

    def _collection(self, path: str, time_left: Deadline, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        answer = self._get(path, time_left, params)
        if answer.status == 204:
            return []
        if answer.status != 200 or not isinstance(answer.body, list):
            raise OrderUnavailable(f"BigCommerce store {self.store_hash} answered {answer.status} for {path.split('/')[-1]}")
        return [item for item in answer.body if isinstance(item, dict)]

    def fetch(self, order_id: int, time_left: Deadline) -> FetchedOrder | None:
        order = self._get(f"/{order_id}", time_left)
        if order.status == 404:
            return None
        if order.status != 200 or not isinstance(order.body, dict):
            raise OrderUnavailable(f"BigCommerce store {self.store_hash} answered {order.status} for the order")
        with ThreadPoolExecutor(max_workers=2) as pool:  # one wait for both: a fetch is two rounds, not three
            addresses = pool.submit(self._collection, f"/{order_id}/shipping_addresses", time_left)
            products = self._products(order_id, time_left)
            return FetchedOrder(order=order.body, products=products, shipping_addresses=addresses.result())

    def _products(self, order_id: int, time_left: Deadline) -> list[dict[str, Any]]:
        products: list[dict[str, Any]] = []
        for page in range(1, MAX_PRODUCT_PAGES + 1):
            got = self._collection(f"/{order_id}/products", time_left, {"limit": PRODUCTS_PER_PAGE, "page": page})
            products.extend(got)
            if len(got) < PRODUCTS_PER_PAGE:
                break
        return products


def _reset_wait(headers: dict[str, str]) -> float | None:
    """BigCommerce's ``X-Rate-Limit-Time-Reset-Ms`` on a 429: how long until the window refills."""
    for name, value in headers.items():
        if name.lower() == "x-rate-limit-time-reset-ms":
            try:
                return float(value) / 1000
            except ValueError:
                return None
    return None


def store_orders(store: BigCommerceStore, since: datetime, until: datetime) -> Iterator[ShopOrder]:
    """``reconcile.OrderSource`` on one store: its orders created in [since, until), oldest first
    (``GET .../v2/orders?min_date_created=&max_date_created=&sort=date_created:asc``, pages of 250),
    each a ``ShopOrder`` named ``#<order id>``."""
    page = 1
    while True:
        params = {"min_date_created": since.astimezone(UTC).isoformat(timespec="seconds"),
                  "max_date_created": until.astimezone(UTC).isoformat(timespec="seconds"),
                  "sort": "date_created:asc", "limit": ORDERS_PER_PAGE, "page": page}
        orders = store._collection("", lambda: float("inf"), params)
        for order in orders:
            created = order_time(order.get("date_created"))
            if isinstance(order.get("id"), int) and created is not None and since.timestamp() <= created < until.timestamp():
                yield ShopOrder(order_id=str(order["id"]), name=f"#{order['id']}", created_at=created, webhook_body=order)
        if len(orders) < ORDERS_PER_PAGE:
            return
        page += 1
