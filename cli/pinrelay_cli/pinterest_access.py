"""What the ``pinrelay`` commands share: their exit statuses and one-line errors, the ad account and
the Pinterest token they use (from an environment variable or a Secrets Manager secret), boto3
clients. The token is never printed."""

from __future__ import annotations

import argparse
import os
from typing import Any

from pinrelay.accounts import AD_ACCOUNT_ID, PLACEHOLDER
from pinrelay.endpoints import LOOPBACK_FLAG, EndpointRefused, Service, api_url

EXIT_OK = 0
EXIT_FAILED = 1  # Pinterest or the pipeline said no: fix what the message says
EXIT_USAGE = 2  # the check could not run: an option, a token or a secret is missing
EXIT_TRY_LATER = 3  # rate limited, unavailable, no answer: the same check may pass later

DEFAULT_API_URL = "https://api.pinterest.com/v5"


class CommandError(Exception):
    """The check cannot go on: a one-line reason and the exit status."""

    def __init__(self, reason: str, exit_status: int = EXIT_USAGE) -> None:
        super().__init__(reason)
        self.exit_status = exit_status


def aws_problem(exc: BaseException) -> str | None:
    """What went wrong with AWS in one line (no region, no credentials, unreachable, a refusal),
    or None for an exception that is not botocore's."""
    try:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
            NoRegionError,
        )
    except ImportError:  # pragma: no cover - boto3 is a dependency
        return None
    if isinstance(exc, NoRegionError):
        return "no AWS region: give --region, set AWS_DEFAULT_REGION, or configure one (aws configure)"
    if isinstance(exc, NoCredentialsError):
        return ("no AWS credentials: configure them as for the AWS CLI (aws configure, AWS_PROFILE, or "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
    if isinstance(exc, EndpointConnectionError):
        local = " (AWS_ENDPOINT_URL: is the local stack running?)" if os.environ.get("AWS_ENDPOINT_URL") else ""
        return f"cannot reach AWS at {exc.kwargs.get('endpoint_url', '?')}{local}"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        operation = getattr(exc, "operation_name", "") or "the call"
        message = " ".join(str(error.get("Message") or "").split())
        return f"AWS refused {operation} ({error.get('Code', 'error')}{': ' + message if message else ''})"[:400]
    if isinstance(exc, BotoCoreError):
        return f"AWS: {' '.join(str(exc).split())}"[:400]
    return None


def aws_client(service: str, region: str | None = None) -> Any:
    import boto3

    return boto3.client(service, region_name=region or None)


def secret_text(secretsmanager: Any, secret_id: str) -> str:
    """The text of a Secrets Manager secret, or CommandError in one line that never quotes it."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return secretsmanager.get_secret_value(SecretId=secret_id).get("SecretString") or ""
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        if code == "ResourceNotFoundException":
            raise CommandError(f"secret {secret_id} not found (check the name and the region)") from None
        raise CommandError(f"secret {secret_id} could not be read ({code})") from None
    except BotoCoreError as exc:
        raise CommandError(f"secret {secret_id} could not be read: {aws_problem(exc)}") from None


def ad_account_id(value: str | None, source: str = "--ad-account or PINTEREST_AD_ACCOUNT_ID") -> str:
    """The ad account: ``value``, else $PINTEREST_AD_ACCOUNT_ID; digits only."""
    value = value or os.environ.get("PINTEREST_AD_ACCOUNT_ID")
    if not value:
        raise CommandError(f"which ad account? give {source}")
    if not AD_ACCOUNT_ID.match(value):
        raise CommandError("the ad account id is 1 to 18 digits")
    return value


def add_loopback_argument(parser: argparse.ArgumentParser, option: str) -> None:
    """The switch that lets a token go over plain http to this machine: the local stand-ins
    (pinrelay.endpoints)."""
    parser.add_argument(LOOPBACK_FLAG, action="store_true",
                        help=f"let {option} be plain http to 127.0.0.1 or localhost (the local stand-ins); "
                             "never needed for the platforms themselves")


def checked_api_url(url: str, service: Service, option: str, allow_loopback_http: bool) -> str:
    """``url`` if a token may go there (https on Shopify's or Pinterest's hosts), else CommandError
    naming ``option``."""
    try:
        return api_url(url, service, allow_loopback_http=allow_loopback_http)
    except EndpointRefused as problem:
        raise CommandError(f"{option} {problem}") from None


def add_token_arguments(parser: argparse.ArgumentParser, env_var: str, what: str) -> None:
    parser.add_argument("--token-secret-id", metavar="NAME",
                        help=f"read {what} from this Secrets Manager secret (default: ${env_var})")
    parser.add_argument("--region", help="AWS region (default: the usual boto3 configuration)")


def pinterest_token(args: argparse.Namespace, env_var: str, *, secretsmanager: Any = None) -> str:
    """The token from ``--token-secret-id`` (Secrets Manager, a plain string) or ``$env_var``."""
    secret_id = getattr(args, "token_secret_id", None)
    if not secret_id:
        token = (os.environ.get(env_var) or "").strip()
        if not token:
            raise CommandError(f"no token: set {env_var} or give --token-secret-id NAME")
        return token
    client = secretsmanager or aws_client("secretsmanager", getattr(args, "region", None))
    token = secret_text(client, secret_id).strip()
    if not token or token == PLACEHOLDER:
        raise CommandError(f"secret {secret_id} holds no token yet: aws secretsmanager put-secret-value "
                           f"--secret-id {secret_id} --secret-string '<token>'")
    return token
