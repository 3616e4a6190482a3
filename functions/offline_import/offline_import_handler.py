"""Offline import Lambda: S3 ObjectCreated (uploads/*.csv) -> check, normalise + hash -> SQS, and a report.

For each uploaded CSV (columns: pinrelay.sources.offline_csv) the handler streams the object: it
reads it in ranged GETs of ``PART_BYTES`` (one GET read at the pace of the import would keep a
connection open for minutes, and S3 resets slow readers), once to check that it is UTF-8, then
to parse it row by row. Every ``CHUNK_SIZE`` rows are checked with the rules of POST /events and
handed to ``pinrelay.ingest.IngestService.accept`` (source ``offline_csv``). Memory does not grow
with the file: each row's result goes to a file in /tmp as it comes (the report is assembled
there and uploaded from it), and so do the event keys seen so far (SQLite), which flag a row
repeating an earlier row's event_name and event_id (answered ``duplicate`` without being
queued). A 100 MB file peaks at ~120 MB for the whole process, 86 MB of it before the import;
/tmp holds ~2x the report, which is ~0.85x the CSV (tests/integration/test_offline_import_memory.py).
The report is written next to the CSV, ``<key>.report.json``::

    {"v": 1, "bucket": ..., "key": ..., "source": "offline_csv", "status": "complete",
     "rows": 5, "accepted": 3, "duplicates": 1, "rejected": 1, "withheld": 0, "errors": 0, "warnings": 1,
     "results": [{"row": 2, "status": "accepted", "event_id": "1001", "event_name": "checkout",
                  "match_keys": ["em", "address"]},
                 {"row": 4, "status": "rejected", "event_id": "1003", "event_name": "checkout",
                  "reason": "email: value dropped, not an email address; ..."}, ...],
     "processed_at": "2025-05-01T10:00:00+00:00", "duration_ms": 812}

Every row read has its entry in ``results`` (in file order), so every row not accepted can be
found by its row number and reason. A row the consent policy (``CONSENT_POLICY``, docs/privacy.md)
does not send is ``withheld``, with ``"withheld": "consent"`` and the reason. ``status``:

``complete``    every row was answered accepted, duplicate, rejected or withheld.
``refused``     (with ``error``) the file as a whole cannot be read: too large
                (``OFFLINE_IMPORT_MAX_BYTES``, refused unread), not UTF-8, unknown column...;
                nothing was queued.
``incomplete``  some rows answered ``error``: SQS unavailable (after ``ATTEMPTS`` tries), or the
                function's time ran out (the rows left are listed as not processed, or, if even
                reading them takes too long, ``error`` says after which row reading stopped).
``failed``      (with ``error``) an unexpected error stopped the import: the rows listed were
                processed, the rest were not. The invocation then fails too (the error, without
                its message, is logged), so Lambda's retry and on-failure destination apply.

Uploading a file again is safe, whatever its first import did: the sender drops an event whose
event_name and event_id it already sent within the offline dedup window (7 days and 5 minutes,
as long as Pinterest takes an event_time), so no sale is counted twice. The second report
answers the rows ``accepted`` again (ingest cannot know what the sender has delivered); the
copies are dropped before Pinterest. So: after ``incomplete`` or ``failed``, upload the same file
again within 7 days.

Neither the report nor the logs hold a cell's value: reasons name the column or its position.
Errors a file or a row can cause are reported, not raised. Metrics: the ingest ones
(``EventsAccepted``...) with dimension ``source=offline_csv``, per chunk (the sender counts their
``MatchKey_*`` on delivery). Events go to the deployment's ad account
(``PINTEREST_AD_ACCOUNT_ID``); ``CONSENT_POLICY`` applies to each row (its ``consent_marketing``
and ``consent_sale_of_data`` columns, its ``country``), and its ``ldp=`` to rows without ``opt_out``.
"""

from __future__ import annotations

import itertools
import json
import shutil
import tempfile
import time
import traceback
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger

