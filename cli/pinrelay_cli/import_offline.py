"""``pinrelay import-offline FILE.csv [--url URL] [--api-key KEY] [--dry-run] [--batch-size 1000]``

Reads a CSV of store sales (columns: ``pinrelay.sources.offline_csv``), checks every row
locally with the rules of ``POST /events`` and prints one line per bad row
(``row 17: email: value dropped, not an email address``). ``--dry-run`` stops there. Otherwise
the valid rows are posted (raw, as ``POST /events`` takes them: the API normalises and hashes)
to ``{url}/events`` as ``{"data": [...]}`` of at most ``--batch-size`` events and under the
API's 1 MB body limit, with the ``x-api-key`` header. A request is retried 3 times with
exponential backoff on 5xx, 429 and connection errors; on a 503 that lists per-event results only
the events not queued are retried. The final report counts the API's per-event answers
(accepted / duplicate / rejected) and lists rejected and failed rows with their reasons.

Defaults: ``--url http://127.0.0.1:$LOCAL_PORT`` (3000), ``--api-key $INGEST_API_KEY`` or
``local-ingest-key-for-this-machine-only`` (``--local``: the local stack's). Exit status: 0 when every row was accepted
or a duplicate; 1 when a row has an error, was rejected, or could not be sent; 2 when the file
cannot be read or the API refused the key (it stops at the first refusal).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pinrelay.sources.offline_csv import CheckedRow, OfflineCsvError, column_reason, load_offline_csv
from pinrelay_cli.defaults import LOCAL_API_KEY, LOCAL_URL, PROG
from pinrelay_cli.terminal import printable

HELP = "import offline conversions (store sales) from a CSV file"


def default_url() -> str:
    port = os.environ.get("LOCAL_PORT")
    return f"http://127.0.0.1:{port}" if port else LOCAL_URL


def default_api_key() -> str:
    return os.environ.get("INGEST_API_KEY") or LOCAL_API_KEY


MAX_BATCH = 1000
MAX_BODY_BYTES = 1_000_000  # the ingest API refuses bodies over 1 MiB; keep a margin
RETRIES = 3
BACKOFF_SECONDS = 0.5
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_DUPLICATE_LINES = 20
EXIT_NOT_RUN = 2  # the file cannot be read, or the API refused the key


def _batch_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number") from None
    if not 1 <= value <= MAX_BATCH:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_BATCH}")
    return value


def setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE.csv", help="CSV of store sales ('-' reads standard input)")
    parser.add_argument("--url", default=None, help="ingest API base URL (default: http://127.0.0.1:$LOCAL_PORT, 3000)")
    parser.add_argument("--api-key", default=None, help="x-api-key (default: $INGEST_API_KEY, else local-ingest-key-for-this-machine-only)")
    parser.add_argument("--dry-run", action="store_true", help="check every row and print the report; send nothing")
    parser.add_argument("--batch-size", type=_batch_size, default=MAX_BATCH, help="events per request (1-1000, default 1000)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")


@dataclass(slots=True)
class RowOutcome:
    row_number: int
    status: str  # accepted | duplicate | rejected | failed
    reason: str | None = None


@dataclass(slots=True)
class ImportReport:
    requests: int = 0
    outcomes: dict[int, RowOutcome] = field(default_factory=dict)  # row number -> outcome
    failed_requests: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for outcome in self.outcomes.values() if outcome.status == status)


class Progress:
    """A progress bar on stderr: redrawn with \\r on a terminal, one line per step otherwise."""

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 30) -> None:
        self.total = max(total, 1)
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.shown = False

    def update(self, done: int) -> None:
        filled = self.width * done // self.total
        bar = "#" * filled + "-" * (self.width - filled)
        text = f"sending [{bar}] {done}/{self.total} rows ({100 * done // self.total}%)"
        self.stream.write(("\r" + text) if self.tty else text + "\n")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.tty and self.shown:
            self.stream.write("\n")
            self.stream.flush()


def batches(rows: list[CheckedRow], size: int, max_bytes: int = MAX_BODY_BYTES) -> list[list[tuple[CheckedRow, bytes]]]:
    """Rows with their JSON, in batches of at most ``size`` events and ``max_bytes`` of body."""
    out: list[list[tuple[CheckedRow, bytes]]] = []
    current: list[tuple[CheckedRow, bytes]] = []
    current_bytes = len(b'{"data":[]}')
    for row in rows:
        encoded = json.dumps(row.raw, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        extra = len(encoded) + (1 if current else 0)
        if current and (len(current) >= size or current_bytes + extra > max_bytes):
            out.append(current)
            current, current_bytes = [], len(b'{"data":[]}')
            extra = len(encoded)
        current.append((row, encoded))
        current_bytes += extra
    if current:
        out.append(current)
    return out


class IngestPoster:
    """POSTs ``{"data": [...]}`` to ``{url}/events``, retrying 5xx / 429 / connection errors."""

    def __init__(self, url: str, api_key: str, timeout: float, sleep: Callable[[float], None] = time.sleep) -> None:
        import requests

        self.requests = requests
        self.endpoint = url.rstrip("/") + "/events"
        self.session = requests.Session()
        self.session.headers.update({"x-api-key": api_key, "content-type": "application/json"})
        self.timeout = timeout
        self.sleep = sleep
        self.unauthorized = False

    def send(self, batch: list[tuple[CheckedRow, bytes]], report: ImportReport) -> None:
        pending = list(range(len(batch)))
        retried = False
        failure = ""
        for attempt in range(RETRIES + 1):
            if attempt:
                self.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
                retried = True
            body = b'{"data":[' + b",".join(batch[i][1] for i in pending) + b"]}"
            report.requests += 1
            try:
                answer = self.session.post(self.endpoint, data=body, timeout=self.timeout)
            except self.requests.RequestException as exc:
                failure = f"no answer from {self.endpoint} ({type(exc).__name__})"
                continue
            results = _event_results(answer)
            if answer.status_code in (202, 422) and results is not None and len(results) == len(pending):
                self._record(batch, pending, results, report, retried)
                return
            if answer.status_code == 503 and results is not None and len(results) == len(pending):
                # some events were queued: keep their answers, retry only the others
                queued = [(p, r) for p, r in zip(pending, results) if r.get("status") != "error"]
                self._record(batch, [p for p, _ in queued], [r for _, r in queued], report, retried)
                pending = [p for p, r in zip(pending, results) if r.get("status") == "error"]
                failure = "503: some events could not be queued"
                if not pending:
                    return
                continue
            message = _message(answer)
            failure = f"HTTP {answer.status_code}: {message}"
            if answer.status_code not in RETRYABLE_STATUSES:
                self.unauthorized = answer.status_code in (401, 403)
                break
        report.failed_requests.append(failure)
        for position in pending:
            row = batch[position][0]
            report.outcomes[row.row_number] = RowOutcome(row.row_number, "failed", failure)

    @staticmethod
    def _record(batch: list[tuple[CheckedRow, bytes]], positions: list[int], results: list[dict[str, Any]],
                report: ImportReport, retried: bool) -> None:
        for position, result in zip(positions, results, strict=True):
            row = batch[position][0]
            status = result.get("status")
            reason = result.get("reason")
            if status == "duplicate" and retried:
                reason = f"{reason or 'duplicate'} (answered on a retry: an earlier attempt may have queued it)"
            if status not in ("accepted", "duplicate", "rejected"):
                status, reason = "failed", reason or f"unexpected status {status!r}"
            report.outcomes[row.row_number] = RowOutcome(row.row_number, status, _column_reason(reason))


def _column_reason(reason: str | None) -> str | None:
    return None if reason is None else column_reason(reason)


def _event_results(answer: Any) -> list[dict[str, Any]] | None:
    try:
        body = answer.json()
    except ValueError:
        return None
    events = body.get("events") if isinstance(body, dict) else None
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        return None
    return sorted(events, key=lambda e: e.get("index", 0))


def _message(answer: Any) -> str:
    try:
        body = answer.json()
    except ValueError:
        return (answer.text or "").strip()[:200] or answer.reason or "no body"
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return json.dumps(body)[:200]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    name = "standard input" if args.file == "-" else args.file
    try:
        data = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        print(f"{PROG} import-offline: cannot read {name}: {exc.strerror or exc}", file=err)
        return EXIT_NOT_RUN
    now = int(time.time())
    try:
        rows = list(load_offline_csv(data, now))
    except OfflineCsvError as exc:
        print(f"{PROG} import-offline: {printable(name)}: {printable(exc)}", file=err)
        return EXIT_NOT_RUN
    good = [row for row in rows if row.ok]
    bad = [row for row in rows if not row.ok]

    print(f"{name}: {_plural(len(rows), 'row')}: {len(good)} valid, {len(bad)} with errors"
          + (" (not sent)" if bad and not args.dry_run else ""), file=out)
    for row in rows:
        if not row.ok:
            print(f"row {row.row_number}: {printable(row.reason)}", file=out)
        for warning in row.warnings:
            print(f"row {row.row_number}: warning: {printable(warning)}", file=out)
    if args.dry_run:
        print("dry run: nothing sent", file=out)
        return 1 if bad else 0
    if not good:
        print("nothing to send", file=out)
        return 1

    url = args.url or default_url()
    poster = IngestPoster(url, args.api_key or default_api_key(), args.timeout)
    planned = batches(good, args.batch_size)
    print(f"sending {_plural(len(good), 'row')} to {poster.endpoint} in {_plural(len(planned), 'request')}", file=out)
    report = ImportReport()
    progress = Progress(len(good), err)
    done = 0
    for batch in planned:
        poster.send(batch, report)
        done += len(batch)
        progress.update(done)
        if poster.unauthorized:  # a wrong key fails every request: stop at the first refusal
            break
    progress.close()
    if poster.unauthorized:
        sent = sum(1 for outcome in report.outcomes.values() if outcome.status != "failed")
        print(f"{PROG} import-offline: {poster.endpoint} refused the key ({printable(report.failed_requests[-1])}): "
              f"stopped, {len(good) - sent} row(s) not sent{f' ({sent} sent before)' if sent else ''}; give the "
              "stack's key with --api-key or INGEST_API_KEY", file=err)
        return EXIT_NOT_RUN

    accepted, duplicates = report.count("accepted"), report.count("duplicate")
    rejected, failed = report.count("rejected"), report.count("failed")
    print(f"API: {accepted} accepted, {_plural(duplicates, 'duplicate')}, {rejected} rejected"
          f"; {failed} not sent ({_plural(len(report.failed_requests), 'failed request')})", file=out)
    shown_duplicates = 0
    for row_number in sorted(report.outcomes):
        outcome = report.outcomes[row_number]
        if outcome.status in ("rejected", "failed"):
            print(f"row {row_number}: {outcome.status}: {printable(outcome.reason)}", file=out)
        elif outcome.status == "duplicate":
            shown_duplicates += 1
            if shown_duplicates <= MAX_DUPLICATE_LINES:
                print(f"row {row_number}: duplicate: {printable(outcome.reason)}", file=out)
    if duplicates > MAX_DUPLICATE_LINES:
        print(f"... and {duplicates - MAX_DUPLICATE_LINES} more duplicates", file=out)
    not_imported = len(bad) + rejected + failed
    if not_imported:
        print(f"{_plural(not_imported, 'row')} not imported: {len(bad)} with errors, {rejected} rejected by the API,"
              f" {failed} not sent", file=out)
        return 1
    print("done: every row was accepted" + (" or already received" if duplicates else ""), file=out)
    return 0


