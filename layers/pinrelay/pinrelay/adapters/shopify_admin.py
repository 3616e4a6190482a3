"""OrderSource on Shopify's GraphQL Admin API (requests).

``POST {base}/admin/api/{version}/graphql.json`` with the ``X-Shopify-Access-Token`` header (the
Admin API access token of a custom app with the ``read_orders`` scope; ``read_all_orders`` for
orders older than 60 days). The queries and the parsing of the answers are in
``pinrelay.sources.shopify_graphql``.

Rate limits (https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits): the API limits
by calculated query cost with a leaky bucket per app and shop. Every answer carries
``extensions.cost.throttleStatus`` (``currentlyAvailable``, ``restoreRate`` points a second,
``maximumAvailable``). This client

* waits before a query when the bucket, refilled at ``restoreRate`` since the last answer, holds
  less than that query cost last time (``requestedQueryCost``): throttling is avoided, not met;
* when a query is refused all the same (an error with ``extensions.code`` ``THROTTLED``, HTTP 200,
  or a 429), waits ``(requestedQueryCost - currentlyAvailable) / restoreRate`` seconds, the time
  the bucket needs, and sends it again (at most ``max_throttled`` times in a row).

No call is started when ``time_left`` (the Lambda's remaining time) could not cover it.
Errors are one line (``ShopifyAdminError``), never with the token or an order's data.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from pinrelay.reconcile import ShopOrder
from pinrelay.sources.shopify_graphql import (
    DEFAULT_API_VERSION,
    LINE_ITEMS_QUERY,
    ORDERS_QUERY,
    GraphqlAnswer,
    LineItem,
    LineItemsData,
    Order,
    OrdersData,
    ThrottleStatus,
    orders_search,
)

ORDERS_PER_PAGE = 50  # the listing costs about 2 + 50 x 14 points: under the 1000 a single query may cost
LINE_ITEMS_PER_PAGE = 100
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})


class ShopifyAdminError(RuntimeError):
    """Shopify's Admin API could not be read; the message says why, in one line."""


