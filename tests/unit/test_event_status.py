"""`pinrelay status`: what each ledger state (and the dead-letter queue) says about one event."""

import pytest
from pinrelay.verify import NOT_CLAIMED, LedgerEntry, status_line

NOW = 1_780_000_000


@pytest.mark.parametrize(("entry", "in_dlq", "delivered", "says"), [
    (LedgerEntry("delivered", 1, updated_at=NOW - 60, expires_at=NOW + 600),
     False, True, "delivered: Pinterest processed it on 2026-05-28 20:25:40Z"),
    (LedgerEntry("delivered", 3, updated_at=NOW - 60), False, True, "after 3 attempt(s)"),
    (LedgerEntry("delivered", 1, updated_at=NOW - 60, expires_at=NOW - 1), False, True,
     "its dedup window ended 2026-05-28 20:26:39Z: a copy sent now is sent again"),
    (LedgerEntry("rejected", 1, "Invalid event_timestamp parameter.\n Given timestamp is in the past.", NOW - 60),
     False, False, "rejected by Pinterest on 2026-05-28 20:25:40Z: Invalid event_timestamp parameter. Given timestamp"),
    (LedgerEntry("uncertain", 1, updated_at=NOW - 60), False, False, "never sent again"),
    (LedgerEntry("not_sent", 0, "its event_time was more than 7 days old", NOW - 60, reason="too_old"), False, False,
     "not sent: its event_time was more than 7 days old on 2026-05-28 20:25:40Z"),
    (LedgerEntry("not_sent", 0, None, NOW - 60, reason="some_future_code"), False, False, "not sent: some_future_code"),
    (LedgerEntry("sending", 2, lease_until=NOW + 30), False, False, "being sent: a sender holds it until"),
    (LedgerEntry("claimed", 2, updated_at=NOW - 5, lease_until=NOW - 5), False, False,
     "not delivered yet, back in the queue for another try (2 attempt(s) so far"),
    (LedgerEntry("claimed", 5, updated_at=NOW - 5, lease_until=NOW - 5), True, False,
     "not delivered yet, in the dead-letter queue: `pinrelay redrive` puts it back (5 attempt(s)"),
    (None, True, False, "in the dead-letter queue, never claimed"),
    (None, False, False, NOT_CLAIMED),
])
def test_each_state_in_one_line(entry, in_dlq, delivered, says):
    ok, line = status_line(entry, in_dead_letters=in_dlq, now=NOW)
    assert ok is delivered
    assert says in line
    assert "\n" not in line
