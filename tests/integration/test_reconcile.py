"""pinrelay reconcile against real servers: the Shopify Admin stand-in (a real HTTP server speaking
GraphQL, with cursors, the cost extension and THROTTLED answers) and moto server (the ledger table
with an item in each state, a dead-letter queue with a message)."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime

import pytest
from pinrelay.adapters.dead_letters import SqsDeadLetters
from pinrelay.adapters.reconcile_wiring import mapping_rules, reconcile_shop
from pinrelay.adapters.shopify_admin import ShopifyAdminClient, ShopifyAdminError
from pinrelay.config import ShopifyMapping
from pinrelay.reconcile import OrderClass
from pinrelay_cli.main import main
from pinrelay_local.shopify_admin_standin import DEFAULT_SHOP, DEFAULT_TOKEN, ShopifyAdminStandIn, sample_orders

from tests.conftest import load_fixture
from tests.reconcile_samples import EXPECTED, LEDGER_STATES

AD_ACCOUNT = "549755885175"
FIXTURE = "shopify/shopify_orders_create_shopifyappjs-rest-2025-10.json"
PERSONAL = ("bob.norman", "Norman", "Chestnut", "Louisville", "40202", "+557734881234", "6136120707", "207119551")

def ledger_key(sample) -> str:
    """The ledger key ingest gave the sample's order: point-of-sale orders are offline events, keyed apart."""
    offline = "offline#" if sample.body.get("source_name") == "pos" else ""
    return f"{AD_ACCOUNT}#{offline}checkout#{sample.order_id}"


@pytest.fixture
def now() -> float:
    return time.time()


@pytest.fixture
def samples(now):
    return {sample.kind: sample for sample in sample_orders(load_fixture(FIXTURE), now)}


@pytest.fixture
def shopify(samples):
    with ShopifyAdminStandIn([sample.body for sample in samples.values()]) as standin:
        yield standin


@pytest.fixture
def dead_letter_queue(aws):
    return aws["sqs"].create_queue(QueueName=f"dlq-{time.time_ns()}")["QueueUrl"]


@pytest.fixture
def ledger(aws, dedup_table, samples, now, dead_letter_queue):
    for kind, state in LEDGER_STATES.items():
        item = {"pk": {"S": ledger_key(samples[kind])}, "state": {"S": state},
                "updated_at": {"N": str(int(now))}, "expires_at": {"N": str(int(now) + 605100)}}
        if state == "rejected":
            item["error_message"] = {"S": "Invalid event_timestamp parameter. Given timestamp is in the past."}
        aws["dynamodb"].put_item(TableName=dedup_table, Item=item)
    message = {"v": 1, "ad_account_id": AD_ACCOUNT, "source": "shopify",
               "dedup_key": ledger_key(samples["dead_letter"]), "accepted_at": int(now),
               "event": {"event_name": "checkout", "event_id": samples["dead_letter"].order_id}}
    aws["sqs"].send_message(QueueUrl=dead_letter_queue, MessageBody=json.dumps(message))
    aws["sqs"].send_message(QueueUrl=dead_letter_queue, MessageBody="not a queued event")
    return dedup_table


@pytest.fixture
def shopify_env(monkeypatch, shopify):
    monkeypatch.setenv("SHOPIFY_ADMIN_TOKEN", DEFAULT_TOKEN)
    monkeypatch.setenv("SHOPIFY_ADMIN_API_URL", shopify.base_url)
    monkeypatch.setenv("SHOPIFY_TEST_ORDERS", "skip")
    monkeypatch.setenv("SHOPIFY_SKIP_TAGS", "wholesale")
    for name in ("SHOPIFY_EVENT_ID_TEMPLATE", "SHOPIFY_CONTENT_ID_FIELD", "SHOPIFY_SKIP_SOURCE_NAMES"):
        monkeypatch.delenv(name, raising=False)


def window(now: float) -> tuple[datetime, datetime]:
    return datetime.fromtimestamp(now - 10 * 86400, UTC), datetime.fromtimestamp(now + 60, UTC)


