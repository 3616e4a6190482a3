"""The whole of pinrelay on a laptop, with no AWS account.

``LocalStack`` starts, in this process:

* moto in server mode (moto_server.MotoServer on 127.0.0.1, a free port) holding the SQS queue
  + DLQ, the DynamoDB dedup table and the three Secrets Manager secrets;
* the Pinterest stand-in (unless ``PINTEREST_API_URL`` points elsewhere);
* the real Lambda handlers (functions/ingest/ingest_handler.py, functions/sender/sender_handler.py),
  either imported in this process after ``os.environ`` is set the way the SAM template sets it
  (tests reach into them), or, with ``lambda_processes=True`` (``make local``), each in a process of
  its own (``lambda_process.LambdaWorker``, a warm container) killed at the template's Timeout
  with no clean-up, as Lambda does; the next invocation then starts a new process;
* an HTTP API emulation (``HttpApiGateway``) for POST /events, POST /webhooks/shopify,
  /webhooks/woocommerce, /webhooks/stripe and /webhooks/bigcommerce, GET /healthz and GET
  /openapi.json (the committed document);
* an SQS event source mapping emulation (``SqsEventSource``) feeding the sender, another feeding
  the BigCommerce fetcher (functions/bigcommerce_fetch) from its fetch queue (+ DLQ);
* the Stripe line-items fetcher (functions/stripe_line_items) on a schedule (``ScheduledFunction``),
  draining its queue (+ DLQ) itself: every ``line_items_every_s`` seconds (2 s, or
  LOCAL_LINE_ITEMS_EVERY_S; deployed, template.yaml's rate(1 minute));
* the Stripe and BigCommerce API stand-ins (``platform_standins``), seeded by ``platforms`` with
  the sessions of the Stripe samples and the orders of BigCommerce's documentation.

Use it from tests as a context manager (``with LocalStack(port=0) as stack: ...``) or from the
CLI (``python -m pinrelay_local run``). ``stop()`` restores ``os.environ``, ``sys.path`` and the
``pinrelay``/handler entries of ``sys.modules`` to what they were before ``start()``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.util
import json
import logging
import os
import re
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from pinrelay_local.console import batch_line, batch_report, dead_letter_line, log_line
from pinrelay_local.http_gateway import HttpApiGateway, health_handler
from pinrelay_local.platforms import (
    FETCH_DLQ_NAME,
    FETCH_QUEUE_NAME,
    LINE_ITEMS_DLQ_NAME,
    LINE_ITEMS_QUEUE_NAME,
    LOCAL_PLATFORM_DEFAULTS,
    PLATFORM_SECRET_NAMES,
    bigcommerce_webhook,
    fetch_event_source,
    start_bigcommerce,
    start_stripe,
    stripe_webhook,
)
from pinrelay_local.schedule import RunSummary, ScheduledFunction
from pinrelay_local.sqs_event_source import BatchSummary, SqsEventSource

REGION = "us-east-1"
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
REPO_ROOT = Path(__file__).resolve().parents[2]

# Local keys and secrets are at least 32 characters, as ingest requires (pinrelay.secret_text); the
# WooCommerce one is drawn from WooCommerce's own alphabet (wp_generate_password(50, true, true)),
# comma and spaces included, so that every local run checks that it is read byte for byte.
LOCAL_DEFAULTS: dict[str, str] = {
    "INGEST_API_KEY": "local-ingest-key-for-this-machine-only",
    "SHOPIFY_WEBHOOK_SECRET": "local-shopify-webhook-secret-for-testing",
    "WOOCOMMERCE_WEBHOOK_SECRET": 'QE=<8F8bwtMZ[aaW2ezT+[(^ K3oB^NI20JGRp.epf(,Wh$ ;)',
    "PINTEREST_CONVERSION_TOKEN": "local-conversion-token",
    "PINTEREST_AD_ACCOUNT_ID": "549755885175",
    **LOCAL_PLATFORM_DEFAULTS,
}
DEFAULT_PORT = 3000
DEFAULT_SHOP_DOMAIN = "pinrelay-dev.myshopify.com"

QUEUE_NAME = "pinrelay-events"
DLQ_NAME = "pinrelay-events-dlq"
TABLE_NAME = "pinrelay-dedup"
SECRET_NAMES = {
    "INGEST_API_KEY": "pinrelay/local/ingest-api-key",
    "SHOPIFY_WEBHOOK_SECRET": "pinrelay/local/shopify-webhook-secret",
    "WOOCOMMERCE_WEBHOOK_SECRET": "pinrelay/local/woocommerce-webhook-secret",
    "PINTEREST_CONVERSION_TOKEN": "pinrelay/local/pinterest-conversion-token",
    **PLATFORM_SECRET_NAMES,
}
HANDLER_MODULES = {
    "ingest_handler": "functions/ingest/ingest_handler.py",
    "sender_handler": "functions/sender/sender_handler.py",
    "bigcommerce_fetch_handler": "functions/bigcommerce_fetch/bigcommerce_fetch_handler.py",
    "stripe_line_items_handler": "functions/stripe_line_items/stripe_line_items_handler.py",
}
FUNCTIONS = {"ingest_handler": "IngestFunction", "sender_handler": "SenderFunction",
             "bigcommerce_fetch_handler": "BigCommerceFetchFunction",
             "stripe_line_items_handler": "StripeLineItemsFunction"}  # their logical ids
OPENAPI_PATH = REPO_ROOT / "functions" / "ingest" / "openapi.json"  # the committed document (pinrelay_tools.openapi)


def function_timeouts(template: Path | None = None) -> dict[str, float]:
    """Each function's Timeout (seconds) as template.yaml sets it, by logical id."""
    from pinrelay_tools.template import load_template

    loaded = load_template(template or REPO_ROOT / "template.yaml")
    default = float(loaded["Globals"]["Function"]["Timeout"])
    return {name: float(resource["Properties"].get("Timeout", default))
            for name, resource in loaded["Resources"].items() if resource.get("Type") == "AWS::Serverless::Function"}


def openapi_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """GET /openapi.json for the local HTTP API (an API Gateway v2 Lambda proxy answer): the
    committed functions/ingest/openapi.json."""
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": OPENAPI_PATH.read_text(encoding="utf-8"),
    }


Printer = Callable[[str], None]


