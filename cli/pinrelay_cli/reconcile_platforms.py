"""``pinrelay reconcile-stripe`` and ``pinrelay reconcile-bigcommerce``: every Checkout Session of a
Stripe account, every order of a BigCommerce store, accounted for, as ``pinrelay reconcile`` does
for a Shopify shop (``pinrelay.reconcile``: delivered, rejected, filtered, queued, in the DLQ or
missing), with the same summary and HTML report.

    pinrelay reconcile-stripe --since 2026-11-01 --stack-name pinrelay            # $STRIPE_API_KEY
    pinrelay reconcile-bigcommerce --store abc123 --since 2026-11-01 --stack-name pinrelay

* Stripe: the completed sessions created in the period (``GET /v1/checkout/sessions``), each mapped
  as its ``checkout.session.completed`` was (the paid-only rule, the event_id:
  ``STRIPE_CLIENT_REFERENCE_ID``, ``STRIPE_TEST_SESSIONS`` as the stack's). The key needs read
  access to Checkout Sessions: the restricted key of ``StripeApiKeySecretName`` does
  (``--key-secret-id``, else ``$STRIPE_API_KEY``).
* BigCommerce: the store's orders created in the period (``GET /v2/orders``), each mapped as the
  fetcher maps it now (``BIGCOMMERCE_PAID_STATUS_IDS``, ``BIGCOMMERCE_EVENT_ID_TEMPLATE``); the
  token from ``--token-secret-id`` or ``$BIGCOMMERCE_API_TOKEN``. An order whose fetch job sits in
  the fetch dead-letter queue shows as missing: ``pinrelay status`` says where it is.

No ``--backfill`` yet: a missing session or order is sent again by resending its webhook from the
platform (Stripe's Dashboard: Developers, Events, Resend; BigCommerce: a status change fires
``store/order/statusUpdated``). Exit status as ``pinrelay reconcile``: 0 nothing missing, 1 missing
orders, 2 it could not run.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from pinrelay.adapters.aws import worst_call_seconds
from pinrelay.adapters.dead_letters import SqsDeadLetters
from pinrelay.adapters.dynamodb import DynamoDeliveryLedger
from pinrelay.adapters.secrets import secret_entries
from pinrelay.config import EVENT_LIFETIME_SECONDS, BigCommerceMapping, StripeMapping
from pinrelay.ports import OrderUnavailable
from pinrelay.reconcile import OrderClass, ReconcileReport, map_bigcommerce_order, map_stripe_session, reconcile
from pydantic import ValidationError

from pinrelay_cli.defaults import PROG
from pinrelay_cli.pinterest_access import (
    CommandError,
    ad_account_id,
    add_loopback_argument,
    aws_client,
    checked_api_url,
    secret_text,
)
from pinrelay_cli.reconcile import EXIT_ERROR, EXIT_MISSING, EXIT_OK, _moment, print_report
from pinrelay_cli.reconcile_report import render_html
from pinrelay_cli.stack import from_options_or_stack
from pinrelay_cli.terminal import printable

STRIPE_HELP = "account for every Checkout Session of a Stripe account: delivered, rejected, filtered, queued or missing"
BIGCOMMERCE_HELP = "account for every order of a BigCommerce store: delivered, rejected, filtered, queued or missing"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", required=True, type=_moment, metavar="DATE", help="created from (UTC)")
    parser.add_argument("--until", type=_moment, metavar="DATE", help="... until, excluded (default: now)")
    parser.add_argument("--stack-name", help="CloudFormation stack to read the table, DLQ and ad account from")
    parser.add_argument("--table", help="the delivery ledger (default: stack output DedupTableName)")
    parser.add_argument("--dlq-url", help="the dead-letter queue (default: stack output DeadLetterQueueUrl)")
    parser.add_argument("--ad-account", help="the ad account their events go to (default: the stack's "
                                             "PinterestAdAccountId, else $PINTEREST_AD_ACCOUNT_ID)")
    parser.add_argument("--report", metavar="FILE.html", help="the HTML report (default reconcile-<who>-<since>.html)")
    parser.add_argument("--region", help="AWS region (default: the usual boto3 configuration)")


def setup_stripe(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("--key-secret-id", metavar="NAME", help="Secrets Manager secret holding a key that may read "
                        "Checkout Sessions (default: $STRIPE_API_KEY)")
    parser.add_argument("--stripe-api-url", metavar="URL", help="where Stripe's API is (default https://api.stripe.com; "
                        "$STRIPE_API_URL)")
    add_loopback_argument(parser, "--stripe-api-url")


def setup_bigcommerce(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", required=True, metavar="HASH", help="the store hash (after /stores/ in its API path)")
    _common(parser)
    parser.add_argument("--token-secret-id", metavar="NAME", help="Secrets Manager secret holding the store's API token "
                        "(default: $BIGCOMMERCE_API_TOKEN)")
    parser.add_argument("--bigcommerce-api-url", metavar="URL", help="where the API is (default "
                        "https://api.bigcommerce.com; $BIGCOMMERCE_API_URL)")
    add_loopback_argument(parser, "--bigcommerce-api-url")


def _credential(args: argparse.Namespace, secret_id: str | None, variable: str, option: str) -> str:
    text = secret_text(aws_client("secretsmanager", args.region), secret_id) if secret_id else os.environ.get(variable, "")
    entries = secret_entries(text, f"{option} or {variable}", min_chars=1)  # a token the platform issued, as it is
    if not entries:
        raise CommandError(f"give {option} NAME or set {variable}")
    return entries[0]


def _mapping(model: type[StripeMapping] | type[BigCommerceMapping]) -> Any:
    try:
        return model.from_env()
    except ValidationError as problem:
        raise CommandError("; ".join(error["msg"].removeprefix("Value error, ")
                                     for error in problem.errors(include_url=False))) from None


def _run(args: argparse.Namespace, who: str, source: Any, mapper: Any, out: TextIO, cloudformation: Any) -> int:
    until = args.until or datetime.now(UTC)
    if args.since >= until:
        raise CommandError("--since must be before --until")
    found = from_options_or_stack(
        {"table": args.table, "dlq_url": args.dlq_url, "ad_account": args.ad_account}, args.stack_name,
        lambda: cloudformation or aws_client("cloudformation", args.region),
        outputs={"table": "DedupTableName", "dlq_url": "DeadLetterQueueUrl"}, parameters={"ad_account": "PinterestAdAccountId"})
    if not found["table"] or not found["dlq_url"]:
        raise CommandError("give --stack-name NAME, or --table NAME and --dlq-url URL")
    ad_account = ad_account_id(found["ad_account"], "--ad-account ID, --stack-name, or PINTEREST_AD_ACCOUNT_ID")
    ledger = DynamoDeliveryLedger(found["table"], aws_client("dynamodb", args.region), worst_call_seconds("dynamodb"))
    dead_letters = SqsDeadLetters(aws_client("sqs", args.region), found["dlq_url"])
    report: ReconcileReport = reconcile(source, ledger, dead_letters, shop=who, since=args.since, until=until,
                                        ad_account_id=ad_account, clock=lambda: datetime.now(UTC).timestamp(), mapper=mapper)
    print_report(report, out)
    path = Path(args.report or f"reconcile-{who}-{args.since:%Y-%m-%d}.html")
    path.write_text(render_html(report), encoding="utf-8")
    print(f"report: {path}", file=out)
    return EXIT_MISSING if report.of_class(OrderClass.MISSING) else EXIT_OK


def _guarded(command: str, args: argparse.Namespace, body: Any, err: TextIO | None) -> int:
    """``body()``'s exit status; a problem said in one line (the platform's API, AWS, the options): 2."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return body()
    except (CommandError, OrderUnavailable, RuntimeError) as problem:  # the adapters' errors are RuntimeErrors
        print(f"{PROG} {command}: {printable(problem)}", file=err or sys.stderr)
    except (BotoCoreError, ClientError) as problem:
        print(f"{PROG} {command}: cannot read the ledger or the dead-letter queue ({type(problem).__name__}: "
              f"{printable(problem)})"[:400], file=err or sys.stderr)
    return EXIT_ERROR


