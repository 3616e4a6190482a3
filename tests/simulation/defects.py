"""Deliberate defects the simulation must catch: each is one decision of the delivery path gotten
wrong, as it was before issue 19 or as a careless change would get it. ``applied(name)`` puts one
into the running code for a ``with`` block; tests/simulation/test_simulation.py checks that the
simulation finds each within its seeds. docs/delivery-guarantees.md lists them with what caught them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

import pinrelay.adapters.dynamodb as ledger
import pinrelay.sender as sender
from pinrelay.sender import EventFate, Fate, SenderService


def _patch(stack: ExitStack, target: Any, name: str, value: Any) -> None:
    stack.enter_context(mock.patch.object(target, name, value))


def skip_the_lease_check(stack: ExitStack) -> None:
    """A claim takes an item whatever its lease says: two invocations send one event."""
    for name in ("_OFFLINE_CLAIM", "_WEB_CLAIM", "_LAPSED"):
        _patch(stack, ledger, name, getattr(ledger, name).replace("lease_until <= :now AND ", ""))


def drop_the_claim_id_condition(stack: ExitStack) -> None:
    """Outcomes and marks are written whoever holds the claim now: a late write (a retried give
    back) overwrites a newer claim."""
    _patch(stack, ledger, "_HOLDER", ":claim = :claim")


def treat_504_as_not_processed(stack: ExitStack) -> None:
    """Finding 1: a gateway's 504 taken as proof that nothing was processed."""
    _patch(stack, sender, "NOT_PROCESSED_STATUSES", sender.NOT_PROCESSED_STATUSES | {500, 502, 504})


def take_over_a_lapsed_offline_attempt(stack: ExitStack) -> None:
    """Finding 2: an offline claim takes a lapsed "sending" item to "claimed" (and then records it
    uncertain in a second write): dying in between forgets the attempt."""
    unsent = ledger._CLAIMED_UNSENT.replace(" AND (attribute_not_exists(prior_state) OR prior_state <> :sending)", "")
    _patch(stack, ledger, "_OFFLINE_CLAIM",
           f"attribute_not_exists(pk) OR #state = :queued OR {unsent} OR expires_at <= :now OR ({ledger._LAPSED})")


def resend_web_events_whenever(stack: ExitStack) -> None:
    """Finding 3: a web event whose outcome is unknown is sent again however long ago its first send was."""
    _patch(stack, sender, "WEB_RESEND_WINDOW_SECONDS", 10**9)


def leave_the_token_read_out_of_the_budget(stack: ExitStack) -> None:
    """Finding 4: the time check before a request does not count the token read and the mark."""
    _patch(stack, SenderService, "_attempt_seconds",
           lambda self, mark: self.request_timeout_seconds + self.after_request_seconds)


def drop_events_too_old_unrecorded(stack: ExitStack) -> None:
    """Finding 5: an event over 7 days old is dropped before its claim, with no ledger item."""
    decide = SenderService._decide

    def dropping(self: SenderService, messages: list, time_left: Callable[[], float], stats: Any) -> list:
        now = int(self.clock())
        old = [m for m in messages if sender.too_old(int(m.event.event.get("event_time", now)), now)]
        kept = [m for m in messages if m not in old]
        return [EventFate(m, Fate.DUPLICATE) for m in old] + (decide(self, kept, time_left, stats) if kept else [])

    _patch(stack, SenderService, "_decide", dropping)


def overwrite_final_states_with_not_sent(stack: ExitStack) -> None:
    """A not_sent write that does not look at what the item says."""
    _patch(stack, ledger, "_NOT_SENT_CONDITION",
           "attribute_not_exists(pk) OR attribute_exists(pk) OR #state IN (:queued, :claimed, :sending) OR :now = :now")


def give_back_as_if_nothing_was_sent(stack: ExitStack) -> None:
    """Events given back after an attempt whose outcome is unknown are written back "claimed"."""
    _patch(stack, SenderService, "_given_back_state", staticmethod(lambda item: "claimed"))


def post_offline_events_unmarked(stack: ExitStack) -> None:
    """Offline events are posted without being marked "sending" first."""
    _patch(stack, SenderService, "_mark", lambda self, pending, time_left: [])


def count_held_events_as_duplicates(stack: ExitStack) -> None:
    """An event another invocation holds is counted (and dropped) as a duplicate."""
    not_taken = SenderService._not_taken

    def as_duplicate(message: Any, result: Any) -> EventFate:
        fate = not_taken(message, result)
        return EventFate(message, Fate.DUPLICATE) if fate.fate is Fate.HELD_ELSEWHERE else fate

    _patch(stack, SenderService, "_not_taken", staticmethod(as_duplicate))


DEFECTS: dict[str, Callable[[ExitStack], None]] = {
    "skip_the_lease_check": skip_the_lease_check,
    "drop_the_claim_id_condition": drop_the_claim_id_condition,
    "504_not_processed": treat_504_as_not_processed,
    "takeover_forgets_the_attempt": take_over_a_lapsed_offline_attempt,
    "resend_web_events_whenever": resend_web_events_whenever,
    "token_read_not_budgeted": leave_the_token_read_out_of_the_budget,
    "too_old_dropped_unrecorded": drop_events_too_old_unrecorded,
    "not_sent_overwrites_final": overwrite_final_states_with_not_sent,
    "give_back_forgets_the_attempt": give_back_as_if_nothing_was_sent,
    "offline_posted_unmarked": post_offline_events_unmarked,
    "held_counted_as_duplicate": count_held_events_as_duplicates,
}


@contextmanager
def applied(name: str | None) -> Iterator[None]:
    """The running code with the defect ``name`` in it (None: as it is)."""
    with ExitStack() as stack:
        if name is not None:
            DEFECTS[name](stack)
        yield
