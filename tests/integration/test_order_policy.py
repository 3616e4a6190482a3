"""Shopify orders that are not conversions (issue 12), through the real ingest and sender handlers
against moto server and the Pinterest stand-in, with the real orders/create payload signed as
Shopify signs it: the answer names the reason, EventsFiltered is written per reason, nothing is
queued; a test order reaches Pinterest with test=true in a request of its own, or is skipped."""

from __future__ import annotations

import json

import pytest

from pinrelay import config
from tests.conftest import shopify_order
from tests.integration.handler_stack import drain, post_shopify


@pytest.fixture
def policy(stack, monkeypatch):
    """Sets the order policy's variables as the template would, for the next webhook."""

    def set_policy(**variables: str) -> None:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        config.ingest_settings.cache_clear()
        stack["ingest"].shopify_options.cache_clear()

    set_policy()
    yield set_policy
    monkeypatch.undo()
    config.ingest_settings.cache_clear()
    stack["ingest"].shopify_options.cache_clear()


def queued(stack) -> list[dict]:
    sqs = stack["aws"]["sqs"]
    answer = sqs.receive_message(QueueUrl=stack["queue_url"], MaxNumberOfMessages=10, VisibilityTimeout=0)
    return [json.loads(m["Body"]) for m in answer.get("Messages", [])]


def filtered_metrics(out: str) -> list[tuple[str, str, list[float]]]:
    documents = [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"_aws"' in line]
    return [(d["source"], d["reason"], d["EventsFiltered"]) for d in documents if "EventsFiltered" in d]


@pytest.mark.parametrize(("change", "variables", "code", "reason"), [
    ({"cancelled_at": "2025-06-01T10:00:00-04:00"}, {}, "cancelled", "the order was cancelled"),
    ({"financial_status": "voided"}, {}, "voided", "the order's payment was voided"),
    ({"source_name": "shopify_draft_order"}, {}, "source_name", "created by shopify_draft_order (SHOPIFY_SKIP_SOURCE_NAMES)"),
    ({"source_name": "subscription_contract"}, {"SHOPIFY_SKIP_SOURCE_NAMES": "shopify_draft_order,subscription_contract"},
     "source_name", "created by subscription_contract (SHOPIFY_SKIP_SOURCE_NAMES)"),
    ({"tags": "VIP, Wholesale"}, {"SHOPIFY_SKIP_TAGS": "wholesale"}, "tag", "tagged wholesale (SHOPIFY_SKIP_TAGS)"),
    ({"test": True}, {"SHOPIFY_TEST_ORDERS": "skip"}, "test_order", "a test order (SHOPIFY_TEST_ORDERS=skip)"),
])
def test_an_order_that_is_not_a_sale_is_answered_with_its_reason_counted_and_never_queued(stack, now, policy, capsys,
                                                                                          change, variables, code, reason):
    policy(**variables)
    order = shopify_order(now) | change
    capsys.readouterr()
    status, body = post_shopify(stack, order)
    assert (status, body) == (200, {"message": f"not forwarded: {reason}", "filtered": code,
                                    "event_id": str(order["id"]), "ignored": True})
    assert filtered_metrics(capsys.readouterr().out) == [("shopify", code, [1.0])]
    assert queued(stack) == []


def test_the_same_order_without_the_reason_is_a_sale(stack, now, policy):
    """The control for the test above: the fixture itself is forwarded under every policy used there."""
    policy(SHOPIFY_SKIP_SOURCE_NAMES="shopify_draft_order,subscription_contract", SHOPIFY_SKIP_TAGS="wholesale",
           SHOPIFY_TEST_ORDERS="skip")
    status, body = post_shopify(stack, shopify_order(now) | {"tags": "VIP"})
    assert status == 200 and body["accepted"] == 1, body
    assert [m["event"]["event_id"] for m in queued(stack)] == [str(shopify_order(now)["id"])]


def test_a_test_order_reaches_pinterest_with_test_true_in_a_request_of_its_own(stack, now, policy):
    sale = shopify_order(now)
    test_order = sale | {"id": sale["id"] + 1, "test": True, "name": "#1002"}
    for order in (test_order, sale):
        status, body = post_shopify(stack, order)
        assert status == 200 and body["accepted"] == 1, body
    assert sorted(m.get("test", False) for m in queued(stack)) == [False, True]  # written only when true
    _, answer = drain(stack)
    assert answer == {"batchItemFailures": []}
    requests = {record["test"]: [e["event_id"] for e in record["body"]["data"]] for record in stack["standin"].received}
    assert requests == {True: [str(test_order["id"])], False: [str(sale["id"])]}
    assert all(record["status"] == 200 for record in stack["standin"].received)
