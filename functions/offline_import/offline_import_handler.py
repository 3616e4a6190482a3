"""Offline import Lambda: S3 ObjectCreated (uploads/*.csv) -> validate, normalise + hash -> dedup -> SQS.

For each uploaded CSV (columns: pinrelay.sources.offline_csv) the handler reads the object,
checks every row with the rules of POST /events, hands the events to
``pinrelay.ingest.IngestService.accept`` (source ``offline_csv``) 1000 at a time, and writes a
report next to the CSV, ``<key>.report.json``::

    {"v": 1, "bucket": ..., "key": ..., "source": "offline_csv", "status": "complete",
     "rows": 5, "accepted": 3, "duplicates": 1, "rejected": 1, "errors": 0, "warnings": 0,
     "results": [{"row": 2, "status": "accepted", "event_id": "1001", "event_name": "checkout",
                  "match_keys": ["em", "address"]},
                 {"row": 4, "status": "rejected", "event_id": "1003", "event_name": "checkout",
                  "reason": "email: value dropped, not an email address; ..."}, ...],
     "processed_at": "2025-05-01T10:00:00+00:00", "duration_ms": 812}

``refused`` (with ``error``): the file as a whole cannot be read (encoding, unknown column...).
``incomplete``: some rows answered ``error`` (AWS unavailable, or the function's time ran out);
upload the same file again: rows already queued then answer ``duplicate``, the others go.

Neither the report nor the logs hold a cell's value: reasons name the column. Errors are
reported, not raised, so Lambda's asynchronous retries do not re-run a finished import. Metrics:
the ingest ones (``EventsAccepted``...) with dimension ``source=offline_csv`` (the sender counts
their ``MatchKey_*`` on delivery).
Events go to the deployment's ad account (``PINTEREST_AD_ACCOUNT_ID``); ``LDP_POLICY`` applies
to rows without ``opt_out``.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger

from pinrelay.adapters.aws import client
from pinrelay.adapters.metrics import emit_ingest_metrics
from pinrelay.adapters.wiring import aws_ingest_service
from pinrelay.config import OfflineImportSettings, offline_import_settings
from pinrelay.events import EventRejected, PreparedEvent
from pinrelay.ingest import MAX_EVENTS_PER_REQUEST, IngestService, IngestUnavailable
from pinrelay.models import EventResult
from pinrelay.sources.offline_csv import CheckedRow, OfflineCsvError, load_offline_csv

SOURCE = "offline_csv"
REPORT_SUFFIX = ".report.json"
CHUNK_SIZE = MAX_EVENTS_PER_REQUEST
ATTEMPTS = 3  # per chunk, when DynamoDB or SQS is unavailable
BACKOFF_SECONDS = 1.0
RESERVE_MS = 30_000  # stop taking new chunks when less time is left, to write the report

logger = Logger()


def settings() -> OfflineImportSettings:
    return offline_import_settings()


@cache
def service() -> IngestService:
    return aws_ingest_service(settings())


def _report_row(row: CheckedRow, result: EventResult) -> dict[str, Any]:
    out: dict[str, Any] = {"row": row.row_number, "status": result.status}
    out.update(result.model_dump(include={"event_id", "event_name", "reason", "match_keys", "warnings"}, exclude_none=True))
    return out


def _not_processed(row: CheckedRow, reason: str) -> EventResult:
    return EventResult(index=0, status="error", event_id=row.event_id, event_name=row.event_name, reason=reason)


def accept_chunk(svc: IngestService, rows: list[CheckedRow], sleep=time.sleep) -> list[EventResult]:
    """Accept one chunk; retry what AWS could not take (claims are released, so it is safe)."""
    items: list[PreparedEvent | EventRejected] = [row.result for row in rows]
    final: dict[int, EventResult] = {}
    pending = list(range(len(rows)))
    failure = ""
    for attempt in range(ATTEMPTS):
        if attempt:
            sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
        try:
            outcome = svc.accept([items[i] for i in pending], SOURCE)
        except IngestUnavailable as exc:
            failure = str(exc)
            continue
        still: list[int] = []
        for result in outcome.results:
            position = pending[result.index]
            if result.status == "error":
                still.append(position)
                failure = result.reason or "not queued"
            else:
                final[position] = result
        pending = still
        if not pending:
            break
    for position in pending:
        final[position] = _not_processed(
            rows[position], f"not queued after {ATTEMPTS} attempts ({failure}); upload the file again"
        )
    return [final[position] for position in range(len(rows))]


def import_csv(bucket: str, key: str, body: bytes, context: Any = None) -> dict[str, Any]:
    """Parse, check, accept; return the report (not yet written)."""
    svc = service()
    report: dict[str, Any] = {"v": 1, "bucket": bucket, "key": key, "source": SOURCE}
    try:
        rows = list(load_offline_csv(body, svc.now()))
    except OfflineCsvError as exc:
        return {**report, "status": "refused", "error": str(exc), "rows": 0, "results": []}
    results: list[dict[str, Any]] = []
    for start in range(0, len(rows), CHUNK_SIZE):
        chunk = rows[start : start + CHUNK_SIZE]
        if context is not None and context.get_remaining_time_in_millis() < RESERVE_MS:
            answers = [_not_processed(row, "not processed: the function ran out of time; upload the file again")
                       for row in chunk]
        else:
            answers = accept_chunk(svc, chunk)
        emit_ingest_metrics(answers, SOURCE)
        results += [_report_row(row, answer) for row, answer in zip(chunk, answers, strict=True)]
    counts = {name: sum(1 for r in results if r["status"] == status)
              for name, status in (("accepted", "accepted"), ("duplicates", "duplicate"),
                                   ("rejected", "rejected"), ("errors", "error"))}
    return {
        **report,
        "status": "incomplete" if counts["errors"] else "complete",
        "rows": len(rows),
        **counts,
        "warnings": sum(1 for r in results if r.get("warnings")),
        "results": results,
    }


def process_object(bucket: str, key: str, context: Any = None) -> dict[str, Any] | None:
    s3 = client("s3")
    report_key = key + REPORT_SUFFIX
    started = time.monotonic()
    try:
        obj = s3.get_object(Bucket=bucket, Key=key)
    except s3.exceptions.NoSuchKey:
        logger.warning("uploaded object is gone; nothing to import", extra={"bucket": bucket, "key": key})
        return None
    size = int(obj.get("ContentLength") or 0)
    limit = settings().offline_import_max_bytes
    if size > limit:
        obj["Body"].close()
        report = {"v": 1, "bucket": bucket, "key": key, "source": SOURCE, "status": "refused", "rows": 0, "results": [],
                  "error": f"the file is {size} bytes; at most {limit} bytes per file: split it into several files"}
    else:
        report = import_csv(bucket, key, obj["Body"].read(), context)
    report["processed_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    report["duration_ms"] = int((time.monotonic() - started) * 1000)
    s3.put_object(
        Bucket=bucket, Key=report_key, ContentType="application/json",
        Body=json.dumps(report, separators=(",", ":"), ensure_ascii=False).encode("utf-8"),
    )
    summary = {k: report.get(k) for k in ("status", "rows", "accepted", "duplicates", "rejected", "errors", "warnings")}
    log = logger.warning if report["status"] != "complete" else logger.info
    log(
        "offline import",
        extra={
            "bucket": bucket, "key": key, "report_key": report_key, **summary,
            "error": report.get("error"),
            # reasons name columns, never values
            "rejections": [f"row {r['row']}: {r.get('reason')}" for r in report["results"] if r["status"] != "accepted"][:10],
        },
    )
    return {"key": key, "report_key": report_key, **summary}


@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict, context) -> dict:
    processed = []
    for record in event.get("Records") or []:
        s3_record = record.get("s3") or {}
        bucket = s3_record.get("bucket", {}).get("name")
        key = unquote_plus(s3_record.get("object", {}).get("key", ""))
        if not bucket or not key.lower().endswith(".csv"):
            logger.info("not a CSV upload; ignored", extra={"bucket": bucket, "key": key})
            continue
        summary = process_object(bucket, key, context)
        if summary is not None:
            processed.append(summary)
    return {"imports": processed}
