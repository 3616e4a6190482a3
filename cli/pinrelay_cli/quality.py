"""``pinrelay quality``: Pinterest's Event Quality Score of an ad account, with what pinrelay can do.

    pinrelay quality [--lookback 1d|14d] [--ad-account ID] [--api-url URL] [--token-secret-id NAME]
                     [--ingestion-source CONVERSIONS_API|TAG|...] [--source-platform WEB|...]

``GET {api-url}/ad_accounts/{id}/conversion_eqs`` (https on pinterest.com; plain http to this machine
with ``--allow-loopback-http``: the local stand-in) with a token that has the ``ads:read`` scope
(``$PINTEREST_ADS_READ_TOKEN`` or the secret ``--token-secret-id``; the conversion token of Ads
Manager does not have it). For each score (an ingestion source on a platform): the overall status,
then per component and event type the coverage (and, for ``external_event_id``, the overlap with
the tag), Pinterest's issues with their reasons, and under any row with an issue or under 50 % what
pinrelay can do about it (pinrelay.quality).

Exit status: 0 the scores were read (whatever they say); 1 Pinterest refused (token, scope, ad
account); 2 the check could not run (no token, secret unreadable); 3 try again later (rate limited,
Pinterest unavailable, no answer).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from pinrelay.adapters.pinterest_eqs import EqsUnavailable, RequestsEqsApi
from pinrelay.quality import INGESTION_SOURCES, LOOKBACK_PERIODS, SOURCE_PLATFORMS, EventQualityScore, rows
from pinrelay_cli.defaults import PROG
from pinrelay_cli.pinterest_access import (
    DEFAULT_API_URL,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_TRY_LATER,
    CommandError,
    ad_account_id,
    add_loopback_argument,
    add_token_arguments,
    checked_api_url,
    pinterest_token,
)
from pinrelay_cli.terminal import printable

HELP = "show Pinterest's event quality score (EQS) of the ad account and what pinrelay can do about it"
TIMEOUT_SECONDS = 20.0


def setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lookback", choices=LOOKBACK_PERIODS, default="14d", help="days looked back (default 14d)")
    parser.add_argument("--ad-account", metavar="ID", help="ad account (default: $PINTEREST_AD_ACCOUNT_ID)")
    parser.add_argument("--api-url", default=DEFAULT_API_URL, help=f"Pinterest API (default {DEFAULT_API_URL})")
    parser.add_argument("--ingestion-source", choices=INGESTION_SOURCES, help="only this source (default: every one)")
    parser.add_argument("--source-platform", choices=SOURCE_PLATFORMS, help="only this platform (default: every one)")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_SECONDS, help=f"seconds (default {TIMEOUT_SECONDS:g})")
    add_token_arguments(parser, "PINTEREST_ADS_READ_TOKEN", "the token with the ads:read scope")
    add_loopback_argument(parser, "--api-url")


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None, *,
        secretsmanager: Any = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        ad_account = ad_account_id(args.ad_account, "--ad-account or PINTEREST_AD_ACCOUNT_ID")
        api_url = checked_api_url(args.api_url, "pinterest", "--api-url", args.allow_loopback_http)
        token = pinterest_token(args, "PINTEREST_ADS_READ_TOKEN", secretsmanager=secretsmanager)
    except CommandError as problem:
        print(f"{PROG} quality: {printable(problem)}", file=err)
        return problem.exit_status
    api = RequestsEqsApi(api_url, token, args.timeout, allow_loopback_http=args.allow_loopback_http)
    try:
        scores = api.scores(ad_account, args.lookback, ingestion_source=args.ingestion_source,
                            source_platform=args.source_platform)
    except EqsUnavailable as problem:
        print(f"{PROG} quality: {printable(problem)}", file=err)
        return EXIT_TRY_LATER if problem.temporary else EXIT_FAILED
    print(f"Event quality of ad account {ad_account} (Pinterest EQS, last {args.lookback})", file=out)
    if not scores:
        print("Pinterest has no score for it yet: no events from these sources in the period", file=out)
    for score in scores:
        print("", file=out)
        print_score(score, out)
    return EXIT_OK


def print_score(score: EventQualityScore, out: TextIO) -> None:
    def say(line: str) -> None:
        print(printable(line.rstrip()), file=out)

    say(f"{score.ingestion_source} on {score.source_platform}: {score.overall_status}")
    table = rows(score)
    if not table:
        say("  (no components)")
        return
    component_width = max(len("component"), *(len(row.component) for row in table))
    event_width = max(len("event"), *(len(row.event_name) for row in table))
    say(f"  {'component':<{component_width}}  {'event':<{event_width}}  {'coverage':>8}  {'overlap':>8}")
    for row in table:
        overlap = f"{row.overlap:6.1f} %" if row.overlap is not None else ""
        say(f"  {row.component:<{component_width}}  {row.event_name:<{event_width}}  {row.coverage:6.1f} %  {overlap:>8}")
        for issue in row.issues:
            say(f"      ! {issue.name} ({issue.id}): {issue.reason}")
        if row.needs_attention:
            for text in row.advice():
                say(f"      → {text}")