# every module of a function's code directory (a handler and what it imports beside it, such as
# functions/ingest/platform_webhooks.py): fresh in each stack, as in a new container
FUNCTION_MODULES = frozenset(path.stem for path in (REPO_ROOT / "functions").glob("*/*.py"))


def _is_handler_module(name: str) -> bool:
    return name == "pinrelay" or name.startswith("pinrelay.") or name in HANDLER_MODULES or name in FUNCTION_MODULES


def aws_client(service: str, endpoint_url: str, region: str = REGION) -> Any:
    """A boto3 client for the moto server (dummy credentials, short timeouts)."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session(region_name=region, **DUMMY_CREDENTIALS).client(
        service,
        endpoint_url=endpoint_url,
        config=Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=2, read_timeout=30),
    )


def import_module_from_path(name: str, path: Path) -> ModuleType:
    """Import ``path`` as module ``name`` (registered in sys.modules), like Lambda loads a handler."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {name} from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def format_batch_line(summary: BatchSummary, requests: int | None) -> str:
    via = f" -> {requests} request(s)" if requests is not None else ""
    line = f"sender: {summary.records} events{via}, {summary.failed} failed, {summary.duration_ms} ms"
    if summary.error:
        line += f" (whole batch failed: {summary.error})"
    return line


@dataclass(frozen=True)
class _Setting:
    value: str
    source: str  # "default", "env NAME" or "argument"

    @property
    def is_default(self) -> bool:
        return self.source == "default"


