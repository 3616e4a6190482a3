"""``pinrelay reconcile --shop SHOP.myshopify.com [--since DATE] [--until DATE] [--backfill]``

Every order of a Shopify shop accounted for: reads the shop's orders from the GraphQL Admin API,
maps each as its ``orders/create`` webhook was, looks it up in the delivery ledger and the
dead-letter queue, and puts it in one class (``pinrelay.reconcile``). Prints the counts per day
and class and the missing and rejected orders by name, and writes a self-contained HTML report.
``--backfill`` posts the missing orders of the last 7 days to ``{IngestApiUrl}/webhooks/shopify``,
signed as Shopify signs them (``pinrelay.adapters.webhook_backfill`` says why this path).

Where things come from: the Admin API token from ``--token-secret-id`` (Secrets Manager) or
``SHOPIFY_ADMIN_TOKEN``; the ledger table, the DLQ and the ingest URL from ``--table``,
``--dlq-url``, ``--url`` or the outputs of ``--stack-name``; the ad account from
``--ad-account``, the stack's ``PinterestAdAccountId`` or ``PINTEREST_AD_ACCOUNT_ID``; the webhook
secret from ``--webhook-secret-id``, ``SHOPIFY_WEBHOOK_SECRET`` or the stack's
``ShopifyWebhookSecretName``; the mapping settings from the ingest's variables
(``SHOPIFY_EVENT_ID_TEMPLATE``, ``SHOPIFY_CONTENT_ID_FIELD``, ``SHOPIFY_TEST_ORDERS``,
``SHOPIFY_SKIP_SOURCE_NAMES``, ``SHOPIFY_SKIP_TAGS``).

Exit status: 0 when no order is missing (with ``--backfill``: every missing order was queued
again); 1 when orders are missing (too old to send again, or refused); 2 when the reconciliation
could not run (options, Shopify, AWS).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from pinrelay.adapters.reconcile_wiring import TemplateNotReconcilable, mapping_rules, reconcile_shop
from pinrelay.secret_text import InvalidSecret, secret_entries
from pinrelay.adapters.shopify_admin import ShopifyAdminClient, ShopifyAdminError
from pinrelay.adapters.webhook_backfill import BackfillRefused, ShopifyWebhookBackfill
from pinrelay.config import ShopifyMapping
from pinrelay.endpoints import myshopify_domain
from pinrelay.reconcile import OrderClass, ReconcileReport, backfillable
from pinrelay.sources.shopify_graphql import DEFAULT_API_VERSION
from pinrelay.timestamps import parse_moment
from pydantic import ValidationError

from pinrelay_cli.defaults import PROG
from pinrelay_cli.reconcile_report import render_html, write_report
from pinrelay_cli.pinterest_access import (
    CommandError,
    ad_account_id,
    add_loopback_argument,
    aws_client,
    checked_api_url,
    secret_text,
)
from pinrelay_cli.stack import read_stack
from pinrelay_cli.terminal import printable

HELP = "account for every order of a Shopify shop: delivered, rejected, filtered, queued, in the DLQ or missing"
EXIT_OK, EXIT_MISSING, EXIT_ERROR = 0, 1, 2
LISTED = 200  # orders listed per class on the terminal (the report lists all)
# the longest Shopify is read: 2000 pages (100,000 orders) at 7 s each, Shopify's pace for a page on the
# standard plan's 100 points a second
SHOPIFY_BUDGET_SECONDS = 4 * 3600.0


def _moment(text: str) -> datetime:
    """``2025-06-01`` (midnight UTC) or an ISO date-time (UTC unless it says otherwise)."""
    moment = parse_moment(text.strip())
    if moment is None:
        raise argparse.ArgumentTypeError("must be a date (2025-06-01) or an ISO date-time (2025-06-01T12:00:00Z)")
    return moment


def setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shop", metavar="SHOP.myshopify.com", help="the shop's myshopify.com domain (required)")
    parser.add_argument("--since", type=_moment, metavar="DATE",
                        help="orders created from (UTC; default: 7 days before --until, the oldest Pinterest takes)")
    parser.add_argument("--until", type=_moment, metavar="DATE", help="... until, excluded (default: now)")
    parser.add_argument("--token-secret-id", metavar="NAME",
                        help="Secrets Manager secret holding the custom app's Admin API token "
                             "(default: $SHOPIFY_ADMIN_TOKEN)")
    parser.add_argument("--api-version", default=DEFAULT_API_VERSION,
                        help=f"Admin API version (default {DEFAULT_API_VERSION})")
    parser.add_argument("--shopify-api-url", metavar="URL",
                        help="where the Admin API is (default https://SHOP; $SHOPIFY_ADMIN_API_URL): https on "
                             "myshopify.com only")
    add_loopback_argument(parser, "--shopify-api-url")
    parser.add_argument("--stack-name",
                        help="CloudFormation stack to read the table, DLQ, ingest URL and ad account from")
    parser.add_argument("--table", help="the delivery ledger (default: stack output DedupTableName)")
    parser.add_argument("--dlq-url", help="the dead-letter queue (default: stack output DeadLetterQueueUrl)")
    parser.add_argument("--ad-account", help="the ad account the shop's events go to (default: the stack's "
                                             "PinterestAdAccountId, else $PINTEREST_AD_ACCOUNT_ID)")
    parser.add_argument("--report", metavar="FILE.html", help="the HTML report (default reconcile-<shop>-<since>.html)")
    parser.add_argument("--backfill", action="store_true",
                        help="send the missing orders of the last 7 days through ingest")
    parser.add_argument("--url", help="ingest base URL for --backfill (default: stack output IngestApiUrl)")
    parser.add_argument("--webhook-secret-id", metavar="NAME", help="Secrets Manager secret holding the shop's webhook "
                        "secret (default: $SHOPIFY_WEBHOOK_SECRET, else the stack's ShopifyWebhookSecretName)")
    parser.add_argument("--region", help="AWS region (default: the usual boto3 configuration)")


def _secret(args: argparse.Namespace, secret_id: str, what: str) -> str:
    """The secret's value (the first, for a JSON list of them: ``pinrelay.secret_text``)."""
    try:
        entries = secret_entries(secret_text(aws_client("secretsmanager", args.region), secret_id), f"secret {secret_id}",
                                 min_chars=1)
    except InvalidSecret as refused:
        raise CommandError(str(refused)) from None
    if not entries:
        raise CommandError(f"secret {secret_id} holds no {what} yet")
    return entries[0]