def test_every_order_is_classified_against_the_ledger_and_the_dead_letter_queue(aws, ledger, dead_letter_queue, shopify,
                                                                                 samples, now):
    admin = ShopifyAdminClient(DEFAULT_SHOP, DEFAULT_TOKEN, base_url=shopify.base_url, allow_loopback_http=True)
    since, until = window(now)
    rules = mapping_rules(ShopifyMapping(shopify_test_orders="skip", shopify_skip_tags="wholesale"))
    report = reconcile_shop(admin, dynamodb=aws["dynamodb"], table_name=ledger, sqs=aws["sqs"],
                            dead_letter_queue_url=dead_letter_queue, since=since, until=until, ad_account_id=AD_ACCOUNT,
                            rules=rules)
    by_name = {verdict.name: verdict for verdict in report.verdicts}
    assert {kind: by_name[sample.name].order_class for kind, sample in samples.items()} == EXPECTED
    assert by_name[samples["rejected_by_pinterest"].name].detail.startswith("Invalid event_timestamp")
    assert report.dead_letter_messages == 1
    # the dead-letter queue still holds both messages, visible again
    attributes = aws["sqs"].get_queue_attributes(QueueUrl=dead_letter_queue, AttributeNames=["ApproximateNumberOfMessages"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "2"


def test_the_command_prints_counts_and_names_and_writes_the_report(ledger, dead_letter_queue, shopify_env, samples, now,
                                                                   tmp_path, capsys):
    since = datetime.fromtimestamp(now - 10 * 86400, UTC).strftime("%Y-%m-%d")
    report = tmp_path / "reconcile.html"
    status = main(["reconcile", "--shop", DEFAULT_SHOP, "--allow-loopback-http", "--since", since, "--table", ledger,
                   "--dlq-url", dead_letter_queue, "--ad-account", AD_ACCOUNT, "--report", str(report)])
    out, err = capsys.readouterr()
    assert status == 1, err  # orders are missing
    names = [samples[kind].name for kind in ("too_old", "missing_days_ago", "missing")]
    assert f"missing (3): {' '.join(names)}" in out
    assert f"rejected by Pinterest: {samples['rejected_by_pinterest'].name}: Invalid event_timestamp" in out
    assert f"rejected at ingest: {samples['no_identifier'].name}: user_data: no identifier" in out
    assert f"in the DLQ (1): {samples['dead_letter'].name}" in out
    assert ("total       delivered 1  rejected by Pinterest 1  uncertain 1  not sent 0  not sent: consent 0  in the DLQ 1  "
            "in flight 1  filtered 5") in out
    html = report.read_text()
    for text in (out, html):
        assert not [value for value in PERSONAL if value in text], "personal data in the output"
    assert f'<tr data-order="{samples["missing"].name}">' in html


def test_the_orders_come_in_pages_with_cursors(shopify, samples, now):
    admin = ShopifyAdminClient(DEFAULT_SHOP, DEFAULT_TOKEN, base_url=shopify.base_url, allow_loopback_http=True, page_size=4)
    orders = list(admin.orders(*window(now)))
    assert sorted(o.name for o in orders) == sorted(s.name for s in samples.values())
    assert [o.created_at for o in orders] == sorted(o.created_at for o in orders)
    pages = [r["variables"] for r in shopify.requests if r["operation"] == "ReconcileOrders"]
    assert len(pages) == 4 and pages[0]["after"] is None and all(page["after"] for page in pages[1:])
    assert len({page["after"] for page in pages}) == 4
    # a narrower window: only the orders created in it
    since = datetime.fromtimestamp(now - 2.5 * 3600, UTC)
    recent = {o.name for o in admin.orders(since, datetime.fromtimestamp(now + 60, UTC))}
    assert recent == {s.name for s in samples.values()
                      if datetime.fromisoformat(s.body["created_at"]).timestamp() >= since.timestamp()}
    assert len(recent) == 3


def test_throttling_is_waited_out_as_the_cost_extension_says(samples, now):
    """The bucket holds 200 points and refills at 400 a second; a page of 10 orders costs 142.
    Another app emptied the bucket: the first query is THROTTLED, the client waits what the cost
    needs; afterwards it waits before each page instead of being throttled again."""
    with ShopifyAdminStandIn([s.body for s in samples.values()], maximum_available=200, restore_rate=400) as standin:
        standin.drain()
        admin = ShopifyAdminClient(DEFAULT_SHOP, DEFAULT_TOKEN, base_url=standin.base_url, allow_loopback_http=True, page_size=10)
        orders = list(admin.orders(*window(now)))
        assert len(orders) == len(samples)
        assert len(standin.throttled) == 1 and admin.throttled == 1
        (record,) = standin.throttled
        assert record.needed_seconds > 0.3
        assert record.waited_seconds >= record.needed_seconds  # the stand-in timed the client's wait
        assert standin.operations("ok") == ["ReconcileOrders", "ReconcileOrders"]
        assert admin.waited_seconds >= record.needed_seconds + 0.2  # and waited for the second page's cost too


def test_a_query_too_big_for_the_bucket_and_a_bad_token_stop_with_one_line(samples, now, shopify_env, ledger,
                                                                           dead_letter_queue, monkeypatch, capsys):
    with ShopifyAdminStandIn([s.body for s in samples.values()], maximum_available=100) as standin:
        admin = ShopifyAdminClient(DEFAULT_SHOP, DEFAULT_TOKEN, base_url=standin.base_url, allow_loopback_http=True)
        with pytest.raises(ShopifyAdminError, match="MAX_COST_EXCEEDED"):
            list(admin.orders(*window(now)))
    monkeypatch.setenv("SHOPIFY_ADMIN_TOKEN", "shpat_wrong")
    status = main(["reconcile", "--shop", DEFAULT_SHOP, "--allow-loopback-http", "--since", "2025-06-01", "--table", ledger,
                   "--dlq-url", dead_letter_queue, "--ad-account", AD_ACCOUNT])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and "Shopify refused the Admin API token" in err and "(401)" in err
    assert "shpat_wrong" not in err


def test_the_dead_letter_queue_is_read_without_deleting(aws, dead_letter_queue):
    for n in range(23):
        aws["sqs"].send_message(QueueUrl=dead_letter_queue, MessageBody=json.dumps({"dedup_key": f"1#checkout#{n}"}))
    peek = SqsDeadLetters(aws["sqs"], dead_letter_queue)
    assert peek.dedup_keys() == {f"1#checkout#{n}" for n in range(23)}
    assert peek.messages == 23
    assert SqsDeadLetters(aws["sqs"], dead_letter_queue).dedup_keys() == peek.dedup_keys()  # all visible again


def test_since_must_come_before_until(capsys):
    assert main(["reconcile", "--shop", DEFAULT_SHOP, "--since", "2025-06-02", "--until", "2025-06-01",
                 "--table", "t", "--dlq-url", "q", "--ad-account", AD_ACCOUNT]) == 2
    assert "--since must be before --until" in capsys.readouterr().err


class LambdaContext:
    function_name = "pinrelay-ReconcileFunction"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:pinrelay-ReconcileFunction"
    aws_request_id = "reconcile-test"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 900_000


def test_the_daily_function_publishes_the_classes_as_metrics(aws, ledger, dead_letter_queue, shopify, samples, monkeypatch,
                                                             capsys, caplog):
    from pinrelay import config
    from pinrelay_local.stack import REPO_ROOT, import_module_from_path

    env = {"PINTEREST_AD_ACCOUNT_ID": AD_ACCOUNT, "DEDUP_TABLE_NAME": ledger, "DEAD_LETTER_QUEUE_URL": dead_letter_queue,
           "SHOPIFY_SHOP_DOMAIN": DEFAULT_SHOP, "SHOPIFY_ADMIN_TOKEN": DEFAULT_TOKEN,
           "SHOPIFY_ADMIN_API_URL": shopify.base_url, "ALLOW_LOOPBACK_HTTP": "true", "SHOPIFY_TEST_ORDERS": "skip", "SHOPIFY_SKIP_TAGS": "wholesale",
           "POWERTOOLS_SERVICE_NAME": "pinrelay", "POWERTOOLS_METRICS_NAMESPACE": "Pinrelay",
           "POWERTOOLS_METRICS_DISABLED": "false"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config.reconcile_settings.cache_clear()
    # the 'pinrelay' logger is configured once per process (as in Lambda), possibly by an earlier test
    # with another level and stream: read its records through caplog, at INFO
    caplog.set_level(logging.INFO, logger="pinrelay")
    handler = import_module_from_path("reconcile_handler", REPO_ROOT / "functions/reconcile/reconcile_handler.py")
    try:
        answer = handler.lambda_handler({"source": "aws.events", "detail-type": "Scheduled Event"}, LambdaContext())
    finally:
        config.reconcile_settings.cache_clear()
    out = capsys.readouterr().out
    documents = [json.loads(line) for line in out.splitlines() if line.startswith("{") and "_aws" in line]
    (metrics,) = documents
    assert metrics["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Pinrelay"
    assert metrics["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]] and metrics["service"] == "pinrelay"
    # always inside "yesterday and today so far": the 2-hour-old missing order, the 2-minute-old queued one,
    # the order in the DLQ (5 h), the one in flight (20 min); never: those of 3 and 9 days ago
    assert (metrics["OrdersMissing"], metrics["OrdersQueued"], metrics["OrdersInDeadLetterQueue"],
            metrics["OrdersInFlight"]) == ([1.0], [1.0], [1.0], [1.0])
    assert {name for name in metrics if name.startswith("Orders")} == {c.metric_name for c in OrderClass}
    assert answer["counts"]["missing"] == 1
    (reconciled,) = [record for record in caplog.records if record.getMessage() == "reconciled"]
    assert reconciled.missing == [samples["missing"].name]
    assert not [value for value in PERSONAL if value in out or value in caplog.text]
