"""DeliveryLedger on DynamoDB: one item per event, every write conditional.

Item: pk = "<ad account>#<event_name>#<event_id>", state (ports.LedgerState), claim_id (the
invocation holding or last holding it), lease_until, attempts, accepted_at, updated_at,
expires_at (the TTL attribute: the end of the dedup window), error_message (Pinterest's, for
rejected), prior_state (what the item said when the current claim took it).

Why each write is shaped as it is:
- A claim is an UpdateItem whose condition is the only atomic guard against two invocations
  sending one event: the key is new, or its dedup window has ended (compared here, because
  DynamoDB's TTL sweep deletes days late), or its lease has expired.
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

from pinrelay.ports import ClaimRequest, ClaimResult, Deadline, Outcome

T = TypeVar("T")
R = TypeVar("R")

# Items of the ingest-side design before it (state "queued", claimed at ingest, no lease) may still
# be in the table for messages queued before an upgrade: such an item is claimable, never a duplicate.
_LEGACY_QUEUED = "queued"
_CLAIM_CONDITION = (
    "attribute_not_exists(pk) OR expires_at <= :now OR #state = :queued"
    " OR (#state IN (:claimed, :sending) AND lease_until <= :now)"
)
_CLAIM_UPDATE = (
    "SET prior_state = if_not_exists(#state, :none), prior_expires_at = if_not_exists(expires_at, :zero),"
    " #state = :state, claim_id = :claim, lease_until = :lease, accepted_at = :accepted,"
    " updated_at = :now, expires_at = :expires ADD attempts :one REMOVE error_message"
)

# an outcome is Pinterest's answer, known nowhere else: its write is tried again, for a while
_RECORD_ROUNDS = 4
_RECORD_BACKOFF_SECONDS = 1.0

logger = logging.getLogger(__name__)


class OutOfTime(RuntimeError):
    """Not started: the call could not end before the invocation must finish."""


class DynamoDeliveryLedger:
    def __init__(self, table_name: str, client: Any, worst_call_seconds: float, margin_seconds: float = 1.0,
                 max_workers: int = 16) -> None:
        self.table_name = table_name
        self.client = client
        self.worst_call_seconds = worst_call_seconds
        self.margin_seconds = margin_seconds
        self.max_workers = max_workers
        self._errors = client.exceptions

    # -- helpers -------------------------------------------------------------------------
    def _parallel(self, items: list[T], call: Callable[[T], R]) -> list[R]:
        if len(items) <= 1:
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

    # -- claims --------------------------------------------------------------------------
    def _claim_one(self, request: ClaimRequest, claim_id: str, now: int, time_left: Deadline) -> ClaimResult:
        try:
            self._check_time(time_left)
            answer = self.client.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": request.key}},
                UpdateExpression=_CLAIM_UPDATE,
                ConditionExpression=_CLAIM_CONDITION,
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":now": {"N": str(now)}, ":state": {"S": request.state}, ":claim": {"S": claim_id},
                    ":lease": {"N": str(request.lease_until)}, ":accepted": {"N": str(request.accepted_at)},
                    ":expires": {"N": str(request.expires_at)}, ":one": {"N": "1"}, ":none": {"S": "none"},
                    ":zero": {"N": "0"}, ":queued": {"S": _LEGACY_QUEUED}, ":claimed": {"S": "claimed"},
                    ":sending": {"S": "sending"},
                },
                ReturnValues="UPDATED_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._errors.ConditionalCheckFailedException as exc:
            item = exc.response.get("Item") or {}
            if _s(item, "claim_id") == claim_id:  # our own claim, applied before its answer was lost
                return ClaimResult(request.key, won=True, prior_state=_prior(item, now))
            return ClaimResult(request.key, won=False, current_state=_s(item, "state"))
        except Exception as exc:  # noqa: BLE001 - throttled, unavailable, out of time: try the event later
            return ClaimResult(request.key, won=False, error=type(exc).__name__)
        return ClaimResult(request.key, won=True, prior_state=_prior(answer.get("Attributes") or {}, now))

    def claim(self, requests: list[ClaimRequest], claim_id: str, now: int, time_left: Deadline) -> list[ClaimResult]:
        return self._parallel(requests, lambda request: self._claim_one(request, claim_id, now, time_left))

    # -- claimed -> sending --------------------------------------------------------------
    def _mark_one(self, key: str, claim_id: str, now: int, time_left: Deadline) -> bool:
        try:
            self._check_time(time_left)
            failed = self._conditional_update(
                key,
                UpdateExpression="SET #state = :sending, updated_at = :now",
                ConditionExpression="claim_id = :claim AND #state = :claimed",
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
        if outcome.state in ("claimed", "sending"):  # give the lease back: another invocation may take it now
            update = "SET #state = :state, updated_at = :now, lease_until = :now"
        else:
            update = "SET #state = :state, updated_at = :now REMOVE lease_until"
        if outcome.error_message:
            update = update.replace("SET ", "SET error_message = :error, ", 1)
            values[":error"] = {"S": outcome.error_message[:2000]}
        try:
            self._check_time(time_left)
            failed = self._conditional_update(
                outcome.key, UpdateExpression=update, ConditionExpression="claim_id = :claim",
                ExpressionAttributeNames=names, ExpressionAttributeValues=values,
            )
        except Exception as exc:  # noqa: BLE001
            logger.warning("could not record an outcome: %s", type(exc).__name__)
            return None
        if failed is not None:
            logger.error("outcome not recorded: another invocation has claimed the event since")
            return False
        return True

    def record(self, outcomes: list[Outcome], claim_id: str, time_left: Deadline,
               sleep: Callable[[float], None] = time.sleep) -> list[str]:
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
            sleep(delay)
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


def _prior(item: dict[str, Any], now: int) -> str | None:
    """The state the claim found, None when there was no item or its dedup window had ended."""
    state = _s(item, "prior_state")
    expires = int(item.get("prior_expires_at", {}).get("N", "0"))
    if state in (None, "none") or expires <= now:
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
