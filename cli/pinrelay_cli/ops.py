"""Operating pinrelay: move dead-lettered messages back, list the events Pinterest rejected.

    redrive(sqs, dlq_url, queue_url, dry_run) -> count
    rejected(dynamodb, table, limit) -> [(key, error_message, attempts, updated_at), ...]

For the ``pinrelay`` command: ``pinrelay redrive [--dry-run]`` and ``pinrelay rejected
[--limit N]``. Either plug ``add_redrive_parser(subparsers)`` / ``add_rejected_parser(subparsers)``
into an argparse subparsers action (they set ``func``), or register ``setup_redrive`` /
``run_redrive`` and ``setup_rejected`` / ``run_rejected`` (``setup(parser)``, ``run(args) ->
exit status``). The queues and the table come from ``--queue-url`` / ``--dlq-url`` / ``--table``
or from the outputs of the CloudFormation stack ``--stack-name`` (``EventsQueueUrl``,
``DeadLetterQueueUrl``, ``DedupTableName``); boto3 finds credentials, region and
``AWS_ENDPOINT_URL`` (the local stack's moto) as usual.

Redrive is receive, send to the main queue, delete from the DLQ, ten messages at a time. It is
safe to repeat, and so is the SQS console's "Start DLQ redrive" (StartMessageMoveTask): the
sender claims every event before sending it, so an event already delivered, rejected or
uncertain is dropped as a duplicate whatever the message says. (moto does not implement
StartMessageMoveTask; this way the tests run the code the operator runs.)
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from pinrelay.adapters.dead_letters import make_visible
from pinrelay.events import dedup_key
from pinrelay.timestamps import utc_text
from pinrelay_cli.pinterest_access import EXIT_FAILED, EXIT_OK, CommandError, ad_account_id, aws_client
from pinrelay_cli.stack import from_options_or_stack
from pinrelay_cli.terminal import printable

STACK_OUTPUTS = {"queue_url": "EventsQueueUrl", "dlq_url": "DeadLetterQueueUrl", "table": "DedupTableName"}
REDRIVE_HELP = "move the messages of the dead-letter queue back to the events queue"
REJECTED_HELP = "list the events Pinterest rejected (DynamoDB state rejected, with Pinterest's message)"
UNCERTAIN_HELP = ("list the events recorded uncertain (a request with them may have reached Pinterest unanswered, and "
                  "they are not sent again: offline events, web ones past Pinterest's dedup window); "
                  "--release KEY lets one be sent again after you checked Pinterest does not have it")


# --------------------------------------------------------------------------------------------
# The operations
# --------------------------------------------------------------------------------------------


def _receive(sqs: Any, queue_url: str, visibility_timeout: int, wait_seconds: int) -> list[dict[str, Any]]:
    return sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=visibility_timeout,
        WaitTimeSeconds=wait_seconds, MessageAttributeNames=["All"], MessageSystemAttributeNames=["All"],
    ).get("Messages", [])


def redrive(
    sqs: Any,
    dlq_url: str,
    queue_url: str,
    dry_run: bool = False,
    *,
    limit: int | None = None,
    visibility_timeout: int = 60,
    wait_seconds: int = 1,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Move the DLQ's messages (body and message attributes) to ``queue_url``; return how many.

    With ``dry_run`` nothing moves: the messages are received, counted and made visible again.
    A message is deleted from the DLQ only once SQS confirmed the copy in the main queue; one
    whose copy failed stays in the DLQ (it is invisible for ``visibility_timeout`` s) and is not
    counted. ``limit`` stops after that many.
    """
    moved = 0
    seen: dict[str, str] = {}  # dry run: message id -> receipt handle, to make them visible again
    while limit is None or moved < limit:
        messages = _receive(sqs, dlq_url, visibility_timeout, wait_seconds)
        messages = [m for m in messages if m["MessageId"] not in seen]
        if not messages:
            break
        if limit is not None:
            messages = messages[: limit - moved]
        if dry_run:
            for message in messages:
                seen[message["MessageId"]] = message["ReceiptHandle"]
            moved += len(messages)
            continue
        entries = []
        for position, message in enumerate(messages):
            entry: dict[str, Any] = {"Id": str(position), "MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                entry["MessageAttributes"] = message["MessageAttributes"]
            entries.append(entry)
        answer = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        sent = [messages[int(entry["Id"])] for entry in answer.get("Successful", [])]
        for failure in answer.get("Failed", []):
            print(f"redrive: message {messages[int(failure['Id'])]['MessageId']} not sent: {printable(failure.get('Message'))}",
                  file=sys.stderr)
        if sent:
            sqs.delete_message_batch(
                QueueUrl=dlq_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(sent)],
            )
        moved += len(sent)
        if progress is not None:
            progress(moved)
        if not sent:
            break  # the main queue refuses: stop rather than spin
    if dry_run:
        make_visible(sqs, dlq_url, list(seen.values()))
    return moved


