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

No call is started when ``time_left`` (the Lambda's remaining time, the command's budget) could not
cover it. The endpoint is not trusted (``pinrelay.adapters.bounded_http``): only an https
``*.myshopify.com`` address gets the token (``pinrelay.endpoints``); no redirect is followed; an
answer is read up to 4 MiB and within the timeout; one wait is at most ``max_wait_seconds``
(``Retry-After: 999999999`` is refused, not slept); a cost that is not a finite number, or more
than the bucket holds, stops the reading with the reason; pages stop at a cursor seen before and
at ``max_pages``. Errors are one line (``ShopifyAdminError``), never with the token or an order's
data.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from pinrelay.adapters.bounded_http import (
    MAX_ANSWER_BYTES,
    AnswerTooLarge,
    AnswerTooSlow,
    BoundedAnswer,
    bounded_request,
)
from pinrelay.adapters.bounded_http import worst_call_seconds as worst_request_seconds
from pinrelay.endpoints import LOOPBACK_FLAG, EndpointRefused, api_url
from pinrelay.reconcile import ShopOrder
from pinrelay.sender import parse_retry_after
from pinrelay.sources.shopify_graphql import (
    DEFAULT_API_VERSION,
    LINE_ITEMS_QUERY,
    ORDERS_QUERY,
    GraphqlAnswer,
    LineItem,
    LineItemsData,
    Order,
    OrdersData,
    PageInfo,
    QueryCost,
    ThrottleStatus,
    orders_search,
)

