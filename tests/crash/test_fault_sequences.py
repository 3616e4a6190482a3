"""Faults in sequence across invocations, and answers that are neither yes nor no, as AWS runs them:
the handlers as processes against moto server behind the fault proxy (what the delivery
simulation, tests/simulation, found, shown on the real stack).

* an offline event whose sender died after posting it, and a second invocation that dies too (or
  loses an answer) while settling it: never sent again (issue 19, finding 2);
* a gateway error after Pinterest processed the request (finding 1);
* a web event whose outcome was never recorded, coming back within Pinterest's dedup window or
  days later (finding 3), and an answer DynamoDB refuses to record;
* an event that waited more than 7 days, and one withheld upstream: not_sent (finding 5);
* slow Secrets Manager, and an answer dripped past the client's deadline: inside the timeout (finding 4).
"""

from __future__ import annotations

import io
import time

import pytest

from pinrelay.models import QueuedEvent
from pinrelay_cli.main import build_parser
from pinrelay_local.fault_proxy import DELAY, FAIL_5XX, KILL_AFTER, KILL_BEFORE, LOSE_ANSWER, FaultRule
from tests.crash.conftest import AD_ACCOUNT, TIMEOUTS, World, api_event

DAY = 86400


def queued(world: World, events: list[dict]) -> list[dict]:
    world.client_post("/events", *world.post_events(events))
    messages = world.receive()
    assert len(messages) == len(events)
    return messages


def again(world: World) -> list[dict]:
    """What SQS hands out again once the batch's visibility timeout has passed."""
    time.sleep(1.1)
    return world.receive()


def item(world: World, event_id: str, offline: bool = False) -> dict:
    return world.states().get(world.key(event_id, offline), {})


def settled(world: World) -> None:
    assert world.dlq_depth() == 0, "a message ended in the DLQ"
    assert not world.timed_out(), f"I5: ran into the timeout: {[i.caller for i in world.timed_out()]}"


@pytest.mark.parametrize("fault", [(1, KILL_AFTER), (2, KILL_BEFORE), (2, KILL_AFTER), (1, LOSE_ANSWER), (2, LOSE_ANSWER)],
                         ids=lambda f: f"sender-2#{f[0]} dynamodb.UpdateItem {f[1].label}")
def test_an_offline_event_its_sender_died_after_posting_is_never_sent_again_whatever_befalls_the_next(world: World, fault):
    """Finding 2. Invocation 1 posts E and dies before its outcome write (E stays "sending");
    invocation 2's claim finds it, and it dies, or loses an answer, around the write that records E
    uncertain; E is never sent again, and ends uncertain."""
    messages = queued(world, [api_event("seq-offline", "offline")])
    # sender-1: claim, token, mark, [request], outcome: killed right before the outcome
    world.proxy.add_rule(FaultRule("dynamodb", "UpdateItem", caller="sender-1", nth=3, action=KILL_BEFORE))
    first = world.deliver_batch(messages, caller="sender-1")
    assert first.status == "killed" and world.tally().processed[world.key("seq-offline", offline=True)] == 1
    assert item(world, "seq-offline", offline=True)["state"] == "sending"
    world.clock_offset += 800  # SQS brings the batch back after its visibility timeout
    nth, action = fault
    world.proxy.add_rule(FaultRule("dynamodb", "UpdateItem", caller="sender-2", nth=nth, action=action))
    second = world.deliver_batch(again(world), caller="sender-2")
    assert second.status == ("killed" if action.kind.startswith("kill") else "ok")
    assert "secretsmanager.GetSecretValue" not in world.proxy.operations_of("sender-2")  # no attempt to send it
    world.clock_offset += 800
    world.drain()
    stored = item(world, "seq-offline", offline=True)
    assert world.tally().processed[world.key("seq-offline", offline=True)] == 1, "I3: an offline event sent twice"
    assert (stored["state"], stored.get("reason"), stored.get("prior_state")) == ("uncertain", "unanswered", "sending")
    settled(world)
    world.outcome = {"offline": f"{stored['state']}, processed 1x (sender-1 killed after posting)"}


