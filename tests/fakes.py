"""In-memory implementations of the domain's ports, for unit tests."""

from __future__ import annotations

from typing import Any

from pinrelay.adapters.dynamodb import DynamoDeliveryLedger
from pinrelay.ports import HttpAnswer, QueueRefusal
from tests.simulation.dynamodb import SimulatedDynamoDB


class InMemoryLedger(DynamoDeliveryLedger):
    """The DynamoDB ledger itself (its conditions, in pinrelay.adapters.dynamodb) on a table in
    memory that evaluates them as DynamoDB does; able to fail its calls, remembering every outcome
    written. One call at a time, no waiting between record rounds."""

    def __init__(self) -> None:
        self.table = SimulatedDynamoDB()
        super().__init__("ledger", self.table, worst_call_seconds=12.0, max_workers=1, sleep=lambda seconds: None)
        self.fail_claims = False
        self.fail_records = False
        self.fail_marks = False
        self.recorded: list = []
        self.claims: list = []

    @property
    def items(self) -> dict[str, dict[str, Any]]:
        """Every item, as plain values."""
        return {key: self.table.plain(key) for key in self.table.items}

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
