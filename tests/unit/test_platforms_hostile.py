"""Signed bodies and fetched orders with any field replaced by any JSON value (hypothesis): the
Stripe and BigCommerce mappings answer (an event, a filtered order or a rejection with its
reason), never raise, so a signed but malformed body is answered 200 and never retried forever."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinrelay.events import EventFiltered, EventRejected, PreparedEvent
from pinrelay.sources import bigcommerce, stripe

REPO = Path(__file__).resolve().parents[2]
STRIPE_EVENT = json.loads((REPO / "events" / "webhooks" / "stripe_checkout_session_completed_stripe-ruby-mock.json").read_text())
EXAMPLES = json.loads((REPO / "local" / "pinrelay_local" / "bigcommerce" / "orders.v2-examples.json").read_text())
BIGCOMMERCE = {"order": EXAMPLES["order_Resp"]["Multiple Items"], "products": EXAMPLES["orderProductsCollection_Resp"],
               "shipping_addresses": EXAMPLES["orderShippingAddressCollection_Resp"]}

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                           lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children,
                                                                                              max_size=3), max_leaves=8)
odd_values = st.one_of(json_values, st.sampled_from([10**30, -1, 0, "", "NaN", "1e309", "\u202e", [], {}, True]))


def paths(document, prefix=()):
    yield list(prefix)
    if isinstance(document, dict):
        for key, value in document.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from paths(value, (*prefix, index))


def mangled(document, data):
    document = copy.deepcopy(document)
    candidates = [p for p in paths(document) if p]
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(candidates))
        target = document
        try:
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = data.draw(odd_values)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier replacement removed this path
    return document


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_a_mangled_stripe_event_is_answered_never_raised(data):
    now = int(time.time())
    event = mangled({**STRIPE_EVENT, "created": now}, data)
    found = stripe.read_event(event)
    if not isinstance(found, stripe.StripeCheckout):
        assert found is None or isinstance(found, EventRejected)
        return
    options = stripe.StripeOptions()
    skip = stripe.reason_to_skip(found, now, options)
    items = data.draw(st.lists(odd_values | st.just(copy.deepcopy(EXAMPLES)), max_size=2))
    mapped = stripe.stripe_event(found, now=now, options=options,
                                 line_items=[i for i in items if isinstance(i, dict)])
    assert skip is None or isinstance(skip, EventFiltered)
    assert isinstance(mapped, (PreparedEvent, EventRejected))
    if isinstance(mapped, PreparedEvent):
        json.dumps(mapped.event)  # what is queued is JSON


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_a_mangled_bigcommerce_order_is_answered_never_raised(data):
    now = int(time.time())
    bundle = mangled({**BIGCOMMERCE, "order": {**BIGCOMMERCE["order"], "date_created": time.strftime(
        "%a, %d %b %Y %H:%M:%S +0000", time.gmtime(now))}}, data)
    products = bundle.get("products") if isinstance(bundle.get("products"), list) else []
    addresses = bundle.get("shipping_addresses") if isinstance(bundle.get("shipping_addresses"), list) else []
    found = bigcommerce.bigcommerce_event(bundle.get("order"), products, addresses, store="abc123", now=now)
    assert isinstance(found, (PreparedEvent, EventRejected, EventFiltered))
    if isinstance(found, PreparedEvent):
        json.dumps(found.event)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_a_mangled_bigcommerce_webhook_is_answered_never_raised(data):
    notice = json.loads((REPO / "events" / "webhooks" / "bigcommerce_store_order_statusUpdated_bcdocs.json").read_text())
    found = bigcommerce.read_webhook(mangled({**notice, "producer": "stores/abc123"}, data))
    assert found is None or isinstance(found, (bigcommerce.OrderNotice, EventRejected))