@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_gateway_error_after_pinterest_processed_the_request_is_no_proof_that_nothing_happened(world: World, status):
    """Finding 1. The offline event is recorded uncertain, never posted again; the web one is posted
    again at once (Pinterest drops the repeat) and counted."""
    messages = queued(world, [api_event("gw-web"), api_event("gw-offline", "offline")])
    world.standin.set_fault("processed_then_status", status=status, count=1)
    invocation = world.deliver_batch(messages, caller="sender-1")
    world.drain()
    tally = world.tally()
    assert invocation.status == "ok" and invocation.result.response == {"batchItemFailures": []}
    assert (tally.processed[world.key("gw-offline", offline=True)], item(world, "gw-offline", offline=True)["state"]) == (1, "uncertain")
    assert (tally.processed[world.key("gw-web")], item(world, "gw-web")["state"]) == (2, "delivered")
    assert world.key("gw-web") in tally.twice()[0]  # explained: the first answer was never read
    assert invocation.total("EventsPossiblyResent") == 1 and invocation.total("EventsUncertain") == 1
    settled(world)
    world.outcome = {"web": "delivered, processed 2x (Pinterest drops the repeat)", "offline": "uncertain, processed 1x"}


@pytest.mark.parametrize("comes_back_after", [800, 2 * DAY], ids=["after 800 s", "2 days later"])
def test_a_web_event_whose_outcome_was_never_recorded_is_resent_only_inside_pinterests_window(world: World,
                                                                                            comes_back_after):
    """Finding 3. Its sender died after Pinterest processed it: within 24 h of its first send a copy
    is sent again (Pinterest drops it); a copy two days later (a redrive, a webhook replayed) is
    recorded uncertain instead of counting twice."""
    messages = queued(world, [api_event("window-web")])
    # sender-1: claim, token, [request], outcome: killed right before the outcome
    world.proxy.add_rule(FaultRule("dynamodb", "UpdateItem", caller="sender-1", nth=2, action=KILL_BEFORE))
    assert world.deliver_batch(messages, caller="sender-1").status == "killed"
    assert item(world, "window-web")["state"] == "sending"
    world.clock_offset += comes_back_after
    second = world.deliver_batch(again(world), caller="sender-2")
    processed = world.tally().processed[world.key("window-web")]
    stored = item(world, "window-web")
    if comes_back_after < 86400:
        assert (processed, stored["state"]) == (2, "delivered") and second.total("EventsPossiblyResent") == 1
    else:
        assert (processed, stored["state"], stored.get("reason")) == (1, "uncertain", "resend_window_over")
        assert second.total("EventsUncertain") == 1 and second.total("PinterestRequests") == 0
    settled(world)
    world.outcome = {"web": f"{stored['state']}, processed {processed}x"}


def test_an_answer_dynamodb_will_not_record_goes_back_to_sqs_and_the_next_receive_settles_it(world: World):
    messages = queued(world, [api_event("unrecorded-web"), api_event("unrecorded-offline", "offline")])
    # sender-1: two claims, token, mark, [request], two outcomes: DynamoDB fails from the outcomes on
    # for longer than the ledger's retries
    world.proxy.add_rule(FaultRule("dynamodb", "UpdateItem", caller="sender-1", nth=4, times=None,
                                   until=time.monotonic() + 60, action=FAIL_5XX))
    first = world.deliver_batch(messages, caller="sender-1")
    assert first.status == "ok" and len(first.result.response["batchItemFailures"]) == 2
    assert first.total("DeliveryRecordFailures") == 2
    world.proxy.clear_rules()
    world.clock_offset += 800
    world.drain()
    tally = world.tally()
    assert (tally.processed[world.key("unrecorded-web")], item(world, "unrecorded-web")["state"]) == (2, "delivered")
    assert (tally.processed[world.key("unrecorded-offline", offline=True)], item(world, "unrecorded-offline", offline=True)["state"]) == (1, "uncertain")
    settled(world)
    world.outcome = {"web": "delivered, processed 2x (Pinterest drops the repeat)", "offline": "uncertain, processed 1x"}


