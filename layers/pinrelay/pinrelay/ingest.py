"""Ingest: validate, normalise and hash, claim the dedup key, queue. No AWS imports.

Order of effects for the accepted events of one request:
1. claim each dedup key (conditional write; a live claim answers ``duplicate``);
2. queue one message per claimed event;
3. if queueing fails for some, release exactly those claims and report an error, so the
   sender's retry (Shopify, WooCommerce, the shop's backend) is not swallowed as a duplicate.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import to_json

from pinrelay.events import EventRejected, PreparedEvent, dedup_key, prepare_api_events
from pinrelay.models import EventResult
from pinrelay.ports import DedupClaim, DedupStore, EventQueue
from pinrelay.privacy import LdpPolicy, apply_ldp, match_keys

MAX_EVENTS_PER_REQUEST = 1000
# pydantic-core's JSON writer (Rust, already loaded with pydantic): compact, UTF-8 as is, and
# ~3.5x faster than json.dumps(separators=(",", ":"), ensure_ascii=False) on these messages, with
# the same bytes for them (tests/unit/test_ingest_fast_paths.py compares both)
def _MESSAGE_JSON(message: dict[str, Any]) -> str:  # noqa: N802 - a constant-like encoder
    return to_json(message).decode()

logger = logging.getLogger(__name__)


class IngestUnavailable(RuntimeError):
    """AWS could not take the events now; answer 5xx so the caller retries."""


@dataclass(slots=True)
class IngestOutcome:
    results: list[EventResult] = field(default_factory=list)
    unreleased_claims: int = 0  # claims left behind when SQS and then DynamoDB failed

    def count(self, status: str) -> int:
        return sum(1 for result in self.results if result.status == status)

    @property
    def any_valid(self) -> bool:
        return any(result.status != "rejected" for result in self.results)

    @property
    def failed(self) -> bool:
        return any(result.status == "error" for result in self.results)

    def as_json(self) -> dict[str, Any]:
        return {
            "accepted": self.count("accepted"),
            "duplicates": self.count("duplicate"),
            "rejected": self.count("rejected"),
            "errors": self.count("error"),
            "events": [result.model_dump(exclude_none=True) for result in self.results],
        }


class IngestService:
    def __init__(
        self,
        *,
        ad_account_id: str,
        dedup_window_seconds: int,
        store: DedupStore,
        queue: EventQueue,
        clock: Callable[[], float],
        ldp_policy: LdpPolicy = "never",
    ) -> None:
        self.ad_account_id = ad_account_id
        self.ldp_policy = ldp_policy
        self.dedup_window_seconds = dedup_window_seconds
        self.store = store
        self.queue = queue
        self.clock = clock

    def now(self) -> int:
        return int(self.clock())

    def ingest_api_events(self, raw_events: list[Any], source: str = "api", ad_account_id: str | None = None) -> IngestOutcome:
        now = self.now()
        return self.accept(prepare_api_events(raw_events, now), source, now, ad_account_id)

    def accept(
        self,
        prepared: list[PreparedEvent | EventRejected],
        source: str,
        now: int | None = None,
        ad_account_id: str | None = None,
        consent_known: bool | None = None,
    ) -> IngestOutcome:
        """Dedup and queue already prepared events, keeping the request's order in the answer.

        ``ad_account_id`` defaults to the deployment's own; ``consent_known`` says whether the
        source carries consent data (None: judge by each event's ``opt_out``).
        """
        now = self.now() if now is None else now
        account = ad_account_id or self.ad_account_id
        outcome = IngestOutcome()
        claims: list[DedupClaim] = []
        claimed_events: list[tuple[int, PreparedEvent]] = []
        seen_in_request: set[str] = set()
        claim_id = uuid.uuid4().hex
        results = outcome.results
        ldp_policy = self.ldp_policy
        expires_at = now + self.dedup_window_seconds
        for index, item in enumerate(prepared):
            if isinstance(item, EventRejected):
                results.append(
                    EventResult(index=index, status="rejected", reason=item.reason, event_id=item.event_id, event_name=item.event_name)
                )
                continue
            event = item.event
            event_id, event_name = event["event_id"], event["event_name"]
            apply_ldp(event, ldp_policy, consent_known)
            result = EventResult(
                index=index, status="accepted", event_id=event_id, event_name=event_name,
                match_keys=match_keys(event["user_data"]), warnings=item.warnings or None,
            )
            results.append(result)
            key = dedup_key(account, event_name, event_id)
            if key in seen_in_request:
                result.status = "duplicate"
                result.reason = "the same event_name and event_id appear earlier in this request"
                continue
            seen_in_request.add(key)
            claims.append(DedupClaim(key=key, accepted_at=now, expires_at=expires_at, claim_id=claim_id))
            claimed_events.append((index, item))
        if not claims:
            return outcome
        try:
            fresh = self.store.claim(claims, now)
        except Exception as exc:
            raise IngestUnavailable(f"dedup store unavailable: {type(exc).__name__}") from exc
        to_queue: list[tuple[DedupClaim, int, PreparedEvent]] = []
        for claim, is_fresh, (index, item) in zip(claims, fresh, claimed_events, strict=True):
            if is_fresh:
                to_queue.append((claim, index, item))
            else:
                outcome.results[index].status = "duplicate"
                outcome.results[index].reason = "already received within the dedup window"
        if not to_queue:
            return outcome
        bodies = [queued_message_body(account, claim, item, source) for claim, _, item in to_queue]
        try:
            failed_positions = set(self.queue.send(bodies))
        except Exception as exc:
            failed_positions = set(range(len(bodies)))
            failure = type(exc).__name__
        else:
            failure = "queue refused the message"
        if failed_positions:
            unqueued = [to_queue[position] for position in sorted(failed_positions)]
            try:
                self.store.release([claim for claim, _, _ in unqueued])
            except Exception:  # DynamoDB failing right after SQS did: answer 5xx anyway, count it
                logger.exception("could not release %d dedup claims", len(unqueued))
                outcome.unreleased_claims = len(unqueued)
            for _, index, _ in unqueued:
                outcome.results[index].status = "error"
                outcome.results[index].reason = f"not queued ({failure}); retry the request"
        return outcome


def queued_message_body(ad_account_id: str, claim: DedupClaim, item: PreparedEvent, source: str) -> str:
    """The SQS message of one accepted event (``models.QueuedEvent``): hashed data only."""
    return _MESSAGE_JSON(
        {
            "v": 1,
            "ad_account_id": ad_account_id,
            "source": source,
            "dedup_key": claim.key,
            "accepted_at": claim.accepted_at,
            "expires_at": claim.expires_at,
            "event": item.event,
        }
    )
