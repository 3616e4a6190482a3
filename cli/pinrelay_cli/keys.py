"""``pinrelay new-api-key``: a new x-api-key for ``POST /events``, stored only as its SHA-256.

The key is printed once and kept nowhere; what is stored (in the ingest key secret, or in an
account map entry's ``api_key_sha256``) is ``sha256:<hex>``, which lets pinrelay check a key but
not recover it. The secret may hold several keys as a JSON list (``pinrelay.secret_text``): add
the new key, switch the clients over, then remove the old one (``--replace`` stores the new key
alone).

    pinrelay new-api-key                                      # print a key and the line to store
    pinrelay new-api-key --secret-id pinrelay/ingest-api-key  # ... and append the line to the secret
    pinrelay new-api-key --secret-id pinrelay/ingest-api-key --replace   # end of a rotation

Register it in a CLI with ``add_parser(subparsers)``; ``run(args)`` does the work and returns the
exit status. Standalone: ``python -m pinrelay_cli.keys``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import secrets
import sys
from collections.abc import Callable
from typing import Any

from pinrelay.accounts import HASHED_KEY_PREFIX
from pinrelay.secret_text import api_key_entries
from pinrelay_cli.defaults import SECRETS_MAX_AGE_SECONDS

KEY_BYTES = 32

Printer = Callable[[str], None]


def new_key() -> str:
    """A random key: 32 bytes from the OS's CSPRNG, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(KEY_BYTES)


def stored_form(key: str) -> str:
    """The line to store for ``key``: ``sha256:<64 hex>``."""
    return HASHED_KEY_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()


def with_entry(current: str, line: str, *, replace: bool = False) -> str:
    """The secret value once ``line`` is added (or, with ``replace``, is the only entry): the
    line alone, or a JSON list of the lines (the form ``pinrelay.secret_text`` reads)."""
    entries = [] if replace else api_key_entries(current, "the ingest key secret")
    if line not in entries:
        entries.append(line)
    return entries[0] if len(entries) == 1 else json.dumps(entries)


def secretsmanager_client(
    region: str | None = None, profile: str | None = None, endpoint_url: str | None = None
) -> Any:
    import boto3

    session = boto3.session.Session(profile_name=profile, region_name=region)
    return session.client("secretsmanager", endpoint_url=endpoint_url)


def add_to_secret(client: Any, secret_id: str, line: str, *, replace: bool = False) -> int:
    """Append ``line`` to the secret (a new AWSCURRENT version); returns how many keys it holds."""
    current = client.get_secret_value(SecretId=secret_id).get("SecretString") or ""
    value = with_entry(current, line, replace=replace)
    if value != current:
        client.put_secret_value(SecretId=secret_id, SecretString=value)
    return len(api_key_entries(value, secret_id))


HELP = "generate an x-api-key for POST /events and the sha256 line to store"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``new-api-key`` on an ``add_subparsers()`` object; sets ``func=run``."""
    parser = sub.add_parser(
        "new-api-key",
        help=HELP,
        description="Generate an x-api-key for POST /events. The key is printed once and stored nowhere; "
        "only its sha256:<hex> line is stored (with --secret-id, appended to the secret).",
    )
    setup(parser)
    parser.set_defaults(func=run)
    return parser


def setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--secret-id",
        help="Secrets Manager secret (name or ARN) to append the sha256 line to, e.g. pinrelay/ingest-api-key",
    )
    parser.add_argument(
        "--replace",
        action="store_true",
        help="store the new key alone: every other key in the secret stops working (end of a rotation)",
    )
    parser.add_argument("--region", help="AWS region (default: the AWS CLI's)")
    parser.add_argument("--profile", help="AWS profile (default: the AWS CLI's)")
    parser.add_argument("--endpoint-url", help=argparse.SUPPRESS)  # moto / local testing


def run(args: argparse.Namespace, out: Printer = print, err: Printer | None = None) -> int:
    err = err or (lambda line: print(line, file=sys.stderr))
    if getattr(args, "replace", False) and not getattr(args, "secret_id", None):
        err("new-api-key: --replace needs --secret-id")
        return 2
    key = new_key()
    line = stored_form(key)
    if args.secret_id:
        try:
            client = secretsmanager_client(args.region, args.profile, getattr(args, "endpoint_url", None))
            count = add_to_secret(client, args.secret_id, line, replace=args.replace)
        except Exception as exc:  # noqa: BLE001 - botocore's errors: say what failed, no traceback, no key
            err(f"pinrelay new-api-key: could not update secret {args.secret_id!r} ({type(exc).__name__}: "
                f"{' '.join(str(exc).split())}): nothing stored, the key was discarded unshown")
            return 2
    out("x-api-key (shown once, stored nowhere: give it to the client now):")
    out(f"  {key}")
    if args.secret_id:
        action = "stored as the only key of" if args.replace else "appended to"
        out(f"{line} {action} {args.secret_id} ({count} key(s) in it now).")
        out(
            f"The ingest function picks it up within {SECRETS_MAX_AGE_SECONDS} s (its secret cache). Once every "
            "client uses the new key, remove the old key's line (or run again with --replace)."
        )
    else:
        out(
            "Store this line in the ingest key secret (several keys: a JSON list of lines, [\"<old>\", \"<new>\"]; "
            "keep the old key's line until every client has switched), or its hex part in an account map entry's "
            "api_key_sha256:"
        )
        out(f"  {line}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pinrelay")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parser.parse_args(["new-api-key", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
