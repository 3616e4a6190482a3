"""``pinrelay verify``: do the token, the ad account and the pipeline work? One test event says.

    pinrelay verify --direct [--ad-account ID] [--api-url URL] [--token-secret-id NAME]
    pinrelay verify --stack-name NAME [--api-key KEY]
    pinrelay verify --url URL --table NAME --ad-account ID [--api-key KEY]     # e.g. the local stack

``--direct`` posts the event straight to Pinterest (``POST {api-url}/ad_accounts/{id}/events?test=true``)
with the conversion token (``$PINTEREST_CONVERSION_TOKEN`` or the secret ``--token-secret-id``), through
the sender's own HTTP adapter, and prints Pinterest's answer. ``--api-url`` is https on pinterest.com
(plain http to this machine with ``--allow-loopback-http``: the local stand-in); no call follows a
redirect (the token and the key go to the given address only).

Otherwise it goes through the deployed pipeline: ``POST {IngestApiUrl}/events?test=true`` with the
x-api-key (``--api-key`` or ``$PINRELAY_API_KEY``), then it reads the event's item in the delivery
ledger (GetItem, consistent) until the sender has recorded Pinterest's answer or ``--timeout`` (90 s)
passes, saying each step. ``--stack-name`` reads ``IngestApiUrl`` and ``DedupTableName`` from the
stack's outputs and the ad account from its ``PinterestAdAccountId`` parameter.

The event (pinrelay.verify) is a ``page_visit`` with ``test=true``, its e-mail a hashed fixed test
address: nothing personal is sent or printed, nor any token or key.

Exit status: 0 Pinterest processed it (delivered); 1 it was refused or not delivered in time, the
line says why; 2 the check could not run (an option, token or secret missing); 3 try again later
(rate limited, Pinterest or ingest unavailable, no answer).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from pinrelay.adapters.bounded_http import bounded_request
from pinrelay.adapters.dynamodb import plain_item
from pinrelay.adapters.pinterest_http import RequestsPinterestApi
from pinrelay.verify import (
    VERIFY_EVENT_NAME,
    LedgerEntry,
    claimed_line,
    final_line,
    judge_pinterest_answer,
    ledger_key,
    new_event_id,
    not_delivered_line,
    synthetic_event,
)
from pinrelay_cli.defaults import PROG
from pinrelay_cli.pinterest_access import (
    DEFAULT_API_URL,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_TRY_LATER,
    EXIT_USAGE,
    CommandError,
    ad_account_id,
    add_loopback_argument,
    add_token_arguments,
    aws_client,
    aws_problem,
    checked_api_url,
    pinterest_token,
)
from pinrelay_cli.stack import from_options_or_stack
from pinrelay_cli.terminal import printable

HELP = "send one test event (test=true) to Pinterest, directly or through the deployed pipeline, and say if it arrived"
DIRECT_TIMEOUT_SECONDS = 10.0
PIPELINE_TIMEOUT_SECONDS = 90.0
INGEST_TIMEOUT_SECONDS = 30.0
POLL_SECONDS = 0.5


def setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--direct", action="store_true",
                        help="post straight to Pinterest with the conversion token (checks token and ad account)")
    parser.add_argument("--ad-account", metavar="ID",
                        help="ad account (default: the stack's PinterestAdAccountId, else $PINTEREST_AD_ACCOUNT_ID)")
    parser.add_argument("--api-url", default=DEFAULT_API_URL, help=f"Pinterest API for --direct (default {DEFAULT_API_URL})")
    parser.add_argument("--stack-name", help="the deployed stack: its IngestApiUrl and DedupTableName outputs")
    parser.add_argument("--url", help="ingest base URL instead of the stack's IngestApiUrl (e.g. http://127.0.0.1:3000)")
    parser.add_argument("--table", help="delivery ledger table instead of the stack's DedupTableName")
    parser.add_argument("--api-key", help="x-api-key of POST /events (default: $PINRELAY_API_KEY)")
    parser.add_argument("--timeout", type=float, default=None,
                        help=f"seconds to wait: for Pinterest's answer with --direct (default {DIRECT_TIMEOUT_SECONDS:g}), "
                             f"else for the sender to deliver (default {PIPELINE_TIMEOUT_SECONDS:g})")
    add_token_arguments(parser, "PINTEREST_CONVERSION_TOKEN", "the conversion token for --direct")
    add_loopback_argument(parser, "--api-url")


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None, **clients: Any) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        if args.direct:
            return run_direct(args, out, **clients)
        return run_pipeline(args, out, **clients)
    except CommandError as problem:
        print(f"{PROG} verify: {printable(problem)}", file=err)
        return problem.exit_status


def _exit_status(ok: bool, temporary: bool) -> int:
    return EXIT_OK if ok else EXIT_TRY_LATER if temporary else EXIT_FAILED


def _say(out: TextIO, line: str) -> None:
    print(printable(line), file=out)
    out.flush()


# --------------------------------------------------------------------------------------------
# --direct: straight to Pinterest
# --------------------------------------------------------------------------------------------


def run_direct(args: argparse.Namespace, out: TextIO, *, secretsmanager: Any = None) -> int:
    ad_account = ad_account_id(args.ad_account)
    checked_api_url(args.api_url, "pinterest", "--api-url", args.allow_loopback_http)
    token = pinterest_token(args, "PINTEREST_CONVERSION_TOKEN", secretsmanager=secretsmanager)
    timeout = args.timeout or DIRECT_TIMEOUT_SECONDS
    api = RequestsPinterestApi(args.api_url, token=lambda _account, _fresh: token, timeout_seconds=timeout)
    event_id = new_event_id()
    event = synthetic_event(int(time.time()), event_id)
    _say(out, f"posting 1 test event ({VERIFY_EVENT_NAME}, event_id {event_id}) to "
              f"{api.base_url}/ad_accounts/{ad_account}/events?test=true")
    answer = api.post_events(ad_account, [event], test=True)
    if answer.status is not None:  # (no answer: the verdict says so)
        shown = json.dumps(answer.body, separators=(",", ":")) if answer.body is not None else answer.text
        _say(out, f"Pinterest answered {answer.status}: {shown[:600]}")
    verdict = judge_pinterest_answer(answer, ad_account)
    _say(out, ("ok: " if verdict.ok else "FAILED: ") + verdict.reason)
    return _exit_status(verdict.ok, verdict.temporary)


# --------------------------------------------------------------------------------------------
# through the pipeline: ingest -> queue -> sender -> Pinterest, watched in the delivery ledger
# --------------------------------------------------------------------------------------------


def pipeline_targets(args: argparse.Namespace, cloudformation: Any = None) -> tuple[str, str, str]:
    """(ingest URL, ledger table, ad account) from the options, else from the stack."""
    found = from_options_or_stack(
        {"url": args.url, "table": args.table, "ad_account": args.ad_account}, args.stack_name,
        lambda: cloudformation or aws_client("cloudformation", args.region),
        outputs={"url": "IngestApiUrl", "table": "DedupTableName"}, parameters={"ad_account": "PinterestAdAccountId"},
    )
    url, table, ad_account = found["url"], found["table"], found["ad_account"]
    if not (url and table):
        raise CommandError("give --direct, --stack-name NAME, or --url URL and --table NAME")
    return url.rstrip("/"), table, ad_account_id(ad_account, "--ad-account (or PINTEREST_AD_ACCOUNT_ID)")


def post_to_ingest(url: str, api_key: str, event: dict[str, Any], session: Any = None) -> tuple[bool, str, bool]:
    """POST the event to ``{url}/events?test=true``: (queued, what ingest said, temporary)."""
    import requests

    session = session or requests.Session()
    endpoint = f"{url}/events"
    try:
        response = bounded_request(session, "POST", endpoint, params={"test": "true"}, json={"data": [event]},
                                   headers={"x-api-key": api_key}, timeout=INGEST_TIMEOUT_SECONDS)
    except requests.RequestException as exc:
        return False, f"no answer from ingest at {endpoint} ({type(exc).__name__})", True
    if response.is_redirect:  # the key goes to the ingest URL only
        return False, (f"ingest answered {response.status_code}, a redirect (to {response.redirect_host}): not followed, "
                       "the API key goes to no other address; give the stack's IngestApiUrl"), False
    try:
        body = response.json()
    except ValueError:
        body = None
    results = body.get("events") if isinstance(body, dict) else None
    result = results[0] if isinstance(results, list) and len(results) == 1 and isinstance(results[0], dict) else {}
    message = ""
    if isinstance(body, dict) and body.get("message"):
        message = " ".join(str(body["message"]).split())
    elif body is None:
        message = " ".join(response.text[:200].split())
    status = response.status_code
    if status == 202 and result.get("status") == "accepted":
        return True, "ingest answered 202 accepted", False
    if status == 401:
        return False, "ingest refused the API key (401): give the stack's key with --api-key or PINRELAY_API_KEY (a " \
                      "deployed stack's: the one `pinrelay new-api-key` printed; the local stack's: the one `make local` " \
                      "printed, or use --local)", False
    if result.get("status") == "rejected":
        return False, f"ingest rejected the test event ({status}): {result.get('reason')}", False
    if status == 503 or status >= 500:
        return False, f"ingest could not queue the event ({status}{': ' + message if message else ''})", True
    return False, f"ingest answered {status}{': ' + message if message else ''}", False


def ledger_entry(dynamodb: Any, table: str, key: str) -> LedgerEntry | None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        item = dynamodb.get_item(
            TableName=table, Key={"pk": {"S": key}}, ConsistentRead=True,
            ProjectionExpression="#state, attempts, error_message, updated_at, lease_until, expires_at, reason",
            ExpressionAttributeNames={"#state": "state"},
        ).get("Item")
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise CommandError(f"the delivery ledger {table} could not be read ({code})") from None
    except BotoCoreError as exc:
        raise CommandError(f"the delivery ledger {table} could not be read: {aws_problem(exc)}") from None
    values = plain_item(item or {})
    if "state" not in values:
        return None
    return LedgerEntry(state=values["state"], attempts=values.get("attempts", 0),
                       error_message=values.get("error_message"), updated_at=values.get("updated_at"),
                       lease_until=values.get("lease_until"), expires_at=values.get("expires_at"),
                       reason=values.get("reason"))


def run_pipeline(args: argparse.Namespace, out: TextIO, *, cloudformation: Any = None, dynamodb: Any = None,
                 session: Any = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> int:
    url, table, ad_account = pipeline_targets(args, cloudformation)
    api_key = args.api_key or os.environ.get("PINRELAY_API_KEY")
    if not api_key:
        raise CommandError("no API key: give --api-key or set PINRELAY_API_KEY")
    timeout = args.timeout or PIPELINE_TIMEOUT_SECONDS
    dynamodb = dynamodb or aws_client("dynamodb", args.region)
    event_id = new_event_id()
    event = synthetic_event(int(time.time()), event_id)

    _say(out, f"posting 1 test event ({VERIFY_EVENT_NAME}, event_id {event_id}) to {url}/events?test=true")
    started = clock()
    queued, said, temporary = post_to_ingest(url, api_key, event, session)
    if not queued:
        _say(out, "FAILED: " + said)
        return EXIT_TRY_LATER if temporary else EXIT_FAILED
    _say(out, said)

    key = ledger_key(ad_account, event_id)
    claimed = False
    while True:
        entry = ledger_entry(dynamodb, table, key)
        elapsed = clock() - started
        if entry is not None and not claimed:
            _say(out, f"{claimed_line(entry)} after {elapsed:.1f} s")
            claimed = True
        last = final_line(entry) if entry is not None else None
        if last is not None:
            delivered = entry.state == "delivered"
            _say(out, ("" if delivered else "FAILED: ") + f"{last} after {elapsed:.1f} s")
            return EXIT_OK if delivered else EXIT_FAILED
        if elapsed >= timeout:
            _say(out, "FAILED: " + not_delivered_line(timeout, entry, ad_account))
            return EXIT_FAILED
        sleep(min(POLL_SECONDS, max(0.0, timeout - elapsed)))


__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_TRY_LATER", "EXIT_USAGE", "HELP", "run", "setup"]
