"""``pinrelay account-map``: check an account map as ingest will, and store it only when it passes.

While the account map secret holds a map ingest refuses, every request that consults it is
answered 503 (docs/sources.md, "Several ad accounts in one deployment"). Shopify and API clients
retry a 503; WooCommerce does not, so its orders are lost until the map is fixed. This command runs
ingest's own check (``pinrelay.accounts.check_account_map``) on a file before the secret changes:

    pinrelay account-map check accounts.json                        # the entries among themselves
    pinrelay account-map check accounts.json --stack-name pinrelay  # ... and against the deployment
    pinrelay account-map put accounts.json --stack-name pinrelay    # check, then store it

With ``--stack-name`` the map is checked against the deployment's own API keys, webhook secrets
and shop lists (the stack's parameters name them), and every ad account of the map is looked up in
the tokens map (the sender sends none of its events without its own token). ``put`` stores the
file in the stack's ``AccountMapSecretName`` and refuses a map that fails the check. Nothing
printed quotes a secret, key or token.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from pinrelay.accounts import (
    AccountMap,
    DefaultAccount,
    InvalidAccountMap,
    InvalidAccountTokens,
    check_account_map,
    parse_account_tokens,
    shop_domain,
    woocommerce_source,
)
from pinrelay.secret_text import InvalidSecret, api_key_entries, secret_entries
from pinrelay.config import comma_separated

from pinrelay_cli.defaults import PROG, SECRETS_MAX_AGE_SECONDS
from pinrelay_cli.pinterest_access import EXIT_OK, CommandError, aws_client, secret_text
from pinrelay_cli.pinterest_access import EXIT_FAILED as EXIT_INVALID  # ingest would refuse the map: nothing stored
from pinrelay_cli.stack import read_stack
from pinrelay_cli.terminal import printable

HELP = "check an account map as ingest will (--stack-name: against the deployment too); put: store it if it passes"


def setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("check", "put"),
                        help="check: say whether ingest would take the map; put: check it, then store it")
    parser.add_argument("file", help="the account map, JSON (docs/sources.md); - for standard input")
    parser.add_argument("--stack-name", help="the deployed stack: check against its own keys, secrets, shop lists "
                                             "and tokens map; put stores into its AccountMapSecretName")
    parser.add_argument("--region", help="AWS region (default: the usual boto3 configuration)")


def run(args: argparse.Namespace, *, cloudformation: Any = None, secretsmanager: Any = None,
        stdin: TextIO | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr

    def say(line: str) -> None:
        print(line, file=out)

    try:
        if args.action == "put" and not args.stack_name:
            raise CommandError("put needs --stack-name: the map is checked against the deployment before it is stored")
        raw = _read_map(args.file, stdin or sys.stdin)
        parameters = read_stack(cloudformation or aws_client("cloudformation", args.region),
                                args.stack_name).parameters if args.stack_name else {}
        if parameters:
            secretsmanager = secretsmanager or aws_client("secretsmanager", args.region)

        def own(parameter: str, read: Callable[[str, str], list[str]] = secret_entries) -> list[str]:
            """The deployment's own keys or secrets, as ingest reads them."""
            name = parameters.get(parameter, "")
            try:
                return read(_secret_text(secretsmanager, name), f"secret {name} ({parameter})")
            except InvalidSecret as refused:  # ingest refuses it too: every request needing it gets 503
                raise CommandError(f"the deployment's own {refused}") from None

        try:
            accounts = check_account_map(raw, _default_account(parameters), lambda: (
                own("IngestApiKeySecretName", api_key_entries), own("ShopifyWebhookSecretName"),
                own("WooCommerceWebhookSecretName"),
            ))
        except InvalidAccountMap as problem:
            say(f"account map refused: {printable(str(problem).removeprefix('account map: '))}")
            say("ingest would answer 503 to every request that consults it; "
                + ("nothing was stored" if args.action == "put" else "fix it before it goes into the secret"))
            return EXIT_INVALID
        _describe(accounts, say)
        if not parameters:
            say("checked on its own: give --stack-name to check it against the deployment's own API keys, "
                "webhook secrets and shop lists, and its ad accounts against the tokens map")
            return EXIT_OK
        say(f"checked against stack {printable(args.stack_name)}: no entry reuses its keys, secrets or shops")
        _check_tokens(accounts, parameters, secretsmanager, say)
        if args.action == "put":
            name = parameters.get("AccountMapSecretName")
            if not name:
                raise CommandError(f"stack {args.stack_name} has no parameter AccountMapSecretName")
            _put(secretsmanager, name, raw)
            say(f"stored in secret {printable(name)}; ingest uses it within {SECRETS_MAX_AGE_SECONDS // 60} minutes "
                "(its secret cache)")
        return EXIT_OK
    except CommandError as stop:
        print(f"{PROG} account-map: {printable(stop)}", file=err)
        return stop.exit_status