class _Stack:
    """The stack's outputs and parameters, read once (only when --stack-name is given)."""

    def __init__(self, args: argparse.Namespace, cloudformation: Any = None) -> None:
        self.name = args.stack_name
        self.outputs: dict[str, str] = {}
        self.parameters: dict[str, str] = {}
        if self.name:
            stack = read_stack(cloudformation or aws_client("cloudformation", args.region), self.name)
            self.outputs, self.parameters = stack.outputs, stack.parameters

    def value(self, given: str | None, output: str, option: str) -> str:
        if given:
            return given
        if not self.name:
            raise CommandError(f"give {option} or --stack-name")
        if not self.outputs.get(output):
            raise CommandError(f"stack {self.name} has no output {output}")
        return self.outputs[output]


def _admin_token(args: argparse.Namespace) -> str:
    if args.token_secret_id:
        return _secret(args, args.token_secret_id, "Shopify Admin API token")
    token = os.environ.get("SHOPIFY_ADMIN_TOKEN", "").strip()
    if not token:
        raise CommandError("give --token-secret-id NAME or set SHOPIFY_ADMIN_TOKEN (the custom app's Admin API access token)")
    return token


def _webhook_secret(args: argparse.Namespace, stack: _Stack) -> str:
    if args.webhook_secret_id:
        return _secret(args, args.webhook_secret_id, "Shopify webhook secret")
    if os.environ.get("SHOPIFY_WEBHOOK_SECRET"):
        try:
            entries = secret_entries(os.environ["SHOPIFY_WEBHOOK_SECRET"], "SHOPIFY_WEBHOOK_SECRET", min_chars=1)
        except InvalidSecret as refused:
            raise CommandError(str(refused)) from None
        if entries:
            return entries[0]
    if stack.parameters.get("ShopifyWebhookSecretName"):
        return _secret(args, stack.parameters["ShopifyWebhookSecretName"], "Shopify webhook secret")
    raise CommandError("--backfill needs the shop's webhook secret: --webhook-secret-id NAME, SHOPIFY_WEBHOOK_SECRET or "
               "--stack-name")


