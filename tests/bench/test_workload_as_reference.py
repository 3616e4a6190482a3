"""The bench's workload (``pinrelay_bench.workload.make_events``: checkouts with US, CA, GB, DE and
FR addresses and phones) goes through ingest's fast paths exactly as through the reference path
(tests/unit/_reference.py), batch and single preparation alike, and through IngestService, so the
events ``make bench`` measures are prepared as the reference prepared them."""

import json
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinrelay.events import prepare_api_event
from pinrelay.ingest import IngestService
from pinrelay_bench.workload import make_events
from tests.fakes import ListQueue
from tests.unit import _reference as reference
from tests.unit.test_ingest_fast_paths import NOW, batch_outcomes, hostile_texts, json_values, outcome, phones


@st.composite
def realistic_batches(draw):
    """Checkouts as the bench makes them (US, CA, GB, DE, FR addresses and phones), one perhaps
    with a value set to any JSON value or hostile text."""
    raws = make_events(draw(st.integers(1, 8)), NOW, seed=draw(st.integers(0, 2**32)), prefix="real")
    if draw(st.booleans()):
        raw = draw(st.sampled_from(raws))
        target = draw(st.sampled_from([raw, raw["user_data"], raw["custom_data"], raw["custom_data"]["contents"][0]]))
        name = draw(st.sampled_from([*sorted(target), "colour"]))
        target[name] = draw(st.one_of(json_values, hostile_texts, phones()))
    return raws


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(realistic_batches())
def test_realistic_batches_are_prepared_as_before(raws):
    expected = [outcome(reference.prepare_api_event, raw) for raw in raws]
    assert batch_outcomes(raws) == expected
    assert [outcome(prepare_api_event, raw) for raw in raws] == expected


def test_a_realistic_batch_with_repeats_and_bad_values_is_as_before():
    rng = random.Random(7)
    raws = make_events(300, NOW, seed=3, prefix="fast")
    for raw in raws[::7]:  # the same person again, with the same bad values: each event keeps its warnings
        phone = rng.choice(["12", "(415) 555-0134", "020 7946 0018"])
        raw["user_data"].update(em="Jane.Doe@Example.com", ph=phone, db="1990-02-30")
    raws[5]["custom_data"]["contents"][0]["item_name"] = "\uffff"
    raws[9]["user_data"]["fn"] = ["ok", "\ud800"]
    raws[11]["event_time"] = NOW - 9 * 86_400
    raws[13] = "not an event"
    raws[17]["user_data"] = {"ph": "+1 415 555 0134"}
    raws[19]["user_data"]["country"] = ["CA", "US"]
    raws[19]["user_data"]["ph"] = ["(613) 555-0143", "415 555 0134"]
    expected = [outcome(reference.prepare_api_event, raw) for raw in raws]
    assert batch_outcomes(raws) == expected
    assert [outcome(prepare_api_event, raw) for raw in raws] == expected
    assert sum(1 for item in expected if item[0] == "rejected") == 5


def test_ingest_answers_and_queues_as_before():
    raws = make_events(60, NOW, seed=9, prefix="svc")
    raws[3]["user_data"]["ln"] = "\udc00"
    raws[4] = raws[2]  # a repeat within the request
    queue = ListQueue()
    service = IngestService(ad_account_id="549755885175", queue=queue, clock=lambda: NOW)
    outcome_ = service.ingest_api_events(json.loads(json.dumps(raws)))
    expected = [outcome(reference.prepare_api_event, raw) for raw in raws]
    statuses = [result.status for result in outcome_.results]
    assert statuses[3] == "rejected" and outcome_.results[3].reason == expected[3][1]
    assert statuses[4] == "duplicate"
    assert statuses.count("accepted") == 58
    queued = [json.loads(body)["event"] for body in queue.bodies]
    prepared = [reference.prepare_api_event(raw, NOW).event for index, raw in enumerate(raws) if index not in (3, 4)]
    for event in prepared:
        if not event.get("custom_data"):
            event.pop("custom_data", None)
    assert queued == prepared
