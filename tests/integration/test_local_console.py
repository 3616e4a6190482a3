"""The local console's words cover the sender's whole fate table: a fate added to
pinrelay.sender.Fate without words here would be printed bare."""

from pinrelay.sender import Fate
from pinrelay_local.console import FATE_WORDS, RETURNED, batch_line
from pinrelay_local.sqs_event_source import BatchSummary


def test_every_fate_has_its_words():
    assert {fate.value for fate in Fate} <= set(FATE_WORDS)
    assert {fate.value for fate in Fate if fate.returns_to_sqs} < RETURNED


def test_a_report_becomes_one_line_with_each_fate_in_words():
    summary = BatchSummary(records=7, failed=2, deleted=5, duration_s=0.25)
    report = {"fates": {"delivered": 3, "duplicate": 1, "rejected": 1, "given_back": 2}, "requests": 2,
              "rejections": [{"key": "1#checkout#a", "error": "Invalid event_timestamp parameter."}],
              "given_back": ["pinterest unavailable: HTTP 401"], "not_sent": {}, "unreadable": 0}
    assert batch_line(summary, report) == (
        "sender: 7 events, 2 requests, 250 ms: 3 delivered, 1 copy dropped (already sent), 1 rejected by Pinterest "
        "(1#checkout#a: Invalid event_timestamp parameter.), 2 given back to the queue (SQS hands them out again); "
        "why: pinterest unavailable: HTTP 401")
