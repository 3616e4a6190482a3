"""A local stand-in for Shopify's GraphQL Admin API (``POST /admin/api/{version}/graphql.json``).

Used by the tests of ``pinrelay reconcile``. A real HTTP server on 127.0.0.1 that answers the two
queries pinrelay sends (``pinrelay.sources.shopify_graphql``: ``ReconcileOrders``,
``OrderLineItems``, recognised by operation name) the way Shopify answers them:

* ``401 {"errors": "[API] Invalid API key or access token ..."}`` unless the header
  ``X-Shopify-Access-Token`` is the stand-in's token;
* the ``orders`` connection filtered by the ``created_at:>='...' created_at:<'...'`` terms of its
  ``query`` argument (Shopify's search syntax), sorted by creation time, in pages of ``first``
  with ``pageInfo { hasNextPage endCursor }`` (opaque cursors);
* every answer carries ``extensions.cost`` (``requestedQueryCost``, ``actualQueryCost``,
  ``throttleStatus {maximumAvailable, currentlyAvailable, restoreRate}``) from a leaky bucket
  that refills at ``restore_rate`` points a second: a query that costs more than the bucket holds
  is answered HTTP 200 with ``errors[0].extensions.code = "THROTTLED"`` and ``actualQueryCost``
  null, as Shopify does, and one that costs more than the bucket can ever hold with
  ``MAX_COST_EXCEEDED``. Costs follow Shopify's rule of thumb (an object 1 point, a connection
  2 + first x its node), with the node costs below.

``throttled`` records each THROTTLED answer with the wait the client needed, and the time that
actually passed before its next request (``ThrottleRecord``): a test checks the client waited.

The orders are REST-shaped (the ``orders/create`` webhook body, e.g. the real sample in
tests/fixtures/shopify) and served in their GraphQL form (``graphql_order``); ``sample_orders``
builds, from one real order, orders meant for every class of the reconciliation. The local stack
runs one for its shop (``make local``); ``POST /_standin/orders`` (a JSON list of REST orders) adds
orders from another process (its drills). Standalone: ``python -m pinrelay_local.shopify_admin_standin``.
Nothing here is shipped to Lambda.
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pinrelay_local.servers import SHUTDOWN_POLL_S

DEFAULT_TOKEN = "shpat_local_standin_token"
DEFAULT_SHOP = "pinrelay-dev.myshopify.com"
INVALID_TOKEN = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
ORDER_NODE_COST = 14  # the order, its money bag, attributes, journey, customer and addresses
LINE_ITEM_NODE_COST = 5  # the line item, product, variant, money bag
_PATH = re.compile(r"^/admin/api/(?P<version>[\w-]+)/graphql\.json$")
_OPERATION = re.compile(r"\b(?:query|mutation)\s+(\w+)")
_CREATED_SINCE = re.compile(r"created_at:>=\s*'([^']+)'")
_CREATED_UNTIL = re.compile(r"created_at:<\s*'([^']+)'")
REPO_ROOT = Path(__file__).resolve().parents[2]
ORDERS_CONTROL_PATH = "/_standin/orders"  # POST a JSON list of REST orders: the shop takes them


# --------------------------------------------------------------------------------------------
# REST (webhook) shape -> GraphQL shape
# --------------------------------------------------------------------------------------------


def _instant(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC) if value else None


def _graphql_datetime(value: str | None) -> str | None:
    moment = _instant(value)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _graphql_decimal(value: Any) -> str | None:
    """GraphQL's Decimal as Shopify writes it: trailing zeros dropped, one decimal kept (597.0)."""
    if value is None:
        return None
    text = format(Decimal(str(value)).normalize(), "f")
    return text if "." in text else text + ".0"


def _gid(kind: str, number: Any) -> str | None:
    return f"gid://shopify/{kind}/{number}" if number is not None else None


def _address(rest: dict[str, Any] | None) -> dict[str, Any] | None:
    if not rest:
        return None
    return {"firstName": rest.get("first_name"), "lastName": rest.get("last_name"), "phone": rest.get("phone"),
            "city": rest.get("city"), "province": rest.get("province"), "provinceCode": rest.get("province_code"),
            "zip": rest.get("zip"), "country": rest.get("country"), "countryCodeV2": rest.get("country_code")}