ORDERS_PER_PAGE = 50  # the listing costs about 2 + 50 x 14 points: under the 1000 a single query may cost
LINE_ITEMS_PER_PAGE = 100
MAX_ORDER_PAGES = 2000  # 100,000 orders: a longer window is read in parts
MAX_LINE_ITEM_PAGES = 100  # 10,000 line items in one order
# one wait for the bucket: on every plan a whole bucket refills in 20 s (e.g. 2000 points at 100 a second)
MAX_WAIT_SECONDS = 60.0
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
        allow_loopback_http: bool = False,
        session: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        page_size: int = ORDERS_PER_PAGE,
        timeout_seconds: float = 30.0,
        max_throttled: int = 20,
        max_transient_retries: int = 3,
        max_wait_seconds: float = MAX_WAIT_SECONDS,
        max_pages: int = MAX_ORDER_PAGES,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
        time_left: Callable[[], float] | None = None,
    ) -> None:
        import requests

        self.shop_domain = shop_domain
        try:
            base = api_url(base_url or f"https://{shop_domain}", "shopify", allow_loopback_http=allow_loopback_http,
                           switch=LOOPBACK_FLAG)
        except EndpointRefused as problem:
            raise ShopifyAdminError(f"the Admin API address {problem}") from None
        self.endpoint = f"{base.rstrip('/')}/admin/api/{api_version}/graphql.json"
        self.session = session or requests.Session()
        self._headers = {"X-Shopify-Access-Token": access_token, "Content-Type": "application/json",
                         "Accept": "application/json"}
        self.sleep = sleep
        self.clock = clock
        self.page_size = page_size
        self.timeout_seconds = timeout_seconds
        self.max_throttled = max_throttled
        self.max_transient_retries = max_transient_retries
        self.max_wait_seconds = max_wait_seconds
        self.max_pages = max_pages
        self.max_answer_bytes = max_answer_bytes
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

    def _wait(self, seconds: float, operation: str) -> None:
        if seconds <= 0:
            return
        if seconds > self.max_wait_seconds:
            raise ShopifyAdminError(f"Shopify's rate limit asks for a wait of {seconds:.0f} s before the {operation} "
                                    f"query; pinrelay waits at most {self.max_wait_seconds:g} s at a time: try again later")
        if self.time_left is not None and self.time_left() < seconds + worst_request_seconds(self.timeout_seconds):
            raise ShopifyAdminError(f"Shopify's rate limit asks for a {seconds:.1f} s wait, and there is no time left")
        self.waited_seconds += seconds
        self.sleep(seconds)

    def _wait_for_bucket(self, operation: str) -> None:
        """Wait until the bucket holds what this query cost last time."""
        needed = self._last_cost.get(operation)
        available = self._available_now()
        if needed is None or available is None or available >= needed or self._bucket is None:
            return
        _check_fits(operation, needed, self._bucket)
        self._wait((needed - available) / self._bucket.restore_rate, operation)

    def _remember(self, operation: str, answer: GraphqlAnswer) -> None:
        cost = answer.cost
        if cost is None:
            return
        _check_cost(operation, cost)
        if cost.throttle_status is not None:
            self._bucket, self._bucket_at = cost.throttle_status, self.clock()
        if cost.requested_query_cost is not None:
            self._last_cost[operation] = cost.requested_query_cost

    # -- one query ------------------------------------------------------------------------
    def _post(self, body: dict[str, Any]) -> BoundedAnswer:
        if self.time_left is not None and self.time_left() < worst_request_seconds(self.timeout_seconds):
            raise ShopifyAdminError("no time left for another Shopify request")
        self.requests += 1
        try:
            return bounded_request(self.session, "POST", self.endpoint, json=body, headers=self._headers,
                                   timeout=self.timeout_seconds, max_bytes=self.max_answer_bytes)
        except (AnswerTooLarge, AnswerTooSlow) as exc:
            raise ShopifyAdminError(f"Shopify Admin API of {self.shop_domain}: {exc}") from None
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
                self._wait(self._throttle_wait(operation, answer, response), operation)
                continue
            if status in TRANSIENT_STATUSES and transient < self.max_transient_retries:
                transient += 1
                self._wait(2.0 ** transient, operation)
                continue
            if response.is_redirect:
                raise ShopifyAdminError(f"Shopify Admin API of {self.shop_domain} answered HTTP {status}, a redirect "
                                        f"(to {response.redirect_host}): not followed, the token goes to no other "
                                        "address; check --shop and the Admin API address")
            if status != 200 or answer is None:
                raise ShopifyAdminError(_http_problem(self.shop_domain, status, operation))
            if isinstance(answer.errors, list) and answer.errors:
                first = answer.errors[0]
                code = f" ({first.code})" if first.code else ""
                raise ShopifyAdminError(f"Shopify refused the {operation} query{code}: {first.message[:300]}")
            if answer.data is None:
                raise ShopifyAdminError(f"Shopify answered the {operation} query without data")
            return answer.data

    def _throttle_wait(self, operation: str, answer: GraphqlAnswer | None, response: BoundedAnswer) -> float:
        """The time the bucket needs to hold the query's cost, from the THROTTLED answer's cost
        extension; else Retry-After (a 429), else a second."""
        cost = answer.cost if answer is not None else None
        if cost is not None and cost.throttle_status is not None and cost.requested_query_cost is not None:
            bucket = cost.throttle_status
            _check_fits(operation, cost.requested_query_cost, bucket)
            missing = cost.requested_query_cost - bucket.currently_available
            return max(missing, 0.0) / bucket.restore_rate + 0.05
        retry_after = parse_retry_after(response.headers.get("Retry-After"), time.time())
        return 1.0 if retry_after is None else retry_after

    def _pages(self, operation: str, query: str, variables: dict[str, Any], max_pages: int, what: str,
               connection: Callable[[dict[str, Any]], tuple[PageInfo, list[Any]]]) -> Iterator[Any]:
        """Every node of a paginated connection: pages until Shopify says there is none after, a
        cursor comes back that was seen before (it would never end), or ``max_pages``."""
        after: str | None = None
        seen: set[str] = set()
        for number in range(1, max_pages + 1):
            page_info, nodes = connection(self.query(operation, query, {**variables, "after": after}))
            if not page_info.has_next_page or not page_info.end_cursor:
                yield from nodes
                return
            if page_info.end_cursor in seen:
                raise ShopifyAdminError(f"Shopify answered the same page cursor twice (page {number} of {what}): "
                                        "stopping rather than reading the same pages forever")
            yield from nodes
            seen.add(page_info.end_cursor)
            after = page_info.end_cursor
        raise ShopifyAdminError(f"Shopify has more than {max_pages} pages of {what}: pinrelay reads no more; "
                                "give a shorter window (--since, --until)")

    # -- OrderSource -----------------------------------------------------------------------
    def graphql_orders(self, since: datetime, until: datetime) -> Iterator[Order]:
        def connection(data: dict[str, Any]) -> tuple[PageInfo, list[Order]]:
            page = _read_answer(OrdersData, data, "orders").orders
            return page.page_info, page.nodes

        variables = {"first": self.page_size, "query": orders_search(since, until)}
        yield from self._pages("ReconcileOrders", ORDERS_QUERY, variables, self.max_pages,
                               f"orders ({self.page_size} a page)", connection)

    def orders(self, since: datetime, until: datetime) -> Iterator[ShopOrder]:
        for order in self.graphql_orders(since, until):
            yield shop_order(order)

    def line_items(self, admin_id: str) -> list[LineItem]:
        """Every line item of one order (pages of 100)."""
        def connection(data: dict[str, Any]) -> tuple[PageInfo, list[LineItem]]:
            order = _read_answer(LineItemsData, data, "line items").order
            if order is None:
                raise ShopifyAdminError(f"Shopify no longer has order {admin_id}")
            return order.line_items.page_info, order.line_items.nodes

        variables = {"id": admin_id, "first": LINE_ITEMS_PER_PAGE}
        return list(self._pages("OrderLineItems", LINE_ITEMS_QUERY, variables, MAX_LINE_ITEM_PAGES,
                                f"line items of one order ({LINE_ITEMS_PER_PAGE} a page)", connection))

    def complete_webhook_body(self, order: ShopOrder) -> dict[str, Any]:
        """The order's webhook body with every line item (the listing reads none)."""
        if not order.admin_id:
            return dict(order.webhook_body)
        items = self.line_items(order.admin_id)
        return {**order.webhook_body, "line_items": [item.webhook_body() for item in items]}


