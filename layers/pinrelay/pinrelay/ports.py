"""Interfaces the domain needs from the outside world; adapters implement them.

Kept as Protocols so the domain is tested with in-memory fakes in microseconds and with the
real adapters (DynamoDB, SQS, HTTP) against moto and a real HTTP server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

DeliveryState = Literal["queued", "delivered", "rejected"]


@dataclass(frozen=True, slots=True)
class DedupClaim:
    key: str
    accepted_at: int
    expires_at: int
    claim_id: str  # who claimed it: lets a failed enqueue release only its own claim


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    key: str
    state: DeliveryState
    attempts: int
    accepted_at: int
    expires_at: int
    updated_at: int
    error_message: str | None = None


class DedupStore(Protocol):
    def claim(self, claims: list[DedupClaim], now: int) -> list[bool]:
        """Claim each key for the dedup window; True where it was free (or expired), False for a duplicate."""

    def release(self, claims: list[DedupClaim]) -> None:
        """Undo claims whose event could not be queued, so the caller's retry is not a duplicate."""

    def delivery_states(self, keys: list[str]) -> dict[str, DeliveryState]:
        """The recorded state of each known key."""

    def record_deliveries(self, records: list[DeliveryRecord]) -> None:
        """Record what Pinterest did with each event."""


class EventQueue(Protocol):
    def send(self, bodies: list[str]) -> list[int]:
        """Queue one message per body; return the indexes that could not be queued."""


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """What came back from one Pinterest call; ``status`` is None when no answer came."""

    status: int | None
    body: Any = None  # parsed JSON, or None
    text: str = ""
    retry_after: float | None = None
    transport_error: str | None = None


class PinterestApi(Protocol):
    def post_events(self, ad_account_id: str, events: list[dict[str, Any]], test: bool) -> HttpAnswer: ...