@dataclass(frozen=True)
class Rejection:
    key: str  # <ad account>#<event_name>#<event_id>
    error_message: str
    attempts: int
    updated_at: int

    def __iter__(self):  # unpacks as (key, error_message, attempts, updated_at)
        return iter((self.key, self.error_message, self.attempts, self.updated_at))


def rejected(dynamodb: Any, table: str, limit: int = 100, state: str = "rejected") -> list[Rejection]:
    """Events recorded ``rejected`` (Pinterest's 422 per-event failure or a 400 for the event
    alone), or in another ``state`` (``uncertain``), newest first: ``(key, error_message,
    attempts, updated_at)``.

    A Scan with a filter: it reads (and is billed for) the items it passes over, and stops once
    ``limit`` rejections are found, so with a limit below the total these are the newest of the
    ones found, not necessarily of the whole table.
    """
    found: list[Rejection] = []
    kwargs: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "#state = :state",
        "ExpressionAttributeNames": {"#state": "state"},
        "ExpressionAttributeValues": {":state": {"S": state}},
        "ProjectionExpression": "pk, error_message, attempts, updated_at",
    }
    while len(found) < limit:
        page = dynamodb.scan(**kwargs)
        for item in page.get("Items", []):
            found.append(Rejection(
                key=item["pk"]["S"],
                error_message=item.get("error_message", {}).get("S", ""),
                attempts=int(item.get("attempts", {}).get("N", "0")),
                updated_at=int(item.get("updated_at", {}).get("N", "0")),
            ))
        if not page.get("LastEvaluatedKey"):
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    found.sort(key=lambda r: (-r.updated_at, r.key))
    return found[:limit]


# --------------------------------------------------------------------------------------------
# argparse
# --------------------------------------------------------------------------------------------


def _target_arguments(parser: argparse.ArgumentParser, *names: str) -> None:
    parser.add_argument("--stack-name", help="CloudFormation stack to read the queue / table names from (its outputs)")
    if "queue_url" in names:
        parser.add_argument("--queue-url", help="the events queue (default: stack output EventsQueueUrl)")
    if "dlq_url" in names:
        parser.add_argument("--dlq-url", help="the dead-letter queue (default: stack output DeadLetterQueueUrl)")
    if "table" in names:
        parser.add_argument("--table", help="the DynamoDB dedup table (default: stack output DedupTableName)")
    parser.add_argument("--region", help="AWS region (default: the usual boto3 configuration)")


def _client(args: argparse.Namespace, service: str) -> Any:
    return aws_client(service, getattr(args, "region", None))


def resolve_targets(args: argparse.Namespace, *names: str, cloudformation: Any = None) -> dict[str, str]:
    """The values of ``names`` (queue_url, dlq_url, table): from the options, else from the
    outputs of ``--stack-name``. CommandError (exit status 2) when one cannot be found."""
    given = {name: getattr(args, name, None) for name in names}
    missing = [name for name, value in given.items() if not value]
    if missing and not getattr(args, "stack_name", None):
        raise CommandError(f"give {', '.join('--' + name.replace('_', '-') for name in missing)} or --stack-name "
                           "(or --local for the local stack)")
    return from_options_or_stack(given, getattr(args, "stack_name", None),  # type: ignore[return-value]
                                 lambda: cloudformation or _client(args, "cloudformation"),
                                 outputs={name: STACK_OUTPUTS[name] for name in names})


def setup_redrive(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="count the messages, move nothing")
    parser.add_argument("--limit", type=int, help="move at most this many")
    _target_arguments(parser, "queue_url", "dlq_url")


