"""Shopify's Admin API as a hostile or broken endpoint (a real HTTP server, tests/hostile_endpoint.py):
pinrelay reconcile and the daily reconcile function read it with bounded pages, bytes, waits and
time, never follow a redirect with the token, and never crash on what it sends (a crash would exit
1, which means "orders are missing")."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime

import pytest
from pinrelay.adapters.shopify_admin import ShopifyAdminClient, ShopifyAdminError
from pinrelay_cli.main import main
from pinrelay_local.shopify_admin_standin import DEFAULT_SHOP, DEFAULT_TOKEN, ShopifyAdminStandIn, graphql_order, sample_orders

from tests.conftest import load_fixture
from tests.hostile_endpoint import HostileEndpoint, Reply, Seen, endless, json_reply

AD_ACCOUNT = "549755885175"
FIXTURE = "shopify/shopify_orders_create_shopifyappjs-rest-2025-10.json"
MiB = 1024 * 1024
COST = {"requestedQueryCost": 702, "actualQueryCost": 16,
        "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1984.0, "restoreRate": 100.0}}


@pytest.fixture(scope="module")
def order_node() -> dict:
    return graphql_order(sample_orders(load_fixture(FIXTURE), time.time())[0].body)


def orders_page(nodes: list, cursor: str | None, has_next: bool = True, cost: dict | None = None) -> dict:
    return {"data": {"orders": {"pageInfo": {"hasNextPage": has_next, "endCursor": cursor}, "nodes": nodes}},
            "extensions": {"cost": cost or COST}}


def line_items_page(cursor: str | None) -> dict:
    item = {"title": "x", "vendor": None, "sku": "s", "quantity": 1, "product": None, "variant": None,
            "originalUnitPriceSet": None}
    return {"data": {"order": {"lineItems": {"pageInfo": {"hasNextPage": True, "endCursor": cursor}, "nodes": [item]}}},
            "extensions": {"cost": COST}}


def client(server: HostileEndpoint, **options) -> ShopifyAdminClient:
    return ShopifyAdminClient(DEFAULT_SHOP, DEFAULT_TOKEN, base_url=server.url, allow_loopback_http=True, **options)


def window() -> tuple[datetime, datetime]:
    now = time.time()
    return datetime.fromtimestamp(now - 86400, UTC), datetime.fromtimestamp(now + 60, UTC)


def stop_after(limit: int, script):
    """``script`` for ``limit`` requests, then 400: a client that never stops ends in a test all the same."""
    answered = [0]

    def answer(seen: Seen) -> Reply:
        answered[0] += 1
        return script(seen) if answered[0] <= limit else json_reply({"errors": "enough"}, status=400)
    return answer


# -- pages ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["orders", "line items"])
def test_a_cursor_that_never_moves_stops_at_the_second_page(operation, order_node):
    """hasNextPage true with the same endCursor forever: read once, then stop (it made 3.3 GB in 30 s)."""
    page = orders_page([order_node], "c2FtZQ==") if operation == "orders" else line_items_page("c2FtZQ==")
    with HostileEndpoint(stop_after(30, lambda seen: json_reply(page))) as server:
        admin = client(server)
        with pytest.raises(ShopifyAdminError, match="the same page cursor twice"):
            if operation == "orders":
                list(admin.orders(*window()))
            else:
                admin.line_items("gid://shopify/Order/1")
        assert len(server.requests) == 2


def test_cursors_that_always_move_stop_at_the_page_bound(order_node):
    def fresh_cursor(seen: Seen) -> Reply:
        return json_reply(orders_page([order_node], f"page-{len(server.requests)}"))

    with HostileEndpoint(stop_after(30, fresh_cursor)) as server:
        with pytest.raises(ShopifyAdminError, match=r"more than 5 pages .*shorter window"):
            list(client(server, max_pages=5).orders(*window()))
        assert len(server.requests) == 5


# -- bytes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("declared", [1_500_000_000, None], ids=["content-length 1.5 GB", "chunked, no length"])
def test_a_huge_answer_is_not_read_whole(declared):
    """1.5 GB declared (refused before reading) or streamed without a length (dropped at the limit).
    The server stops at 64 MiB, so that a client reading everything still ends."""
    reply = Reply(200, endless(limit=64 * MiB), {"Content-Type": "application/json"}, content_length=declared)
    with HostileEndpoint(lambda seen: reply) as server:
        with pytest.raises(ShopifyAdminError, match=r"answer is larger than 4 MiB"):
            list(client(server).orders(*window()))
        assert server.sent_bytes < 16 * MiB  # the limit and what the sockets buffer, never the rest


def test_a_gzip_bomb_is_counted_as_what_it_expands_to():
    """1 GiB of zeros sent as about 1 MiB of gzip: the limit is on the decoded bytes."""
    import zlib

    def bomb():
        packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip format
        zeros = bytes(MiB)
        for _ in range(1024):
            if chunk := packer.compress(zeros):
                yield chunk
        yield packer.flush()

    reply = Reply(200, bomb(), {"Content-Type": "application/json", "Content-Encoding": "gzip"})
    with HostileEndpoint(lambda seen: reply) as server:
        with pytest.raises(ShopifyAdminError, match=r"answer is larger than 4 MiB"):
            list(client(server).orders(*window()))


# -- waits and time ------------------------------------------------------------------------------


def test_a_retry_after_of_31_years_is_not_slept():
    slept: list[float] = []
    reply = json_reply({"errors": "Exceeded 2 calls per second for api client."}, status=429,
                       headers={"Retry-After": "999999999"})
    with HostileEndpoint(lambda seen: reply) as server:
        with pytest.raises(ShopifyAdminError, match=r"asks for a wait of 999999999 s .*at most 60 s"):
            list(client(server, sleep=slept.append).orders(*window()))
        assert slept == [] and len(server.requests) == 1


@pytest.mark.parametrize("cost, reason", [
    ({"requestedQueryCost": 1e9}, r"costs 1000000000 points, more than the 2000 its bucket holds"),
    ({"requestedQueryCost": float("nan")}, r"requestedQueryCost is not a number pinrelay can use"),
    ({"requestedQueryCost": float("inf")}, r"requestedQueryCost is not a number pinrelay can use"),
    ({"throttleStatus": {**COST["throttleStatus"], "restoreRate": 0}}, r"restoreRate is not a number pinrelay can use"),
    ({"throttleStatus": {**COST["throttleStatus"], "currentlyAvailable": float("nan")}},
     r"currentlyAvailable is not a number pinrelay can use"),
], ids=["1e9", "NaN", "Infinity", "restoreRate 0", "currentlyAvailable NaN"])
def test_a_throttle_cost_that_cannot_be_paid_says_why(cost, reason):
    slept: list[float] = []
    throttled = {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                 "extensions": {"cost": {**COST, "actualQueryCost": None, **cost}}}
    with HostileEndpoint(stop_after(30, lambda seen: json_reply(throttled))) as server:
        with pytest.raises(ShopifyAdminError, match=reason):
            list(client(server, sleep=slept.append).orders(*window()))
        assert slept == [] and len(server.requests) == 1


def test_a_huge_cost_on_an_answered_page_stops_before_the_next(order_node):
    slept: list[float] = []
    page = orders_page([order_node], "next", cost={**COST, "requestedQueryCost": 1e9})
    with HostileEndpoint(stop_after(30, lambda seen: json_reply(page))) as server:
        with pytest.raises(ShopifyAdminError, match="costs 1000000000 points"):
            list(client(server, sleep=slept.append).orders(*window()))
        assert slept == [] and len(server.requests) == 1


def test_an_answer_dribbled_byte_by_byte_ends_at_the_timeout():
    """requests' timeout bounds each wait for a byte, not the answer: 60 bytes at 4 a second took 15 s."""
    body = json.dumps(orders_page([], None, has_next=False)).encode().ljust(60)
    reply = Reply(200, (bytes([b]) for b in body), {"Content-Type": "application/json"}, content_length=len(body),
                  pause=0.25)
    with HostileEndpoint(lambda seen: reply) as server:
        started = time.monotonic()
        with pytest.raises(ShopifyAdminError, match=r"took longer than 1 s"):
            list(client(server, timeout_seconds=1.0).orders(*window()))
        assert time.monotonic() - started < 3.0


