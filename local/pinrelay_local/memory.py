"""An in-memory DedupStore with DynamoDB's claim semantics, for the benchmark and unit tests."""

from __future__ import annotations

from typing import Any


class MemoryDedupStore:
    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def claim(self, claims: list[Any], now: int) -> list[bool]:
        fresh = []
        for claim in claims:
            item = self.items.get(claim.key)
            if item is None or item["expires_at"] <= now:  # expiry in the condition, as DynamoDB
                self.items[claim.key] = {"state": "queued", "expires_at": claim.expires_at, "claim_id": claim.claim_id}
                fresh.append(True)
            else:
                fresh.append(False)
        return fresh

    def release(self, claims: list[Any]) -> None:
        for claim in claims:
            if self.items.get(claim.key, {}).get("claim_id") == claim.claim_id:
                del self.items[claim.key]

    def delivery_states(self, keys: list[str]) -> dict[str, str]:
        return {key: self.items[key]["state"] for key in keys if key in self.items}

    def record_deliveries(self, records: list[Any]) -> None:
        for record in records:
            self.items[record.key] = {"state": record.state, "expires_at": record.expires_at, "error": record.error_message}
