"""What the local stack's console says about each batch and each log line of its handlers.

The sender logs, per invocation, one ``batch delivered`` line holding its ``SendReport``
(pinrelay.sender): what became of every event. The local stack runs the sender at DEBUG so that
this line comes for every batch (in AWS a clean batch logs nothing), reads it from the worker's
output and prints it as one line a newcomer reads at a glance::

    sender: 5 events, 1 request, 812 ms: 4 delivered, 1 copy dropped (already sent)
    sender: 1 event, 1 request, 74 ms: 1 rejected by Pinterest (549755885175#checkout#a-1: Invalid event_timestamp ...)
    sender: 1 event, 4 requests, 3589 ms: 1 given back to the queue (SQS hands it out again); why: HTTP 401: ...

``batch_line`` turns the report (as logged: its fate table, ``pinrelay.sender.Fate``) into that
line; every fate has its words in ``FATE_WORDS``. The handlers' other log lines are
printed short (``level: message``, with their own fields), and their DEBUG and INFO lines only
when the user set ``LOG_LEVEL``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pinrelay_local.sqs_event_source import BatchSummary

from pinrelay.sender import Fate

BATCH_MESSAGE = "batch delivered"  # the sender's log line (functions/sender/sender_handler.py)
SHOWN_REJECTIONS = 3
UNREADABLE = "unreadable"  # not a fate: the handler could not parse the message (it returns to SQS)

# each fate of the sender's table (pinrelay.sender.Fate), in the order said: (one, several)
FATE_WORDS: dict[str, tuple[str, str]] = {
    Fate.DELIVERED: ("delivered", "delivered"),
    Fate.DUPLICATE: ("copy dropped (already sent)", "copies dropped (already sent)"),
    Fate.REJECTED: ("rejected by Pinterest", "rejected by Pinterest"),
    Fate.UNCERTAIN: ("uncertain (may have reached Pinterest: never sent again; pinrelay uncertain)",) * 2,
    Fate.NOT_SENT: ("not sent", "not sent"),
    Fate.HELD_ELSEWHERE: ("held by another sender (back to the queue)",) * 2,
    Fate.CLAIM_FAILED: ("not claimed, DynamoDB refused (back to the queue)",) * 2,
    Fate.UNRECORDED: ("sent, its answer not recorded (back to the queue)",
                      "sent, their answers not recorded (back to the queue)"),
    Fate.GIVEN_BACK: ("given back to the queue (SQS hands it out again)",
                      "given back to the queue (SQS hands them out again)"),
    UNREADABLE: ("unreadable (back to the queue, then the DLQ)",) * 2,
}
RETURNED = {fate.value for fate in Fate if fate.returns_to_sqs} | {UNREADABLE}
# the fields of a log line every Powertools line has: not repeated on the console
_STANDARD_FIELDS = frozenset({"level", "location", "message", "timestamp", "service", "cold_start", "function_name",
                              "function_memory_size", "function_arn", "function_request_id", "correlation_id",
                              "xray_trace_id", "sampling_rate"})


def batch_line(summary: BatchSummary, report: Mapping[str, Any] | None) -> str:
    """One line for one invocation of the sender, from its report as logged (``SendReport.log_fields``):
    how many events, requests and ms, then each fate that occurred (``fates``, messages per
    fate), with Pinterest's message for a rejection, the reasons of a ``not_sent`` and why events
    went back to the queue."""
    if report is None or summary.error:  # the invocation failed as a whole: no report
        why = f": {summary.error}" if summary.error else ""
        return (f"sender: {_count(summary.records, 'event')}, {summary.duration_ms} ms: the whole batch went back to "
                f"the queue{why}")
    fates = {str(fate): int(count) for fate, count in (report.get("fates") or {}).items()}
    if report.get("unreadable"):
        fates[UNREADABLE] = int(report["unreadable"])
    said = []
    for fate, (one, several) in FATE_WORDS.items():
        count = fates.get(fate, 0)
        if count:
            words = one if count == 1 else several
            if fate == Fate.NOT_SENT and report.get("not_sent"):
                words += f" ({', '.join(sorted(report['not_sent']))})"
            elif fate == Fate.REJECTED:
                words += _rejections(report)
            said.append(f"{count} {words}")
    said += [f"{count} {fate}" for fate, count in fates.items() if count and fate not in FATE_WORDS]
    line = (f"sender: {_count(summary.records, 'event')}, {_count(int(report.get('requests') or 0), 'request')}, "
            f"{summary.duration_ms} ms: " + (", ".join(said) or "nothing to do"))
    reasons = [str(reason) for reason in report.get("given_back") or [] if reason]
    if reasons and RETURNED & {fate for fate, count in fates.items() if count}:
        line += f"; why: {'; '.join(reasons)}"
    return line


def _rejections(report: Mapping[str, Any]) -> str:
    """`` (key: Pinterest's message; ...)`` for the first rejections of a report."""
    rejections = [r for r in report.get("rejections") or [] if isinstance(r, Mapping)]
    shown = [f"{r.get('key')}: {r.get('error')}" for r in rejections[:SHOWN_REJECTIONS]]
    if not shown:
        return ""
    more = len(rejections) - len(shown)
    return " (" + "; ".join(shown) + (f"; and {more} more: pinrelay --local rejected" if more > 0 else "") + ")"


def log_line(function: str, raw: str, *, everything: bool) -> str | None:
    """A handler's log line for the console: a JSON line (Powertools) as ``function level:
    message key=value...``, its DEBUG and INFO lines only with ``everything`` (then every line as
    it came); None when not shown."""
    if everything:
        return f"  {function}: {raw}"
    try:
        record = json.loads(raw)
    except ValueError:
        return f"  {function}: {raw}"
    if not isinstance(record, dict):
        return f"  {function}: {raw}"
    level = str(record.get("level", ""))
    if level in ("DEBUG", "INFO"):
        return None
    extra = " ".join(f"{key}={json.dumps(value)}" for key, value in record.items() if key not in _STANDARD_FIELDS)
    return f"  {function} {level.lower() or 'log'}: {record.get('message')}" + (f" ({extra})" if extra else "")


def batch_report(raw: str) -> dict[str, Any] | None:
    """The sender's logged report, if ``raw`` is its ``batch delivered`` line."""
    if BATCH_MESSAGE not in raw:
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    return record if isinstance(record, dict) and record.get("message") == BATCH_MESSAGE else None


def dead_letter_line(messages: list[dict[str, Any]], receives: int) -> str:
    """What the SQS event source saw: messages SQS moved to the dead-letter queue."""
    keys = []
    for message in messages:
        try:
            keys.append(str(json.loads(message.get("Body") or "").get("dedup_key") or message["MessageId"]))
        except (ValueError, AttributeError):
            keys.append(str(message.get("MessageId")))
    return (f"sqs: {_count(len(messages), 'message')} moved to the dead-letter queue after {receives} receives: "
            f"{', '.join(keys)} (pinrelay --local redrive puts {'it' if len(messages) == 1 else 'them'} back)")


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")