# -- where the token goes ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_not_followed_so_the_token_goes_nowhere_else(status):
    with HostileEndpoint(lambda seen: json_reply(orders_page([], None, has_next=False))) as elsewhere:
        moved = Reply(status, b"", {"Location": f"{elsewhere.url}/admin/api/2025-10/graphql.json"})
        with HostileEndpoint(lambda seen: moved) as server:
            with pytest.raises(ShopifyAdminError, match=rf"answered HTTP {status}, a redirect .*not followed"):
                list(client(server).orders(*window()))
        assert elsewhere.requests == []  # requests would have sent X-Shopify-Access-Token on to it


@pytest.mark.parametrize("options, reason", [
    (["--shop", "shop.example.com"], "--shop must be the shop's myshopify.com domain"),
    (["--shop", DEFAULT_SHOP, "--shopify-api-url", "http://pinrelay-dev.myshopify.com"],
     "--shopify-api-url must be https://"),
    (["--shop", DEFAULT_SHOP, "--shopify-api-url", "https://evil.example"], "--shopify-api-url must be https://"),
    (["--shop", DEFAULT_SHOP, "--shopify-api-url", "http://127.0.0.1:9"], "--allow-loopback-http"),
], ids=["custom domain", "plain http", "another host", "loopback without the flag"])
def test_only_https_myshopify_hosts_get_the_token(options, reason, monkeypatch, capsys):
    monkeypatch.setenv("SHOPIFY_ADMIN_TOKEN", DEFAULT_TOKEN)
    monkeypatch.delenv("SHOPIFY_ADMIN_API_URL", raising=False)
    status = main(["reconcile", *options, "--since", "2025-06-01", "--table", "t", "--dlq-url", "q",
                   "--ad-account", AD_ACCOUNT])
    out, err = capsys.readouterr()
    assert status == 2 and out == "" and err.count("\n") == 1 and reason in err


