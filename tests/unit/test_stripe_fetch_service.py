"""The Stripe line-items fetcher's work (pinrelay.stripe_fetch), with in-memory readers and queue:
each job's event is queued with the contents ingest used to add, without them when Stripe refuses,
and goes back to its queue (retry) when Stripe is unavailable, the key cannot be read, the queue
fails it or the time left is too short."""

from __future__ import annotations

import json
import time

from pinrelay.accounts import parse_account_map
from pinrelay.ingest import IngestService
from pinrelay.ports import LineItemsRefused, LineItemsUnavailable
from pinrelay.sources import stripe
from pinrelay.stripe_fetch import CONTENTS_TRIES, StripeLineItemsService, mapped_key, owner_of

from tests.fakes import ListQueue
from tests.unit.test_stripe import checkout, line_item

AD_ACCOUNT = "549755885175"
EU_ACCOUNT = "549755885176"


class FakeStripe:
    def __init__(self, answers: dict[str, list[dict] | Exception]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def line_items(self, session_id, time_left):
        self.asked.append(session_id)
        found = self.answers.get(session_id, LineItemsRefused("Stripe answered 404 to the line items request"))
        if isinstance(found, Exception):
            raise found
        return found


def job(now: int, session_id: str, key: str = "deployment", ad_account: str = AD_ACCOUNT, **session) -> str:
    found = checkout(now, id=session_id, livemode=True, **session)
    event = stripe.stripe_event(found, now=now)
    assert isinstance(event, stripe.PreparedEvent)
    return stripe.line_items_job_body(found, event, key=key, route_name=None, ad_account_id=ad_account, received_at=now)


def service(readers, queue: ListQueue | None = None) -> tuple[StripeLineItemsService, ListQueue]:
    queue = queue or ListQueue()
    ingest = IngestService(ad_account_id=AD_ACCOUNT, queue=queue, clock=time.time)
    return StripeLineItemsService(readers=readers, ingest=ingest, content_id_field="product",
                                  fetch_worst_seconds=8.5, queue_worst_seconds=12.0), queue


def queued(queue: ListQueue) -> list[dict]:
    return [json.loads(body) for body in queue.bodies]


def test_the_job_carries_the_hashed_event_and_no_personal_data(now):
    body = job(now, "cs_live_a", customer_details={"email": "jenny@example.com", "name": "Jenny Rosen"},
               metadata={"pinrelay_consent_marketing": "yes", "note": "call Jenny on 555-0100"})
    assert "jenny" not in body.lower() and "555-0100" not in body
    parsed = json.loads(body)
    assert parsed["key"] == "deployment" and parsed["session_id"] == "cs_live_a"
    assert parsed["consent_metadata"] == {"pinrelay_consent_marketing": "yes"}
    assert len(parsed["event"]["user_data"]["em"][0]) == 64  # hashed


def test_a_session_is_queued_with_the_contents_ingest_used_to_add(now):
    items = [line_item(2, 1000), line_item(1, 1000, product="prod_other")]
    reader = FakeStripe({"cs_live_a": items})
    fetcher, queue = service(lambda owner: reader)
    (outcome,) = fetcher.process([("m1", job(now, "cs_live_a"))], time_left=lambda: 60)
    assert (outcome.status, outcome.code, outcome.event_id) == ("queued", None, "cs_live_a")
    (message,) = queued(queue)
    expected = stripe.stripe_event(checkout(now, id="cs_live_a", livemode=True), now=now, line_items=items).event
    assert message["event"]["custom_data"] == expected["custom_data"]
    assert message["event"]["custom_data"]["num_items"] == 3 and message["ad_account_id"] == AD_ACCOUNT


def test_refused_line_items_send_the_event_without_contents_and_unavailable_ones_retry(now):
    reader = FakeStripe({"cs_live_down": LineItemsUnavailable("Stripe's line items did not come (503)")})
    fetcher, queue = service(lambda owner: reader)
    refused, down = fetcher.process([("m1", job(now, "cs_live_refused")), ("m2", job(now, "cs_live_down"))],
                                    time_left=lambda: 60)
    assert (refused.status, refused.code) == ("queued", "without_contents")
    assert (down.status, down.reason) == ("retry", "Stripe's line items did not come (503)")
    (message,) = queued(queue)
    assert message["event"]["event_id"] == "cs_live_refused" and "contents" not in message["event"]["custom_data"]


def test_from_the_fourth_receive_line_items_that_cannot_be_read_cost_the_contents_not_the_conversion(now):
    reader = FakeStripe({"cs_live_down": LineItemsUnavailable("Stripe's line items did not come (503)")})

    def readers(owner):
        if owner[0] == "deployment":
            return reader
        raise LineItemsUnavailable("secret pinrelay/account-map could not be read")

    fetcher, queue = service(readers)
    jobs = [("m1", job(now, "cs_live_down")), ("m2", job(now, "cs_live_b", key="account_map", ad_account=EU_ACCOUNT))]
    earlier = fetcher.process(jobs, time_left=lambda: 60, receive_counts={"m1": CONTENTS_TRIES - 1, "m2": CONTENTS_TRIES - 1})
    assert [o.status for o in earlier] == ["retry", "retry"] and queue.bodies == []
    down, unread = fetcher.process(jobs, time_left=lambda: 60, receive_counts={"m1": CONTENTS_TRIES, "m2": CONTENTS_TRIES + 1})
    assert (down.status, down.code) == ("queued", "without_contents")
    assert down.reason == "no line items in 4 tries, sent without contents: Stripe's line items did not come (503)"
    assert (unread.status, unread.code) == ("queued", "without_contents")
    events = {m["event"]["event_id"]: m["event"] for m in queued(queue)}
    assert set(events) == {"cs_live_down", "cs_live_b"} and all("contents" not in e["custom_data"] for e in events.values())


def test_a_key_that_cannot_be_read_retries_and_no_key_goes_without_contents(now):
    def readers(owner):
        if owner[0] == "deployment":
            raise LineItemsUnavailable("secret pinrelay/stripe-key could not be read")
        return None

    fetcher, queue = service(readers)
    down, gone = fetcher.process([("m1", job(now, "cs_live_a")), ("m2", job(now, "cs_live_b", key="account_map",
                                                                            ad_account=EU_ACCOUNT))],
                                 time_left=lambda: 60)
    assert down.status == "retry" and (gone.status, gone.code) == ("queued", "without_contents")
    assert [m["ad_account_id"] for m in queued(queue)] == [EU_ACCOUNT]


def test_a_job_that_cannot_finish_in_the_time_left_goes_back_unread(now):
    reader = FakeStripe({"cs_live_a": [line_item(1, 1000)]})
    fetcher, queue = service(lambda owner: reader)
    (outcome,) = fetcher.process([("m1", job(now, "cs_live_a"))], time_left=lambda: 20)
    assert (outcome.status, outcome.reason) == ("retry", "no time left in this invocation")
    assert reader.asked == [] and queue.bodies == []


def test_a_queue_failure_or_an_unreadable_job_retries(now):
    reader = FakeStripe({"cs_live_a": [line_item(1, 1000)]})
    fetcher, _ = service(lambda owner: reader, ListQueue(fail_positions={0}))
    failed, poison = fetcher.process([("m1", job(now, "cs_live_a")), ("m2", "{not json")], time_left=lambda: 60)
    assert failed.status == "retry" and poison.status == "retry" and poison.reason == "unreadable line-items job"


def test_ten_jobs_are_read_side_by_side_with_each_key_read_once(now):
    reader = FakeStripe({f"cs_live_{i}": [line_item(1, 1000)] for i in range(10)})
    owners: list = []
    fetcher, queue = service(lambda owner: owners.append(owner) or reader)
    outcomes = fetcher.process([(f"m{i}", job(now, f"cs_live_{i}")) for i in range(10)], time_left=lambda: 60)
    assert {o.status for o in outcomes} == {"queued"} and len(queue.bodies) == 10
    assert owners == [("deployment", None, None)]


def test_the_consent_recorded_in_the_session_is_judged_again_by_the_policy(now):
    from pinrelay.consent import ConsentPolicy

    reader = FakeStripe({"cs_live_no": [line_item(1, 1000)]})
    queue = ListQueue()
    ingest = IngestService(ad_account_id=AD_ACCOUNT, queue=queue, clock=lambda: now,
                           consent_policy=ConsentPolicy.parse("respect"))
    fetcher = StripeLineItemsService(readers=lambda owner: reader, ingest=ingest, content_id_field="product",
                                     fetch_worst_seconds=8.5, queue_worst_seconds=12.0)
    (outcome,) = fetcher.process([("m1", job(now, "cs_live_no", metadata={"pinrelay_consent_marketing": "no"}))],
                                 time_left=lambda: 60)
    assert (outcome.status, outcome.code) == ("queued", "consent")
    (marker,) = queued(queue)
    assert "user_data" not in marker["event"]


def test_a_mapped_key_is_the_entry_of_the_jobs_ad_account_and_name():
    accounts = parse_account_map(json.dumps({"accounts": [
        {"name": "eu", "ad_account_id": EU_ACCOUNT, "stripe_webhook_secrets": ["whsec_" + "e" * 40],
         "stripe_api_key": "rk_test_eu_key"},
        {"ad_account_id": "549755885177", "stripe_webhook_secrets": ["whsec_" + "f" * 40]},
    ]}))
    assert mapped_key(accounts, EU_ACCOUNT, "eu") == "rk_test_eu_key"
    assert mapped_key(accounts, EU_ACCOUNT, None) is None  # renamed since: no key, not another's
    assert mapped_key(accounts, "549755885177", None) is None
    parsed = stripe.LineItemsJob.model_validate_json(stripe.line_items_job_body(
        checkout(0, id="cs_x"), stripe.PreparedEvent(event={"event_id": "cs_x"}), key="account_map", route_name="eu",
        ad_account_id=EU_ACCOUNT, received_at=0))
    assert owner_of(parsed) == ("account_map", EU_ACCOUNT, "eu")
