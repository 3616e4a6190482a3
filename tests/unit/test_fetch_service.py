"""The BigCommerce fetcher's work (pinrelay.fetch), with in-memory stores and queue: each job ends
queued, filtered, rejected, or back on its queue (retry) when the store or the queue failed it."""

from __future__ import annotations

import copy
import json
import time
from email.utils import format_datetime
from datetime import UTC, datetime
from pathlib import Path

from pinrelay.fetch import BigCommerceFetchService, StoreNotConfigured
from pinrelay.ingest import IngestService
from pinrelay.ports import FetchedOrder, OrderUnavailable
from pinrelay.sources.bigcommerce import BigCommerceOptions, OrderNotice, fetch_job_body

from tests.fakes import ListQueue

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = json.loads((REPO / "local" / "pinrelay_local" / "bigcommerce" / "orders.v2-examples.json").read_text())
AD_ACCOUNT = "549755885175"


def paid_order(order_id: int, status_id: int = 11) -> FetchedOrder:
    order = copy.deepcopy(EXAMPLES["order_Resp"]["Multiple Items"])
    order.update(id=order_id, status_id=status_id, date_created=format_datetime(datetime.fromtimestamp(time.time(), UTC)))
    return FetchedOrder(order, copy.deepcopy(EXAMPLES["orderProductsCollection_Resp"]),
                        copy.deepcopy(EXAMPLES["orderShippingAddressCollection_Resp"]))


class FakeStore:
    def __init__(self, orders: dict[int, FetchedOrder | Exception]) -> None:
        self.orders = orders
        self.fetched: list[int] = []

    def fetch(self, order_id, time_left):
        self.fetched.append(order_id)
        found = self.orders.get(order_id)
        if isinstance(found, Exception):
            raise found
        return found


def job(order_id: int, store: str = "abc123", ad_account: str = AD_ACCOUNT) -> str:
    return fetch_job_body(OrderNotice("store/order/created", store, order_id, "h"), ad_account, int(time.time()))


def service(stores: dict[str, FakeStore], queue: ListQueue | None = None, **kw) -> tuple[BigCommerceFetchService, ListQueue]:
    queue = queue or ListQueue()
    ingest = IngestService(ad_account_id=AD_ACCOUNT, queue=queue, clock=time.time)

    def store_for(store_hash: str) -> FakeStore:
        if store_hash not in stores:
            raise StoreNotConfigured(f"no API token for BigCommerce store {store_hash}")
        return stores[store_hash]

    return BigCommerceFetchService(stores=store_for, ingest=ingest, options=BigCommerceOptions(),
                                   fetch_worst_seconds=kw.get("fetch_worst", 57.0), queue_worst_seconds=12.0), queue


def queued_events(queue: ListQueue) -> list[dict]:
    return [json.loads(body) for body in queue.bodies]


def test_a_paid_order_is_queued_as_ingest_queues_an_event():
    store = FakeStore({250: paid_order(250)})
    fetcher, queue = service({"abc123": store})
    (outcome,) = fetcher.process([("m1", job(250))], time_left=lambda: 90)
    assert (outcome.status, outcome.event_id) == ("queued", "abc123-250")
    (message,) = queued_events(queue)
    assert message["source"] == "bigcommerce" and message["ad_account_id"] == AD_ACCOUNT
    assert message["dedup_key"] == f"{AD_ACCOUNT}#checkout#abc123-250"
    assert "janedoe" not in json.dumps(message)  # hashed, never raw


def test_an_unpaid_order_is_filtered_and_a_deleted_one_is_done_with():
    store = FakeStore({218: paid_order(218, status_id=7)})
    fetcher, queue = service({"abc123": store})
    unpaid, gone = fetcher.process([("m1", job(218)), ("m2", job(404))], time_left=lambda: 90)
    assert (unpaid.status, unpaid.code) == ("filtered", "unpaid")
    assert (gone.status, gone.code) == ("filtered", "order_not_found")
    assert queue.bodies == []