def graphql_order(rest: dict[str, Any]) -> dict[str, Any]:
    """An ``orders/create`` webhook body (REST Order) as the ``ReconcileOrders`` query returns it."""
    customer = rest.get("customer")
    landing = rest.get("landing_site")
    currency = rest.get("currency")
    return {
        "id": _gid("Order", rest["id"]),
        "name": rest["name"],
        "confirmationNumber": rest.get("confirmation_number"),
        "createdAt": _graphql_datetime(rest["created_at"]),
        "cancelledAt": _graphql_datetime(rest.get("cancelled_at")),
        "test": bool(rest.get("test")),
        "sourceName": rest.get("source_name"),
        "tags": [tag.strip() for tag in (rest.get("tags") or "").split(",") if tag.strip()],
        "displayFinancialStatus": (rest.get("financial_status") or "").upper() or None,
        "email": rest.get("email"),
        "phone": rest.get("phone"),
        "clientIp": rest.get("browser_ip") or (rest.get("client_details") or {}).get("browser_ip"),
        "customerLocale": rest.get("customer_locale"),
        "currencyCode": currency,
        "statusPageUrl": rest.get("order_status_url"),
        "subtotalPriceSet": {"shopMoney": {"amount": _graphql_decimal(rest.get("subtotal_price")), "currencyCode": currency}},
        "customAttributes": [{"key": a.get("name"), "value": a.get("value")} for a in rest.get("note_attributes") or []],
        "customerJourneySummary": ({"firstVisit": {"landingPage": landing}, "lastVisit": {"landingPage": landing}}
                                   if landing else None),
        "customer": None if not customer else {
            "id": _gid("Customer", customer.get("id")),
            "firstName": customer.get("first_name"),
            "lastName": customer.get("last_name"),
            "defaultEmailAddress": {"emailAddress": customer["email"]} if customer.get("email") else None,
            "defaultPhoneNumber": {"phoneNumber": customer["phone"]} if customer.get("phone") else None,
            "defaultAddress": _address(customer.get("default_address")),
        },
        "billingAddress": _address(rest.get("billing_address")),
        "shippingAddress": _address(rest.get("shipping_address")),
    }


def graphql_line_item(rest: dict[str, Any]) -> dict[str, Any]:
    return {"title": rest.get("title"), "vendor": rest.get("vendor"), "sku": rest.get("sku"),
            "quantity": rest.get("quantity"),
            "product": {"id": _gid("Product", rest["product_id"])} if rest.get("product_id") is not None else None,
            "variant": {"id": _gid("ProductVariant", rest["variant_id"])} if rest.get("variant_id") is not None else None,
            "originalUnitPriceSet": {"shopMoney": {"amount": _graphql_decimal(rest.get("price"))}}}


# --------------------------------------------------------------------------------------------
# Orders for every class, from one real order
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleOrder:
    kind: str  # what the test makes of it (see sample_orders)
    body: dict[str, Any]  # the REST / webhook shape

    @property
    def name(self) -> str:
        return self.body["name"]

    @property
    def order_id(self) -> str:
        return str(self.body["id"])


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def sample_orders(real_order: dict[str, Any], now: float, first_id: int = 450789469) -> list[SampleOrder]:
    """Orders made from one real order (its customer, lines and money; new ids, names and dates):

    ``delivered``, ``rejected_by_pinterest``, ``in_flight``, ``dead_letter`` (the test puts their
    ledger items / DLQ message), ``uncertain`` (a POS order: offline), ``cancelled``, ``voided``,
    ``draft`` (created by shopify_draft_order), ``test`` (a test order: filtered when
    SHOPIFY_TEST_ORDERS=skip), ``tagged`` (tag ``wholesale``), ``no_identifier`` (no e-mail,
    customer or IP: the mapper rejects it), ``queued`` (2 minutes old), ``missing`` (2 hours),
    ``missing_days_ago`` (3 days), ``too_old`` (9 days: past Pinterest's 7 days and the ledger's
    memory)."""
    ages = {"delivered": 26 * 3600, "rejected_by_pinterest": 25 * 3600, "in_flight": 20 * 60, "dead_letter": 5 * 3600,
            "uncertain": 30 * 3600, "cancelled": 4 * 3600, "voided": 4 * 3600, "draft": 3 * 3600, "test": 3 * 3600,
            "tagged": 50 * 3600, "no_identifier": 6 * 3600, "queued": 2 * 60, "missing": 2 * 3600,
            "missing_days_ago": 3 * 86400 + 600, "too_old": 9 * 86400}
    orders = []
    for number, (kind, age) in enumerate(ages.items()):
        body = copy.deepcopy(real_order)
        body["id"] = first_id + number
        body["admin_graphql_api_id"] = _gid("Order", body["id"])
        body["order_number"] = 1001 + number
        body["number"] = 1 + number
        body["name"] = f"#{1001 + number}"
        body["confirmation_number"] = f"XPAV{284 + number}CT"
        for key in ("created_at", "updated_at", "processed_at"):
            body[key] = _stamp(now - age)
        body["order_status_url"] = f"https://{DEFAULT_SHOP}/548380009/orders/{body['token']}/authenticate?key=k{number}"
        if kind == "uncertain":
            body["source_name"] = "pos"
        elif kind == "cancelled":
            body["cancelled_at"], body["cancel_reason"] = _stamp(now - age + 600), "customer"
        elif kind == "voided":
            body["financial_status"] = "voided"
        elif kind == "draft":
            body["source_name"] = "shopify_draft_order"
        elif kind == "test":
            body["test"] = True
        elif kind == "tagged":
            body["tags"] = "Wholesale, vip"
        elif kind == "no_identifier":
            body.update(email=None, contact_email=None, phone=None, customer=None, browser_ip=None)
            body["client_details"] = {**body["client_details"], "browser_ip": None, "user_agent": None}
        orders.append(SampleOrder(kind, body))
    return orders


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


