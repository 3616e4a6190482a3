"""pinrelay.verify: the test event's ledger key and what Pinterest's answer and the ledger say about it
(the test event itself, against Pinterest's schema: tests/contract/test_pinterest_schema.py)."""

from __future__ import annotations

import pytest

from pinrelay.ports import HttpAnswer
from pinrelay.verify import (
    LedgerEntry,
    claimed_line,
    final_line,
    judge_pinterest_answer,
    ledger_key,
    not_delivered_line,
)

AD_ACCOUNT = "549755885175"


def test_its_ledger_key_is_the_senders():
    assert ledger_key(AD_ACCOUNT, "pinrelay-verify-1") == f"{AD_ACCOUNT}#page_visit#pinrelay-verify-1"


PROCESSED = {"num_events_received": 1, "num_events_processed": 1,
             "events": [{"status": "processed", "error_message": None, "warning_message": None}]}
FAILED_422 = {"code": 953, "message": "The action could not be processed properly.", "details": {
    "num_events_received": 1, "num_events_processed": 0,
    "events": [{"status": "failed", "error_message": "Invalid event_timestamp parameter.\nGiven timestamp is in the past.",
                "warning_message": ""}]}}


@pytest.mark.parametrize(("answer", "ok", "temporary", "says"), [
    (HttpAnswer(200, PROCESSED), True, False, "Pinterest processed the test event"),
    (HttpAnswer(422, FAILED_422), False, False,
     "Pinterest refused the event (422): Invalid event_timestamp parameter. Given timestamp is in the past."),
    (HttpAnswer(422, {"code": 953, "message": "Not all events."}), False, False, "Pinterest refused the event (422: Not all events.)"),
    (HttpAnswer(200, None, text="<html>"), False, True, "answer could not be read"),
    (HttpAnswer(401, {"code": 2, "message": "Authentication failed."}), False, False,
     f"Pinterest refused the conversion token (401: Authentication failed.): check that it is the current token of ad account {AD_ACCOUNT}"),
    (HttpAnswer(403, {"code": 29, "message": "You are not permitted to access that resource."}), False, False,
     f"the conversion token has no access to ad account {AD_ACCOUNT} (403: You are not permitted to access that resource.)"),
    (HttpAnswer(404, {"code": 2, "message": "AdAccount not found."}), False, False,
     f"Pinterest does not know ad account {AD_ACCOUNT} (404: AdAccount not found.)"),
    (HttpAnswer(429, {"code": 8, "message": "Rate\nlimit."}, retry_after=30), False, True, "rate limited by Pinterest (429: Rate limit.), retry after 30 s"),
    (HttpAnswer(503, {"code": 4197, "message": "Ramped down."}), False, True, "Pinterest is unavailable (503: Ramped down.)"),
    (HttpAnswer(502, None, text="Bad gateway"), False, True, "Pinterest is unavailable (502: Bad gateway)"),
    (HttpAnswer(None, transport_error="timed out after 10s"), False, True, "no answer from Pinterest (timed out after 10s)"),
    (HttpAnswer(400, {"code": 4196, "message": "The request was invalid."}), False, False, "Pinterest refused the request (400"),
])
def test_pinterests_answer_in_one_line(answer, ok, temporary, says):
    verdict = judge_pinterest_answer(answer, AD_ACCOUNT)
    assert (verdict.ok, verdict.temporary) == (ok, temporary)
    assert says in verdict.reason and "\n" not in verdict.reason


def test_ledger_lines():
    assert claimed_line(LedgerEntry("sending", 1)) == "queued → claimed by the sender (state sending)"
    assert claimed_line(LedgerEntry("sending", 2)) == "queued → claimed by the sender (state sending, attempt 2)"
    assert claimed_line(LedgerEntry("delivered", 1)) == "queued → claimed by the sender"  # first seen delivered
    assert final_line(LedgerEntry("sending", 1)) is None and final_line(LedgerEntry("claimed")) is None
    assert final_line(LedgerEntry("delivered", 1)) == "delivered (Pinterest processed it)"
    assert final_line(LedgerEntry("rejected", 1, "Invalid\nevent")) == "rejected: Invalid event"
    assert final_line(LedgerEntry("uncertain", 1)).startswith("uncertain")
    assert final_line(LedgerEntry("not_sent", 0, "withheld before sending (consent)", reason="consent")) == \
        "not sent: withheld before sending (consent)"
    line = not_delivered_line(90, None, AD_ACCOUNT)
    assert line.startswith("not delivered within 90 s (no sender has claimed it yet")
    assert "the queue age alarm, the DLQ (`pinrelay redrive --dry-run`) and the sender's logs" in line
    assert "the sender took it (state sending, 3 attempt(s)) but has recorded no answer from Pinterest" in not_delivered_line(
        90, LedgerEntry("sending", 3))