def _admin_api_url(args: argparse.Namespace) -> str | None:
    """The Admin API's address when not https://SHOP: --shopify-api-url, else $SHOPIFY_ADMIN_API_URL;
    https on myshopify.com only (pinrelay.endpoints)."""
    given, where = args.shopify_api_url, "--shopify-api-url"
    if not given and os.environ.get("SHOPIFY_ADMIN_API_URL"):
        given, where = os.environ["SHOPIFY_ADMIN_API_URL"], "SHOPIFY_ADMIN_API_URL"
    return checked_api_url(given, "shopify", where, args.allow_loopback_http) if given else None


def _ad_account(args: argparse.Namespace, stack: _Stack) -> str:
    return ad_account_id(args.ad_account or stack.parameters.get("PinterestAdAccountId"),
                         "--ad-account ID, --stack-name, or PINTEREST_AD_ACCOUNT_ID")


def _rules():
    """The mapping the deployment uses: the same variables as the ingest (pinrelay.config)."""
    try:
        return mapping_rules(ShopifyMapping.from_env())
    except TemplateNotReconcilable as problem:
        raise CommandError(str(problem)) from None
    except ValidationError as problem:  # e.g. a SHOPIFY_EVENT_ID_TEMPLATE naming a field there is not
        raise CommandError("; ".join(_setting_problem(error) for error in problem.errors(include_url=False))) from None


def _setting_problem(error: Any) -> str:
    setting = str(error["loc"][0]).upper() if error["loc"] else "settings"
    message = error["msg"].removeprefix("Value error, ")
    return message if message.startswith(setting) else f"{setting}: {message}"


def print_report(report: ReconcileReport, out: TextIO) -> None:
    print(f"{report.shop}: {len(report.verdicts)} order(s) created {report.since:%Y-%m-%d %H:%M} to "
          f"{report.until:%Y-%m-%d %H:%M} UTC", file=out)
    for day, counts in report.counts_by_day().items():
        parts = "  ".join(f"{cls.label} {counts[cls]}" for cls in OrderClass if counts[cls])
        print(f"  {day}  {sum(counts.values()):>5} order(s)  {parts or '-'}", file=out)
    totals = report.totals()
    print("  total       " + "  ".join(f"{cls.label} {totals[cls]}" for cls in OrderClass), file=out)
    for order_class, header in ((OrderClass.MISSING, "missing"), (OrderClass.IN_DEAD_LETTER_QUEUE, "in the DLQ"),
                                (OrderClass.UNCERTAIN, "uncertain"), (OrderClass.NOT_SENT, "not sent")):
        listed = report.of_class(order_class)
        if listed:
            names = " ".join(printable(v.name) for v in listed[:LISTED])
            more = f" (and {len(listed) - LISTED} more: see the report)" if len(listed) > LISTED else ""
            print(f"{header} ({len(listed)}): {names}{more}", file=out)
    for verdict in report.of_class(OrderClass.REJECTED_BY_PINTEREST, OrderClass.REJECTED_AT_INGEST)[:LISTED]:
        print(f"{verdict.order_class.label}: {printable(verdict.name)}: {printable(verdict.detail)}", file=out)
    for verdict in report.of_class(OrderClass.NOT_SENT_CONSENT)[:LISTED]:
        print(f"{verdict.order_class.label}: {printable(verdict.name)}: {printable(verdict.detail)}", file=out)


