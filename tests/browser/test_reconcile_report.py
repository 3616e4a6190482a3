"""The HTML report of pinrelay reconcile, opened in headless Chromium: self-contained (no request
leaves 127.0.0.1, no script), its SVG chart has two bars per day whose heights follow the counts,
and its numbers agree with the reconciliation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pinrelay.events import dedup_key
from pinrelay.reconcile import OrderClass, ShopOrder, reconcile
from pinrelay.sources.shopify import OrderPolicy, ShopifyOptions
from pinrelay_cli.reconcile_report import CHART_HEIGHT, render_html
from pinrelay_local.shopify_admin_standin import sample_orders
from tests.conftest import load_fixture

NOW = 1_750_000_000
AD_ACCOUNT = "549755885175"
PERSONAL = ("bob.norman", "Norman", "Chestnut", "Louisville", "40202", "+557734881234", "207119551")


class Shop:
    def __init__(self, orders: list[ShopOrder]):
        self._orders = sorted(orders, key=lambda o: o.created_at)

    def orders(self, since, until):
        return iter(o for o in self._orders if since.timestamp() <= o.created_at < until.timestamp())


class Ledger:
    def __init__(self, items: dict[str, dict[str, Any]]):
        self.items = items

    def states(self, keys):
        return {key: self.items[key] for key in keys if key in self.items}


class DeadLetters:
    def __init__(self, keys: set[str]):
        self.keys = keys

    def dedup_keys(self):
        return self.keys


def report():
    samples = sample_orders(load_fixture("shopify/shopify_orders_create_shopifyappjs-rest-2025-10.json"), NOW)
    orders = {s.kind: ShopOrder(s.order_id, s.name, int(datetime.fromisoformat(s.body["created_at"]).timestamp()), s.body)
              for s in samples}
    key = {kind: dedup_key(AD_ACCOUNT, "checkout", order.order_id, order.webhook_body.get("source_name") == "pos")
           for kind, order in orders.items()}  # a point-of-sale order is an offline event: keyed apart
    ledger = Ledger({key["delivered"]: {"state": "delivered"}, key["in_flight"]: {"state": "sending"},
                     key["uncertain"]: {"state": "uncertain"},
                     key["rejected_by_pinterest"]: {"state": "rejected", "error_message": "Invalid <b>event_time</b>"}})
    return reconcile(Shop(list(orders.values())), ledger, DeadLetters({key["dead_letter"]}), shop="pinrelay-dev.myshopify.com",
                     since=datetime.fromtimestamp(NOW - 10 * 86400, UTC), until=datetime.fromtimestamp(NOW, UTC),
                     ad_account_id=AD_ACCOUNT, rules=ShopifyOptions(policy=OrderPolicy(test_orders="skip", skip_tags=frozenset({"wholesale"}))),
                     clock=lambda: NOW)


def test_the_report_shows_a_bar_per_day_and_class_and_its_numbers(page, shop, network, tmp_path):
    result = report()
    html = render_html(result, backfill_note="--backfill queued 2 missing order(s) again")
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    shop.pages["/reconcile.html"] = html
    page.goto(f"{shop.base_url}/reconcile.html")
    page.screenshot(path=str(tmp_path / "reconcile-report.png"), full_page=True)

    bars = page.eval_on_selector_all("#per-day-chart rect.bar", """els => els.map(e => ({
        day: e.dataset.day, kind: e.classList.contains('delivered') ? 'delivered' : 'not delivered',
        count: Number(e.dataset.count), height: e.getBoundingClientRect().height}))""")
    counts = result.counts_by_day()
    assert len(bars) == 2 * len(counts) == 2 * 11  # two bars for every day of the window, empty days too
    expected = {(str(day), "delivered"): c[OrderClass.DELIVERED] for day, c in counts.items()} | {
        (str(day), "not delivered"): sum(n for cls, n in c.items() if cls.is_conversion_not_delivered)
        for day, c in counts.items()}
    assert {(b["day"], b["kind"]): b["count"] for b in bars} == expected
    highest = max(b["count"] for b in bars)
    for bar in bars:  # heights follow the counts; the highest fills the chart
        assert abs(bar["height"] - CHART_HEIGHT * bar["count"] / highest) < 1.0

    cards = page.eval_on_selector_all("#totals .card", "els => Object.fromEntries(els.map(e => [e.dataset.class, "
                                                        "Number(e.querySelector('.count').textContent)]))")
    totals = result.totals()
    assert cards == {"all": len(result.verdicts)} | {cls.value: totals[cls] for cls in OrderClass}
    assert cards["missing"] == 3 and cards["in_dead_letter_queue"] == 1

    table_total = page.eval_on_selector_all('#per-day tfoot td', "els => els.map(e => [e.dataset.class, Number(e.textContent)])")
    assert dict(table_total) == {"all": len(result.verdicts)} | {cls.value: totals[cls] for cls in OrderClass}
    missing = page.eval_on_selector_all("#missing tbody tr", "els => els.map(e => e.dataset.order)")
    assert missing == [v.name for v in sorted(result.of_class(OrderClass.MISSING), key=lambda v: v.created_at)]
    rejected_text = page.inner_text("#rejected")
    assert "Invalid <b>event_time</b>" in rejected_text  # Pinterest's message, shown as text, not markup
    text = page.inner_text("body")
    assert not [value for value in PERSONAL if value in text] and not [v for v in PERSONAL if v in html]
    assert not [m for m in page.console_messages if m.startswith("pageerror")]
    assert network.outside == []
