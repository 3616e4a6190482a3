"""In-memory implementations of the domain's ports, for unit tests."""

from __future__ import annotations

import threading
from typing import Any

from pinrelay.ports import ClaimRequest, ClaimResult, HttpAnswer, Outcome, QueueRefusal

_CLAIMABLE_WHEN_LEASE_EXPIRED = ("claimed", "sending")


class MemoryLedger:
    """The DynamoDB ledger's conditions (adapters/dynamodb.py), in a dict."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def _claimable(self, item: dict[str, Any] | None, now: int) -> bool:
        return (item is None or item["expires_at"] <= now or item["state"] == "queued"
                or (item["state"] in _CLAIMABLE_WHEN_LEASE_EXPIRED and item.get("lease_until", 0) <= now))

    def claim(self, requests: list[ClaimRequest], claim_id: str, now: int, time_left: Any) -> list[ClaimResult]:
        results = []
        with self._lock:
            for request in requests:
                item = self.items.get(request.key)
                if item is not None and not self._claimable(item, now):
                    if item.get("claim_id") == claim_id:
                        results.append(ClaimResult(request.key, won=True, prior_state=item.get("prior_state")))
                    else:
                        results.append(ClaimResult(request.key, won=False, current_state=item["state"]))
                    continue
                prior = None if item is None or item["expires_at"] <= now else item["state"]
                self.items[request.key] = {
                    "state": request.state, "claim_id": claim_id, "lease_until": request.lease_until,
                    "expires_at": request.expires_at, "accepted_at": request.accepted_at, "updated_at": now,
                    "attempts": (item or {}).get("attempts", 0) + 1, "prior_state": prior,
                }
                results.append(ClaimResult(request.key, won=True, prior_state=prior))
        return results

    def mark_sending(self, keys: list[str], claim_id: str, now: int, time_left: Any) -> list[str]:
        unmarked = []
        with self._lock:
            for key in keys:
                item = self.items.get(key)
                if item is None or item.get("claim_id") != claim_id or item["state"] not in ("claimed", "sending"):
                    unmarked.append(key)
                else:
                    item.update(state="sending", updated_at=now)
        return unmarked

    def record(self, outcomes: list[Outcome], claim_id: str, time_left: Any) -> list[str]:
        failed = []
        with self._lock:
            for outcome in outcomes:
                item = self.items.get(outcome.key)
                if item is None or item.get("claim_id") != claim_id:
                    failed.append(outcome.key)
                    continue
                item.update(state=outcome.state, updated_at=outcome.updated_at)
                if outcome.error_message:
                    item["error_message"] = outcome.error_message
                if outcome.state in ("claimed", "sending"):
                    item["lease_until"] = outcome.updated_at
                else:
                    item.pop("lease_until", None)
        return failed

    def states(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {key: dict(self.items[key]) for key in keys if key in self.items}



class InMemoryLedger(MemoryLedger):
    """The in-memory ledger, able to fail its calls and remembering every outcome written."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_claims = False
        self.fail_records = False
        self.fail_marks = False
        self.recorded: list = []
        self.claims: list = []

    def claim(self, requests, claim_id, now, time_left):
        self.claims.extend(requests)
        if self.fail_claims:
            from pinrelay.ports import ClaimResult

            return [ClaimResult(request.key, won=False, error="ThrottlingException") for request in requests]
        return super().claim(requests, claim_id, now, time_left)

    def mark_sending(self, keys, claim_id, now, time_left):
        if self.fail_marks:
            return list(keys)
        return super().mark_sending(keys, claim_id, now, time_left)

    def record(self, outcomes, claim_id, time_left):
        if self.fail_records:
            return [outcome.key for outcome in outcomes]
        failed = super().record(outcomes, claim_id, time_left)
        self.recorded.extend(outcome for outcome in outcomes if outcome.key not in failed)
        return failed


class ListQueue:
    def __init__(self, fail_positions: set[int] | None = None, raise_error: bool = False,
                 refuse_positions: set[int] | None = None) -> None:
        self.bodies: list[str] = []
        self.fail_positions = fail_positions or set()  # not queued, try later
        self.refuse_positions = refuse_positions or set()  # refused as the sender's fault
        self.raise_error = raise_error

    def send(self, bodies: list[str], time_left=None) -> list[QueueRefusal]:
        if self.raise_error:
            raise RuntimeError("sqs down")
        refusals = []
        for position, body in enumerate(bodies):
            if position in self.fail_positions:
                refusals.append(QueueRefusal(position, False, "ServiceUnavailable"))
            elif position in self.refuse_positions:
                refusals.append(QueueRefusal(position, True, "InvalidParameterValue"))
            else:
                self.bodies.append(body)
        return refusals


class ScriptedPinterestApi:
    """Answers from a script; each item an HttpAnswer or a callable(events) -> HttpAnswer."""

    def __init__(self, *script) -> None:
        self.script = list(script)
        self.calls: list[tuple[str, list[dict], bool]] = []
        self.forgotten: list[str] = []

    def post_events(self, ad_account_id, events, test) -> HttpAnswer:
        self.calls.append((ad_account_id, list(events), test))
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        return step(events) if callable(step) else step

    def forget_token(self, ad_account_id) -> None:
        self.forgotten.append(ad_account_id)

    def prepare(self, ad_account_id):
        return self.not_ready

    not_ready: str | None = None  # set to a reason to make prepare() fail


def all_processed(events) -> HttpAnswer:
    return HttpAnswer(
        status=200,
        body={"num_events_received": len(events), "num_events_processed": len(events),
              "events": [{"status": "processed", "error_message": None, "warning_message": None} for _ in events]},
    )