def backfill(report: ReconcileReport, admin: ShopifyAdminClient, poster: ShopifyWebhookBackfill, now: int,
             out: TextIO) -> tuple[int, int]:
    """Post the missing orders Pinterest would still take; (queued, left missing)."""
    missing = report.of_class(OrderClass.MISSING)
    queued = 0
    for verdict in missing:
        if not backfillable(verdict.created_at, now):
            print(f"backfill {printable(verdict.name)}: not sent, older than 7 days (Pinterest refuses it)", file=out)
            continue
        result = poster.send(admin.complete_webhook_body(report.orders[verdict.order_id]))
        detail = f": {printable(result.detail)}" if result.detail else ""
        print(f"backfill {printable(verdict.name)}: {result.status}{detail}", file=out)
        queued += result.status == "queued"
    return queued, len(missing) - queued


def run(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None,
        cloudformation: Any = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    try:
        return _run(args, out, cloudformation)
    except (CommandError, ShopifyAdminError, BackfillRefused) as problem:
        print(f"{PROG} reconcile: {printable(problem)}", file=err)
        return EXIT_ERROR


def _run(args: argparse.Namespace, out: TextIO, cloudformation: Any) -> int:
    if not args.shop:
        raise CommandError("give --shop SHOP.myshopify.com (or --local for the local stack's Shopify Admin stand-in)")
    try:
        shop = myshopify_domain(args.shop)
    except ValueError as problem:
        raise CommandError(f"--shop {problem}") from None
    admin_url = _admin_api_url(args)
    until = args.until or datetime.now(UTC)
    args.since = args.since or until - timedelta(days=7)
    if args.since >= until:
        raise CommandError("--since must be before --until")
    rules = _rules()
    stack = _Stack(args, cloudformation)
    table = stack.value(args.table, "DedupTableName", "--table")
    dlq_url = stack.value(args.dlq_url, "DeadLetterQueueUrl", "--dlq-url")
    ad_account = _ad_account(args, stack)
    poster = None
    if args.backfill:  # everything --backfill needs is checked before Shopify is read
        ingest_url = stack.value(args.url, "IngestApiUrl", "--url")
        poster = ShopifyWebhookBackfill(ingest_url, shop, _webhook_secret(args, stack), api_version=args.api_version)
    budget_ends = time.monotonic() + SHOPIFY_BUDGET_SECONDS
    admin = ShopifyAdminClient(shop, _admin_token(args), api_version=args.api_version, base_url=admin_url,
                               allow_loopback_http=args.allow_loopback_http,
                               time_left=lambda: budget_ends - time.monotonic())
    try:
        report = reconcile_shop(admin, dynamodb=aws_client("dynamodb", args.region), table_name=table, sqs=aws_client("sqs", args.region),
                                dead_letter_queue_url=dlq_url, since=args.since, until=until, ad_account_id=ad_account,
                                rules=rules)
    except ShopifyAdminError:
        raise
    except Exception as exc:  # noqa: BLE001 - AWS: one line, the operator's credentials or names are wrong
        problem = f"cannot read the ledger or the dead-letter queue ({type(exc).__name__}: {printable(exc)})"
        raise CommandError(problem[:400]) from None
    print_report(report, out)
    left = len(report.of_class(OrderClass.MISSING))
    note = ""
    if poster is not None and left:
        queued, left = backfill(report, admin, poster, int(time.time()), out)
        note = (f"--backfill queued {queued} missing order(s) again; {left} could not be sent. "
                "Run reconcile again in a few minutes: they should then be delivered.")
        print(note, file=out)
    path = Path(args.report or f"reconcile-{shop}-{args.since:%Y-%m-%d}.html")
    try:
        write_report(path, render_html(report, backfill_note=note))
    except OSError as problem:
        raise CommandError(f"cannot write the report {path} ({type(problem).__name__}: {problem.strerror})") from None
    print(f"report: {path}", file=out)
    return EXIT_MISSING if left else EXIT_OK