class ShopifyAdminClient:
    def __init__(
        self,
        shop_domain: str,
        access_token: str,
        *,
        api_version: str = DEFAULT_API_VERSION,
        base_url: str | None = None,
        session: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        page_size: int = ORDERS_PER_PAGE,
        timeout_seconds: float = 30.0,
        max_throttled: int = 20,
        max_transient_retries: int = 3,
        time_left: Callable[[], float] | None = None,
    ) -> None:
        import requests

        self.shop_domain = shop_domain
        self.endpoint = f"{(base_url or f'https://{shop_domain}').rstrip('/')}/admin/api/{api_version}/graphql.json"
        self.session = session or requests.Session()
        self._headers = {"X-Shopify-Access-Token": access_token, "Content-Type": "application/json",
                         "Accept": "application/json"}
        self.sleep = sleep
        self.clock = clock
        self.page_size = page_size
        self.timeout_seconds = timeout_seconds
        self.max_throttled = max_throttled
        self.max_transient_retries = max_transient_retries
        self.time_left = time_left
        self._requests_error = requests.RequestException
        # what the bucket held at the last answer, and when; what each query cost last time
        self._bucket: ThrottleStatus | None = None
        self._bucket_at = 0.0
        self._last_cost: dict[str, float] = {}
        self.requests = 0
        self.throttled = 0
        self.waited_seconds = 0.0

    # -- the bucket ----------------------------------------------------------------------
    def _available_now(self) -> float | None:
        if self._bucket is None:
            return None
        refilled = self._bucket.currently_available + self._bucket.restore_rate * (self.clock() - self._bucket_at)
        return min(self._bucket.maximum_available, refilled)

    def _wait(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self.time_left is not None and self.time_left() < seconds + self.timeout_seconds:
            raise ShopifyAdminError(f"Shopify's rate limit asks for a {seconds:.1f} s wait, and there is no time left")
        self.waited_seconds += seconds
        self.sleep(seconds)

    def _wait_for_bucket(self, operation: str) -> None:
        """Wait until the bucket holds what this query cost last time."""
        needed = self._last_cost.get(operation)
        available = self._available_now()
        if needed is None or available is None or available >= needed or self._bucket is None:
            return
        self._wait((needed - available) / max(self._bucket.restore_rate, 0.001))

    def _remember(self, operation: str, answer: GraphqlAnswer) -> None:
        cost = answer.cost
        if cost is None:
            return
        if cost.throttle_status is not None:
            self._bucket, self._bucket_at = cost.throttle_status, self.clock()
        if cost.requested_query_cost is not None:
            self._last_cost[operation] = cost.requested_query_cost

    # -- one query ------------------------------------------------------------------------
    def _post(self, body: dict[str, Any]) -> Any:
        if self.time_left is not None and self.time_left() < self.timeout_seconds + 1:
            raise ShopifyAdminError("no time left for another Shopify request")
        self.requests += 1
        try:
            return self.session.post(self.endpoint, json=body, headers=self._headers, timeout=self.timeout_seconds)
        except self._requests_error as exc:
            raise ShopifyAdminError(f"Shopify Admin API of {self.shop_domain} unreachable "
                                    f"({type(exc).__name__})") from None

    def query(self, operation: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """The ``data`` of one query, after waiting out Shopify's rate limit as it asks."""
        throttled_in_a_row = transient = 0
        while True:
            self._wait_for_bucket(operation)
            response = self._post({"query": query, "variables": variables, "operationName": operation})
            try:
                answer = GraphqlAnswer.model_validate(response.json())
            except (ValueError, ValidationError):
                answer = None
            if answer is not None:
                self._remember(operation, answer)
            status = response.status_code
            if (answer is not None and answer.throttled) or status == 429:
                throttled_in_a_row += 1
                self.throttled += 1
                if throttled_in_a_row > self.max_throttled:
                    raise ShopifyAdminError(f"Shopify kept throttling the {operation} query "
                                            f"({throttled_in_a_row} times)")
                self._wait(self._throttle_wait(answer, response))
                continue
            if status in TRANSIENT_STATUSES and transient < self.max_transient_retries:
                transient += 1
                self._wait(2.0 ** transient)
                continue
            if status != 200 or answer is None:
                raise ShopifyAdminError(_http_problem(self.shop_domain, status))
            if isinstance(answer.errors, list) and answer.errors:
                first = answer.errors[0]
                code = f" ({first.code})" if first.code else ""
                raise ShopifyAdminError(f"Shopify refused the {operation} query{code}: {first.message[:300]}")
            if answer.data is None:
                raise ShopifyAdminError(f"Shopify answered the {operation} query without data")
            return answer.data

    def _throttle_wait(self, answer: GraphqlAnswer | None, response: Any) -> float:
        """The time the bucket needs to hold the query's cost, from the THROTTLED answer's cost
        extension; else Retry-After (a 429), else a second."""
        cost = answer.cost if answer is not None else None
        if cost is not None and cost.throttle_status is not None and cost.requested_query_cost is not None:
            bucket = cost.throttle_status
            missing = cost.requested_query_cost - bucket.currently_available
            return max(missing, 0.0) / max(bucket.restore_rate, 0.001) + 0.05
        try:
            return max(float(response.headers.get("Retry-After", "1")), 0.0)
        except (TypeError, ValueError):
            return 1.0

    # -- OrderSource -----------------------------------------------------------------------
    def graphql_orders(self, since: datetime, until: datetime) -> Iterator[Order]:
        after: str | None = None
        search = orders_search(since, until)
        while True:
            variables = {"first": self.page_size, "after": after, "query": search}
            data = self.query("ReconcileOrders", ORDERS_QUERY, variables)
            try:
                page = OrdersData.model_validate(data).orders
            except ValidationError as problem:
                raise ShopifyAdminError(f"Shopify's orders answer is not what pinrelay asked for "
                                        f"({problem.error_count()} problem(s), first at "
                                        f"{'.'.join(map(str, problem.errors()[0]['loc']))})") from None
            yield from page.nodes
            if not page.page_info.has_next_page or not page.page_info.end_cursor:
                return
            after = page.page_info.end_cursor

    def orders(self, since: datetime, until: datetime) -> Iterator[ShopOrder]:
        for order in self.graphql_orders(since, until):
            yield shop_order(order)

    def line_items(self, admin_id: str) -> list[LineItem]:
        """Every line item of one order (pages of 100)."""
        items: list[LineItem] = []
        after: str | None = None
        while True:
            variables = {"id": admin_id, "first": LINE_ITEMS_PER_PAGE, "after": after}
            data = self.query("OrderLineItems", LINE_ITEMS_QUERY, variables)
            try:
                order = LineItemsData.model_validate(data).order
            except ValidationError:
                raise ShopifyAdminError("Shopify's line items answer is not what pinrelay asked for") from None
            if order is None:
                raise ShopifyAdminError(f"Shopify no longer has order {admin_id}")
            items.extend(order.line_items.nodes)
            if not order.line_items.page_info.has_next_page or not order.line_items.page_info.end_cursor:
                return items
            after = order.line_items.page_info.end_cursor

    def complete_webhook_body(self, order: ShopOrder) -> dict[str, Any]:
        """The order's webhook body with every line item (the listing reads none)."""
        if not order.admin_id:
            return dict(order.webhook_body)
        items = self.line_items(order.admin_id)
        return {**order.webhook_body, "line_items": [item.webhook_body() for item in items]}


def shop_order(order: Order) -> ShopOrder:
    return ShopOrder(order_id=str(order.order_id), name=order.name, created_at=int(order.created_at.timestamp()),
                     webhook_body=order.webhook_body(), admin_id=order.id)


def _http_problem(shop: str, status: int) -> str:
    if status == 401:
        return (f"Shopify refused the Admin API token for {shop} (401): check the token (--token-secret-id, "
                "SHOPIFY_ADMIN_TOKEN) and that the custom app is installed")
    if status == 402:
        return f"Shopify answered 402 for {shop}: the shop is frozen (unpaid)"
    if status == 403:
        return f"Shopify answered 403 for {shop}: the app lacks the read_orders scope"
    if status == 404:
        return f"Shopify answered 404 for {shop}: no such shop or API version"
    if status == 423:
        return f"Shopify answered 423 for {shop}: the shop is locked"
    return f"Shopify Admin API of {shop} answered HTTP {status}"