from pinrelay.adapters.aws import client, seconds_left, worst_call_seconds
from pinrelay.adapters.metrics import emit_ingest_metrics
from pinrelay.adapters.wiring import aws_ingest_service
from pinrelay.config import OfflineImportSettings, offline_import_settings
from pinrelay.ingest import MAX_EVENTS_PER_REQUEST, IngestService
from pinrelay.models import EventResult
from pinrelay.ports import Deadline
from pinrelay.sources.offline_csv import (
    CheckedRow,
    EventKeys,
    OfflineCsvError,
    RowChecker,
    RowError,
    check_utf8,
    read_offline_csv,
)

SOURCE = "offline_csv"
REPORT_SUFFIX = ".report.json"
CHUNK_SIZE = MAX_EVENTS_PER_REQUEST
PART_BYTES = 8 * 1_048_576  # per ranged GET: read at once, so no connection waits on the import
ATTEMPTS = 3  # per chunk, when SQS is unavailable
BACKOFF_SECONDS = 1.0
# Seconds kept, of the function's 900, to write the report: one S3 call's worst case (botocore's
# attempts x timeouts, 39 s) and the copy of a results file of up to ~100 MB in /tmp.
REPORT_SECONDS = 60
# More seconds needed to start a chunk: check 1000 rows (~0.1 s) and queue them (100 SQS calls
# in parallel, ~0.3 s; the SQS adapter itself starts no call it could not finish in time).
CHUNK_SECONDS = 60
NOT_PROCESSED = "not processed: the function ran out of time; upload the file again"
RESULT_FIELDS = {"event_id", "event_name", "withheld", "reason", "match_keys", "warnings"}
COUNTED_STATUSES = {"accepted": "accepted", "duplicate": "duplicates", "rejected": "rejected", "error": "errors",
                    "withheld": "withheld"}
LOGGED_REJECTIONS = 10
TEMP_PREFIX = "offline-import-"
LAMBDA_MAX_SECONDS = 900  # no invocation runs longer: an older directory of ours in /tmp is a leftover

logger = Logger()


class NoTimeToRead(Exception):
    """No time left to read the next part of the object and still write the report."""


class ImportFailed(Exception):
    """Raised, once the report is written, for an unexpected error; its message holds no value."""


def settings() -> OfflineImportSettings:
    return offline_import_settings()


@cache
def service() -> IngestService:
    return aws_ingest_service(settings())


# -- reading the object -----------------------------------------------------------------------


def object_parts(s3: Any, bucket: str, key: str, etag: str, size: int, time_left: Deadline) -> Iterator[bytes]:
    """The object in ranged GETs of ``PART_BYTES``, each read whole at once (8 MiB in memory).
    ``IfMatch``: every part comes from the same upload (S3 answers 412 once it is replaced)."""
    for start in range(0, size, PART_BYTES):
        if time_left() < REPORT_SECONDS + worst_call_seconds("s3"):
            raise NoTimeToRead
        end = min(start + PART_BYTES, size) - 1
        answer = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end}", IfMatch=etag)
        yield answer["Body"].read()


# -- the report ---------------------------------------------------------------------------------