def test_the_settings_of_the_daily_function_refuse_plain_http_unless_told():
    from pinrelay.config import ReconcileSettings

    env = {"PINTEREST_AD_ACCOUNT_ID": AD_ACCOUNT, "DEDUP_TABLE_NAME": "t", "DEAD_LETTER_QUEUE_URL": "q",
           "SHOPIFY_SHOP_DOMAIN": DEFAULT_SHOP, "SHOPIFY_ADMIN_TOKEN": DEFAULT_TOKEN}
    with pytest.raises(ValueError, match="SHOPIFY_ADMIN_API_URL must be https://.*ALLOW_LOOPBACK_HTTP"):
        ReconcileSettings.from_env(env | {"SHOPIFY_ADMIN_API_URL": "http://127.0.0.1:9"})
    with pytest.raises(ValueError, match="SHOPIFY_SHOP_DOMAIN must be the shop's myshopify.com domain"):
        ReconcileSettings.from_env(env | {"SHOPIFY_SHOP_DOMAIN": "shop.example.com"})
    allowed = ReconcileSettings.from_env(env | {"SHOPIFY_ADMIN_API_URL": "http://127.0.0.1:9", "ALLOW_LOOPBACK_HTTP": "true"})
    assert allowed.shopify_admin_api_url == "http://127.0.0.1:9"


# -- what it sends that is not text --------------------------------------------------------------


@pytest.fixture
def ledger_and_dlq(aws, dedup_table):
    return dedup_table, aws["sqs"].create_queue(QueueName=f"dlq-{time.time_ns()}")["QueueUrl"]


def test_a_lone_surrogate_in_an_order_name_is_shown_not_crashed_on(ledger_and_dlq, monkeypatch, tmp_path, capsys):
    """JSON may carry "\\ud800"; UTF-8 (the terminal, the report, DynamoDB) cannot. It reads as U+FFFD."""
    table, dlq = ledger_and_dlq
    missing = next(s for s in sample_orders(load_fixture(FIXTURE), time.time()) if s.kind == "missing")
    missing.body["name"] = "#10\ud80042"
    with ShopifyAdminStandIn([missing.body]) as shopify:
        monkeypatch.setenv("SHOPIFY_ADMIN_TOKEN", DEFAULT_TOKEN)
        monkeypatch.setenv("SHOPIFY_EVENT_ID_TEMPLATE", "{name}")  # the name is in the ledger key too
        report = tmp_path / "report.html"
        status = main(["reconcile", "--shop", DEFAULT_SHOP, "--shopify-api-url", shopify.base_url, "--allow-loopback-http",
                       "--since", window()[0].strftime("%Y-%m-%d"), "--table", table, "--dlq-url", dlq,
                       "--ad-account", AD_ACCOUNT, "--report", str(report)])
    out, err = capsys.readouterr()
    assert status == 1, err  # a result: the order is missing
    assert "missing (1): #10\ufffd42" in out
    assert "#10\ufffd42" in report.read_text(encoding="utf-8")


def reconcile_no_orders(table: str, dlq: str, report, url: str) -> int:
    return main(["reconcile", "--shop", DEFAULT_SHOP, "--shopify-api-url", url, "--allow-loopback-http",
                 "--since", window()[0].strftime("%Y-%m-%d"), "--table", table, "--dlq-url", dlq,
                 "--ad-account", AD_ACCOUNT, "--report", str(report)])


