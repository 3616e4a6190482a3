"""Local stand-ins for the two shop APIs pinrelay reads: Stripe's Checkout Sessions and BigCommerce's
Orders V2. Real HTTP servers on 127.0.0.1, used by the local stack, the tests, the crash suite
and the bench. Nothing here is shipped to Lambda.

``StripeStandIn`` (stripe/openapi: paths ``/v1/checkout/sessions/{session}/line_items`` and
``/v1/checkout/sessions``; objects shaped as its ``fixtures3.json`` ``item`` and
``checkout.session``, an excerpt in stripe/):

* ``Authorization: Bearer <key>`` must be the stand-in's key, else 401 with Stripe's error object
  (``{"error": {"type": "invalid_request_error", "message": ...}}``);
* ``GET /v1/checkout/sessions/{id}/line_items?limit=&starting_after=``: a ``list`` object of
  ``item`` objects (``has_more``), 404 ``resource_missing`` for an unknown session;
* ``GET /v1/checkout/sessions?created[gte]=&created[lt]=&status=&limit=&starting_after=``: the
  sessions, newest first, as Stripe lists them (reconcile).

``BigCommerceStandIn`` (bigcommerce/docs ``reference/orders.v2.oas2.yml``; its own examples, in
bigcommerce/, seed ``example_orders``):

* ``X-Auth-Token`` must be the store's token, else 401;
* ``GET /stores/{hash}/v2/orders/{id}``: the order, 404 when there is none;
* ``GET .../orders/{id}/products?limit=&page=`` and ``.../orders/{id}/shipping_addresses``: the
  collections, **204 with no body** when empty (as BigCommerce answers);
* ``GET /stores/{hash}/v2/orders?min_date_created=&max_date_created=&page=&limit=``: orders by
  creation date (RFC 2822 or ISO 8601 bounds), 204 when none;
* every answer carries ``X-Rate-Limit-Requests-Left`` / ``-Quota`` / ``-Time-Window-Ms`` /
  ``-Time-Reset-Ms``; beyond ``quota`` requests per window: 429.

Both record every request (``requests``) and take faults (``set_fault``): a status for the next
``count`` requests or until a time, a slow answer, a dropped connection, or, for the crash suite,
``on_request``: a callback run before the answer is written (it may kill the caller's process).
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pinrelay_local.servers import SHUTDOWN_POLL_S

HERE = Path(__file__).resolve().parent
STRIPE_KEY = "rk_test_pinrelay_local_standin_key_0123456789"
BIGCOMMERCE_TOKEN = "pinrelay-local-bigcommerce-token-0123456789"
BIGCOMMERCE_STORE = "pinrelaydev"
FAULT_MODES = ("status", "slow", "close")


@dataclass
class StandInFault:
    """``status``: answer ``status`` (BigCommerce/Stripe error body); ``slow``: wait ``seconds`` then
    answer; ``close``: drop the connection unanswered. For ``count`` requests, or until ``until``
    (epoch s), or for good; only for paths containing ``path`` when set."""

    mode: str
    status: int = 503
    seconds: float = 5.0
    count: int | None = None
    until: float | None = None
    path: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in FAULT_MODES:
            raise ValueError(f"unknown fault mode {self.mode!r}; one of {FAULT_MODES}")


@dataclass
class Answer:
    status: int
    body: Any = None  # JSON-able; None: no body
    headers: dict[str, str] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:  # noqa: N802
        standin: _StandIn = self.server.standin  # type: ignore[attr-defined]
        standin.serve(self)

    do_POST = do_GET


class _StandIn:
    """A threaded JSON server: ``answer(method, path, query, headers)`` is the platform's part."""

    name = "standin"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host, self._port = host, port
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()
        self._fault: StandInFault | None = None
        self.on_request: Callable[[str, str], None] | None = None  # (method, path) -> None, before answering
        self.requests: list[dict[str, Any]] = []  # {"method", "path", "status", "at"}

    def start(self) -> _StandIn:
        self._server = ThreadingHTTPServer((self._host, self._port), _Handler)
        self._server.daemon_threads = True
        self._server.standin = self  # type: ignore[attr-defined]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL_S}, name=self.name,
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):  # noqa: ANN204 - the subclass
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def set_fault(self, mode: str | None, **kw: Any) -> None:
        with self._lock:
            self._fault = StandInFault(mode, **kw) if mode else None

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()
            self._fault = None

    def _take_fault(self, path: str) -> StandInFault | None:
        with self._lock:
            fault = self._fault
            if fault is None or (fault.path and fault.path not in path):
                return None
            if fault.until is not None and time.time() >= fault.until:
                self._fault = None
                return None
            if fault.count is not None:
                fault.count -= 1
                if fault.count <= 0:
                    self._fault = None
            return fault

    def answer(self, method: str, path: str, query: dict[str, list[str]], headers: Any) -> Answer:
        raise NotImplementedError

    def error(self, status: int) -> Answer:
        return Answer(status, {"message": f"HTTP {status}"})

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        if length:
            handler.rfile.read(length)
        split = urlsplit(handler.path)
        if self.on_request is not None:
            self.on_request(handler.command, split.path)
        fault = self._take_fault(split.path)
        if fault is not None and fault.mode == "close":
            self._record(handler.command, split.path, None)
            handler.close_connection = True
            return
        if fault is not None and fault.mode == "slow":
            time.sleep(fault.seconds)
        if fault is not None and fault.mode == "status":
            answer = self.error(fault.status)
        else:
            answer = self.answer(handler.command, split.path, parse_qs(split.query), handler.headers)
        self._record(handler.command, split.path, answer.status)
        data = b"" if answer.body is None else json.dumps(answer.body).encode()
        try:
            handler.send_response(answer.status)
            if answer.body is not None:
                handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            for key, value in answer.headers.items():
                handler.send_header(key, value)
            handler.end_headers()
            handler.wfile.write(data)
        except ConnectionError:  # the client gave up (a timeout shorter than a slow fault)
            handler.close_connection = True

    def _record(self, method: str, path: str, status: int | None) -> None:
        with self._lock:
            self.requests.append({"method": method, "path": path, "status": status, "at": time.time()})

    def paths(self, status: int | None = 200) -> list[str]:
        with self._lock:
            return [r["path"] for r in self.requests if status is None or r["status"] == status]


