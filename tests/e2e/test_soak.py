"""The soak ledger at a small size: 600 events (API batches, single posts, signed Shopify orders;
repeats, invalid and stale ones) through the local stack while a short fault schedule plays
(Pinterest 503, 429 + Retry-After, slower than the sender's timeout, dropped connections; SQS
throttling at ingest, DynamoDB throttling at the sender), then the books must balance: nothing
lost, no offline event processed twice, no web event processed twice except the repeats of
requests the sender abandoned (Pinterest drops those by event_id).

Scaled down further than ``python -m pinrelay_bench.soak``: spells of 2.5 s, SQS visibility
timeout 2 s and maxReceiveCount 5 (enough: a spell of 2.5 s costs at most two receives), so the
poison message reaches the DLQ within the run."""

import pytest

from pinrelay_bench.soak import Spell, run_soak

pytestmark = pytest.mark.e2e


def test_a_short_soak_loses_nothing_and_sends_nothing_twice_unexplained():
    schedule = [Spell(name, at, 2.5) for name, at in (("503", 1), ("429", 4), ("slow", 7), ("close", 10), ("aws", 13))]
    lines = []
    # batches of at most 100 events: moto answers the sender's claims at ~10 ms each, so smaller
    # batches keep requests to the stand-in frequent enough for every spell to meet some
    ledger = run_soak(events=600, rate=40, schedule=schedule, poison=1, seed=7, visibility_timeout_s=2,
                      max_receive_count=5, drain_timeout_s=60, sender_batch_size=100, say=lines.append)
    report = "\n".join(lines)

    assert ledger.events == 600, report
    assert ledger.lost == 0, report
    assert ledger.twice_unexplained == 0, report
    assert ledger.delivered_not_accepted == 0 and ledger.unexpected_answers == 0, report
    assert ledger.ok and "result: OK" in report
    # every accepted event is accounted for, every repeat reached Pinterest once, no offline event twice
    assert ledger.accepted == ledger.delivered + ledger.rejected_by_pinterest + ledger.dlq_events + ledger.uncertain, report
    # stale events are failed by "Pinterest", unless an offline one's request got no answer (uncertain)
    assert ledger.rejected_by_pinterest <= ledger.stale_sent <= ledger.rejected_by_pinterest + ledger.uncertain, report
    assert ledger.dlq_events == 0, report
    assert ledger.repeats_sent > 0 and ledger.rejected_at_ingest == ledger.invalid_sent, report
    assert ledger.offline_sent > 0 and ledger.offline_twice == 0, report
    assert ledger.dlq_poison == 1, report
    # the faults did happen
    assert {"503", "429", "closed"} <= set(ledger.pinterest_requests), report
    assert ledger.sender_failed_batches > 0, report
    assert ledger.ingest_5xx > 0 and sum(ledger.aws_injected.values()) > 0, report


def test_a_spell_is_met_only_by_its_own_fault():
    """The fault player holds a spell until a request meets it; a request of the spell before (a
    slow answer recorded 2 s later) must not count, or the close spell ends having met nothing."""
    from pinrelay_bench.soak import _met_spell

    slow = {"fault": "slow", "status": 200}
    closed = {"fault": "close", "status": 0}
    unavailable = {"fault": "status", "status": 503}
    assert not _met_spell(slow, "close") and _met_spell(closed, "close")
    assert _met_spell(slow, "slow") and not _met_spell(closed, "slow")
    assert _met_spell(unavailable, "503") and not _met_spell(unavailable, "429")
    assert not _met_spell({"fault": None, "status": 200}, "503")