class LocalStack:
    """moto + Pinterest stand-in + HTTP API + SQS event source around the real handlers.

    Attributes once started: ``url`` (the HTTP API), ``standin`` (PinterestStandIn or None),
    ``pinterest_url``, ``moto_url``, ``sqs`` / ``dynamodb`` / ``secretsmanager`` (boto3 clients),
    ``dedup_table`` (boto3 Table resource), ``queue_url``, ``dlq_url``, ``table_name``,
    ``secret_names``, ``ingest_handler`` / ``sender_handler`` (the modules), ``gateway``,
    ``event_source``, ``batches`` (list of BatchSummary), ``env`` (what was set for the handlers).
    """

    def __init__(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        *,
        repo_root: str | Path | None = None,
        environ: Mapping[str, str] | None = None,
        pinterest_api_url: str | None = None,
        ingest_api_key: str | None = None,
        shopify_webhook_secret: str | None = None,
        pinterest_conversion_token: str | None = None,
        ad_account_id: str | None = None,
        test_mode: bool | None = None,
        sender_batch_size: int | None = None,
        sender_window_s: float | None = None,
        line_items_every_s: float | None = None,
        visibility_timeout_s: int | None = None,
        max_receive_count: int = 5,
        handler_env: Mapping[str, str] | None = None,
        on_batch: Callable[[BatchSummary], None] | None = None,
        out: Printer | None = None,
        lambda_processes: bool = False,
        timeouts: Mapping[str, float] | None = None,
    ) -> None:
        env = dict(os.environ if environ is None else environ)
        self._source_env = env
        self.host = host
        self.port = int(port if port is not None else env.get("LOCAL_PORT") or DEFAULT_PORT)
        self.repo_root = Path(repo_root) if repo_root is not None else REPO_ROOT
        self.visibility_timeout_s = int(
            visibility_timeout_s if visibility_timeout_s is not None else env.get("LOCAL_VISIBILITY_TIMEOUT_S") or 30
        )
        self.max_receive_count = int(max_receive_count)
        self.handler_env = dict(handler_env or {})
        self.on_batch = on_batch
        self._out = out
        self.lambda_processes = lambda_processes
        self.workers: dict[str, Any] = {}  # module name -> LambdaWorker, with lambda_processes
        self.timeouts = {**function_timeouts(self.repo_root / "template.yaml"), **(timeouts or {})}  # by logical id

        self.settings: dict[str, _Setting] = {
            "INGEST_API_KEY": self._pick("INGEST_API_KEY", ingest_api_key),
            "SHOPIFY_WEBHOOK_SECRET": self._pick("SHOPIFY_WEBHOOK_SECRET", shopify_webhook_secret),
            "WOOCOMMERCE_WEBHOOK_SECRET": self._pick("WOOCOMMERCE_WEBHOOK_SECRET", None),
            "PINTEREST_CONVERSION_TOKEN": self._pick("PINTEREST_CONVERSION_TOKEN", pinterest_conversion_token),
            "PINTEREST_AD_ACCOUNT_ID": self._pick("PINTEREST_AD_ACCOUNT_ID", ad_account_id),
            **{name: self._pick(name, None) for name in LOCAL_PLATFORM_DEFAULTS},
        }
        external = pinterest_api_url if pinterest_api_url is not None else env.get("PINTEREST_API_URL") or None
        self.external_pinterest_url: str | None = external.rstrip("/") if external else None
        if test_mode is None:
            self.test_mode = (env.get("PINTEREST_TEST_MODE") or "true").strip().lower() in ("1", "true", "yes")
        else:
            self.test_mode = bool(test_mode)
        self.sender_batch_size = int(
            sender_batch_size if sender_batch_size is not None else env.get("LOCAL_SENDER_BATCH_SIZE") or 1000
        )
        self.sender_window_s = float(
            sender_window_s if sender_window_s is not None else env.get("LOCAL_SENDER_WINDOW_S") or 1.0
        )
        # the Stripe line-items fetcher's schedule: deployed once a minute; here every 2 s, so that
        # a Stripe sample reaches the stand-in in seconds (the bench runs it at the template's rate)
        self.line_items_every_s = float(
            line_items_every_s if line_items_every_s is not None else env.get("LOCAL_LINE_ITEMS_EVERY_S") or 2.0
        )

        # set by start()
        self.moto: Any = None
        self.moto_url = ""
        self.sqs: Any = None
        self.dynamodb: Any = None
        self.secretsmanager: Any = None
        self.dedup_table: Any = None
        self.queue_url = ""
        self.dlq_url = ""
        self.table_name = ""
        self.secret_names: dict[str, str] = {}
        self.standin: Any = None
        self.pinterest_url = ""
        self.shopify_admin: Any = None  # the Shopify Admin stand-in of the local shop (reconcile)
        self.ingest_handler: ModuleType | None = None
        self.sender_handler: ModuleType | None = None
        self.bigcommerce_fetch_handler: ModuleType | None = None
        self.stripe_standin: Any = None  # platform_standins.StripeStandIn
        self.bigcommerce_standin: Any = None  # platform_standins.BigCommerceStandIn
        self.fetch_queue_url = ""
        self.fetch_dlq_url = ""
        self.fetch_source: SqsEventSource | None = None
        self.fetch_batches: list[BatchSummary] = []
        self.stripe_line_items_handler: ModuleType | None = None
        self.line_items_queue_url = ""
        self.line_items_dlq_url = ""
        self.line_items_schedule: ScheduledFunction | None = None
        self.line_items_runs: list[RunSummary] = []  # the line-items fetcher's scheduled runs
        self.gateway: HttpApiGateway | None = None
        self.event_source: SqsEventSource | None = None
        self.batches: list[BatchSummary] = []
        self.env: dict[str, str] = {}
        self._batch_lock = threading.Lock()
        self._last_requests: int | None = None
        self._last_report: dict[str, Any] | None = None  # the sender's logged SendReport of the last batch
        self._all_handler_logs = False  # LOG_LEVEL set by the user: every log line, as it came
        self._saved_environ: dict[str, str] | None = None
        self._saved_modules: dict[str, ModuleType] | None = None
        self._saved_boto3_session: tuple[Any] | None = None
        self._added_paths: list[str] = []
        self._started = False

    # -- configuration ---------------------------------------------------------------------
    def _pick(self, name: str, explicit: str | None) -> _Setting:
        if explicit is not None:
            return _Setting(str(explicit), "argument")
        if self._source_env.get(name):
            return _Setting(self._source_env[name], f"env {name}")
        return _Setting(LOCAL_DEFAULTS[name], "default")

    @property
    def ingest_api_key(self) -> str:
        return self.settings["INGEST_API_KEY"].value

    @property
    def shopify_webhook_secret(self) -> str:
        return self.settings["SHOPIFY_WEBHOOK_SECRET"].value

    @property
    def pinterest_conversion_token(self) -> str:
        return self.settings["PINTEREST_CONVERSION_TOKEN"].value

    @property
    def ad_account_id(self) -> str:
        return self.settings["PINTEREST_AD_ACCOUNT_ID"].value

    @property
    def url(self) -> str:
        if self.gateway is None:
            return f"http://{self.host}:{self.port}"
        return self.gateway.url

    def _print(self, line: str) -> None:
        if self._out is not None:
            self._out(line)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> LocalStack:
        if self._started:
            raise RuntimeError("LocalStack already started")
        self._started = True
        try:
            self._start_moto()
            self._create_resources()
            self._start_pinterest()
            self._start_platforms()
            self._start_shopify_admin()
            self._set_environment()
            if self.lambda_processes:
                self._start_workers()
            else:
                self._import_handlers()
            self._start_gateway_and_event_source()
        except BaseException:
            self.stop()
            raise
        self._print_configuration()
        self._print(f"pinrelay local stack listening on {self.url} (Pinterest: {self.pinterest_url})")
        return self

    def stop(self) -> None:
        """Stop everything (idempotent): gateway, event source (flushing its pending batch),
        stand-in, moto; then restore os.environ, sys.path and sys.modules."""
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None
        if self.event_source is not None:
            self.event_source.stop()
            self.event_source = None
        if self.fetch_source is not None:
            self.fetch_source.stop()
            self.fetch_source = None
        if self.line_items_schedule is not None:
            self.line_items_schedule.stop()
            self.line_items_schedule = None
        for platform in (self.stripe_standin, self.bigcommerce_standin):
            if platform is not None:
                platform.stop()  # kept, as .standin is, so tests can read .requests afterwards
        for worker in self.workers.values():
            worker.close()
        self.workers = {}
        if self.standin is not None:
            self.standin.stop()  # kept as .standin so tests can read .received afterwards
        if self.shopify_admin is not None:
            self.shopify_admin.stop()
        if self.moto is not None:
            try:
                self.moto.stop()
            except Exception as exc:  # noqa: BLE001
                sys.stderr.write(f"local stack: stopping moto failed: {exc}\n")
            self.moto = None
        self._restore_process_state()
        self._started = False

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- pieces ----------------------------------------------------------------------------
    def _start_moto(self) -> None:
        from pinrelay_local.moto_server import MotoServer

        # werkzeug logs every moto request (ReceiveMessage polls!) at INFO
        werkzeug_logger = logging.getLogger("werkzeug")
        if werkzeug_logger.level == logging.NOTSET:
            werkzeug_logger.setLevel(logging.WARNING)
        self.moto = MotoServer().start()  # DynamoDB's conditional writes atomic, as on AWS
        self.moto_url = self.moto.url
        self.sqs = aws_client("sqs", self.moto_url)
        self.dynamodb = aws_client("dynamodb", self.moto_url)
        self.secretsmanager = aws_client("secretsmanager", self.moto_url)

    def _name_suffix(self) -> str:
        # moto's backends are process-wide: a second stack in the same process (tests) must not
        # pick up the first one's queue and table.
        try:
            self.sqs.get_queue_url(QueueName=QUEUE_NAME)
        except self.sqs.exceptions.QueueDoesNotExist:
            return ""
        except Exception:  # noqa: BLE001 - moto may answer with a generic error code
            return ""
        return "-" + uuid.uuid4().hex[:8]

    def _create_resources(self) -> None:
        suffix = self._name_suffix()
        dlq_url = self.sqs.create_queue(
            QueueName=DLQ_NAME + suffix, Attributes={"MessageRetentionPeriod": str(14 * 86400)}
        )["QueueUrl"]
        dlq_arn = self.sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.dlq_url = dlq_url
        self.queue_url = self.sqs.create_queue(
            QueueName=QUEUE_NAME + suffix,
            Attributes={
                "VisibilityTimeout": str(self.visibility_timeout_s),
                "MessageRetentionPeriod": str(4 * 86400),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(self.max_receive_count)}
                ),
            },
        )["QueueUrl"]

        fetch_dlq_url = self.sqs.create_queue(
            QueueName=FETCH_DLQ_NAME + suffix, Attributes={"MessageRetentionPeriod": str(14 * 86400)})["QueueUrl"]
        fetch_dlq_arn = self.sqs.get_queue_attributes(QueueUrl=fetch_dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.fetch_dlq_url = fetch_dlq_url
        self.fetch_queue_url = self.sqs.create_queue(QueueName=FETCH_QUEUE_NAME + suffix, Attributes={
            "VisibilityTimeout": str(self.visibility_timeout_s), "MessageRetentionPeriod": str(4 * 86400),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": fetch_dlq_arn, "maxReceiveCount": str(self.max_receive_count)}),
        })["QueueUrl"]
        line_items_dlq_url = self.sqs.create_queue(
            QueueName=LINE_ITEMS_DLQ_NAME + suffix, Attributes={"MessageRetentionPeriod": str(14 * 86400)})["QueueUrl"]
        line_items_dlq_arn = self.sqs.get_queue_attributes(
            QueueUrl=line_items_dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.line_items_dlq_url = line_items_dlq_url
        self.line_items_queue_url = self.sqs.create_queue(QueueName=LINE_ITEMS_QUEUE_NAME + suffix, Attributes={
            "VisibilityTimeout": str(self.visibility_timeout_s), "MessageRetentionPeriod": str(4 * 86400),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": line_items_dlq_arn,
                                         "maxReceiveCount": str(self.max_receive_count)}),
        })["QueueUrl"]

        self.table_name = TABLE_NAME + suffix
        self.dynamodb.create_table(
            TableName=self.table_name,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
            SSESpecification={"Enabled": True},
        )
        self.dynamodb.get_waiter("table_exists").wait(
            TableName=self.table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 10}
        )
        self.dynamodb.update_time_to_live(
            TableName=self.table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
        )
        try:
            self.dynamodb.update_continuous_backups(
                TableName=self.table_name,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )
        except Exception:  # noqa: BLE001 - cosmetic locally
            pass
        import boto3

        self.dedup_table = (
            boto3.session.Session(region_name=REGION, **DUMMY_CREDENTIALS)
            .resource("dynamodb", endpoint_url=self.moto_url)
            .Table(self.table_name)
        )

        for key, base_name in SECRET_NAMES.items():
            name = base_name + suffix
            self.secretsmanager.create_secret(
                Name=name, SecretString=self.settings[key].value, Description=f"pinrelay local {key}"
            )
            self.secret_names[key] = name

    def _start_pinterest(self) -> None:
        if self.external_pinterest_url:
            self.pinterest_url = self.external_pinterest_url
            return
        from pinrelay_local.pinterest_standin import PinterestStandIn

        self.standin = PinterestStandIn(host="127.0.0.1", port=0, token=self.pinterest_conversion_token)
        self.standin.start()
        self.pinterest_url = self.standin.base_url

    def _start_platforms(self) -> None:
        self.stripe_standin = start_stripe(self.repo_root / "events", key=self.settings["STRIPE_API_KEY"].value)
        self.bigcommerce_standin = start_bigcommerce(self.settings["BIGCOMMERCE_STORE_HASH"].value,
                                                     self.settings["BIGCOMMERCE_API_TOKEN"].value)

    def _start_shopify_admin(self) -> None:
        """The local shop's Admin API, for `pinrelay reconcile`: no orders until some are added
        (``POST /_standin/orders``: the reconcile drill)."""
        from pinrelay_local.shopify_admin_standin import ShopifyAdminStandIn

        self.shopify_admin = ShopifyAdminStandIn().start()

    def profile(self, pid: int) -> Any:
        """What ``pinrelay --local`` needs to reach this stack (pinrelay_cli.local_profile), for the
        process ``pid`` that keeps it running."""
        from pinrelay_cli.local_profile import LocalProfile

        secrets = {"SHOPIFY_WEBHOOK_SECRET": self.shopify_webhook_secret,
                   "PINTEREST_CONVERSION_TOKEN": self.pinterest_conversion_token}
        if self.standin is not None:
            secrets["PINTEREST_ADS_READ_TOKEN"] = self.standin.ads_read_token
        if self.shopify_admin is not None:
            secrets["SHOPIFY_ADMIN_TOKEN"] = self.shopify_admin.token
        return LocalProfile(
            pid=pid, region=REGION, aws_endpoint_url=self.moto_url,
            aws_access_key_id=DUMMY_CREDENTIALS["aws_access_key_id"],
            aws_secret_access_key=DUMMY_CREDENTIALS["aws_secret_access_key"],
            ingest_url=self.url, queue_url=self.queue_url, dlq_url=self.dlq_url, table=self.table_name,
            ad_account=self.ad_account_id, api_key=self.ingest_api_key, pinterest_api_url=self.pinterest_url,
            secrets=secrets, shop=DEFAULT_SHOP_DOMAIN if self.shopify_admin is not None else None,
            shopify_admin_url=self.shopify_admin.base_url if self.shopify_admin is not None else None,
            pinterest_standin_url=self.standin.root_url if self.standin is not None else None,
            fetch_dlq_url=self.fetch_dlq_url or None, line_items_dlq_url=self.line_items_dlq_url or None,
            visibility_timeout_s=self.visibility_timeout_s, max_receive_count=self.max_receive_count,
        )

    def _set_environment(self) -> None:
        src = self._source_env
        env = {
            "AWS_ENDPOINT_URL": self.moto_url,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIALS["aws_secret_access_key"],
            "AWS_SESSION_TOKEN": "testing",
            "QUEUE_URL": self.queue_url,
            "DEDUP_TABLE_NAME": self.table_name,
            "INGEST_API_KEY_SECRET_NAME": self.secret_names["INGEST_API_KEY"],
            "SHOPIFY_WEBHOOK_SECRET_NAME": self.secret_names["SHOPIFY_WEBHOOK_SECRET"],
            "WOOCOMMERCE_WEBHOOK_SECRET_NAME": self.secret_names["WOOCOMMERCE_WEBHOOK_SECRET"],
            "PINTEREST_CONVERSION_TOKEN_SECRET_NAME": self.secret_names["PINTEREST_CONVERSION_TOKEN"],
            "PINTEREST_AD_ACCOUNT_ID": self.ad_account_id,
            "PINTEREST_API_URL": self.pinterest_url,
            "PINTEREST_TEST_MODE": "true" if self.test_mode else "false",
            "POWERTOOLS_SERVICE_NAME": src.get("POWERTOOLS_SERVICE_NAME") or "pinrelay",
            "POWERTOOLS_METRICS_NAMESPACE": src.get("POWERTOOLS_METRICS_NAMESPACE") or "Pinrelay",
            "POWERTOOLS_TRACE_DISABLED": src.get("POWERTOOLS_TRACE_DISABLED") or "true",
            # EMF metric blobs on stdout would drown the one-line-per-batch output locally
            "POWERTOOLS_METRICS_DISABLED": src.get("POWERTOOLS_METRICS_DISABLED") or "true",
            "LOG_LEVEL": src.get("LOG_LEVEL") or "WARNING",
            # Stripe and BigCommerce (platforms.py): their stand-ins, the fetch queue, the secrets
            "STRIPE_API_URL": self.stripe_standin.base_url,
            "ALLOW_LOOPBACK_HTTP": "true",  # the stand-ins are plain http on this machine (pinrelay.endpoints)
            "STRIPE_WEBHOOK_SECRET_NAME": self.secret_names["STRIPE_WEBHOOK_SECRET"],
            "STRIPE_API_KEY_SECRET_NAME": self.secret_names["STRIPE_API_KEY"],
            "BIGCOMMERCE_API_URL": self.bigcommerce_standin.base_url,
            "BIGCOMMERCE_STORE_HASH": self.settings["BIGCOMMERCE_STORE_HASH"].value,
            "BIGCOMMERCE_WEBHOOK_SECRET_NAME": self.secret_names["BIGCOMMERCE_WEBHOOK_SECRET"],
            "BIGCOMMERCE_CLIENT_SECRET_NAME": self.secret_names["BIGCOMMERCE_CLIENT_SECRET"],
            "BIGCOMMERCE_API_TOKEN_SECRET_NAME": self.secret_names["BIGCOMMERCE_API_TOKEN"],
            "BIGCOMMERCE_FETCH_QUEUE_URL": self.fetch_queue_url,
            "STRIPE_LINE_ITEMS_QUEUE_URL": self.line_items_queue_url,
        }
        env.update(self.handler_env)
        self._all_handler_logs = bool(src.get("LOG_LEVEL") or self.handler_env.get("LOG_LEVEL"))
        self.env = env
        self._saved_environ = dict(os.environ)
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SECURITY_TOKEN"):
            os.environ.pop(name, None)
        os.environ.update(env)
        # A fresh boto3 default session, as in a new Lambda container, built here in one thread:
        # creating clients from a cold default session in two threads at once is not safe.
        import boto3

        self._saved_boto3_session = (boto3.DEFAULT_SESSION,)
        boto3.setup_default_session()
        for service in ("sqs", "dynamodb", "secretsmanager"):
            boto3.client(service)

    def _import_handlers(self) -> None:
        # Fresh modules: pinrelay caches settings and boto3 clients per "container".
        self._saved_modules = {n: m for n, m in sys.modules.items() if _is_handler_module(n)}
        for name in self._saved_modules:
            del sys.modules[name]
        _clear_powertools_parameter_cache()
        paths = [self.repo_root / "layers" / "pinrelay"] + [
            (self.repo_root / rel).parent for rel in HANDLER_MODULES.values()
        ]
        for path in reversed(paths):
            p = str(path)
            if p not in sys.path:
                sys.path.insert(0, p)
                self._added_paths.append(p)
        missing = [rel for rel in HANDLER_MODULES.values() if not (self.repo_root / rel).is_file()]
        if missing:
            raise FileNotFoundError(f"handler module(s) not found under {self.repo_root}: {', '.join(missing)}")
        root = self.repo_root
        self.ingest_handler = import_module_from_path("ingest_handler", root / HANDLER_MODULES["ingest_handler"])
        self.sender_handler = import_module_from_path("sender_handler", root / HANDLER_MODULES["sender_handler"])
        self.bigcommerce_fetch_handler = import_module_from_path(
            "bigcommerce_fetch_handler", root / HANDLER_MODULES["bigcommerce_fetch_handler"])
        self.stripe_line_items_handler = import_module_from_path(
            "stripe_line_items_handler", root / HANDLER_MODULES["stripe_line_items_handler"])

    def _start_workers(self) -> None:
        """One warm Lambda container per function: a process serving one invocation at a time,
        killed at the function's Timeout (no clean-up runs) and replaced by a cold start."""
        from pinrelay_local.lambda_process import LambdaWorker

        layer = str(self.repo_root / "layers" / "pinrelay")
        for module, relative in HANDLER_MODULES.items():
            path = self.repo_root / relative
            env = dict(self.env)
            if module == "sender_handler" and not self._all_handler_logs:
                env["LOG_LEVEL"] = "DEBUG"  # its "batch delivered" line for every batch: the console's line
            self.workers[module] = LambdaWorker(
                f"{path}:lambda_handler", env=env, timeout_s=self.timeouts[FUNCTIONS[module]],
                python_paths=[str(path.parent), layer], function_name=FUNCTIONS[module],
            )

    def _worker_handler(self, module: str) -> Callable[[dict[str, Any], Any], Any]:
        """A handler(event, context) that runs the invocation in the function's worker process and
        fails as Lambda fails: an error, a kill at the timeout or out of memory raise here (the
        HTTP API answers 500, the SQS event source returns the whole batch)."""
        worker = self.workers[module]

        def handler(event: dict[str, Any], context: Any) -> Any:
            result = worker.invoke(event)
            for line in (result.stdout + result.stderr).splitlines():
                report = batch_report(line) if module == "sender_handler" else None
                if report is not None:
                    self._last_report = report
                    if not self._all_handler_logs:
                        continue
                shown = log_line(FUNCTIONS[module], line, everything=self._all_handler_logs) if line.strip() else None
                if shown is not None:
                    self._print(shown)
            if result.status == "ok":
                return result.response
            if result.status == "timeout":
                self._print(f"{FUNCTIONS[module]}: Task timed out after {worker.timeout_s:.0f} seconds: the process was "
                            "killed, nothing after that point ran (Lambda does the same)")
            raise RuntimeError(f"{FUNCTIONS[module]} {result.status}: {result.error_type or ''} {result.error_message or ''}")

        return handler

    def _restore_process_state(self) -> None:
        if self._saved_modules is not None:
            for name in [n for n in sys.modules if _is_handler_module(n)]:
                del sys.modules[name]
            sys.modules.update(self._saved_modules)
            self._saved_modules = None
            _clear_powertools_parameter_cache()
        for p in self._added_paths:
            try:
                sys.path.remove(p)
            except ValueError:
                pass
        self._added_paths = []
        if self._saved_boto3_session is not None:
            import boto3

            boto3.DEFAULT_SESSION = self._saved_boto3_session[0]
            self._saved_boto3_session = None
        if self._saved_environ is not None:
            os.environ.clear()
            os.environ.update(self._saved_environ)
            self._saved_environ = None

    def _standin_request_count(self) -> int | None:
        if self.standin is None:
            return None
        try:
            return len(self.standin.received)
        except Exception:  # noqa: BLE001
            return None

    def _run_function(self, module: str, event: dict[str, Any], context: Any) -> Any:
        """One invocation of a function fed by an event source: in its worker process, or in this one."""
        if self.lambda_processes:
            return self._worker_handler(module)(event, context)
        handler = getattr(self, module)
        assert handler is not None
        return handler.lambda_handler(event, context)

    def _sender(self, event: dict[str, Any], context: Any) -> Any:
        self._last_report = None
        before = self._standin_request_count()
        try:
            return self._run_function("sender_handler", event, context)
        finally:
            _clear_disabled_metrics(self.sender_handler)
            after = self._standin_request_count()
            self._last_requests = max(0, after - before) if before is not None and after is not None else None

    def _batch_done(self, summary: BatchSummary) -> None:
        with self._batch_lock:
            self.batches.append(summary)
        if self.lambda_processes:  # the sender's own report of the batch (console.batch_line)
            self._print(batch_line(summary, self._last_report))
        else:
            self._print(format_batch_line(summary, self._last_requests))
        if self.on_batch is not None:
            self.on_batch(summary)

    def _start_gateway_and_event_source(self) -> None:
        if self.lambda_processes:
            ingest_handler = self._worker_handler("ingest_handler")
        else:
            assert self.ingest_handler is not None and self.sender_handler is not None
            ingest_handler = self.ingest_handler.lambda_handler
        ingest_lock = threading.Lock()

        def ingest(event: dict[str, Any], context: Any) -> Any:
            # One container, one request at a time, as in Lambda: Powertools' resolver keeps the
            # current event in a class attribute, so concurrent calls would read each other's body.
            with ingest_lock:
                try:
                    return ingest_handler(event, context)
                finally:
                    _clear_disabled_metrics(self.ingest_handler)

        self.gateway = HttpApiGateway(
            {("POST", "/events"): ingest, ("POST", "/webhooks/shopify"): ingest, ("POST", "/webhooks/woocommerce"): ingest,
             ("POST", "/webhooks/stripe"): ingest, ("POST", "/webhooks/bigcommerce"): ingest,
             ("GET", "/healthz"): health_handler, ("GET", "/openapi.json"): openapi_handler},
            host=self.host,
            port=self.port,
            function_names={
                "POST /events": "pinrelay-ingest",
                "POST /webhooks/shopify": "pinrelay-ingest",
                "GET /healthz": "pinrelay-healthz",
            },
        )
        self.gateway.start()
        self.event_source = SqsEventSource(
            self.sqs,
            self.queue_url,
            self._sender,
            function_timeout_s=self.timeouts["SenderFunction"],
            batch_size=self.sender_batch_size,
            batching_window_s=self.sender_window_s,
            visibility_timeout_s=self.visibility_timeout_s,
            on_batch=self._batch_done,
            on_dead_letter=lambda messages: self._print(dead_letter_line(messages, self.max_receive_count)),
            function_name="pinrelay-sender",
        )
        self.event_source.start()
        fetch_batch, fetch_window_s = fetch_event_source(self.repo_root / "template.yaml")  # as deployed
        self.fetch_source = SqsEventSource(
            self.sqs, self.fetch_queue_url, self._fetcher, function_timeout_s=self.timeouts["BigCommerceFetchFunction"],
            batch_size=fetch_batch, batching_window_s=fetch_window_s, visibility_timeout_s=self.visibility_timeout_s,
            on_batch=self.fetch_batches.append, function_name="pinrelay-bigcommerce-fetch",
        )
        self.fetch_source.start()
        self.line_items_schedule = ScheduledFunction(
            self._line_items_fetcher, every_s=self.line_items_every_s, function_name="pinrelay-stripe-line-items",
            function_timeout_s=self.timeouts["StripeLineItemsFunction"], on_run=self.line_items_runs.append)
        self.line_items_schedule.start()

    def _fetcher(self, event: dict[str, Any], context: Any) -> Any:
        try:
            return self._run_function("bigcommerce_fetch_handler", event, context)
        finally:
            _clear_disabled_metrics(self.bigcommerce_fetch_handler)

    def _line_items_fetcher(self, event: dict[str, Any], context: Any) -> Any:
        try:
            return self._run_function("stripe_line_items_handler", event, context)
        finally:
            _clear_disabled_metrics(self.stripe_line_items_handler)

    # -- output ----------------------------------------------------------------------------
    def _print_configuration(self) -> None:
        if self._out is None:
            return

        def shown(key: str, secret: bool) -> str:
            s = self.settings[key]
            if s.is_default:
                return f"{s.value!r} (local default; set {key} to change)"
            return f"<from {s.source}>" if secret else f"{s.value!r} (from {s.source})"

        names = self.secret_names
        key_hint = self.ingest_api_key if self.settings["INGEST_API_KEY"].is_default else "<your key>"
        pinterest_from = "(built-in stand-in)" if self.standin is not None else "(from PINTEREST_API_URL)"
        lines = [
            "pinrelay local stack configuration:",
            f"  AWS (moto server)         {self.moto_url}  region {REGION}, credentials testing/testing",
            f"  SQS queue                 {self.queue_url}  (visibility {self.visibility_timeout_s} s,"
            " LOCAL_VISIBILITY_TIMEOUT_S)",
            f"  SQS dead-letter queue     {self.dlq_url}  (maxReceiveCount {self.max_receive_count})",
            f"  DynamoDB dedup table      {self.table_name}  (pk S, TTL on expires_at)",
            f"  BigCommerce fetch queue   {self.fetch_queue_url}  (DLQ {self.fetch_dlq_url})",
            f"  Stripe line-items queue   {self.line_items_queue_url}  (DLQ {self.line_items_dlq_url})",
            f"  ingest API key            {shown('INGEST_API_KEY', True)}  secret {names['INGEST_API_KEY']}",
            f"  Shopify webhook secret    {shown('SHOPIFY_WEBHOOK_SECRET', True)}"
            f"  secret {names['SHOPIFY_WEBHOOK_SECRET']}",
            f"  WooCommerce secret        {shown('WOOCOMMERCE_WEBHOOK_SECRET', True)}"
            f"  secret {names['WOOCOMMERCE_WEBHOOK_SECRET']}",
            f"  Pinterest token           {shown('PINTEREST_CONVERSION_TOKEN', True)}"
            f"  secret {names['PINTEREST_CONVERSION_TOKEN']}",
            f"  Pinterest ad account      {shown('PINTEREST_AD_ACCOUNT_ID', False)}",
            f"  Pinterest API             {self.pinterest_url}  {pinterest_from},"
            f" test mode {'on' if self.test_mode else 'off'} (PINTEREST_TEST_MODE)",
            f"  sender batching           up to {self.sender_batch_size} events, window {self.sender_window_s:g} s"
            " (LOCAL_SENDER_BATCH_SIZE, LOCAL_SENDER_WINDOW_S)",
            f"  handler log level         {self.env.get('LOG_LEVEL')} (LOG_LEVEL; the console prints a line per batch"
            " from the sender's report)",
            "  Lambda                    " + ("each function in a process of its own, killed at its template Timeout"
                                             " (no clean-up runs, as in AWS)" if self.lambda_processes else "in this process"),
            f"  routes                    POST {self.url}/events  (header x-api-key: {key_hint})",
            f"                            POST {self.url}/webhooks/shopify  (X-Shopify-Hmac-Sha256)",
            f"                            POST {self.url}/webhooks/woocommerce  (X-WC-Webhook-Signature)",
            f"                            POST {self.url}/webhooks/stripe  (Stripe-Signature; line items from {self.stripe_standin.base_url})",
            f"                            POST {self.url}/webhooks/bigcommerce  (X-Pinrelay-Secret, webhook-signature; store "
            f"{self.settings['BIGCOMMERCE_STORE_HASH'].value} at {self.bigcommerce_standin.base_url})",
            f"                            GET  {self.url}/healthz",
        ]
        if self.shopify_admin is not None:
            lines.append(f"  Shopify Admin API         {self.shopify_admin.base_url}  (stand-in of {DEFAULT_SHOP_DOMAIN},"
                         f" token {self.shopify_admin.token}: pinrelay reconcile)")
        for line in lines:
            self._print(line)

    # -- helpers for tests -----------------------------------------------------------------
    def queue_depth(self, queue_url: str | None = None) -> tuple[int, int]:
        """(visible, in flight) messages of the main queue (or ``queue_url``)."""
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=queue_url or self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def wait_until_drained(self, timeout: float = 10.0, poll_s: float = 0.1) -> bool:
        """Wait until the main queue has no visible and no in-flight message."""
        deadline = time.monotonic() + timeout
        while True:
            if self.queue_depth() == (0, 0):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll_s)


