"""In-memory implementations of the domain's ports, for unit tests."""

from __future__ import annotations

from pinrelay.ports import DedupClaim, DeliveryRecord, HttpAnswer
from pinrelay_local.memory import MemoryDedupStore


class InMemoryDedupStore(MemoryDedupStore):
    """The in-memory store, able to fail its claims and remembering what was recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_claims = False
        self.recorded: list[DeliveryRecord] = []

    def claim(self, claims: list[DedupClaim], now: int) -> list[bool]:
        if self.fail_claims:
            raise RuntimeError("throttled")
        return super().claim(claims, now)

    def record_deliveries(self, records: list[DeliveryRecord]) -> None:
        self.recorded.extend(records)
        super().record_deliveries(records)


class ListQueue:
    def __init__(self, fail_positions: set[int] | None = None, raise_error: bool = False) -> None:
        self.bodies: list[str] = []
        self.fail_positions = fail_positions or set()
        self.raise_error = raise_error

    def send(self, bodies: list[str]) -> list[int]:
        if self.raise_error:
            raise RuntimeError("sqs down")
        failed = []
        for position, body in enumerate(bodies):
            if position in self.fail_positions:
                failed.append(position)
            else:
                self.bodies.append(body)
        return failed


class ScriptedPinterestApi:
    """Answers from a script; each item an HttpAnswer or a callable(events) -> HttpAnswer."""

    def __init__(self, *script) -> None:
        self.script = list(script)
        self.calls: list[tuple[str, list[dict], bool]] = []

    def post_events(self, ad_account_id, events, test) -> HttpAnswer:
        self.calls.append((ad_account_id, list(events), test))
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        return step(events) if callable(step) else step


def all_processed(events) -> HttpAnswer:
    return HttpAnswer(
        status=200,
        body={"num_events_received": len(events), "num_events_processed": len(events),
              "events": [{"status": "processed", "error_message": None, "warning_message": None} for _ in events]},
    )
