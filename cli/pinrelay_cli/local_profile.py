"""``pinrelay --local``: the commands against the stack ``make local`` runs, with no flags.

``make local`` (``python -m pinrelay_local run``) writes what the commands need to know about the
running stack to ``.pinrelay-local.json`` in the checkout (gitignored, readable by its owner only:
it holds the local keys), and removes it when it stops: the ingest URL, moto's endpoint and
region, the queue, dead-letter queue and ledger table, the ad account, the local API key, webhook
secrets and tokens, and the addresses of the Pinterest and Shopify Admin stand-ins.

``--local`` finds that file (``$PINRELAY_LOCAL_PROFILE``, else ``.pinrelay-local.json`` in the
current folder or one above it, else beside the virtualenv the command runs from), points boto3
at moto, and makes its values the defaults of the command's options (``--table``, ``--dlq-url``,
``--queue-url``, ``--url``, ``--ad-account``, ``--api-key``, ``--api-url``, ``--shop``,
``--shopify-api-url``, ``--allow-loopback-http``): an option given on the command line still
wins. The file is written by :func:`write` (the local stack) and read by :func:`load`; both live
here so that one module owns its format.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import MutableMapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pinrelay_cli.pinterest_access import EXIT_USAGE, CommandError

PROFILE_NAME = ".pinrelay-local.json"
PROFILE_ENV = "PINRELAY_LOCAL_PROFILE"
FORMAT = 1


@dataclass(frozen=True)
class LocalProfile:
    """The running local stack, as the commands reach it."""

    pid: int  # the process of `make local`: the profile is stale once it is gone
    region: str
    aws_endpoint_url: str  # moto server
    aws_access_key_id: str
    aws_secret_access_key: str
    ingest_url: str
    queue_url: str
    dlq_url: str
    table: str
    ad_account: str
    api_key: str
    pinterest_api_url: str
    secrets: dict[str, str] = field(default_factory=dict)  # environment name -> value (tokens, webhook secrets)
    shop: str | None = None
    shopify_admin_url: str | None = None
    pinterest_standin_url: str | None = None  # the stand-in's control API (/_standin/...), for the drills
    fetch_dlq_url: str | None = None  # BigCommerce fetch jobs' DLQ, for `status`
    line_items_dlq_url: str | None = None  # Stripe line-items jobs' DLQ, for `status`
    visibility_timeout_s: int = 30
    max_receive_count: int = 5
    path: Path | None = None  # where it was read from

    def option_defaults(self) -> dict[str, Any]:
        """Option values (argparse dests) for the commands, from the local stack."""
        defaults: dict[str, Any] = {
            "url": self.ingest_url, "table": self.table, "queue_url": self.queue_url, "dlq_url": self.dlq_url,
            "ad_account": self.ad_account, "api_key": self.api_key, "region": self.region,
            "api_url": self.pinterest_api_url, "allow_loopback_http": True,
        }
        if self.shop:
            defaults.update(shop=self.shop, shopify_api_url=self.shopify_admin_url)
        defaults |= {name: url for name, url in (("fetch_dlq_url", self.fetch_dlq_url),
                                                  ("line_items_dlq_url", self.line_items_dlq_url)) if url}
        return defaults

    def environment(self) -> dict[str, str]:
        """What boto3 and the commands read from the environment: moto, its region and dummy
        credentials, and the local tokens and secrets."""
        return {
            "AWS_ENDPOINT_URL": self.aws_endpoint_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": self.aws_access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.aws_secret_access_key,
            "PINTEREST_AD_ACCOUNT_ID": self.ad_account,
            **self.secrets,
        }

    def apply(self, environ: MutableMapping[str, str]) -> None:
        """Point ``environ`` at the local stack (a profile or session token of the shell's own
        AWS account is left out: the local stack takes only its dummy credentials)."""
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            environ.pop(name, None)
        environ.update(self.environment())


def find(cwd: Path | None = None) -> Path | None:
    """Where the profile is: ``$PINRELAY_LOCAL_PROFILE``, else the first ``.pinrelay-local.json``
    in ``cwd`` or a folder above it, else beside the virtualenv (the checkout of ``.venv``)."""
    if os.environ.get(PROFILE_ENV):
        return Path(os.environ[PROFILE_ENV])
    cwd = cwd or Path.cwd()
    for folder in (cwd, *cwd.parents):
        if (folder / PROFILE_NAME).is_file():
            return folder / PROFILE_NAME
    beside_venv = Path(sys.prefix).parent / PROFILE_NAME
    return beside_venv if beside_venv.is_file() else None


def load(path: Path | None = None) -> LocalProfile:
    """The running local stack's profile; CommandError (exit status 2) when there is none or its
    stack is gone."""
    path = path or find()
    if path is None or not path.is_file():
        where = path or f"{PROFILE_NAME} here or above"
        raise CommandError(f"no local stack found ({where}): start one with `make local` in the checkout", EXIT_USAGE)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.pop("format", None) != FORMAT:
            raise ValueError("another format")
        profile = LocalProfile(**data, path=path)
    except (OSError, ValueError, TypeError) as problem:
        raise CommandError(f"{path} cannot be read ({problem}): start the local stack again with `make local`") from None
    if not _alive(profile.pid):
        raise CommandError(f"the local stack that wrote {path} (process {profile.pid}) is no longer running: start it "
                           "with `make local`")
    return profile


def write(path: Path, profile: LocalProfile) -> None:
    """Write ``profile`` to ``path``, readable by its owner only, replacing it whole."""
    data = {"format": FORMAT, **{k: v for k, v in asdict(profile).items() if k != "path"}}
    temporary = path.with_name(path.name + f".{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
    os.replace(temporary, path)


def remove(path: Path, pid: int) -> None:
    """Remove ``path`` if it is still the profile process ``pid`` wrote (another stack may have
    written its own since)."""
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == pid:
            path.unlink()
    except (OSError, ValueError):
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True