def test_a_store_that_did_not_answer_or_has_no_token_sends_the_job_back():
    store = FakeStore({250: OrderUnavailable("BigCommerce store abc123 did not answer (HTTP 503)")})
    fetcher, queue = service({"abc123": store})
    down, unknown = fetcher.process([("m1", job(250)), ("m2", job(1, store="zzz9"))], time_left=lambda: 90)
    assert (down.status, down.reason) == ("retry", "BigCommerce store abc123 did not answer (HTTP 503)")
    assert unknown.status == "retry" and "zzz9" in unknown.reason
    assert queue.bodies == []


def test_a_batch_looks_each_store_up_once_not_once_a_job():
    # ten threads asking at once on a cold cache would read the store's token ten times
    asked: list[str] = []
    stores = {"abc123": FakeStore({n: paid_order(n) for n in range(1, 11)})}
    fetcher, queue = service(stores)
    store_for = fetcher.stores
    fetcher.stores = lambda store_hash: (asked.append(store_hash), store_for(store_hash))[1]
    outcomes = fetcher.process([(f"m{n}", job(n)) for n in range(1, 11)] + [("m11", job(1, store="zzz9"))],
                               time_left=lambda: 90)
    assert sorted(asked) == ["abc123", "zzz9"]
    assert [o.status for o in outcomes] == ["queued"] * 10 + ["retry"] and len(queue.bodies) == 10


def test_no_fetch_is_started_that_could_outlive_the_invocation():
    store = FakeStore({250: paid_order(250)})
    fetcher, queue = service({"abc123": store})
    (outcome,) = fetcher.process([("m1", job(250))], time_left=lambda: 57.0 + 12.0)  # no margin left
    assert outcome.status == "retry" and store.fetched == []


def test_when_the_events_queue_does_not_take_the_event_the_job_goes_back():
    fetcher, _ = service({"abc123": FakeStore({250: paid_order(250)})}, ListQueue(fail_positions={0}))
    (outcome,) = fetcher.process([("m1", job(250))], time_left=lambda: 90)
    assert outcome.status == "retry" and outcome.reason == "ServiceUnavailable"


def test_two_jobs_of_one_order_in_a_batch_queue_it_once_and_both_are_done():
    fetcher, queue = service({"abc123": FakeStore({250: paid_order(250)})})
    outcomes = fetcher.process([("m1", job(250)), ("m2", job(250))], time_left=lambda: 90)
    assert [o.status for o in outcomes] == ["queued", "queued"] and len(queue.bodies) == 1


def test_jobs_of_different_ad_accounts_are_queued_each_to_its_own():
    fetcher, queue = service({"abc123": FakeStore({250: paid_order(250)}), "def456": FakeStore({250: paid_order(250)})})
    fetcher.process([("m1", job(250)), ("m2", job(250, store="def456", ad_account="111222333"))], time_left=lambda: 90)
    assert sorted((m["ad_account_id"], m["event"]["event_id"]) for m in queued_events(queue)) == [
        ("111222333", "def456-250"), (AD_ACCOUNT, "abc123-250")]


def test_an_unreadable_job_goes_back_to_reach_the_dead_letter_queue():
    fetcher, queue = service({})
    (outcome,) = fetcher.process([("m1", '{"store_hash": "abc", "order_id": "x"}')], time_left=lambda: 90)
    assert outcome.status == "retry" and outcome.reason == "unreadable fetch job"


def test_an_order_that_cannot_be_sent_is_rejected_and_done_with():
    broken = paid_order(250)
    for address in [broken.order["billing_address"], *broken.shipping_addresses]:
        address["email"] = None
    broken.order["ip_address"] = ""
    fetcher, queue = service({"abc123": FakeStore({250: broken})})
    (outcome,) = fetcher.process([("m1", job(250))], time_left=lambda: 90)
    assert outcome.status == "rejected" and "no identifier" in outcome.reason and queue.bodies == []