# ------------------------------------------------------------------------------------------------
# Stripe
# ------------------------------------------------------------------------------------------------

def stripe_fixtures() -> dict[str, Any]:
    """stripe/openapi ``openapi/fixtures3.json``'s ``item`` and ``checkout.session`` (stripe/)."""
    return json.loads((HERE / "stripe" / "fixtures3-excerpt.json").read_text(encoding="utf-8"))


def stripe_line_item(number: int, quantity: int, unit_amount: int, currency: str, product: str, description: str) -> dict[str, Any]:
    """An ``item`` shaped as fixtures3's, with these values."""
    item = copy.deepcopy(stripe_fixtures()["item"])
    item.update(id=f"li_pinrelay{number:06d}", quantity=quantity, currency=currency, description=description,
                amount_subtotal=unit_amount * quantity, amount_total=unit_amount * quantity)
    item["price"].update(id=f"price_pinrelay{number:06d}", product=product, unit_amount=unit_amount,
                         unit_amount_decimal=str(unit_amount), currency=currency, recurring=None, type="one_time")
    return item


class StripeStandIn(_StandIn):
    """``with StripeStandIn() as stripe: stripe.add_session(session, line_items)``."""

    name = "stripe-standin"

    def __init__(self, key: str = STRIPE_KEY, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.key = key
        self.sessions: dict[str, dict[str, Any]] = {}
        self.line_items: dict[str, list[dict[str, Any]]] = {}

    def add_session(self, session: dict[str, Any], line_items: list[dict[str, Any]] | None = None) -> None:
        with self._lock:
            self.sessions[session["id"]] = copy.deepcopy(session)
            self.line_items[session["id"]] = copy.deepcopy(line_items or [])

    def error(self, status: int) -> Answer:
        kinds = {401: "invalid_request_error", 404: "invalid_request_error", 429: "rate_limit_error"}
        return Answer(status, {"error": {"type": kinds.get(status, "api_error"), "message": f"stand-in: HTTP {status}"}})

    def answer(self, method: str, path: str, query: dict[str, list[str]], headers: Any) -> Answer:
        if headers.get("Authorization") != f"Bearer {self.key}":
            return Answer(401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}})
        parts = path.strip("/").split("/")
        if method != "GET" or parts[:3] != ["v1", "checkout", "sessions"]:
            return Answer(404, {"error": {"type": "invalid_request_error", "message": f"Unrecognized request URL ({method} {path})"}})
        limit = max(1, min(100, int((query.get("limit") or ["10"])[0])))
        after = (query.get("starting_after") or [None])[0]
        with self._lock:
            if len(parts) == 5 and parts[4] == "line_items":
                if parts[3] not in self.sessions:
                    return Answer(404, {"error": {"type": "invalid_request_error", "code": "resource_missing",
                                                  "param": "session", "message": f"No such checkout session: '{parts[3]}'"}})
                return Answer(200, _stripe_page(self.line_items[parts[3]], limit, after, path))
            if len(parts) == 3:
                sessions = sorted(self.sessions.values(), key=lambda s: -s.get("created", 0))
                low, high = query.get("created[gte]"), query.get("created[lt]")
                status = (query.get("status") or [None])[0]
                chosen = [s for s in sessions if (not low or s.get("created", 0) >= int(low[0]))
                          and (not high or s.get("created", 0) < int(high[0])) and (not status or s.get("status") == status)]
                return Answer(200, _stripe_page(chosen, limit, after, path))
        return Answer(404, {"error": {"type": "invalid_request_error", "message": f"Unrecognized request URL ({path})"}})