@dataclass
class ThrottleRecord:
    needed_seconds: float  # (requestedQueryCost - currentlyAvailable) / restoreRate
    waited_seconds: float | None = None  # until the client's next request


class _Handler(BaseHTTPRequestHandler):
    server_version = "ShopifyAdminStandIn/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_POST(self) -> None:
        standin: ShopifyAdminStandIn = self.server.standin  # type: ignore[attr-defined]
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == ORDERS_CONTROL_PATH:
            status, body = standin.add_orders_from(raw)
        else:
            status, body = standin.answer(self.path, self.headers.get("X-Shopify-Access-Token"), raw)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class ShopifyAdminStandIn:
    """``with ShopifyAdminStandIn(orders=[...]) as shop: shop.base_url`` (``http://127.0.0.1:<port>``)."""

    def __init__(self, orders: list[dict[str, Any]] | None = None, *, token: str = DEFAULT_TOKEN,
                 maximum_available: float = 2000.0, restore_rate: float = 100.0, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.orders = sorted((copy.deepcopy(order) for order in orders or []),
                             key=lambda order: (_instant(order["created_at"]), order["id"]))
        self.token = token
        self.maximum_available = float(maximum_available)
        self.restore_rate = float(restore_rate)
        self._available = float(maximum_available)
        self._available_at = time.monotonic()
        self._lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []  # {"operation", "variables", "status", "throttled"}
        self.throttled: list[ThrottleRecord] = []
        self._host, self._port = host, port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> ShopifyAdminStandIn:
        self._server = ThreadingHTTPServer((self._host, self._port), _Handler)
        self._server.standin = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL_S},
                                        name="shopify-admin-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ShopifyAdminStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- the shop's orders ----------------------------------------------------------------------
    def add_orders(self, orders: list[dict[str, Any]]) -> int:
        """Orders the shop takes from now on (REST shape); how many it holds."""
        with self._lock:
            self.orders = sorted([*self.orders, *(copy.deepcopy(order) for order in orders)],
                                 key=lambda order: (_instant(order["created_at"]), order["id"]))
            return len(self.orders)

    def add_orders_from(self, raw: bytes) -> tuple[int, dict[str, Any]]:
        """``POST /_standin/orders`` (a JSON list of REST orders), from another process (the local
        stack's drills): not part of Shopify's API."""
        try:
            orders = json.loads(raw or b"null")
            if not isinstance(orders, list) or not all(isinstance(o, dict) and {"id", "name", "created_at"} <= o.keys()
                                                        for o in orders):
                raise ValueError("expected a JSON list of orders with id, name and created_at")
            return 200, {"orders": self.add_orders(orders)}
        except ValueError as problem:
            return 400, {"errors": f"bad orders: {problem}"}

    # -- the bucket ----------------------------------------------------------------------------
    def _refill(self, now: float) -> float:
        self._available = min(self.maximum_available, self._available + self.restore_rate * (now - self._available_at))
        self._available_at = now
        return self._available

    def drain(self, to: float = 0.0) -> None:
        """Empty the bucket (another app of the shop spent it), so that the next query is throttled."""
        with self._lock:
            self._refill(time.monotonic())
            self._available = float(to)

    def _cost(self, requested: float, actual: float | None) -> dict[str, Any]:
        return {"cost": {"requestedQueryCost": requested, "actualQueryCost": actual,
                         "throttleStatus": {"maximumAvailable": self.maximum_available,
                                            "currentlyAvailable": round(self._available, 1),
                                            "restoreRate": self.restore_rate}}}

    # -- requests ------------------------------------------------------------------------------
    def answer(self, path: str, token: str | None, raw: bytes) -> tuple[int, dict[str, Any]]:
        if not _PATH.match(path.split("?")[0]):
            return 404, {"errors": "Not Found"}
        if token != self.token:
            return 401, INVALID_TOKEN
        try:
            request = json.loads(raw or b"null")
            query, variables = request["query"], request.get("variables") or {}
        except (ValueError, KeyError, TypeError):
            return 400, {"errors": {"query": "Required parameter missing or invalid"}}
        operation = request.get("operationName") or (_OPERATION.search(query) or [None, None])[1]
        with self._lock:
            now = time.monotonic()
            for record in self.throttled:
                if record.waited_seconds is None:
                    record.waited_seconds = now - self._throttled_at
            if operation == "ReconcileOrders":
                first = int(variables.get("first") or 0)
                requested = 2 + first * ORDER_NODE_COST
            elif operation == "OrderLineItems":
                first = int(variables.get("first") or 0)
                requested = 2 + first * LINE_ITEM_NODE_COST + 1
            else:
                self.requests.append({"operation": operation, "variables": variables, "status": "unknown"})
                return 200, {"errors": [{"message": f"this stand-in answers ReconcileOrders and OrderLineItems, not {operation}",
                                         "extensions": {"code": "undefinedField"}}]}
            available = self._refill(now)
            if requested > self.maximum_available:
                self.requests.append({"operation": operation, "variables": variables, "status": "max_cost_exceeded"})
                return 200, {"errors": [{"message": f"Query cost is {requested}, which exceeds the single query max cost "
                                                    f"limit ({self.maximum_available:g}).",
                                         "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested,
                                                        "maxCost": self.maximum_available}}],
                             "extensions": self._cost(requested, None)}
            if requested > available:
                self.throttled.append(ThrottleRecord((requested - available) / self.restore_rate))
                self._throttled_at = now
                self.requests.append({"operation": operation, "variables": variables, "status": "throttled"})
                return 200, {"errors": [{"message": "Throttled", "extensions": {
                    "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
                    "extensions": self._cost(requested, None)}
            if operation == "ReconcileOrders":
                data, actual = self._orders_page(variables, first)
            else:
                data, actual = self._line_items_page(variables, first)
            self._available -= actual  # the bucket is charged what was returned (the rest refunded)
            self.requests.append({"operation": operation, "variables": variables, "status": "ok"})
            return 200, {"data": data, "extensions": self._cost(requested, actual)}

    def _orders_page(self, variables: dict[str, Any], first: int) -> tuple[dict[str, Any], float]:
        search = str(variables.get("query") or "")
        since, until = _CREATED_SINCE.search(search), _CREATED_UNTIL.search(search)
        selected = [order for order in self.orders
                    if (since is None or _instant(order["created_at"]) >= _instant(since.group(1)))
                    and (until is None or _instant(order["created_at"]) < _instant(until.group(1)))]
        start = _offset(variables.get("after"))
        page = selected[start : start + first]
        end = start + len(page)
        data = {"orders": {"pageInfo": {"hasNextPage": end < len(selected), "endCursor": _cursor(end) if page else None},
                           "nodes": [graphql_order(order) for order in page]}}
        return data, 2 + len(page) * ORDER_NODE_COST

    def _line_items_page(self, variables: dict[str, Any], first: int) -> tuple[dict[str, Any], float]:
        order = next((o for o in self.orders if _gid("Order", o["id"]) == variables.get("id")), None)
        if order is None:
            return {"order": None}, 1
        items = order.get("line_items") or []
        start = _offset(variables.get("after"))
        page = items[start : start + first]
        end = start + len(page)
        data = {"order": {"lineItems": {"pageInfo": {"hasNextPage": end < len(items), "endCursor": _cursor(end) if page else None},
                                        "nodes": [graphql_line_item(item) for item in page]}}}
        return data, 3 + len(page) * LINE_ITEM_NODE_COST

    def operations(self, status: str | None = None) -> list[str]:
        return [r["operation"] for r in self.requests if status is None or r["status"] == status]


def _cursor(offset: int) -> str:
    return base64.b64encode(json.dumps({"last": offset}).encode()).decode()


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    return int(json.loads(base64.b64decode(cursor))["last"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pinrelay_local.shopify_admin_standin", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=18081)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    args = parser.parse_args(argv)
    sample = json.loads((REPO_ROOT / "events/webhooks/shopify_orders_create_shopifyappjs-rest-2025-10.json").read_text())
    orders = [order.body for order in sample_orders(sample, time.time())]
    with ShopifyAdminStandIn(orders, token=args.token, port=args.port) as standin:
        print(f"Shopify Admin stand-in on {standin.base_url} (shop {DEFAULT_SHOP}, token {args.token}); Ctrl-C stops it")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