def _clear_disabled_metrics(module: ModuleType | None) -> None:
    """With POWERTOOLS_METRICS_DISABLED, Powertools' flush keeps the metric set instead of
    clearing it, so values pile up over invocations until 100 of one metric make it print an
    EMF blob anyway: drop them after each invocation, as a Lambda flush would."""
    metrics = getattr(module, "metrics", None)
    if metrics is not None and os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() == "true":
        try:
            metrics.clear_metrics()
        except Exception:  # noqa: BLE001 - cosmetic
            pass


def _clear_powertools_parameter_cache() -> None:
    try:
        from aws_lambda_powertools.utilities.parameters import clear_caches
    except Exception:  # noqa: BLE001
        return
    clear_caches()


# --------------------------------------------------------------------------------------------
# post-samples
# --------------------------------------------------------------------------------------------

SHOPIFY_TOPICS = (
    "orders/create",
    "orders/updated",
    "orders/paid",
    "orders/cancelled",
    "orders/fulfilled",
    "orders/partially_fulfilled",
    "orders/edited",
    "orders/delete",
    "checkouts/create",
    "checkouts/update",
    "checkouts/delete",
    "carts/create",
    "carts/update",
    "customers/create",
    "customers/update",
    "refunds/create",
    "order_transactions/create",
    "fulfillments/create",
    "fulfillments/update",
    "products/create",
    "products/update",
    "app/uninstalled",
)
_TIMESTAMP_FIELDS = ("created_at", "updated_at", "processed_at")


