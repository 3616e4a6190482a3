"""Browser tests of web/: headless Chromium (Debian's /usr/bin/chromium) driven by Playwright.

A real HTTP server on 127.0.0.1 serves the page under test. Every request that leaves
127.0.0.1 is aborted and recorded, except Pinterest's core.js, which is answered with a local
recorder of pintrk(...) calls (harness/pintrk-recorder.js): the real tag is never fetched.
Without Chromium or Playwright these tests fail and say what to install; they never skip.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest

from pinrelay_local.servers import SHUTDOWN_POLL_S

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
HARNESS = Path(__file__).parent / "harness"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--headless=new", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
PINTEREST_CORE_JS = "https://s.pinimg.com/ct/core.js"
TEST_TAG_ID = "2612345678901"


# --- the browser -------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def chromium():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "the browser tests need the Python package playwright: "
            ".venv/bin/pip install playwright (or .venv/bin/pip install -e '.[dev]'). "
            "Its own browser download is not needed; Debian's chromium is used.",
            pytrace=False,
        )
    if not CHROMIUM.exists():
        pytest.fail(
            f"the browser tests need Chromium at {CHROMIUM}: apt-get update && apt-get install -y "
            "--no-install-recommends chromium (or run .ci/browser-deps as root).",
            pytrace=False,
        )
    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()
    playwright.stop()


@dataclass
class Network:
    """What the page asked for outside 127.0.0.1: Pinterest's core.js (answered by the recorder)
    and everything else (aborted)."""

    pinterest_core: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)


@pytest.fixture
def network() -> Network:
    return Network()


@pytest.fixture
def browser_context(chromium, network):
    recorder = (HARNESS / "pintrk-recorder.js").read_text()
    context = chromium.new_context()

    def route(route) -> None:
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1":
            route.continue_()
        elif url.split("?")[0] == PINTEREST_CORE_JS:
            network.pinterest_core.append(url)
            route.fulfill(status=200, content_type="application/javascript", body=recorder)
        else:
            network.outside.append(url)
            route.abort()

    context.route("**/*", route)
    yield context
    context.close()
    assert network.outside == [], f"requests left 127.0.0.1: {network.outside}"


@pytest.fixture
def page(browser_context):
    """A page whose console lines (and uncaught errors, as 'pageerror: ...') are in page.console_messages."""
    page = browser_context.new_page()
    messages: list[str] = []
    page.console_messages = messages  # type: ignore[attr-defined]
    page.on("console", lambda message: messages.append(message.text))
    page.on("pageerror", lambda error: messages.append(f"pageerror: {error}"))
    return page


# --- the local server --------------------------------------------------------------------------

@dataclass
class Shop:
    """The state behind the local server: pixel sources under test, the storefront's consent, and
    the fake Ajax cart (one cart per `cart` cookie token) with every /cart request it received."""

    scripts: dict[str, str] = field(default_factory=dict)
    pages: dict[str, str] = field(default_factory=dict)
    consent: dict[str, bool] = field(default_factory=lambda: {
        "marketing": True, "saleOfData": True, "analytics": True, "preferences": True})
    carts: dict[str, dict[str, Any]] = field(default_factory=dict)
    cart_requests: list[dict[str, Any]] = field(default_factory=list)
    failing_posts: int = 0
    base_url: str = ""

    def cart_posts(self) -> list[dict[str, Any]]:
        return [request for request in self.cart_requests if request["method"] == "POST"]


def _handler(shop: Shop):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def _send(self, status: int, body: str | bytes, content_type: str, cookie: str | None = None) -> None:
            data = body.encode() if isinstance(body, str) else body
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            if cookie:
                self.send_header("Set-Cookie", cookie)
            self.end_headers()
            self.wfile.write(data)

        def _cart(self) -> tuple[dict[str, Any], str | None]:
            cookies = dict(part.strip().split("=", 1) for part in (self.headers.get("Cookie") or "").split(";")
                           if "=" in part)
            token = unquote(cookies.get("cart", "")).split("?")[0]
            cookie = None
            if not token:
                token = f"c1-{uuid.uuid4().hex[:16]}"
                cookie = f"cart={quote(token + '?key=k' + token[-4:])}; Path=/"
            cart = shop.carts.setdefault(token, {"token": token, "attributes": {}})
            return cart, cookie

        def _cart_json(self, cart: dict[str, Any]) -> str:
            return json.dumps({
                "token": f"{cart['token']}?key=k{cart['token'][-4:]}", "note": None,
                "attributes": cart["attributes"], "original_total_price": 0, "total_price": 0,
                "total_discount": 0, "total_weight": 0.0, "item_count": 0, "items": [],
                "requires_shipping": False, "currency": "USD", "items_subtotal_price": 0,
                "cart_level_discount_applications": [],
            })

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path.startswith("/harness/") and (HARNESS / path.removeprefix("/harness/")).is_file():
                self._send(200, (HARNESS / path.removeprefix("/harness/")).read_text(), "application/javascript")
            elif path == "/web/shopify-theme-epik.js":
                self._send(200, (WEB / "shopify-theme-epik.js").read_text(), "application/javascript")
            elif path in shop.scripts:
                self._send(200, shop.scripts[path], "application/javascript")
            elif path in shop.pages:
                self._send(200, shop.pages[path], "text/html; charset=utf-8")
            elif path == "/cart.js":
                cart, cookie = self._cart()
                shop.cart_requests.append({"method": "GET", "path": path, "cart": cart["token"]})
                self._send(200, self._cart_json(cart), "application/json", cookie)
            elif path.startswith("/products/") or path == "/":
                consent = json.dumps(shop.consent)
                self._send(200, STOREFRONT_PAGE.replace("__CONSENT__", consent), "text/html; charset=utf-8")
            else:
                self._send(404, "not found", "text/plain")

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if path != "/cart/update.js":
                self._send(404, "not found", "text/plain")
                return
            cart, cookie = self._cart()
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                body = raw.decode(errors="replace")
            shop.cart_requests.append({"method": "POST", "path": path, "cart": cart["token"], "body": body,
                                       "content_type": self.headers.get("Content-Type")})
            if shop.failing_posts > 0:
                shop.failing_posts -= 1
                self._send(500, json.dumps({"status": 500, "message": "Internal error"}), "application/json", cookie)
                return
            if isinstance(body, dict):
                cart["attributes"].update(body.get("attributes") or {})
            self._send(200, self._cart_json(cart), "application/json", cookie)

    return Handler


STOREFRONT_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Storefront</title>
<script>window.__consent = __CONSENT__;</script>
<script src="/harness/shopify-consent-api.js"></script>
<script src="/web/shopify-theme-epik.js" defer></script>
</head><body><h1>IPod Nano - 8gb</h1></body></html>
"""