def test_an_event_that_waited_past_seven_days_is_recorded_not_sent_and_status_says_why(world: World):
    """Finding 5: one write each, no request, counted per reason, `pinrelay status` shows it."""
    messages = queued(world, [api_event("waited-web"), api_event("waited-offline", "offline")])
    world.clock_offset += 7 * DAY + 3600  # an outage, the DLQ, a redrive a week later
    invocation = world.deliver_batch(messages, caller="sender-1")
    assert invocation.status == "ok" and invocation.result.response == {"batchItemFailures": []}
    assert world.proxy.operations_of("sender-1") == ["dynamodb.UpdateItem"] * 2 and not world.standin.received
    assert invocation.metric("EventsNotSent", dimensions=[["reason", "service"]]) == 2
    for event_id, offline in (("waited-web", False), ("waited-offline", True)):
        stored = item(world, event_id, offline)
        assert (stored.get("state"), stored.get("reason")) == ("not_sent", "too_old"), event_id
    args = build_parser().parse_args(["status", "waited-web", "--table", world.table, "--ad-account", AD_ACCOUNT])
    out = io.StringIO()
    assert args._run(args, dynamodb=world.aws["dynamodb"], out=out, err=out) == 1
    assert ": not sent: its event_time was more than 7 days old" in out.getvalue()
    settled(world)
    world.outcome = {"web": "not_sent (too_old), processed 0x", "offline": "not_sent (too_old), processed 0x"}


def test_a_message_withheld_upstream_is_recorded_not_sent_in_one_write_and_never_posted(world: World):
    event = {"event_name": "checkout", "event_id": "withheld-1", "action_source": "web", "event_time": int(time.time()) - 60}
    body = QueuedEvent(ad_account_id=AD_ACCOUNT, source="shopify", dedup_key=world.key("withheld-1"),
                       accepted_at=int(time.time()), event=event, withheld="consent").model_dump_json()
    world.aws["sqs"].send_message(QueueUrl=world.queue_url, MessageBody=body)
    invocation = world.deliver_batch(world.receive(), caller="sender-1")
    assert invocation.result.response == {"batchItemFailures": []} and not world.standin.received
    assert world.proxy.operations_of("sender-1") == ["dynamodb.UpdateItem"]
    assert (item(world, "withheld-1")["state"], item(world, "withheld-1")["reason"]) == ("not_sent", "consent")
    assert invocation.metric("EventsNotSent", dimensions=[["reason", "service"]]) == 1
    settled(world)
    world.outcome = {"web": "not_sent (consent), processed 0x"}


def test_the_sender_ends_inside_its_timeout_when_secrets_manager_and_dynamodb_are_slow(world: World):
    """Finding 4: the token read (two Secrets Manager calls on a cold start) and the mark are
    budgeted before the request."""
    events = [api_event(f"slow-secrets-{i}") for i in range(5)] + [api_event("slow-secrets-offline", "offline")]
    messages = queued(world, events)
    world.proxy.add_rule(FaultRule("secretsmanager", action=DELAY(1.5), times=None))
    world.proxy.add_rule(FaultRule("dynamodb", action=DELAY(1.5), times=None))
    invocation = world.deliver_batch(messages, caller="sender-1")
    assert invocation.status == "ok" and invocation.result.duration_s < TIMEOUTS["sender"], invocation.result
    world.proxy.clear_rules()
    world.clock_offset += 800
    world.drain()
    assert all(world.tally().processed[world.key(e["event_id"], e["action_source"] == "offline")] == 1 for e in events)
    settled(world)
    world.outcome = {"events": "6 delivered, processed 1x"}


def test_an_answer_dripped_past_the_clients_deadline_ends_each_attempt_at_it(world: World):
    """Finding 4: requests' ``timeout`` bounds each read, not the answer; the client's total
    deadline ends each attempt after 10 s, so four attempts end well inside the 120 s."""
    messages = queued(world, [api_event("drip-web"), api_event("drip-offline", "offline")])
    world.standin.set_fault("drip", seconds=30.0)  # every answer: headers at once, then a byte at a time for 30 s
    invocation = world.deliver_batch(messages, caller="sender-1")
    world.standin.clear_fault()
    assert invocation.status == "ok" and invocation.result.duration_s < TIMEOUTS["sender"], invocation.result
    assert invocation.total("PinterestRequests") == 4  # each cut at the deadline
    assert item(world, "drip-offline", offline=True)["state"] == "uncertain"  # processed, its answer never read
    world.clock_offset += 800
    world.drain()
    tally = world.tally()
    assert tally.processed[world.key("drip-offline", offline=True)] == 1 and item(world, "drip-web")["state"] == "delivered"
    settled(world)
    world.outcome = {"web": f"delivered, processed {tally.processed[world.key('drip-web')]}x (dripped answers dropped)",
                     "offline": "uncertain, processed 1x"}

