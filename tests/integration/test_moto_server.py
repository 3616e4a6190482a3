"""The local moto server keeps DynamoDB's guarantee that pinrelay's claims rely on: of several
conditional writes racing on one new key, exactly one succeeds (pinrelay_local/moto_server.py).

The races are made likely, not left to luck: the moto server runs in this process, and a switch
interval of a microsecond makes Python hand the CPU between its threads at almost every step, so
moto's read-check-write of one claim interleaves with another's (it does on a loaded CI machine too;
that is how the race was found).
"""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from pinrelay_local import moto_server
from pinrelay_local.moto_server import running_moto

ROUNDS = 50
RACERS = 8


@pytest.fixture
def frequent_thread_switches() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def rounds_with_two_winners(url: str) -> int:
    """Race RACERS claims (UpdateItem if the key does not exist) on a new key, ROUNDS times; count
    the rounds in which more than one claim succeeded."""
    def dynamodb():
        return boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                            aws_secret_access_key="testing", config=Config(retries={"max_attempts": 1}))

    table = f"ledger-{uuid.uuid4().hex}"  # moto's state is per process, not per server
    dynamodb().create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST")
    clients = [dynamodb() for _ in range(RACERS)]
    doubled = 0
    for round_number in range(ROUNDS):
        winners: list[int] = []
        start = threading.Barrier(RACERS)

        def claim(racer: int, round_number: int = round_number, start: threading.Barrier = start,
                  winners: list[int] = winners) -> None:
            client = clients[racer]
            start.wait()
            try:
                client.update_item(TableName=table, Key={"pk": {"S": f"event-{round_number}"}},
                                   UpdateExpression="SET claim_id = :me",
                                   ConditionExpression="attribute_not_exists(pk)",
                                   ExpressionAttributeValues={":me": {"S": str(racer)}})
                winners.append(racer)
            except client.exceptions.ConditionalCheckFailedException:
                pass

        threads = [threading.Thread(target=claim, args=(racer,)) for racer in range(RACERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert winners, "every round has a winner"
        doubled += len(winners) > 1
    return doubled


def test_racing_conditional_writes_have_exactly_one_winner(frequent_thread_switches):
    with running_moto() as url:
        assert rounds_with_two_winners(url) == 0


def test_without_the_lock_moto_lets_two_racing_claims_win(frequent_thread_switches, monkeypatch):
    """Why the lock is there: moto alone lets two claims win. When this fails, moto has become
    atomic and moto_server.DynamoDbCallsOneAtATime can go."""
    monkeypatch.setattr(moto_server.DynamoDbCallsOneAtATime, "__call__",
                        lambda self, environ, start_response: self.app(environ, start_response))
    with running_moto() as url:
        assert rounds_with_two_winners(url) > 0