@dataclass(frozen=True)
class SampleResult:
    file: Path
    path: str  # the route posted to
    status: int  # 0 when the request could not be sent
    body: str


def shopify_topic_from_filename(name: str) -> str | None:
    """``shopify_orders_create.json`` / ``shopify_orders_create_refunded.json`` -> ``orders/create``."""
    stem = Path(name).name
    if not stem.startswith("shopify_") or not stem.endswith(".json"):
        return None
    rest = stem[len("shopify_") : -len(".json")]
    for topic in sorted(SHOPIFY_TOPICS, key=len, reverse=True):
        flat = topic.replace("/", "_")
        if rest == flat or rest.startswith(flat + "_") or rest.startswith(flat + "-") or rest.startswith(flat + "."):
            return topic
    parts = rest.split("_")
    return f"{parts[0]}/{parts[1]}" if len(parts) >= 2 else None


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def refresh_shopify_timestamps(payload: Any, now_iso: str | None = None) -> Any:
    """Set the top-level created_at / updated_at / processed_at present in a webhook payload to now."""
    now_iso = now_iso or _now_iso()
    if isinstance(payload, dict):
        for key in _TIMESTAMP_FIELDS:
            if key in payload:
                payload[key] = now_iso
    return payload


def woocommerce_topic_from_filename(name: str) -> str | None:
    """``woocommerce_order_created_x.json`` -> ``order.created``."""
    match = re.match(r"woocommerce_(order)_(created|updated)", name)
    return f"{match.group(1)}.{match.group(2)}" if match else None