def test_the_report_is_never_written_through_a_symlink(ledger_and_dlq, monkeypatch, tmp_path, capsys):
    """A link planted where the report goes (a shared directory) must not make the command overwrite its target."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    report = tmp_path / "reconcile.html"
    report.symlink_to(victim)
    monkeypatch.setenv("SHOPIFY_ADMIN_TOKEN", DEFAULT_TOKEN)
    with ShopifyAdminStandIn([]) as shopify:
        assert reconcile_no_orders(*ledger_and_dlq, report, shopify.base_url) == 0, capsys.readouterr().err
    assert victim.read_text() == "precious"
    assert not report.is_symlink() and "Every order accounted for" in report.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reconcile.html", "victim.txt"]  # no temporary file left


def test_a_report_that_cannot_be_written_whole_leaves_the_last_one(ledger_and_dlq, monkeypatch, tmp_path, capsys):
    import os

    report = tmp_path / "reconcile.html"
    report.write_text("yesterday's report")
    monkeypatch.setenv("SHOPIFY_ADMIN_TOKEN", DEFAULT_TOKEN)

    def disk_full(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with ShopifyAdminStandIn([]) as shopify:
        status = reconcile_no_orders(*ledger_and_dlq, report, shopify.base_url)
    err = capsys.readouterr().err
    assert status == 2 and f"cannot write the report {report} (OSError: No space left on device)" in err
    assert report.read_text() == "yesterday's report" and [p.name for p in tmp_path.iterdir()] == ["reconcile.html"]


def test_a_crash_never_reads_as_a_result(monkeypatch, capsys):
    """Exit status 1 means "orders are missing": an unforeseen exception exits 2 (could not run)."""
    from pinrelay_cli import reconcile

    def broken(*args, **kwargs):
        raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")

    monkeypatch.setattr(reconcile, "_run", broken)
    status = main(["reconcile", "--shop", DEFAULT_SHOP, "--since", "2025-06-01"])
    err = capsys.readouterr().err
    assert status == 2
    assert "UnicodeEncodeError" in err and "pinrelay reconcile: " in err


# -- the daily function --------------------------------------------------------------------------


class LambdaContext:
    function_name = "pinrelay-ReconcileFunction"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:pinrelay-ReconcileFunction"
    aws_request_id = "reconcile-hostile"

    def __init__(self, seconds: float = 900.0) -> None:
        self.deadline = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - time.monotonic()) * 1000)


@pytest.fixture
def reconcile_function(monkeypatch, ledger_and_dlq):
    from pinrelay import config
    from pinrelay_local.stack import REPO_ROOT, import_module_from_path

    table, dlq = ledger_and_dlq

    def run(url: str, context: LambdaContext):
        env = {"PINTEREST_AD_ACCOUNT_ID": AD_ACCOUNT, "DEDUP_TABLE_NAME": table, "DEAD_LETTER_QUEUE_URL": dlq,
               "SHOPIFY_SHOP_DOMAIN": DEFAULT_SHOP, "SHOPIFY_ADMIN_TOKEN": DEFAULT_TOKEN, "SHOPIFY_ADMIN_API_URL": url,
               "ALLOW_LOOPBACK_HTTP": "true", "POWERTOOLS_SERVICE_NAME": "pinrelay",
               "POWERTOOLS_METRICS_NAMESPACE": "Pinrelay"}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        config.reconcile_settings.cache_clear()
        logging.getLogger("pinrelay").setLevel(logging.INFO)
        handler = import_module_from_path("reconcile_handler", REPO_ROOT / "functions/reconcile/reconcile_handler.py")
        try:
            return handler.lambda_handler({"source": "aws.events", "detail-type": "Scheduled Event"}, context)
        finally:
            config.reconcile_settings.cache_clear()
    return run


def test_the_daily_function_stops_on_a_cursor_that_never_moves(reconcile_function, order_node):
    page = orders_page([order_node], "c2FtZQ==")
    with HostileEndpoint(stop_after(30, lambda seen: json_reply(page))) as server:
        with pytest.raises(ShopifyAdminError, match="the same page cursor twice"):
            reconcile_function(server.url, LambdaContext())
        assert len(server.requests) == 2


def test_the_daily_function_leaves_time_for_the_ledger_and_the_queue(reconcile_function):
    """Shopify is read only while the ledger reads, the DLQ and the metrics still fit in the invocation."""
    with HostileEndpoint(lambda seen: json_reply(orders_page([], None, has_next=False))) as server:
        with pytest.raises(ShopifyAdminError, match="no time left"):
            reconcile_function(server.url, LambdaContext(seconds=100))
        assert server.requests == []
