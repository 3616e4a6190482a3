"""The simulated DynamoDB table (tests/simulation/dynamodb.py) answers the delivery ledger as moto
server does: the same random sequences of claims, settlements, marks and outcomes, through the real
DynamoDeliveryLedger, on both; every answer and every stored item must agree. The unit tests and the
simulation run the ledger on the simulated table, so this is what makes their verdicts about
DynamoDB's conditions worth something."""

import random

import pytest

from pinrelay.adapters.dynamodb import DynamoDeliveryLedger
from pinrelay.ports import ClaimRequest, Outcome, Settlement
from tests.simulation.dynamodb import SimulatedDynamoDB

NOW = 1_000_000
WINDOW = 7 * 86400 + 300


def plenty():
    return 600.0


def random_operation(rng: random.Random, now: int) -> tuple[str, list, str, int]:
    key = f"k{rng.randrange(6)}"
    claim_id = rng.choice(["inv-1", "inv-2", "inv-3"])
    kind = rng.choice(["claim", "claim", "settle", "mark", "record", "record"])
    if kind == "claim":
        web = rng.random() < 0.5
        request = ClaimRequest(key, "sending" if web else "claimed", now + rng.choice([-5, 60, 600]),
                               now + rng.choice([100, WINDOW]), now - 5,
                               now - rng.choice([60, 86400]) if web else None)
        return kind, [request], claim_id, now
    if kind == "settle":
        state = rng.choice(["not_sent", "uncertain"])
        return kind, [Settlement(key, state, "too_old" if state == "not_sent" else "unanswered", "why", now, now + WINDOW,
                                 now - 5)], claim_id, now
    if kind == "mark":
        return kind, [key], claim_id, now
    state = rng.choice(["delivered", "rejected", "uncertain", "claimed", "sending"])
    return kind, [Outcome(key, state, now, "message" if state == "rejected" else None,
                          "unanswered" if state == "uncertain" else None)], claim_id, now


def run(ledger: DynamoDeliveryLedger, operation: tuple[str, list, str, int]):
    kind, items, claim_id, now = operation
    if kind == "claim":
        return ledger.claim(items, claim_id, now, plenty)
    if kind == "settle":
        return ledger.settle(items, claim_id, now, plenty)
    if kind == "mark":
        return ledger.mark_sending(items, claim_id, now, plenty)
    return ledger.record(items, claim_id, plenty)


@pytest.mark.parametrize("seed", range(4))
def test_the_simulated_table_answers_the_ledger_as_moto_server_does(aws, dedup_table, seed):
    rng = random.Random(seed)
    on_moto = DynamoDeliveryLedger(dedup_table, aws["dynamodb"], worst_call_seconds=12, sleep=lambda s: None)
    simulated = SimulatedDynamoDB()
    in_memory = DynamoDeliveryLedger("ledger", simulated, worst_call_seconds=12, max_workers=1, sleep=lambda s: None)
    now = NOW
    for step in range(150):
        now += rng.choice([0, 1, 30, 90, 3600, 26 * 3600])
        operation = random_operation(rng, now)
        assert run(on_moto, operation) == run(in_memory, operation), (seed, step, operation)
    keys = [f"k{i}" for i in range(6)]
    assert on_moto.states(keys) == in_memory.states(keys)
