"""An in-memory DeliveryLedger with the DynamoDB ledger's conditions, for the benchmark and unit tests."""

from __future__ import annotations

import threading
from typing import Any

from pinrelay.ports import ClaimRequest, ClaimResult, Outcome

_CLAIMABLE_WHEN_LEASE_EXPIRED = ("claimed", "sending")


class MemoryLedger:
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
                if not self._claimable(item, now):
                    assert item is not None
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
