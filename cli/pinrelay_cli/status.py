"""``pinrelay status``: did this event reach Pinterest? One line per event, from the delivery ledger.

    pinrelay status 1042 1043 --stack-name pinrelay                     # checkout events of the stack's ad account
    pinrelay status pos-77 --event-name checkout --ad-account 549755885175 --table T --dlq-url URL

Each event is looked up by its ledger key ``<ad account>#<event_name>#<event_id>`` (a consistent
GetItem) and said to be delivered, rejected by Pinterest (with its message), uncertain, not sent
(with why: too old by the time it left the queue, or withheld before sending), being sent, waiting
for another try, in the dead-letter queue, or not claimed by any sender yet (with what that can
mean). The dead-letter queue is looked through (its messages are made visible again
at once) only for events not delivered. A WooCommerce or Shopify order's event_id is its order id
unless the event-id templates say otherwise; offline rows use their ``order_id`` column.

Exit status: 0 every event delivered; 1 at least one not (the lines say why); 2 the lookup could
not run.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

from pinrelay.adapters.dead_letters import SqsDeadLetters
from pinrelay.events import dedup_key
from pinrelay.verify import status_line
from pinrelay_cli.defaults import PROG
from pinrelay_cli.pinterest_access import EXIT_FAILED, EXIT_OK, CommandError, ad_account_id, aws_client
from pinrelay_cli.stack import from_options_or_stack
from pinrelay_cli.terminal import printable
from pinrelay_cli.verify import ledger_entry

HELP = ("did these events reach Pinterest? one line each: delivered, rejected (why), not sent (why), queued, in the DLQ, "
        "or never seen")
EXIT_DELIVERED, EXIT_NOT_DELIVERED = EXIT_OK, EXIT_FAILED


def setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("event_ids", nargs="+", metavar="EVENT_ID", help="the event_id of each event (an order id)")
    parser.add_argument("--event-name", default="checkout", help="their event_name (default checkout)")
    parser.add_argument("--ad-account", metavar="ID",
                        help="their ad account (default: the stack's PinterestAdAccountId, else $PINTEREST_AD_ACCOUNT_ID)")
    parser.add_argument("--stack-name", help="the deployed stack: its DedupTableName and DeadLetterQueueUrl outputs")
    parser.add_argument("--table", help="the delivery ledger table instead of the stack's")
    parser.add_argument("--dlq-url", help="the dead-letter queue instead of the stack's")
    parser.add_argument("--region", help="AWS region (default: the usual boto3 configuration)")


def run(args: argparse.Namespace, *, cloudformation: Any = None, dynamodb: Any = None, sqs: Any = None,
        out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    try:
        table, dlq_url, ad_account = _targets(args, cloudformation)
        dynamodb = dynamodb or aws_client("dynamodb", args.region)
        keys = [dedup_key(ad_account, args.event_name, event_id) for event_id in args.event_ids]
        entries = {key: ledger_entry(dynamodb, table, key) for key in keys}
    except CommandError as problem:
        print(f"{PROG} status: {printable(problem)}", file=err)
        return problem.exit_status
    dead_letters: set[str] = set()
    if dlq_url and any(entry is None or entry.state != "delivered" for entry in entries.values()):
        dead_letters = SqsDeadLetters(sqs or aws_client("sqs", args.region), dlq_url).dedup_keys()
    now = int(time.time())
    all_delivered = True
    for key, entry in entries.items():
        delivered, line = status_line(entry, in_dead_letters=key in dead_letters, now=now)
        all_delivered = all_delivered and delivered
        print(f"{printable(key)}: {printable(line)}", file=out)
    if not dlq_url:
        print("(the dead-letter queue was not looked at: give --stack-name or --dlq-url)", file=out)
    return EXIT_DELIVERED if all_delivered else EXIT_NOT_DELIVERED


def _targets(args: argparse.Namespace, cloudformation: Any) -> tuple[str, str | None, str]:
    """(ledger table, dead-letter queue URL or None, ad account) from the options, else the stack."""
    found = from_options_or_stack(
        {"table": args.table, "dlq_url": args.dlq_url, "ad_account": args.ad_account}, args.stack_name,
        lambda: cloudformation or aws_client("cloudformation", args.region),
        outputs={"table": "DedupTableName", "dlq_url": "DeadLetterQueueUrl"},
        parameters={"ad_account": "PinterestAdAccountId"},
    )
    table, dlq_url, ad_account = found["table"], found["dlq_url"], found["ad_account"]
    if not table:
        raise CommandError("give --stack-name NAME, or --table NAME (and --dlq-url URL)")
    return table, dlq_url, ad_account_id(ad_account, "--ad-account, --stack-name or PINTEREST_AD_ACCOUNT_ID")