def _stripe_page(objects: list[dict[str, Any]], limit: int, after: str | None, url: str) -> dict[str, Any]:
    start = 0
    if after is not None:
        start = next((i + 1 for i, o in enumerate(objects) if o.get("id") == after), len(objects))
    page = objects[start:start + limit]
    return {"object": "list", "data": copy.deepcopy(page), "has_more": start + limit < len(objects), "url": url}


# ------------------------------------------------------------------------------------------------
# BigCommerce
# ------------------------------------------------------------------------------------------------

def bigcommerce_examples() -> dict[str, Any]:
    """The response examples of bigcommerce/docs ``reference/orders.v2.oas2.yml`` (bigcommerce/)."""
    return json.loads((HERE / "bigcommerce" / "orders.v2-examples.json").read_text(encoding="utf-8"))


def rfc2822(epoch: float) -> str:
    """An Orders V2 date: ``Tue, 05 Mar 2019 21:40:11 +0000``."""
    return format_datetime(datetime.fromtimestamp(int(epoch), UTC)).replace("-0000", "+0000")


def example_orders(created: float | None = None) -> dict[int, dict[str, Any]]:
    """The docs' orders as the stand-in serves them: order 250 (the webhook examples' order) is the
    "Multiple Items" example (status 11, Awaiting Fulfillment: paid) and order 218 the "Response"
    example (status 7, Awaiting Payment: not paid); both with the docs' products and shipping
    addresses examples, their ids and dates set to these orders and to ``created`` (default now)."""
    examples = bigcommerce_examples()
    stamp = rfc2822(time.time() if created is None else created)
    orders = {}
    for order_id, example in ((250, "Multiple Items"), (218, "Response")):
        order = copy.deepcopy(examples["order_Resp"][example])
        order.update(id=order_id, date_created=stamp, date_modified=stamp)
        products = [dict(p, order_id=order_id) for p in copy.deepcopy(examples["orderProductsCollection_Resp"])]
        addresses = [dict(a, order_id=order_id) for a in copy.deepcopy(examples["orderShippingAddressCollection_Resp"])]
        orders[order_id] = {"order": order, "products": products, "shipping_addresses": addresses}
    return orders