def run_stripe(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None,
               cloudformation: Any = None) -> int:
    from pinrelay.adapters.stripe_api import StripeCheckoutSessions

    def body() -> int:
        options = _mapping(StripeMapping).stripe_options(EVENT_LIFETIME_SECONDS)
        key = _credential(args, args.key_secret_id, "STRIPE_API_KEY", "--key-secret-id")
        url = args.stripe_api_url or os.environ.get("STRIPE_API_URL") or "https://api.stripe.com"
        source = StripeCheckoutSessions(key, checked_api_url(url, "stripe", "--stripe-api-url / STRIPE_API_URL",
                                                             args.allow_loopback_http))
        return _run(args, "stripe", source, lambda order: map_stripe_session(order, options), out or sys.stdout,
                    cloudformation)

    return _guarded("reconcile-stripe", args, body, err)


def run_bigcommerce(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None,
                    cloudformation: Any = None) -> int:
    from pinrelay.adapters.bigcommerce_api import BigCommerceStore, store_orders
    from pinrelay.sources.bigcommerce import store_hash

    def body() -> int:
        try:
            store = store_hash(args.store)
        except ValueError as problem:
            raise CommandError(f"--store {problem}") from None
        options = _mapping(BigCommerceMapping).bigcommerce_options(EVENT_LIFETIME_SECONDS)
        token = _credential(args, args.token_secret_id, "BIGCOMMERCE_API_TOKEN", "--token-secret-id")
        url = args.bigcommerce_api_url or os.environ.get("BIGCOMMERCE_API_URL") or "https://api.bigcommerce.com"
        api = BigCommerceStore(store, token, checked_api_url(url, "bigcommerce", "--bigcommerce-api-url / BIGCOMMERCE_API_URL",
                                                             args.allow_loopback_http))

        class Orders:
            def orders(self, since: datetime, until: datetime):
                return store_orders(api, since, until)

        return _run(args, f"bigcommerce-{store}", Orders(), lambda order: map_bigcommerce_order(order, store, options),
                    out or sys.stdout, cloudformation)

    return _guarded("reconcile-bigcommerce", args, body, err)