class ReportWriter:
    """The report of one import: counts in memory; each row's result written to a file in
    ``directory`` (/tmp) as it comes, so memory does not grow with the file."""

    def __init__(self, bucket: str, key: str, directory: Path) -> None:
        self.head = {"v": 1, "bucket": bucket, "key": key, "source": SOURCE}
        self.counts = dict.fromkeys(("rows", "accepted", "duplicates", "rejected", "withheld", "errors", "warnings"), 0)
        self.last_row = 0
        self.rejections: list[str] = []  # the first few rows not accepted, for the log line
        self.directory = directory
        self._results = (directory / "results.json").open("w", encoding="utf-8")
        self._separator = ""

    def add(self, row_number: int, result: EventResult) -> None:
        entry = {"row": row_number, "status": result.status,
                 **result.model_dump(include=RESULT_FIELDS, exclude_none=True)}
        self._results.write(self._separator + json.dumps(entry, separators=(",", ":"), ensure_ascii=False))
        self._separator = ",\n"
        self.counts["rows"] += 1
        self.counts[COUNTED_STATUSES[result.status]] += 1
        self.counts["warnings"] += bool(result.warnings)
        self.last_row = row_number
        if result.status != "accepted" and len(self.rejections) < LOGGED_REJECTIONS:
            self.rejections.append(f"row {row_number}: {result.reason}")  # reasons name columns, never values

    def document(self, status: str, error: str | None, started: float) -> Path:
        """The whole report as one JSON file next to the results (results copied, not loaded)."""
        self._results.close()
        head = {**self.head, "status": status, **({"error": error} if error else {}), **self.counts}
        tail = {"processed_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "duration_ms": int((time.monotonic() - started) * 1000)}
        path = self.directory / "report.json"
        with path.open("w", encoding="utf-8") as out, (self.directory / "results.json").open(encoding="utf-8") as results:
            out.write(json.dumps(head, separators=(",", ":"), ensure_ascii=False)[:-1] + ',"results":[\n')
            shutil.copyfileobj(results, out)
            out.write("\n]," + json.dumps(tail, separators=(",", ":"))[1:])
        return path


def _result(row: CheckedRow, status: str, reason: str) -> EventResult:
    return EventResult(index=0, status=status, event_id=row.event_id, event_name=row.event_name, reason=reason,
                       warnings=row.warnings or None)


def _not_processed(row_number: int, item: dict[str, Any] | RowError) -> EventResult:
    if isinstance(item, RowError):
        event_id, event_name = item.event_id, item.event_name
    else:
        event_id, event_name = item.get("event_id"), item.get("event_name")
    return EventResult(index=0, status="error", event_id=event_id, event_name=event_name, reason=NOT_PROCESSED)


def remove_leftover_directories() -> None:
    """Remove what an import killed by Lambda (timeout, out of memory) left in /tmp, which lives as
    long as the execution environment: a directory older than any invocation can run."""
    for directory in Path(tempfile.gettempdir()).glob(TEMP_PREFIX + "*"):
        try:
            if time.time() - directory.stat().st_mtime > LAMBDA_MAX_SECONDS:
                shutil.rmtree(directory, ignore_errors=True)
        except FileNotFoundError:
            pass


# -- importing ----------------------------------------------------------------------------------


def accept_chunk(svc: IngestService, rows: list[CheckedRow], time_left: Deadline, sleep=time.sleep) -> list[EventResult]:
    """Accept one chunk; retry what SQS could not take (the sender drops any copy, so it is safe).
    A row repeating an earlier row of the file is answered duplicate and not queued."""
    final: dict[int, EventResult] = {}
    pending: list[int] = []
    for position, row in enumerate(rows):
        if row.same_as_row is not None:
            final[position] = _result(row, "duplicate", f"same event_name and event_id as row {row.same_as_row}")
        else:
            pending.append(position)
    failure = ""
    for attempt in range(ATTEMPTS):
        if not pending:
            break
        if attempt:
            sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
        outcome = svc.accept([rows[i].result for i in pending], SOURCE, time_left=time_left)
        still: list[int] = []
        for result in outcome.results:
            position = pending[result.index]
            if result.status == "error":
                still.append(position)
                failure = result.cause or ""
            else:
                final[position] = result
        pending = still
    for position in pending:
        final[position] = _result(rows[position], "error",
                                  f"not queued after {ATTEMPTS} attempts ({failure}); upload the file again")
    return [final[position] for position in range(len(rows))]


def import_rows(rows: Iterable[tuple[int, dict[str, Any] | RowError]], checker: RowChecker, report: ReportWriter,
                time_left: Deadline) -> None:
    """Check and accept ``rows`` chunk by chunk while there is time; list the rest as not processed."""
    svc = service()

    def time_left_to_queue() -> float:
        return time_left() - REPORT_SECONDS

    for chunk in itertools.batched(rows, CHUNK_SIZE):
        if time_left() < REPORT_SECONDS + CHUNK_SECONDS:
            answers = [_not_processed(row_number, item) for row_number, item in chunk]
        else:
            checked = checker.check(chunk)
            answers = accept_chunk(svc, checked, time_left_to_queue)
        emit_ingest_metrics(answers, SOURCE)
        for (row_number, _), answer in zip(chunk, answers, strict=True):
            report.add(row_number, answer)


def import_object(s3: Any, bucket: str, key: str, head: dict[str, Any], report: ReportWriter,
                  time_left: Deadline) -> tuple[str, str | None]:
    """Import one uploaded object (``head``: its HeadObject answer) into ``report``; return the
    report's status and error."""
    size, limit = int(head["ContentLength"]), settings().offline_import_max_bytes
    if size > limit:
        return "refused", f"the file is {size} bytes; at most {limit} bytes per file: split it into several files"
    now = service().now()

    def parts() -> Iterator[bytes]:
        return object_parts(s3, bucket, key, head["ETag"], size, time_left)

    keys = EventKeys(str(report.directory / "event_keys.sqlite"))
    try:
        check_utf8(parts())
        rows = read_offline_csv(parts(), now)
        import_rows(rows, RowChecker(now, keys), report, time_left)
    except OfflineCsvError as exc:
        return "refused", str(exc)
    except NoTimeToRead:
        return "incomplete", (f"the function ran out of time: the rows after row {report.last_row} were not read; "
                              "upload the file again")
    finally:
        keys.close()
    return ("incomplete" if report.counts["errors"] else "complete"), None


def _error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ClientError (e.g. AccessDenied); None for other errors."""
    response = getattr(exc, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def _failure(exc: BaseException, report: ReportWriter) -> tuple[str, str]:
    """What the report says of an unexpected error: its type (and AWS error code), no message."""
    code = _error_code(exc)
    if code in ("PreconditionFailed", "412"):
        return "incomplete", (f"the file was replaced while it was imported, after row {report.last_row}; "
                              "its new version is imported on its own")
    cause = type(exc).__name__ + (f" {code}" if code else "")
    return "failed", (f"the import stopped after row {report.last_row} on an unexpected error ({cause}); the rows "
                      "listed were processed, the others were not: upload the file again")


def process_object(bucket: str, key: str, context: Any = None) -> dict[str, Any] | None:
    s3 = client("s3")
    report_key = key + REPORT_SUFFIX
    started = time.monotonic()
    time_left = seconds_left(context)
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError as exc:
        if _error_code(exc) not in ("404", "NoSuchKey"):
            raise
        logger.warning("uploaded object is gone; nothing to import", extra={"bucket": bucket, "key": key})
        return None
    failed: ImportFailed | None = None
    remove_leftover_directories()
    with tempfile.TemporaryDirectory(prefix=TEMP_PREFIX) as directory:
        report = ReportWriter(bucket, key, Path(directory))
        try:
            status, error = import_object(s3, bucket, key, head, report, time_left)
        except Exception as exc:  # noqa: BLE001 - reported, logged without its message, then raised
            status, error = _failure(exc, report)
            if status == "failed":
                failed = _log_failure(exc, bucket, key, error)
        with report.document(status, error, started).open("rb") as body:
            s3.put_object(Bucket=bucket, Key=report_key, ContentType="application/json", Body=body)
    summary = {"status": status, **report.counts}
    log = logger.info if status == "complete" else logger.warning
    log("offline import", extra={"bucket": bucket, "key": key, "report_key": report_key, **summary,
                                 "error": error, "rejections": report.rejections})
    if failed is not None:
        raise failed
    return {"key": key, "report_key": report_key, **summary}


def _log_failure(exc: BaseException, bucket: str, key: str, error: str) -> ImportFailed:
    """Log where the error happened (its type and frames: an exception's message may quote a cell)."""
    frames = [f"{Path(frame.filename).name}:{frame.lineno} {frame.name}" for frame in traceback.extract_tb(exc.__traceback__)]
    logger.error("offline import failed", extra={"bucket": bucket, "key": key, "error_type": type(exc).__name__,
                                                 "frames": frames[-8:]})
    return ImportFailed(f"{key}: {error}")


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
