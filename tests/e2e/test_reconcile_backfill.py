"""pinrelay reconcile --backfill through the whole local stack: the missing orders are posted to the
ingest as signed orders/create webhooks, the real ingest and sender handlers carry them to the
Pinterest stand-in, and they arrive there once, however often the backfill runs."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime

import pytest

from pinrelay_cli.main import main
from pinrelay_local.shopify_admin_standin import DEFAULT_SHOP, DEFAULT_TOKEN, ShopifyAdminStandIn, sample_orders
from pinrelay_local.stack import LocalStack
from tests.conftest import load_fixture

pytestmark = pytest.mark.e2e

FIXTURE = "shopify/shopify_orders_create_shopifyappjs-rest-2025-10.json"
KINDS = ("delivered", "missing", "missing_days_ago", "too_old", "cancelled")


def test_backfill_sends_the_missing_orders_once_even_when_run_twice(monkeypatch, tmp_path, capsys):
    now = time.time()
    samples = {s.kind: s for s in sample_orders(load_fixture(FIXTURE), now) if s.kind in KINDS}
    with LocalStack(port=0, sender_window_s=0.2) as stack, \
            ShopifyAdminStandIn([s.body for s in samples.values()]) as shopify:
        stack.dedup_table.put_item(Item={"pk": f"{stack.ad_account_id}#checkout#{samples['delivered'].order_id}",
                                         "state": "delivered", "expires_at": int(now) + 605100})
        monkeypatch.setenv("SHOPIFY_ADMIN_TOKEN", DEFAULT_TOKEN)
        monkeypatch.setenv("SHOPIFY_ADMIN_API_URL", shopify.base_url)
        monkeypatch.setenv("SHOPIFY_WEBHOOK_SECRET", stack.shopify_webhook_secret)
        since = datetime.fromtimestamp(now - 10 * 86400, UTC).strftime("%Y-%m-%d")
        command = ["reconcile", "--shop", DEFAULT_SHOP, "--allow-loopback-http", "--since", since, "--table", stack.table_name,
                   "--dlq-url", stack.dlq_url, "--ad-account", stack.ad_account_id, "--url", stack.url]

        # two backfills one after the other, before the sender has delivered anything of the first
        first = main([*command, "--backfill", "--report", str(tmp_path / "first.html")])
        second = main([*command, "--backfill", "--report", str(tmp_path / "second.html")])
        out = capsys.readouterr().out
        assert (first, second) == (1, 1)  # the 9-day-old order stays missing: Pinterest refuses it
        for kind in ("missing", "missing_days_ago"):
            assert f"backfill {samples[kind].name}: queued" in out
        assert f"backfill {samples['too_old'].name}: not sent, older than 7 days" in out
        assert f"backfill {samples['cancelled'].name}" not in out  # filtered: not a conversion
        assert stack.wait_until_drained(timeout=20)

        delivered = Counter(event["event_id"] for event in stack.standin.delivered_events())
        assert delivered == {samples["missing"].order_id: 1, samples["missing_days_ago"].order_id: 1}
        event = next(e for e in stack.standin.delivered_events() if e["event_id"] == samples["missing"].order_id)
        assert event["custom_data"]["value"] == "597.00" and event["custom_data"]["num_items"] == 3  # every line item

        # now the ledger knows them: a third run finds them delivered and sends nothing
        third = main([*command, "--backfill", "--report", str(tmp_path / "third.html")])
        out = capsys.readouterr().out
        assert third == 1 and "backfill #" + samples["missing"].name[1:] not in out
        assert "total       delivered 3" in out and "missing 1" in out
        assert len(stack.standin.delivered_events()) == 2
