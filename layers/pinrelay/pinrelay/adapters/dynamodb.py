"""DeliveryLedger on DynamoDB: one item per event, every write conditional.

Item: pk = "<ad account>#<event_name>#<event_id>", state (ports.LedgerState), claim_id (the
invocation holding or last holding it), lease_until, attempts, accepted_at, updated_at,
expires_at (the TTL attribute: the end of the dedup window), first_sent_at (when the first
request that may have reached Pinterest went out), error_message (Pinterest's, for rejected; the
reason in words, for uncertain and not_sent), reason (a short code, for not_sent and uncertain),
prior_state (what the item said when the current claim took it).

Why each write is shaped as it is:
- A claim is an UpdateItem whose condition is the only atomic guard against two invocations
  sending one event: the key is new, or its dedup window has ended (compared here, because
  DynamoDB's TTL sweep deletes days late), or it was given back, or its lease has expired on an
  item nothing of which can have reached Pinterest. An item left ``sending`` by a dead attempt is
  taken over only by a web or app event whose first send is recent enough for Pinterest to drop
  the repeat; otherwise the claim fails, says ``lapsed``, and the sender records it
  ``uncertain`` with a settlement, one conditional write that never passes through a state that
  forgets the attempt (an offline event is never taken from ``sending`` to ``claimed``).
- The claim copies the old state into ``prior_state`` in the same write, and every later write
  requires ``claim_id`` to be this invocation's. So when an answer is lost and botocore sends
  the write again, the condition fails on our own applied write, the item read back (returned
  with the failure) shows our ``claim_id``, and we carry on with what that item says, the prior
  state included: a lost answer never turns into a wrong decision.
- Conditional writes cannot be batched (BatchWriteItem takes no condition, a transaction costs
  double), so they run in parallel threads; none is started when its worst case would not end
  inside the invocation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from pinrelay.ports import ClaimRequest, ClaimResult, Deadline, Outcome, Settlement

T = TypeVar("T")
R = TypeVar("R")

# Items of the ingest-side design before it (state "queued", claimed at ingest, no lease) may still
# be in the table for messages queued before an upgrade: such an item is claimable, never a duplicate.
_LEGACY_QUEUED = "queued"
# a lease that ran out on an attempt that may have reached Pinterest: "sending", or (left by a
# version before this one) "claimed" by a takeover of a "sending" item
_LAPSED = ("lease_until <= :now AND (#state = :sending OR (#state = :claimed AND prior_state = :sending))")
# a lease that ran out with nothing of the event sent (no attempt, or only attempts Pinterest
# answered as not processed)
_CLAIMED_UNSENT = ("(#state = :claimed AND lease_until <= :now"
                   " AND (attribute_not_exists(prior_state) OR prior_state <> :sending))")
_NOTHING_SENT = f"attribute_not_exists(pk) OR #state = :queued OR {_CLAIMED_UNSENT}"
_OFFLINE_CLAIM = f"{_NOTHING_SENT} OR expires_at <= :now"
# a web or app event may take over a lapsed "sending" item while Pinterest still drops the repeat
# (the first send after :resend_after; items written before first_sent_at existed: accepted_at)
_WEB_CLAIM = (f"{_OFFLINE_CLAIM} OR ({_LAPSED} AND (first_sent_at > :resend_after"
              " OR (attribute_not_exists(first_sent_at) AND accepted_at > :resend_after)))")
_CLAIM_SET = (
    "SET prior_state = if_not_exists(#state, :none), prior_expires_at = if_not_exists(expires_at, :zero),"
    " #state = :state, claim_id = :claim, lease_until = :lease, accepted_at = :accepted,"
    " updated_at = :now, expires_at = :expires"
)
_CLAIM_END = " ADD attempts :one REMOVE error_message, reason"
# web and app events are claimed straight as "sending": the claim is their first send's mark
_OFFLINE_CLAIM_UPDATE = _CLAIM_SET + _CLAIM_END
_WEB_CLAIM_UPDATE = _CLAIM_SET + ", first_sent_at = if_not_exists(first_sent_at, :now)" + _CLAIM_END
# an event never sent is recorded only where no attempt can have reached Pinterest and no final
# state is recorded, whatever the dedup window says (an expired "delivered" stays what it was)
_NOT_SENT_CONDITION = _NOTHING_SENT
_SETTLE_UPDATE = (
    "SET prior_state = if_not_exists(#state, :none), #state = :state, claim_id = :claim, updated_at = :now,"
    " reason = :reason, error_message = :message, accepted_at = if_not_exists(accepted_at, :accepted),"
    " expires_at = :expires REMOVE lease_until"
)
# every write after the claim is made under it: a late writer never overwrites a newer claim
_HOLDER = "claim_id = :claim"
_STATE_VALUES = {":claimed": {"S": "claimed"}, ":sending": {"S": "sending"}, ":queued": {"S": _LEGACY_QUEUED}}  # claims

# an outcome is Pinterest's answer, known nowhere else: its write is tried again, for a while
_RECORD_ROUNDS = 4
_RECORD_BACKOFF_SECONDS = 1.0

logger = logging.getLogger(__name__)


class OutOfTime(RuntimeError):
    """Not started: the call could not end before the invocation must finish."""


class DynamoDeliveryLedger:
    def __init__(self, table_name: str, client: Any, worst_call_seconds: float, margin_seconds: float = 1.0,
                 max_workers: int = 16, sleep: Callable[[float], None] = time.sleep) -> None:
        self.table_name = table_name
        self.client = client
        self.worst_call_seconds = worst_call_seconds
        self.margin_seconds = margin_seconds
        self.max_workers = max_workers
        self.sleep = sleep
        self._errors = client.exceptions

    # -- helpers -------------------------------------------------------------------------
    def _parallel(self, items: list[T], call: Callable[[T], R]) -> list[R]:
        if len(items) <= 1 or self.max_workers <= 1:
            return [call(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(items))) as pool:
            return list(pool.map(call, items))

    def _has_time(self, time_left: Deadline, then: float = 0.0) -> bool:
        """Whether a call started after ``then`` seconds more would end inside the invocation."""
        return time_left() >= then + self.worst_call_seconds + self.margin_seconds

    def _check_time(self, time_left: Deadline) -> None:
        if not self._has_time(time_left):
            raise OutOfTime("no time left in this invocation for another DynamoDB call")

    def _conditional_update(self, key: str, **kwargs: Any) -> dict[str, Any] | None:
        """UpdateItem; None when the condition failed (then the item, as it is, under 'failed')."""
        try:
            self.client.update_item(TableName=self.table_name, Key={"pk": {"S": key}},
                                    ReturnValuesOnConditionCheckFailure="ALL_OLD", **kwargs)
        except self._errors.ConditionalCheckFailedException as exc:
            return {"failed": exc.response.get("Item") or {}}
        return None

    @staticmethod
    def _refused(key: str, item: dict[str, Any], now: int) -> ClaimResult:
        """A claim or settlement whose condition failed on someone else's item."""
        state = _s(item, "state")
        lapsed = _n(item, "lease_until") <= now and (
            state == "sending" or (state == "claimed" and _s(item, "prior_state") == "sending"))
        return ClaimResult(key, won=False, current_state=state, lapsed=lapsed)

    # -- claims --------------------------------------------------------------------------
    def _claim_one(self, request: ClaimRequest, claim_id: str, now: int, time_left: Deadline) -> ClaimResult:
        web = request.state == "sending"
        values = {
            ":now": {"N": str(now)}, ":state": {"S": request.state}, ":claim": {"S": claim_id},
            ":lease": {"N": str(request.lease_until)}, ":accepted": {"N": str(request.accepted_at)},
            ":expires": {"N": str(request.expires_at)}, ":one": {"N": "1"}, ":none": {"S": "none"},
            ":zero": {"N": "0"}, **_STATE_VALUES,
        }
        if web and request.resend_after is not None:
            condition = _WEB_CLAIM
            values[":resend_after"] = {"N": str(request.resend_after)}
        else:
            condition = _OFFLINE_CLAIM
        try:
            self._check_time(time_left)
            answer = self.client.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": request.key}},
                UpdateExpression=_WEB_CLAIM_UPDATE if web else _OFFLINE_CLAIM_UPDATE,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=values,
                # the item as it was: what the claim took it from (UPDATED_NEW would leave out an
                # attribute the write did not change, as moto does, e.g. prior_state sending -> sending)
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._errors.ConditionalCheckFailedException as exc:
            item = exc.response.get("Item") or {}
            if _s(item, "claim_id") == claim_id:  # our own claim, applied before its answer was lost
                return ClaimResult(request.key, won=True, prior_state=_live(item, "prior_state", "prior_expires_at", now))
            return self._refused(request.key, item, now)
        except Exception as exc:  # noqa: BLE001 - throttled, unavailable, out of time: try the event later
            return ClaimResult(request.key, won=False, error=type(exc).__name__)
        return ClaimResult(request.key, won=True, prior_state=_live(answer.get("Attributes") or {}, "state", "expires_at", now))

    def claim(self, requests: list[ClaimRequest], claim_id: str, now: int, time_left: Deadline) -> list[ClaimResult]:
        return self._parallel(requests, lambda request: self._claim_one(request, claim_id, now, time_left))

    # -- final states without a claim ------------------------------------------------------
    def _settle_one(self, settlement: Settlement, claim_id: str, now: int, time_left: Deadline) -> ClaimResult:
        condition = _NOT_SENT_CONDITION if settlement.state == "not_sent" else _LAPSED
        try:
            self._check_time(time_left)
            failed = self._conditional_update(
                settlement.key,
                UpdateExpression=_SETTLE_UPDATE,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":now": {"N": str(now)}, ":state": {"S": settlement.state}, ":claim": {"S": claim_id},
                    ":reason": {"S": settlement.reason}, ":message": {"S": settlement.message[:2000]},
                    ":accepted": {"N": str(settlement.accepted_at)}, ":expires": {"N": str(settlement.expires_at)},
                    ":none": {"S": "none"}, ":claimed": {"S": "claimed"}, ":sending": {"S": "sending"},
                    **({":queued": {"S": _LEGACY_QUEUED}} if settlement.state == "not_sent" else {}),
                },
            )
        except Exception as exc:  # noqa: BLE001
            return ClaimResult(settlement.key, won=False, error=type(exc).__name__)
        if failed is None:
            return ClaimResult(settlement.key, won=True)
        item = failed["failed"]
        if _s(item, "claim_id") == claim_id and _s(item, "state") == settlement.state:  # ours, answer lost
            return ClaimResult(settlement.key, won=True)
        return self._refused(settlement.key, item, now)

    def settle(self, settlements: list[Settlement], claim_id: str, now: int, time_left: Deadline) -> list[ClaimResult]:
        return self._parallel(settlements, lambda settlement: self._settle_one(settlement, claim_id, now, time_left))

    # -- claimed -> sending --------------------------------------------------------------
    def _mark_one(self, key: str, claim_id: str, now: int, time_left: Deadline) -> bool:
        try:
            self._check_time(time_left)
            failed = self._conditional_update(
                key,
                UpdateExpression="SET #state = :sending, updated_at = :now, first_sent_at = if_not_exists(first_sent_at, :now)",
                ConditionExpression=f"{_HOLDER} AND #state = :claimed",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":sending": {"S": "sending"}, ":claimed": {"S": "claimed"},
                                           ":claim": {"S": claim_id}, ":now": {"N": str(now)}},
            )
        except Exception as exc:  # noqa: BLE001
            logger.warning("could not mark an event sending: %s", type(exc).__name__)
            return False
        if failed is None:
            return True
        item = failed["failed"]  # ours already (a retry of an applied write), or someone else's now
        return _s(item, "claim_id") == claim_id and _s(item, "state") == "sending"

    def mark_sending(self, keys: list[str], claim_id: str, now: int, time_left: Deadline) -> list[str]:
        marked = self._parallel(keys, lambda key: self._mark_one(key, claim_id, now, time_left))
        return [key for key, ok in zip(keys, marked, strict=True) if not ok]

    # -- outcomes ------------------------------------------------------------------------
    def _record_one(self, outcome: Outcome, claim_id: str, time_left: Deadline) -> bool | None:
        """True: written; False: another invocation has claimed the event since; None: DynamoDB
        did not take the write (throttled, unavailable, out of time): worth another try."""
        names = {"#state": "state"}
        values: dict[str, Any] = {":state": {"S": outcome.state}, ":claim": {"S": claim_id},
                                  ":now": {"N": str(outcome.updated_at)}}
        if outcome.state == "claimed":  # give the lease back: nothing of the event reached Pinterest
            update = "SET #state = :state, updated_at = :now, lease_until = :now REMOVE first_sent_at"
        elif outcome.state == "sending":  # give it back: a request with it may have reached Pinterest
            update = "SET #state = :state, updated_at = :now, lease_until = :now"
        else:
            update = "SET #state = :state, updated_at = :now REMOVE lease_until"
        if outcome.error_message:
            update = update.replace("SET ", "SET error_message = :error, ", 1)
            values[":error"] = {"S": outcome.error_message[:2000]}
        if outcome.reason:
            update = update.replace("SET ", "SET reason = :reason, ", 1)
            values[":reason"] = {"S": outcome.reason}
        try:
            self._check_time(time_left)
            failed = self._conditional_update(
                outcome.key, UpdateExpression=update, ConditionExpression=_HOLDER,
                ExpressionAttributeNames=names, ExpressionAttributeValues=values,
            )
        except Exception as exc:  # noqa: BLE001
            logger.warning("could not record an outcome: %s", type(exc).__name__)
            return None
        if failed is not None:
            logger.error("outcome not recorded: another invocation has claimed the event since")
            return False
        return True

    def record(self, outcomes: list[Outcome], claim_id: str, time_left: Deadline) -> list[str]:
        """Write the outcomes; those DynamoDB did not take are tried again after 1, 2, 4 s while
        the invocation has time (botocore's own retries last ~3 s: a short throttle or outage
        would otherwise leave an event Pinterest has recorded as ``sending``)."""
        pending, refused = list(outcomes), []
        for round_number in range(_RECORD_ROUNDS):
            written = self._parallel(pending, lambda outcome: self._record_one(outcome, claim_id, time_left))
            refused += [o.key for o, ok in zip(pending, written, strict=True) if ok is False]
            pending = [o for o, ok in zip(pending, written, strict=True) if ok is None]
            delay = _RECORD_BACKOFF_SECONDS * 2**round_number
            if not pending or not self._has_time(time_left, then=delay):
                break
            self.sleep(delay)
        return refused + [o.key for o in pending]

    # -- reads (operators, tests) ------------------------------------------------------------
    def states(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        items: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), 100):
            request: dict[str, Any] = {self.table_name: {"Keys": [{"pk": {"S": key}} for key in keys[start : start + 100]],
                                                         "ConsistentRead": True}}
            while request:
                answer = self.client.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self.table_name, []):
                    items[item["pk"]["S"]] = plain_item(item)
                request = answer.get("UnprocessedKeys") or {}
        return items


def _s(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return value.get("S") if value else None


def _n(item: dict[str, Any], name: str) -> int:
    value = item.get(name)
    return int(value["N"]) if value and "N" in value else 0


def _live(item: dict[str, Any], state_name: str, expires_name: str, now: int) -> str | None:
    """The state an item had, None when there was no item or its dedup window had ended."""
    state = _s(item, state_name)
    if state in (None, "none") or _n(item, expires_name) <= now:
        return None
    return state


def plain_item(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as plain values (numbers as int)."""
    out: dict[str, Any] = {}
    for name, value in item.items():
        if "S" in value:
            out[name] = value["S"]
        elif "N" in value:
            out[name] = int(value["N"])
        elif "BOOL" in value:
            out[name] = value["BOOL"]
    return out