class BigCommerceStandIn(_StandIn):
    """``with BigCommerceStandIn({"abc123": "token"}) as store: store.put_order("abc123", bundle)``."""

    name = "bigcommerce-standin"

    def __init__(self, stores: dict[str, str] | None = None, *, quota: int = 150, window_ms: int = 30_000,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.stores = dict(stores or {BIGCOMMERCE_STORE: BIGCOMMERCE_TOKEN})
        self.orders: dict[tuple[str, int], dict[str, Any]] = {}
        self.quota, self.window_ms = quota, window_ms
        self._window_start: dict[str, float] = {}
        self._used: dict[str, int] = {}

    def put_order(self, store: str, bundle: dict[str, Any]) -> None:
        """``bundle``: ``{"order": {...}, "products": [...], "shipping_addresses": [...]}``."""
        with self._lock:
            self.orders[(store, int(bundle["order"]["id"]))] = copy.deepcopy(bundle)

    def set_status(self, store: str, order_id: int, status_id: int) -> None:
        with self._lock:
            self.orders[(store, order_id)]["order"]["status_id"] = status_id

    def delete_order(self, store: str, order_id: int) -> None:
        with self._lock:
            self.orders.pop((store, order_id), None)

    def error(self, status: int) -> Answer:
        return Answer(status, [{"status": status, "message": f"stand-in: HTTP {status}"}])

    def _rate(self, store: str) -> tuple[bool, dict[str, str]]:
        now = time.monotonic()
        start = self._window_start.get(store)
        if start is None or (now - start) * 1000 >= self.window_ms:
            self._window_start[store], self._used[store], start = now, 0, now
        self._used[store] += 1
        reset_ms = max(0, int(self.window_ms - (now - start) * 1000))
        left = max(0, self.quota - self._used[store])
        headers = {"X-Rate-Limit-Requests-Left": str(left), "X-Rate-Limit-Requests-Quota": str(self.quota),
                   "X-Rate-Limit-Time-Window-Ms": str(self.window_ms), "X-Rate-Limit-Time-Reset-Ms": str(reset_ms)}
        return self._used[store] <= self.quota, headers

    def answer(self, method: str, path: str, query: dict[str, list[str]], headers: Any) -> Answer:
        parts = path.strip("/").split("/")
        if method != "GET" or len(parts) < 4 or parts[0] != "stores" or parts[2:4] != ["v2", "orders"]:
            return Answer(404, [{"status": 404, "message": "The requested resource was not found."}])
        store = parts[1]
        if store not in self.stores or headers.get("X-Auth-Token") != self.stores[store]:
            return Answer(401, {"status": 401, "title": "Unauthorized", "type": "about:blank"})
        with self._lock:
            allowed, limits = self._rate(store)
            if not allowed:
                return Answer(429, {"status": 429, "title": "Too many requests"}, limits)
            return self._orders(store, parts[4:], query, limits)

    def _orders(self, store: str, rest: list[str], query: dict[str, list[str]], limits: dict[str, str]) -> Answer:
        not_found = Answer(404, [{"status": 404, "message": "The requested resource was not found."}], limits)
        page = max(1, int((query.get("page") or ["1"])[0]))
        limit = max(1, min(250, int((query.get("limit") or ["50"])[0])))
        if not rest:  # the orders of a period
            low, high = (_moment((query.get(name) or [""])[0]) for name in ("min_date_created", "max_date_created"))
            chosen = sorted((b["order"] for (s, _), b in self.orders.items() if s == store
                             and (low is None or _moment(b["order"]["date_created"]) >= low)
                             and (high is None or _moment(b["order"]["date_created"]) <= high)), key=lambda o: o["id"])
            return _collection(chosen, page, limit, limits)
        if not rest[0].isdigit() or (store, int(rest[0])) not in self.orders:
            return not_found
        bundle = self.orders[(store, int(rest[0]))]
        if len(rest) == 1:
            return Answer(200, copy.deepcopy(bundle["order"]), limits)
        if len(rest) == 2 and rest[1] == "products":
            return _collection(bundle["products"], page, limit, limits)
        if len(rest) == 2 and rest[1] in ("shipping_addresses", "shippingaddresses"):
            return _collection(bundle["shipping_addresses"], page, limit, limits)
        return not_found


def _collection(items: list[dict[str, Any]], page: int, limit: int, headers: dict[str, str]) -> Answer:
    chosen = items[(page - 1) * limit: page * limit]
    return Answer(200, copy.deepcopy(chosen), headers) if chosen else Answer(204, None, headers)


def _moment(text: str) -> float | None:
    if not text:
        return None
    try:
        return parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError):
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
