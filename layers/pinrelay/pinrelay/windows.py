"""The time windows pinrelay's promises rest on, defined once (docs/delivery-guarantees.md,
"Windows"). No AWS imports.

* Pinterest takes an event whose ``event_time`` is at most 7 days old and at most 5 minutes ahead
  (its OpenAPI, ../shared/pinterest/openapi-events-5.23.yaml, and its 422 answers: "event_time
  ... more than 7 days"). Ingest refuses what falls outside; the sender records an event that
  passed 7 days while it waited as ``not_sent`` (reason ``too_old``).
* A ledger item is kept at least ``EVENT_LIFETIME_SECONDS`` after its claim (the dedup window,
  ``DedupWindowSeconds`` / ``OfflineDedupWindowSeconds``, floored here): every moment at which
  Pinterest would still take the event, so a copy that comes at any such moment is dropped, and
  reconcile may take "no item" for "never claimed" within it.
* Pinterest drops a web or app event repeated with the same ``event_name`` + ``event_id`` only
  within a limited time of the first (``PINTEREST_WEB_DEDUP_SECONDS``, 48 hours); offline events
  it never deduplicates. pinrelay sends a web or app event again after an attempt whose outcome
  is unknown only within ``WEB_RESEND_WINDOW_SECONDS`` of its first send, half of Pinterest's
  window, a margin for a figure read from a secondary source and for clocks; later, it is
  recorded ``uncertain`` instead.
"""

from __future__ import annotations

DAY_SECONDS = 86_400

MAX_EVENT_AGE_SECONDS = 7 * DAY_SECONDS  # Pinterest refuses an older event_time
MAX_EVENT_AHEAD_SECONDS = 300  # ... or one more than 5 minutes ahead
# the shortest dedup window that keeps the promise: an event may be accepted (and a copy of it
# come) from 5 minutes before its event_time until 7 days after it
EVENT_LIFETIME_SECONDS = MAX_EVENT_AGE_SECONDS + MAX_EVENT_AHEAD_SECONDS

# Pinterest removes a repeat of a web/app event (same event_name + event_id) within 48 hours of
# the first; pinrelay resends only within half of that after its own first send.
PINTEREST_WEB_DEDUP_SECONDS = 48 * 3600
WEB_RESEND_WINDOW_SECONDS = PINTEREST_WEB_DEDUP_SECONDS // 2


def too_old(event_time: int, now: int) -> bool:
    """Whether Pinterest would refuse ``event_time`` now: more than 7 days ago."""
    return event_time < now - MAX_EVENT_AGE_SECONDS


def too_far_ahead(event_time: int, now: int) -> bool:
    """Whether Pinterest would refuse ``event_time`` now: more than 5 minutes ahead."""
    return event_time > now + MAX_EVENT_AHEAD_SECONDS
