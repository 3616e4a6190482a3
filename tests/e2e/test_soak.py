"""The soak ledger at a small size: 600 events (API batches, single posts, signed Shopify orders;
repeats, invalid and stale ones) through the local stack while a short fault schedule plays
(Pinterest 503, 429 + Retry-After, slower than the sender's timeout, dropped connections; SQS
and DynamoDB throttling at ingest), then the books must balance: nothing lost, nothing delivered
twice except the repeats of requests the sender abandoned (Pinterest drops those by event_id).

Scaled down further than ``python -m pinrelay_local.soak``: spells of 1.5 s, SQS visibility
timeout 2 s and maxReceiveCount 5 (enough: a spell of 1.5 s costs at most two receives), so the
poison message reaches the DLQ within the run."""

import pytest

from pinrelay_local.soak import Spell, run_soak

pytestmark = pytest.mark.e2e


def test_a_short_soak_loses_nothing_and_sends_nothing_twice_unexplained():
    schedule = [Spell(name, at, 1.5) for name, at in (("503", 1), ("429", 3), ("slow", 5), ("close", 7), ("aws", 9))]
    lines = []
    ledger = run_soak(events=600, rate=50, schedule=schedule, poison=1, seed=7, visibility_timeout_s=2,
                      max_receive_count=5, drain_timeout_s=60, say=lines.append)
    report = "\n".join(lines)

    assert ledger.events == 600, report
    assert ledger.lost == 0, report
    assert ledger.twice_unexplained == 0, report
    assert ledger.delivered_not_accepted == 0 and ledger.unexpected_answers == 0, report
    assert ledger.ok and "result: OK" in report
    # every accepted event is accounted for
    assert ledger.accepted == ledger.delivered + ledger.rejected_by_pinterest + ledger.dlq_events, report
    assert ledger.rejected_by_pinterest == ledger.stale_sent and ledger.dlq_events == 0, report
    assert ledger.duplicates_answered == ledger.repeats_sent and ledger.rejected_at_ingest == ledger.invalid_sent, report
    assert ledger.dlq_poison == 1, report
    # the faults did happen
    assert {"503", "429", "closed"} <= set(ledger.pinterest_requests), report
    assert ledger.sender_failed_batches > 0, report
    assert ledger.ingest_5xx > 0 and sum(ledger.aws_injected.values()) > 0, report