def refresh_woocommerce_timestamps(payload: Any, now: float | None = None) -> Any:
    """Set the order's GMT dates (and local ones, read as UTC here) to now."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() if now is None else now))
    if isinstance(payload, dict):
        for key in ("date_created", "date_created_gmt", "date_modified", "date_modified_gmt", "date_paid",
                    "date_paid_gmt", "date_completed", "date_completed_gmt"):
            if payload.get(key):
                payload[key] = stamp
    return payload


def refresh_event_times(payload: Any, now: int | None = None) -> Any:
    """Set ``event_time`` to now on one event object, or on each item of ``{"data": [...]}`` / a list."""
    now = int(time.time()) if now is None else now
    items: list[Any]
    if isinstance(payload, dict) and isinstance(payload.get("data"), list):
        items = payload["data"]
    elif isinstance(payload, list):
        items = payload
    else:
        items = [payload]
    for item in items:
        if isinstance(item, dict):
            item["event_time"] = now
    return payload


def shopify_signature(secret: str, raw_body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode("utf-8"), raw_body, hashlib.sha256).digest()).decode("ascii")


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - local URL
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        return 0, f"could not connect: {reason}"


def post_samples(
    base_url: str,
    *,
    api_key: str,
    shopify_secret: str,
    events_dir: str | Path | None = None,
    shop_domain: str = DEFAULT_SHOP_DOMAIN,
    out: Printer | None = print,
    timeout: float = 15.0,
    woocommerce_secret: str = LOCAL_DEFAULTS["WOOCOMMERCE_WEBHOOK_SECRET"],
    stripe_secret: str = LOCAL_DEFAULTS["STRIPE_WEBHOOK_SECRET"],
    bigcommerce_secret: str = LOCAL_DEFAULTS["BIGCOMMERCE_WEBHOOK_SECRET"],
    bigcommerce_client_secret: str | None = LOCAL_DEFAULTS["BIGCOMMERCE_CLIENT_SECRET"],
    bigcommerce_store: str = LOCAL_DEFAULTS["BIGCOMMERCE_STORE_HASH"],
) -> list[SampleResult]:
    """POST every sample in events/webhooks/ (Shopify, WooCommerce, Stripe and BigCommerce, signed as
    each platform signs) and events/api/ (x-api-key)."""
    events_dir = Path(events_dir) if events_dir is not None else REPO_ROOT / "events"
    base_url = base_url.rstrip("/")
    results: list[SampleResult] = []
    say = out or (lambda _line: None)

    webhooks_dir = events_dir / "webhooks"
    api_dir = events_dir / "api"
    webhook_files = sorted(webhooks_dir.glob("*.json")) if webhooks_dir.is_dir() else []
    api_files = sorted(api_dir.glob("*.json")) if api_dir.is_dir() else []
    if not webhook_files and not api_files:
        say(f"no samples found in {webhooks_dir} or {api_dir}")
        return results

    for file in webhook_files:
        platform = file.name.split("_", 1)[0]
        if platform in ("stripe", "bigcommerce"):
            sample = json.loads(file.read_text(encoding="utf-8"))
            if platform == "stripe":
                raw, headers = stripe_webhook(sample, stripe_secret)
                kind = sample.get("type")
            else:
                raw, headers = bigcommerce_webhook(sample, bigcommerce_store, bigcommerce_secret, bigcommerce_client_secret)
                kind = sample.get("scope")
            status, body = _post(f"{base_url}/webhooks/{platform}", raw, headers, timeout)
            results.append(SampleResult(file, f"/webhooks/{platform}", status, body))
            say(f"{file.relative_to(events_dir)} [{kind}] -> {status or 'ERROR'} {body.strip()}")
            continue
        woo_topic = woocommerce_topic_from_filename(file.name)
        if woo_topic is not None:
            payload = refresh_woocommerce_timestamps(json.loads(file.read_text(encoding="utf-8")))
            raw = json.dumps(payload, separators=(",", ":")).encode("utf-8")
            headers = {
                "Content-Type": "application/json",
                "X-WC-Webhook-Topic": woo_topic,
                "X-WC-Webhook-Signature": shopify_signature(woocommerce_secret, raw),  # same base64 HMAC-SHA256
                "X-WC-Webhook-Source": "https://pinrelay-dev.example/",
                "X-WC-Webhook-Delivery-ID": str(uuid.uuid4()),
            }
            status, body = _post(f"{base_url}/webhooks/woocommerce", raw, headers, timeout)
            results.append(SampleResult(file, "/webhooks/woocommerce", status, body))
            say(f"{file.relative_to(events_dir)} [{woo_topic}] -> {status or 'ERROR'} {body.strip()}")
            continue
        topic = shopify_topic_from_filename(file.name)
        if topic is None:
            say(f"skip {file.relative_to(events_dir)}: not named shopify_<topic>*.json or woocommerce_<topic>*.json")
            continue
        payload = refresh_shopify_timestamps(json.loads(file.read_text(encoding="utf-8")))
        raw = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": shopify_signature(shopify_secret, raw),
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Shop-Domain": shop_domain,
            "X-Shopify-API-Version": "2024-10",
            "X-Shopify-Triggered-At": _now_iso(),
        }
        status, body = _post(f"{base_url}/webhooks/shopify", raw, headers, timeout)
        results.append(SampleResult(file, "/webhooks/shopify", status, body))
        say(f"{file.relative_to(events_dir)} [{topic}] -> {status or 'ERROR'} {body.strip()}")

    for file in api_files:
        payload = refresh_event_times(json.loads(file.read_text(encoding="utf-8")))
        raw = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        headers = {"Content-Type": "application/json", "x-api-key": api_key}
        status, body = _post(f"{base_url}/events", raw, headers, timeout)
        results.append(SampleResult(file, "/events", status, body))
        say(f"{file.relative_to(events_dir)} -> {status or 'ERROR'} {body.strip()}")
    return results


__all__ = [
    "LOCAL_DEFAULTS",
    "LocalStack",
    "SampleResult",
    "aws_client",
    "format_batch_line",
    "import_module_from_path",
    "post_samples",
    "refresh_event_times",
    "refresh_shopify_timestamps",
    "shopify_signature",
    "shopify_topic_from_filename",
]