def shop_order(order: Order) -> ShopOrder:
    return ShopOrder(order_id=str(order.order_id), name=order.name, created_at=int(order.created_at.timestamp()),
                     webhook_body=order.webhook_body(), admin_id=order.id)


def _read_answer[Data: BaseModel](model: type[Data], data: dict[str, Any], what: str) -> Data:
    try:
        return model.model_validate(data)
    except ValidationError as problem:
        raise ShopifyAdminError(f"Shopify's {what} answer is not what pinrelay asked for "
                                f"({problem.error_count()} problem(s), first at "
                                f"{'.'.join(map(str, problem.errors()[0]['loc']))})") from None


def _check_cost(operation: str, cost: QueryCost) -> None:
    """A cost extension pinrelay can wait by: finite numbers, not below 0, a bucket that refills.
    Otherwise the reason, naming Shopify's field."""
    bucket = cost.throttle_status
    fields = {"requestedQueryCost": cost.requested_query_cost}
    if bucket is not None:
        fields |= {"maximumAvailable": bucket.maximum_available, "currentlyAvailable": bucket.currently_available,
                   "restoreRate": bucket.restore_rate}
    for name, value in fields.items():
        if value is not None and (not math.isfinite(value) or value < 0 or (name == "restoreRate" and value == 0)):
            raise ShopifyAdminError(f"Shopify's rate limit answer to the {operation} query is unusable: {name} is "
                                    f"not a number pinrelay can use ({value:g})")


def _check_fits(operation: str, needed: float, bucket: ThrottleStatus) -> None:
    """Before waiting for the bucket to hold ``needed`` points: a query that costs more than it ever
    holds would be waited for forever."""
    if needed > bucket.maximum_available:
        raise ShopifyAdminError(f"Shopify says the {operation} query costs {needed:.0f} points, more than the "
                                f"{bucket.maximum_available:.0f} its bucket holds: it can never be answered")


def _http_problem(shop: str, status: int, operation: str) -> str:
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
    if status == 200:
        return f"Shopify's answer to the {operation} query is not the GraphQL answer pinrelay reads (not JSON, or odd types)"
    return f"Shopify Admin API of {shop} answered HTTP {status}"