# --------------------------------------------------------------------------------------------
def _read_map(path: str, stdin: TextIO) -> str:
    if path == "-":
        return stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot read {path} ({exc.strerror or type(exc).__name__})") from None
    except UnicodeDecodeError:
        raise CommandError(f"{path} is not UTF-8 text") from None


def _secret_text(secretsmanager: Any, name: str) -> str:
    """The text of the secret a stack parameter names ("" when it names none)."""
    return secret_text(secretsmanager, name) if name else ""


def _default_account(parameters: dict[str, str]) -> DefaultAccount:
    """The deployment's own shop lists, from the parameters its ingest function is given."""
    try:
        return DefaultAccount(
            shopify_shop_domains=tuple(shop_domain(v) for v in comma_separated(parameters.get("ShopifyShopDomains", ""))),
            woocommerce_sources=tuple(woocommerce_source(v)
                                      for v in comma_separated(parameters.get("WooCommerceSources", ""))),
        )
    except ValueError as problem:
        raise CommandError(f"the stack's ShopifyShopDomains / WooCommerceSources: {problem}") from None


def _describe(accounts: AccountMap, say: Callable[[str], None]) -> None:
    say(f"account map valid: {len(accounts.accounts)} entr{'y' if len(accounts.accounts) == 1 else 'ies'}")
    for index, route in enumerate(accounts.accounts):
        name = printable(route.name) if route.name else f"accounts[{index}]"
        say(f"  {name}: ad account {route.ad_account_id}; {len(route.api_key_sha256)} API key(s), "
            f"{len(route.shopify_shop_domains)} Shopify domain(s) with {len(route.shopify_webhook_secrets)} secret(s), "
            f"{len(route.woocommerce_sources)} WooCommerce source(s) with "
            f"{len(route.woocommerce_webhook_secrets)} secret(s)")


def _check_tokens(accounts: AccountMap, parameters: dict[str, str], secretsmanager: Any,
                  say: Callable[[str], None]) -> None:
    """Warn about each ad account the sender has no token for: its events would go back to the
    queue, then to the DLQ (ConversionTokenMissing). A warning, not a refusal: the token may be
    added after the map."""
    own = parameters.get("PinterestAdAccountId")
    needed = sorted({route.ad_account_id for route in accounts.accounts} - {own})
    if not needed:
        return
    name = parameters.get("AccountTokensSecretName", "")
    try:
        tokens = parse_account_tokens(_secret_text(secretsmanager, name))
    except InvalidAccountTokens as problem:
        say(f"warning: the tokens map ({printable(name)}) is invalid, so no mapped ad account can be sent: "
            f"{printable(problem)}")
        return
    for ad_account in needed:
        if tokens.token_for(ad_account) is None:
            say(f"warning: ad account {ad_account} has no token in the tokens map ({printable(name)}): its events "
                "wait in the queue (then the DLQ) until one is added")


def _put(secretsmanager: Any, name: str, raw: str) -> None:
    try:
        secretsmanager.put_secret_value(SecretId=name, SecretString=raw)
    except Exception as exc:  # noqa: BLE001
        code = getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__
        raise CommandError(f"cannot store the map in secret {name} ({code})") from None
