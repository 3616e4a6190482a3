"""DedupStore on DynamoDB.

Item: pk = "<ad account>#<event_name>#<event_id>", state, attempts, accepted_at, updated_at,
expires_at (the TTL attribute), claim_id, error_message. DynamoDB may delete an expired item days
late, so the claim's condition compares expires_at itself instead of trusting the TTL sweep.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pinrelay.ports import DedupClaim, DeliveryRecord, DeliveryState

_CLAIM_CONDITION = "attribute_not_exists(pk) OR expires_at <= :now"
# Rounds for UnprocessedItems/UnprocessedKeys and for a release, on top of botocore's own retries.
_ROUNDS = 6
_BACKOFF_BASE_SECONDS = 0.05

logger = logging.getLogger(__name__)


def _backoff(round_number: int) -> None:
    time.sleep(min(1.0, _BACKOFF_BASE_SECONDS * 2**round_number))


class DynamoDedupStore:
    def __init__(self, table_name: str, client: Any, max_workers: int = 16) -> None:
        self.table_name = table_name
        self.client = client
        self.max_workers = max_workers
        self._errors = client.exceptions

    def _claim_one(self, claim: DedupClaim, now: int) -> bool:
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={
                    "pk": {"S": claim.key},
                    "state": {"S": "queued"},
                    "attempts": {"N": "0"},
                    "accepted_at": {"N": str(claim.accepted_at)},
                    "updated_at": {"N": str(claim.accepted_at)},
                    "expires_at": {"N": str(claim.expires_at)},
                    "claim_id": {"S": claim.claim_id},
                },
                ConditionExpression=_CLAIM_CONDITION,
                ExpressionAttributeValues={":now": {"N": str(now)}},
            )
        except self._errors.ConditionalCheckFailedException:
            return False
        return True

    def claim(self, claims: list[DedupClaim], now: int) -> list[bool]:
        if len(claims) == 1:
            return [self._claim_one(claims[0], now)]
        # conditional writes cannot be batched (and a transaction fails whole): run them in parallel
        outcomes: list[bool | BaseException] = [False] * len(claims)

        def attempt(position: int) -> None:
            try:
                outcomes[position] = self._claim_one(claims[position], now)
            except BaseException as exc:  # noqa: BLE001 - collected, re-raised after releasing
                outcomes[position] = exc

        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(claims))) as pool:
            list(pool.map(attempt, range(len(claims))))
        errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if errors:
            self.release([claim for claim, outcome in zip(claims, outcomes) if outcome is True])
            raise errors[0]
        return [bool(outcome) for outcome in outcomes]

    def release(self, claims: list[DedupClaim]) -> None:
        """Delete each claim (only if still ours and still queued). A claim left behind would
        swallow the caller's retry as a duplicate, so each delete is retried harder than other
        calls; what still fails is logged with its key and the first error raised at the end."""
        failed: list[tuple[str, Exception]] = []
        for claim in claims:
            for round_number in range(_ROUNDS):
                try:
                    self.client.delete_item(
                        TableName=self.table_name,
                        Key={"pk": {"S": claim.key}},
                        ConditionExpression="claim_id = :claim AND #state = :queued",
                        ExpressionAttributeNames={"#state": "state"},
                        ExpressionAttributeValues={":claim": {"S": claim.claim_id}, ":queued": {"S": "queued"}},
                    )
                except self._errors.ConditionalCheckFailedException:
                    break
                except Exception as exc:  # noqa: BLE001 - throttling, 5xx, network: try again
                    if round_number == _ROUNDS - 1:
                        failed.append((claim.key, exc))
                    else:
                        _backoff(round_number)
                else:
                    break
        if failed:
            logger.error(
                "could not release %d dedup claims; a retry of these events answers duplicate until they expire",
                len(failed),
                extra={"keys": [key for key, _ in failed[:20]]},
            )
            raise failed[0][1]

    def delivery_states(self, keys: list[str]) -> dict[str, DeliveryState]:
        states: dict[str, DeliveryState] = {}
        for start in range(0, len(keys), 100):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [{"pk": {"S": key}} for key in keys[start : start + 100]],
                    "ProjectionExpression": "pk, #state",
                    "ExpressionAttributeNames": {"#state": "state"},
                }
            }
            round_number = 0
            while request:
                if round_number:
                    if round_number >= _ROUNDS:
                        raise RuntimeError("DynamoDB left keys unprocessed after retries")
                    _backoff(round_number)
                answer = self.client.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self.table_name, []):
                    states[item["pk"]["S"]] = item["state"]["S"]
                request = answer.get("UnprocessedKeys") or {}
                round_number += 1
        return states

    def record_deliveries(self, records: list[DeliveryRecord]) -> None:
        for start in range(0, len(records), 25):
            requests = [{"PutRequest": {"Item": self._item(record)}} for record in records[start : start + 25]]
            pending: dict[str, Any] = {self.table_name: requests}
            round_number = 0
            while pending:
                if round_number:
                    if round_number >= _ROUNDS:
                        raise RuntimeError("DynamoDB left delivery records unprocessed after retries")
                    _backoff(round_number)
                answer = self.client.batch_write_item(RequestItems=pending)
                pending = answer.get("UnprocessedItems") or {}
                round_number += 1

    @staticmethod
    def _item(record: DeliveryRecord) -> dict[str, Any]:
        item = {
            "pk": {"S": record.key},
            "state": {"S": record.state},
            "attempts": {"N": str(record.attempts)},
            "accepted_at": {"N": str(record.accepted_at)},
            "updated_at": {"N": str(record.updated_at)},
            "expires_at": {"N": str(record.expires_at)},
        }
        if record.error_message:
            item["error_message"] = {"S": record.error_message[:2000]}
        return item
