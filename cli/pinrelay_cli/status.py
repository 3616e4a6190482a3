"""``pinrelay status``: did this event reach Pinterest? One line per event, from the delivery ledger.

    pinrelay status 1042 1043 --stack-name pinrelay                     # checkout events of the stack's ad account
    pinrelay status 4242 --shop shop-a.example --shop shop-b.myshopify.com --table T --ad-account 549755885175
    pinrelay status pos-77 --event-name checkout --ad-account 549755885175 --table T --dlq-url URL
    pinrelay status 250 251 --bigcommerce-store abc123 --stack-name pinrelay  # BigCommerce order ids
    pinrelay status cs_live_a1B2c3 --stack-name pinrelay                     # a Stripe Checkout Session

Each event is looked up by its ledger keys (consistent GetItems): ``<ad account>#<event_name>#
<event_id>`` for a web or app event, ``<ad account>#offline#<event_name>#<event_id>`` for a store
sale (offline events are keyed apart), and, when several shops share the ad account, the id
scoped by each shop, ``<shop>/<event_id>``: the shops given with ``--shop`` and, with
``--stack-name``, those of its ``ShopifyShopDomains`` and ``WooCommerceSources`` (a shop of an
account map entry: give it with ``--shop``). Each key found is one line, so two shops' order 4242
are told apart; when none is found, one line says so. An event is said to be delivered, rejected
by Pinterest (with its message), uncertain, not sent (with why: too old by the time it left the
queue, or withheld before sending), being sent, waiting for another try, in the
dead-letter queue, or not claimed by any sender yet (with what that can mean). The dead-letter
queue is looked through (its messages are made visible again at once) only for events not
delivered. A WooCommerce or Shopify order's event_id is its order id unless the event-id
templates say otherwise; offline rows use their ``event_id`` column; a Stripe session's is its
session id (``cs_live_...``) unless the shop gave the browser's; a BigCommerce order's is
``<store hash>-<order id>`` (``--bigcommerce-store`` makes it from the order ids, with
``BIGCOMMERCE_EVENT_ID_TEMPLATE`` when it is set). An order not in the ledger whose fetch job is
in the BigCommerce fetch dead-letter queue (``--fetch-dlq-url``, or the stack's output), or a
Stripe session whose line-items job is in the line-items dead-letter queue (``--line-items-dlq-url``,
or the stack's output), is said to be there.

Exit status: 0 every event delivered; 1 at least one not (the lines say why); 2 the lookup could
not run.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

from pinrelay.accounts import shop_domain, shopify_shop_key, woocommerce_shop_key, woocommerce_source
from pinrelay.adapters.dead_letters import SqsDeadLetters, fetch_job_key, line_items_job_key
from pinrelay.config import BigCommerceMapping, comma_separated
from pinrelay.events import dedup_key, event_id_from_template, scoped_event_id
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
    # dest "shops": a list, apart from the one shop reconcile and the local profile name ("shop")
    parser.add_argument("--shop", action="append", dest="shops", default=[], metavar="SHOP",
                        help="a shop whose scoped ids to look up too (several shops on one ad account): its "
                             "myshopify.com domain or WooCommerce site address; may be repeated")
    parser.add_argument("--ad-account", metavar="ID",
                        help="their ad account (default: the stack's PinterestAdAccountId, else $PINTEREST_AD_ACCOUNT_ID)")
    parser.add_argument("--stack-name", help="the deployed stack: its DedupTableName and DeadLetterQueueUrl outputs")
    parser.add_argument("--table", help="the delivery ledger table instead of the stack's")
    parser.add_argument("--dlq-url", help="the dead-letter queue instead of the stack's")
    parser.add_argument("--bigcommerce-store", metavar="HASH",
                        help="the EVENT_IDs are order ids of this BigCommerce store (their event_ids are made "
                             "from the store and the order: BIGCOMMERCE_EVENT_ID_TEMPLATE, default {store_hash}-{order_id})")
    parser.add_argument("--fetch-dlq-url", help="the BigCommerce fetch jobs' dead-letter queue instead of the stack's")
    parser.add_argument("--line-items-dlq-url",
                        help="the Stripe line-items jobs' dead-letter queue instead of the stack's")
    parser.add_argument("--region", help="AWS region (default: the usual boto3 configuration)")


def run(args: argparse.Namespace, *, cloudformation: Any = None, dynamodb: Any = None, sqs: Any = None,
        out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    try:
        table, dlq_url, ad_account, shops, fetch_dlq_url, line_items_dlq_url = _targets(args, cloudformation)
        dynamodb = dynamodb or aws_client("dynamodb", args.region)
        template = BigCommerceMapping.from_env().bigcommerce_event_id_template
        event_ids = ([event_id_from_template(template, {"store_hash": args.bigcommerce_store, "order_id": order_id})
                      for order_id in args.event_ids] if args.bigcommerce_store else args.event_ids)
        candidates = {event_id: _keys(ad_account, args.event_name, event_id, shops) for event_id in event_ids}
        found = {key: ledger_entry(dynamodb, table, key) for keys in candidates.values() for key in keys}
    except CommandError as problem:
        print(f"{PROG} status: {printable(problem)}", file=err)
        return problem.exit_status
    dead_letters: set[str] = set()
    fetch_dead_letters: set[str] = set()
    line_items_dead_letters: set[str] = set()
    if (dlq_url or fetch_dlq_url or line_items_dlq_url) and any(entry is None or entry.state != "delivered"
                                                                for entry in found.values()):
        sqs = sqs or aws_client("sqs", args.region)
        if dlq_url:
            dead_letters = SqsDeadLetters(sqs, dlq_url).dedup_keys()
        if fetch_dlq_url:
            fetch_dead_letters = SqsDeadLetters(sqs, fetch_dlq_url, key_of=fetch_job_key(template)).dedup_keys()
        if line_items_dlq_url:
            line_items_dead_letters = SqsDeadLetters(sqs, line_items_dlq_url, key_of=line_items_job_key).dedup_keys()
    entries = {}
    in_some_dlq = dead_letters | fetch_dead_letters | line_items_dead_letters
    for keys in candidates.values():  # each key the ledger or a DLQ knows; else the id's own key
        known = [key for key in keys if found[key] is not None or key in in_some_dlq]
        entries |= {key: found[key] for key in known or keys[:1]}
    now = int(time.time())
    all_delivered = True
    for key, entry in entries.items():
        delivered, line = status_line(entry, in_dead_letters=key in dead_letters, now=now,
                                      in_fetch_dead_letters=key in fetch_dead_letters,
                                      in_line_items_dead_letters=key in line_items_dead_letters)
        all_delivered = all_delivered and delivered
        print(f"{printable(key)}: {printable(line)}", file=out)
    if not dlq_url:
        print("(the dead-letter queue was not looked at: give --stack-name or --dlq-url)", file=out)
    return EXIT_DELIVERED if all_delivered else EXIT_NOT_DELIVERED


def _keys(ad_account: str, event_name: str, event_id: str, shops: list[str]) -> list[str]:
    """Where the event may be in the ledger: as a web or app event, as an offline one, and
    scoped by each shop (``pinrelay.events.dedup_key``, ``scoped_event_id``)."""
    ids = [event_id, *(scoped_event_id(shop, event_id) for shop in shops if not event_id.startswith(f"{shop}/"))]
    return list(dict.fromkeys(dedup_key(ad_account, event_name, an_id, offline)
                              for an_id in ids for offline in (False, True)))


def _shop_keys(shopify_domains: list[str], woocommerce_sources: list[str]) -> list[str]:
    """The shops' scopes as ingest writes them (``pinrelay.accounts.shopify_shop_key`` /
    ``woocommerce_shop_key``) from their domains and site addresses."""
    try:
        keys = [shopify_shop_key(shop_domain(domain), None) for domain in shopify_domains]
        keys += [woocommerce_shop_key(woocommerce_source(source), None) for source in woocommerce_sources]
    except ValueError as problem:
        raise CommandError(f"--shop / the stack's shop lists: {problem}") from None
    return list(dict.fromkeys(keys))


def _targets(args: argparse.Namespace,
             cloudformation: Any) -> tuple[str, str | None, str, list[str], str | None, str | None]:
    """(ledger table, dead-letter queue URL or None, ad account, shop scopes, BigCommerce fetch DLQ
    URL or None, Stripe line-items DLQ URL or None) from the options, else the stack."""
    found = from_options_or_stack(
        {"table": args.table, "dlq_url": args.dlq_url, "ad_account": args.ad_account, "shopify_shops": None,
         "woocommerce_sources": None, "fetch_dlq_url": args.fetch_dlq_url,
         "line_items_dlq_url": args.line_items_dlq_url}, args.stack_name,
        lambda: cloudformation or aws_client("cloudformation", args.region),
        outputs={"table": "DedupTableName", "dlq_url": "DeadLetterQueueUrl"},
        parameters={"ad_account": "PinterestAdAccountId", "shopify_shops": "ShopifyShopDomains",
                    "woocommerce_sources": "WooCommerceSources"},
        optional_outputs={"fetch_dlq_url": "BigCommerceFetchDeadLetterQueueUrl",
                          "line_items_dlq_url": "StripeLineItemsDeadLetterQueueUrl"},
    )
    table, dlq_url, ad_account = found["table"], found["dlq_url"], found["ad_account"]
    if not table:
        raise CommandError("give --stack-name NAME, or --table NAME (and --dlq-url URL)")
    given = getattr(args, "shops", []) or []
    shopify_domains = [shop for shop in given if "://" not in shop] + comma_separated(found["shopify_shops"] or "")
    woocommerce_sources = [shop for shop in given if "://" in shop] + comma_separated(found["woocommerce_sources"] or "")
    return (table, dlq_url, ad_account_id(ad_account, "--ad-account, --stack-name or PINTEREST_AD_ACCOUNT_ID"),
            _shop_keys(shopify_domains, woocommerce_sources), found["fetch_dlq_url"], found["line_items_dlq_url"])