PIXEL_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Custom pixel sandbox</title>
<script>window.__pixelConfig = __CONFIG__;</script>
<script src="/harness/shopify-pixel-sandbox.js"></script>
<script src="__PIXEL__"></script>
</head><body></body></html>
"""


@pytest.fixture(scope="session")
def _server():
    shop = Shop()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(shop))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL_S}, daemon=True)
    thread.start()
    shop.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    yield shop
    server.shutdown()
    server.server_close()


@pytest.fixture
def shop(_server) -> Shop:
    """The local server, its state cleared for this test."""
    _server.scripts.clear()
    _server.pages.clear()
    _server.carts.clear()
    _server.cart_requests.clear()
    _server.failing_posts = 0
    _server.consent = {"marketing": True, "saleOfData": True, "analytics": True, "preferences": True}
    return _server


# --- the pixel under test ----------------------------------------------------------------------

def pixel_source(tag_id: str = TEST_TAG_ID, event_id_template: str | None = None,
                 content_id_field: str | None = None) -> str:
    """web/shopify-custom-pixel.js as a merchant would paste it: only the settings lines changed."""
    source = (WEB / "shopify-custom-pixel.js").read_text()
    changes = {"PINTEREST_TAG_ID": tag_id, "EVENT_ID_TEMPLATE": event_id_template,
               "CONTENT_ID_FIELD": content_id_field}
    for name, value in changes.items():
        if value is None:
            continue
        pattern = re.compile(rf"^const {name} = '[^'\n]*';$", re.MULTILINE)
        assert len(pattern.findall(source)) == 1, f"the pixel must have exactly one `const {name} = '...';` line"
        source = pattern.sub(lambda _: f"const {name} = {json.dumps(value)};", source)
    return source


GRANTED = {"analyticsProcessingAllowed": True, "marketingAllowed": True,
           "preferencesProcessingAllowed": True, "saleOfDataAllowed": True}
DENIED = {"analyticsProcessingAllowed": False, "marketingAllowed": False,
          "preferencesProcessingAllowed": False, "saleOfDataAllowed": False}


class PixelPage:
    """The pixel loaded in the stand-in sandbox, with Shopify's events to fire at it."""

    def __init__(self, page, network: Network):
        self.page = page
        self.network = network

    def publish(self, name: str, data: dict[str, Any]) -> None:
        self.page.evaluate("([name, data]) => window.__shopify.publish(name, data)", [name, data])

    def collect_consent(self, privacy: dict[str, bool]) -> None:
        self.page.evaluate("(privacy) => window.__shopify.collectConsent(privacy)", privacy)

    def pintrk_calls(self) -> list[list[Any]]:
        """Every pintrk(...) call, once the (stand-in) core.js has loaded and replayed the queue."""
        self.page.wait_for_function("window.__pintrkLoaded === true", timeout=5000)
        return self.page.evaluate("window.__pintrkCalls")

    def tag_state(self) -> dict[str, Any]:
        """Whether anything of the Pinterest tag exists on the page."""
        self.page.wait_for_timeout(200)  # a deferred load, if the pixel had one, would show by now
        return self.page.evaluate("""() => ({
            pintrk: typeof window.pintrk,
            scripts: Array.from(document.scripts).map((s) => s.src).filter((src) => src.includes('pinimg')),
            calls: window.__pintrkCalls || null,
        })""") | {"core_js_requests": list(self.network.pinterest_core)}

    @property
    def console(self) -> list[str]:
        return self.page.console_messages


@pytest.fixture
def open_pixel(page, shop, network):
    def open_(privacy: dict[str, bool] | None = None, **settings) -> PixelPage:
        key = f"/pixel/{uuid.uuid4().hex}.js"
        shop.scripts[key] = pixel_source(**settings)
        config = json.dumps({"customerPrivacy": privacy})
        shop.pages["/pixel-sandbox"] = PIXEL_PAGE.replace("__CONFIG__", config).replace("__PIXEL__", key)
        page.goto(f"{shop.base_url}/pixel-sandbox")
        return PixelPage(page, network)

    return open_
