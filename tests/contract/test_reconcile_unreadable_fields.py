"""A field of a GraphQL order that cannot be read costs that field, never the order nor its page
(issue 18, finding 4): the real Shopify order in its GraphQL shape (the stand-in's converter),
altered in one field, is still read and maps as its webhook did, less that field."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

import pytest
from pinrelay.sources.shopify import order_to_event
from pinrelay.sources.shopify_graphql import LineItem, Order, OrdersData
from pinrelay_local.shopify_admin_standin import graphql_line_item, graphql_order

from tests.conftest import load_fixture

FIXTURE = "shopify/shopify_orders_create_shopifyappjs-rest-2025-10.json"


def rest_order() -> dict[str, Any]:
    rest = load_fixture(FIXTURE)
    rest["landing_site"] = "https://shop.example/products/ipod?epik=from-the-landing-page"
    return rest


def mapped(node: dict[str, Any], line_nodes: list[dict[str, Any]], now: int) -> dict[str, Any]:
    page = OrdersData.model_validate({"orders": {"pageInfo": {"hasNextPage": False}, "nodes": [node]}})
    (order,) = page.orders.nodes
    return order_to_event(order.webhook_body([LineItem.model_validate(item) for item in line_nodes]), now=now).event


CASES = [  # (the GraphQL field path, its unreadable value, the event fields it may cost)
    ("customerJourneySummary.lastVisit.landingPage", 5, []),  # the first visit's landing page is used
    ("customerJourneySummary", "a journey", ["user_data.click_id"]),
    ("subtotalPriceSet.shopMoney", ["597.0"], ["custom_data.value"]),
    ("tags", "a, b", []),
    ("customAttributes", {"key": "_epik"}, []),
    ("cancelledAt", "the day before yesterday", []),
    ("customer.defaultAddress", "Ottawa", ["user_data"]),
    ("billingAddress.zip", 12345, ["user_data.zp"]),
    ("test", "maybe", []),
]


def altered(node: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    node = copy.deepcopy(node)
    *parents, last = path.split(".")
    target = node
    for part in parents:
        target = target[part]
    target[last] = value
    return node


@pytest.mark.parametrize("path, value, lost", CASES, ids=[case[0] for case in CASES])
def test_a_graphql_order_with_one_unreadable_field_is_read_and_loses_that_field_only(path, value, lost):
    rest = rest_order()
    now = int(datetime.fromisoformat(rest["created_at"]).timestamp())
    lines = [graphql_line_item(item) for item in rest["line_items"]]
    whole = mapped(graphql_order(rest), lines, now)
    part = mapped(altered(graphql_order(rest), path, value), lines, now)
    for field in lost:
        section, _, name = field.partition(".")
        (part[section].pop(name, None), whole[section].pop(name, None)) if name else (part.pop(section), whole.pop(section))
    assert part == whole


def test_a_line_items_unreadable_quantity_costs_num_items_not_the_order():
    rest = rest_order()
    now = int(datetime.fromisoformat(rest["created_at"]).timestamp())
    lines = [graphql_line_item(item) for item in rest["line_items"]]
    lines[0]["quantity"] = "two"
    event = mapped(graphql_order(rest), lines, now)
    assert event["custom_data"]["value"] == "597.00" and len(event["custom_data"]["contents"]) == 3


def test_the_fields_that_place_an_order_are_still_required():
    node = graphql_order(rest_order())
    for field in ("id", "name", "createdAt"):
        with pytest.raises(ValueError):
            Order.model_validate(altered(node, field, ["unreadable"]))