def run_redrive(args: argparse.Namespace, *, sqs: Any = None, cloudformation: Any = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    targets = resolve_targets(args, "queue_url", "dlq_url", cloudformation=cloudformation)
    sqs = sqs or _client(args, "sqs")
    count = redrive(sqs, targets["dlq_url"], targets["queue_url"], dry_run=args.dry_run, limit=args.limit)
    if args.dry_run:
        print(f"{count} message(s) in the dead-letter queue {targets['dlq_url']} (dry run: nothing moved)", file=out)
    else:
        print(f"moved {count} message(s) from {targets['dlq_url']} to {targets['queue_url']}", file=out)
    return 0


def setup_rejected(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    _target_arguments(parser, "table")


def run_rejected(args: argparse.Namespace, *, dynamodb: Any = None, cloudformation: Any = None,
                 out: TextIO | None = None) -> int:
    out = out or sys.stdout
    targets = resolve_targets(args, "table", cloudformation=cloudformation)
    rows = rejected(dynamodb or _client(args, "dynamodb"), targets["table"], args.limit)
    for row in rows:
        when = utc_text(row.updated_at) if row.updated_at else "-"
        print(f"{when}  {printable(row.key)}  attempts {row.attempts}  {printable(row.error_message)}", file=out)
    print(f"{len(rows)} rejected event(s) in {targets['table']}", file=out)
    return 0


def release_uncertain(dynamodb: Any, table: str, key: str) -> bool:
    """Forget an uncertain event, so that the next copy of it (the row uploaded again) is sent.
    Only an item still ``uncertain`` is deleted; False when there is none."""
    try:
        dynamodb.delete_item(TableName=table, Key={"pk": {"S": key}}, ConditionExpression="#state = :uncertain",
                             ExpressionAttributeNames={"#state": "state"},
                             ExpressionAttributeValues={":uncertain": {"S": "uncertain"}})
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return False
    return True


def setup_uncertain(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    parser.add_argument("--release", metavar="EVENT_ID", action="append", default=[],
                        help="forget this uncertain event (its event_id, as `pinrelay status` takes it, or its ledger "
                             "key <ad account>#<event_name>#<event_id>) so that uploading its row again sends it: only "
                             "after checking Pinterest does not have it (repeatable)")
    parser.add_argument("--event-name", default="checkout",
                        help="the event_name of the event_ids given to --release (default checkout)")
    parser.add_argument("--ad-account", metavar="ID", help="their ad account (default: the stack's "
                                                           "PinterestAdAccountId, else $PINTEREST_AD_ACCOUNT_ID)")
    _target_arguments(parser, "table")


# <ad account>#<event_name>#<event_id>, or <ad account>#offline#<event_name>#<event_id> (a store sale)
LEDGER_KEY = re.compile(r"\d{1,18}#[a-z_]+#.+")


def release_keys(args: argparse.Namespace, cloudformation: Any = None) -> list[tuple[str, list[str]]]:
    """Each value of ``--release`` with the ledger keys it may be: a key as given; an event_id as
    a store sale's key and as a web or app event's (``pinrelay.events.dedup_key``), with
    ``--event-name`` and the ad account (``--ad-account``, the stack's, PINTEREST_AD_ACCOUNT_ID).
    Only an uncertain item is released, so trying both keys releases the one that is."""
    if all(LEDGER_KEY.fullmatch(value) for value in args.release):
        return [(value, [value]) for value in args.release]
    found = from_options_or_stack({"ad_account": args.ad_account}, args.stack_name,
                                  lambda: cloudformation or _client(args, "cloudformation"),
                                  parameters={"ad_account": "PinterestAdAccountId"})
    ad_account = ad_account_id(found["ad_account"], "--ad-account, --stack-name or PINTEREST_AD_ACCOUNT_ID "
                                                    "(or give the ledger key <ad account>#<event_name>#<event_id>)")
    return [(value, [value]) if LEDGER_KEY.fullmatch(value) else
            (value, [dedup_key(ad_account, args.event_name, value, offline) for offline in (True, False)])
            for value in args.release]


def run_uncertain(args: argparse.Namespace, *, dynamodb: Any = None, cloudformation: Any = None,
                  out: TextIO | None = None) -> int:
    out = out or sys.stdout
    targets = resolve_targets(args, "table", cloudformation=cloudformation)
    dynamodb = dynamodb or _client(args, "dynamodb")
    if args.release:
        missing = False
        for given, keys in release_keys(args, cloudformation):
            released = next((key for key in keys if release_uncertain(dynamodb, targets["table"], key)), None)
            if released is None:
                missing = True
                print(f"{printable(given)}: not uncertain (left as it is)", file=out)
            else:
                print(f"{printable(released)}: released: its next copy is sent", file=out)
        return EXIT_FAILED if missing else EXIT_OK
    rows = rejected(dynamodb, targets["table"], args.limit, state="uncertain")
    for row in rows:
        when = utc_text(row.updated_at) if row.updated_at else "-"
        print(f"{when}  {printable(row.key)}  attempts {row.attempts}", file=out)
    advice = (": check Pinterest's Events Manager for each sale; release (--release EVENT_ID) the ones it does not have "
              "and send them again (offline: upload their rows again)") if rows else ""
    print(f"{len(rows)} uncertain event(s) in {targets['table']}{advice}", file=out)
    return EXIT_OK


def add_redrive_parser(sub: Any) -> argparse.ArgumentParser:
    parser = sub.add_parser("redrive", help=REDRIVE_HELP, description=REDRIVE_HELP)
    setup_redrive(parser)
    parser.set_defaults(func=run_redrive)
    return parser


def add_rejected_parser(sub: Any) -> argparse.ArgumentParser:
    parser = sub.add_parser("rejected", help=REJECTED_HELP, description=REJECTED_HELP)
    setup_rejected(parser)
    parser.set_defaults(func=run_rejected)
    return parser


__all__ = [
    "REDRIVE_HELP", "REJECTED_HELP", "Rejection", "add_redrive_parser", "add_rejected_parser", "redrive", "rejected",
    "resolve_targets", "run_redrive", "run_rejected", "setup_redrive", "setup_rejected",
]
