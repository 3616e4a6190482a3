"""Every AWS call on the ingest path and on the sender path, with each fault at each call.

For each call a handler makes (the lists below, checked against a recording run), the suite runs
the scenario afresh with one fault at that call: the process killed just before the call reaches
AWS, killed just after AWS applied it, its answer lost (botocore sends it again), or the service
answering 5xx or throttling from that call on for 3 s. Then the world carries on as AWS and the
senders would: the client retries what was not answered 2xx, SQS redelivers what was not deleted
(800 s later on the functions' clocks), and the books are judged:

* I1 every event answered 2xx reaches Pinterest, or is recorded rejected, or (offline events
  only, when the dead invocation had marked it sending) is recorded uncertain, never resent;
* I2 a request answered 5xx or not at all is accepted by its retry;
* I3 no offline event is processed twice; a web event is processed twice only when the dead
  invocation had sent it to Pinterest, and the invocation that sent it again counted it;
* I5 no invocation runs into its timeout; nothing ends in the DLQ.
"""

from __future__ import annotations

import json

import pytest

from pinrelay_local.fault_proxy import FAIL_5XX, KILL_AFTER, KILL_BEFORE, LOSE_ANSWER, THROTTLE, FaultPoint
from tests.crash.conftest import World, api_event, rule_for

ACTIONS = (KILL_BEFORE, KILL_AFTER, LOSE_ANSWER, FAIL_5XX, THROTTLE)

# POST /events with 12 events: the account map (routing by API key), the API keys, then two
# SendMessageBatch calls of 10 and 2 messages, in parallel
INGEST_CALLS = ["secretsmanager.GetSecretValue", "secretsmanager.GetSecretValue", "sqs.SendMessageBatch", "sqs.SendMessageBatch"]
# a batch of two web events and one offline event of the default ad account: three claims (in
# parallel), its conversion token (read before the first request), the offline event marked
# sending (nothing but the request follows it), three outcomes (in parallel)
SENDER_CALLS = ["dynamodb.UpdateItem"] * 3 + ["secretsmanager.GetSecretValue"] + ["dynamodb.UpdateItem"] * 4
MARK_CALL = 5  # the sender's 5th call marks the offline event sending


def points(caller: str, calls: list[str]) -> list[FaultPoint]:
    seen: dict[str, int] = {}
    out = []
    for index, call in enumerate(calls, start=1):
        service, operation = call.split(".")
        seen[call] = seen.get(call, 0) + 1
        out += [FaultPoint(caller, index, service, operation, seen[call], action) for action in ACTIONS]
    return out


def ingest_events(prefix: str) -> list[dict]:
    return [api_event(f"{prefix}-{i}", "offline" if i in (3, 11) else "web") for i in range(12)]


def sender_events(prefix: str) -> list[dict]:
    return [api_event(f"{prefix}-web-1"), api_event(f"{prefix}-web-2"), api_event(f"{prefix}-offline", "offline")]


def judge(world: World, events: list[dict], faulted=None) -> dict[str, str]:
    """Check I1, I3, I5 and the DLQ; return each event's outcome for the report."""
    tally, states = world.tally(), world.states()
    sent_by_the_dead = world.keys_sent(faulted) if faulted is not None and faulted.status != "ok" else set()
    recounted = sum(i.metric("EventsPossiblyResent") for i in world.invocations if i.function == "sender")
    outcome = {}
    for event in events:
        offline = event["action_source"] == "offline"
        key = world.key(event["event_id"], offline)
        processed, state = tally.processed[key], states.get(key, {}).get("state")
        if offline:
            assert processed <= 1, f"I3: offline {key} processed {processed} times"
            assert processed == 1 or state in ("rejected", "uncertain"), f"I1: offline {key} lost (state {state})"
            if state == "uncertain":
                assert states[key].get("prior_state") == "sending", f"{key} uncertain without a mark"
        else:
            assert processed >= 1 or state == "rejected", f"I1: {key} lost (state {state})"
            if processed > 1:
                assert key in sent_by_the_dead, f"I3: {key} processed {processed} times, not sent by a dead invocation"
                assert recounted >= 1, f"I3: {key} sent again without being counted"
        outcome[key] = f"{state}, processed {processed}x"
    assert world.dlq_depth() == 0, "a message ended in the DLQ"
    assert not world.timed_out(), f"I5: ran into the timeout: {[i.caller for i in world.timed_out()]}"
    world.outcome = {("offline" if e["action_source"] == "offline" else "web") + " " + e["event_id"].rsplit("-", 1)[-1]:
                     outcome[world.key(e["event_id"], e["action_source"] == "offline")] for e in events}
    return outcome


# -- the call lists are what the handlers really do ---------------------------------------------


def test_the_ingest_path_makes_these_aws_calls(world: World):
    body, headers = world.post_events(ingest_events("rec"))
    (attempt,) = world.client_post("/events", body, headers, first_caller="ingest-rec")
    assert attempt.result.response["statusCode"] == 202
    assert sorted(world.proxy.operations_of("ingest-rec")) == sorted(INGEST_CALLS)
    assert world.proxy.operations_of("ingest-rec")[:2] == INGEST_CALLS[:2]


def test_the_sender_path_makes_these_aws_calls(world: World):
    events = sender_events("rec")
    world.client_post("/events", *world.post_events(events))
    invocation = world.deliver_batch(world.receive(), caller="sender-rec")
    assert invocation.status == "ok" and invocation.result.response == {"batchItemFailures": []}
    assert world.proxy.operations_of("sender-rec") == SENDER_CALLS
    assert set(judge(world, events).values()) == {"delivered, processed 1x"}


# -- every fault at every call -----------------------------------------------------------------


@pytest.mark.parametrize("point", points("ingest-1", INGEST_CALLS), ids=str)
def test_ingest_fault(world: World, point: FaultPoint):
    events = ingest_events("i")
    world.proxy.add_rule(rule_for(point, point.action))
    tries = world.client_post("/events", *world.post_events(events), first_caller="ingest-1")
    # I2: the retry of a request answered 5xx or not at all is accepted
    assert tries[-1].result.response["statusCode"] == 202
    assert {e["status"] for e in json.loads(tries[-1].result.response["body"])["events"]} == {"accepted"}
    world.drain()
    outcome = judge(world, events)
    # nothing went wrong on the sender's side: every event exactly once
    assert set(outcome.values()) == {"delivered, processed 1x"}, outcome


@pytest.mark.parametrize("point", points("sender-1", SENDER_CALLS), ids=str)
def test_sender_fault(world: World, point: FaultPoint):
    events = sender_events("s")
    world.client_post("/events", *world.post_events(events))
    world.proxy.add_rule(rule_for(point, point.action))
    faulted = world.deliver_batch(world.receive(), caller="sender-1")
    if point.action.kind in ("kill_before", "kill_after"):
        assert faulted.status == "killed"
    else:
        assert faulted.status == "ok", faulted.result  # a lost answer, 5xx or throttling is survived
    world.clock_offset += 800
    world.drain()
    outcome = judge(world, events, faulted)
    offline = world.key("s-offline", offline=True)
    if outcome[offline].startswith("uncertain"):
        # only when the dead process may have sent it: killed once the mark was applied
        assert point.action.kind == "kill_after" and point.index >= MARK_CALL or \
            point.action.kind in ("kill_before", "kill_after") and point.index > MARK_CALL, (point, outcome)
