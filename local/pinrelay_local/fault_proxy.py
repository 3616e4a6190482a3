"""An HTTP proxy in front of moto server that fails AWS calls the way AWS (and Lambda) really do.

moto answers every call at once and correctly. Real AWS, seen from a Lambda function, also:

* loses answers: the call was applied, but the connection broke before the answer arrived.
  botocore then retries the very same call, so it is applied twice (two SQS messages for one
  ``SendMessage``; a ``PutItem`` guarded by ``attribute_not_exists`` fails on its own retry with
  ``ConditionalCheckFailedException``);
* throttles and fails (HTTP 400 throttling errors, HTTP 500/503) for a while, and is sometimes slow;
* sees the caller vanish: Lambda kills an invocation at its timeout or memory limit at any
  instruction, with no ``finally`` and no clean-up. A call can be the last thing the process did
  (killed before the call reached AWS) or the last thing AWS heard from it (killed after AWS
  applied the call, before the process saw the answer).

``AwsFaultProxy`` is a real threaded HTTP/1.1 server (keep-alive, as botocore's connection pool
uses it). Processes reach it through ``AWS_ENDPOINT_URL=<proxy.url>`` (boto3 honours that
variable for every service). It forwards each request unchanged (method, path and query, every
header including the SigV4 ``Authorization`` - moto does not check signatures - and the body, as
received, chunked framing included) to the moto server and returns moto's answer, except where a
``FaultRule`` says otherwise.

Every call is recorded as a ``CallRecord``: which caller made it, ``(service, operation)``, a
short summary of the request, the fault applied and what the caller got. How a call is named:

* service: the SigV4 credential scope (``Credential=<key>/<date>/<region>/<service>/aws4_request``
  in the ``Authorization`` header), i.e. the signing name, which is botocore's service name for
  dynamodb, sqs, secretsmanager, s3, sts (``monitoring`` is mapped to ``cloudwatch``);
* operation: the ``X-Amz-Target`` header for the JSON protocols (DynamoDB, SQS - botocore 1.43
  speaks JSON to SQS, not the query protocol - and Secrets Manager); ``Action=`` of the form body
  for the query protocol (STS, SNS); ``/service/<name>/operation/<op>`` for Smithy RPC v2 CBOR; for
  the REST protocols (S3, Lambda) the request's method, path and query are matched against the
  operations' HTTP bindings in botocore's own service model (the most specific binding whose
  literal query keys and required query/header members are all present wins: ``PUT
  /{Bucket}/{Key+}`` with ``partNumber`` and ``uploadId`` is ``UploadPart``, without them
  ``PutObject``). botocore addresses moto path-style (``/bucket/key``): the endpoint is an IP
  address, which cannot carry a virtual-hosted bucket name. A virtual-hosted ``Host:
  bucket.localhost`` is handled too.
* caller: botocore adds ``app/<id>`` to its User-Agent when the ``AWS_SDK_UA_APP_ID`` environment
  variable (or ``Config(user_agent_appid=...)``) is set; ``lambda_process`` sets it for each
  function process. A call without it has caller ``None`` (usually the test itself).

Fault actions (``FaultAction``; the constants below):

* ``KILL_BEFORE``: not forwarded; the caller's kill callback runs (it returns once the process is
  dead), then the connection is dropped. AWS never saw the call.
* ``KILL_AFTER``: forwarded and the whole answer read from moto (AWS applied it); then the kill
  callback runs and the connection is dropped unanswered.
* ``LOSE_ANSWER``: forwarded, answer read, then the client connection is reset (TCP RST, from a
  close with ``SO_LINGER`` 0) with no answer. botocore raises ``ConnectionClosedError`` inside and,
  being an ``HTTPClientError``, its standard and legacy retry modes retry it: the same call is
  applied again. (A plain close without an answer, a FIN, is retried the same way; both are
  pinned in tests/integration/test_fault_proxy.py.)
* ``FAIL_5XX`` / ``UNAVAILABLE_503``: not forwarded; HTTP 500 / 503 with the service's error code
  in that protocol's error format. botocore retries any 500/502/503/504.
* ``THROTTLE``: not forwarded; the service's throttling error (HTTP 400; SQS: 403
  ``RequestThrottled``, S3: 503 ``SlowDown``), whose code is in botocore's list of throttling
  codes, so it retries (and raises that code after its last attempt).
* Error answers come in the JSON (``__type``, ``x-amzn-ErrorType``; for SQS also
  ``x-amzn-query-error``), query (``<ErrorResponse>``) and S3 XML (``<Error>``) formats. Smithy
  RPC v2 CBOR (CloudWatch ``PutMetricData``) is not spoken: such a call gets an XML body, so a 5xx
  is still retried but a throttle is not recognised as one.
* ``DELAY(seconds)``: forwarded after ``seconds``. If the client's read timeout passes first,
  botocore retries on a new connection while this one still goes to moto after the delay - as a
  slow AWS would still apply a call whose caller gave up.

Only for local runs and tests; nothing here is deployed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
import os
import re
import select
import signal
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from pinrelay_local.servers import SHUTDOWN_POLL_S

# -- fault actions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaultAction:
    """What the proxy does to a call a rule picked. ``kind`` is one of ``kill_before``,
    ``kill_after``, ``lose_answer``, ``fail_5xx``, ``throttle``, ``delay``."""

    kind: str
    seconds: float = 0.0  # delay
    status: int | None = None  # fail_5xx: 500 or 503; throttle: None = the service's usual status
    error_code: str | None = None  # fail_5xx / throttle: None = the service's usual code
    reset: bool = True  # lose_answer: drop with a TCP RST (True) or an orderly close, a FIN (False)

    def __post_init__(self) -> None:
        if self.kind not in _ACTION_KINDS:
            raise ValueError(f"unknown fault action {self.kind!r}; one of {sorted(_ACTION_KINDS)}")

    @property
    def label(self) -> str:
        """A short name for ids: ``kill_after``, ``delay_2s``, ``fail_503``."""
        if self.kind == "delay":
            return f"delay_{self.seconds:g}s"
        if self.kind == "lose_answer" and not self.reset:
            return "lose_answer_fin"
        if self.kind == "fail_5xx" and self.status not in (None, 500):
            return f"fail_{self.status}"
        if self.error_code:
            return f"{self.kind}_{self.error_code}"
        return self.kind

    @property
    def kills(self) -> bool:
        return self.kind in ("kill_before", "kill_after")


_ACTION_KINDS = frozenset({"kill_before", "kill_after", "lose_answer", "fail_5xx", "throttle", "delay"})

KILL_BEFORE = FaultAction("kill_before")
KILL_AFTER = FaultAction("kill_after")
LOSE_ANSWER = FaultAction("lose_answer")
LOSE_ANSWER_FIN = FaultAction("lose_answer", reset=False)
FAIL_5XX = FaultAction("fail_5xx", status=500)
UNAVAILABLE_503 = FaultAction("fail_5xx", status=503)
THROTTLE = FaultAction("throttle")


def DELAY(seconds: float) -> FaultAction:  # noqa: N802 - reads like the other action constants
    """Forward the call after ``seconds`` (a slow AWS)."""
    return FaultAction("delay", seconds=float(seconds))


@dataclass(frozen=True)
class FaultRule:
    """Which calls get ``action``.

    A call matches when ``service``, ``operation`` and ``caller`` (each None = any) are equal to
    the call's. The rule counts the calls that match (1, 2, ...) and applies ``action`` to the
    ``nth`` of them (None = the first) and, if ``times`` is greater than 1, to the following ones
    until it has fired ``times`` times (``times=None``: to every later match). ``until`` (a
    ``time.monotonic()`` value) stops the rule at that moment: "throttle DynamoDB for 2 s" is
    ``FaultRule("dynamodb", action=THROTTLE, times=None, until=time.monotonic() + 2)``.
    SDK retries are calls like any other (each HTTP request counts).
    """

    service: str | None = None
    operation: str | None = None
    caller: str | None = None
    nth: int | None = None
    times: int | None = 1
    until: float | None = None
    action: FaultAction = field(kw_only=True)

    def __post_init__(self) -> None:
        if self.nth is not None and self.nth < 1:
            raise ValueError("nth is 1-based")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be >= 1 or None")

    def matches(self, service: str, operation: str, caller: str | None) -> bool:
        return (
            (self.service is None or self.service == service)
            and (self.operation is None or self.operation == operation)
            and (self.caller is None or self.caller == caller)
        )


class ActiveRule:
    """A rule added to a proxy, with its counters (read them in assertions)."""

    def __init__(self, rule: FaultRule) -> None:
        self.rule = rule
        self.matched = 0
        self.fired = 0

    def take(self, now: float, may_fire: bool) -> bool:
        """Count one matching call; True if the rule applies to it (never when ``may_fire`` is
        False: an earlier rule already did). Call under the proxy lock."""
        self.matched += 1
        rule = self.rule
        if not may_fire:
            return False
        if rule.until is not None and now >= rule.until:
            return False
        if self.matched < (rule.nth or 1):
            return False
        if rule.times is not None and self.fired >= rule.times:
            return False
        self.fired += 1
        return True

    def __repr__(self) -> str:
        return f"ActiveRule({self.rule!r}, matched={self.matched}, fired={self.fired})"


# -- call records ---------------------------------------------------------------------------------


@dataclass
class CallRecord:
    """One HTTP request to AWS as the proxy saw it.

    ``upstream_status`` is moto's status (None: not forwarded); ``client_status`` is what the
    caller got (None: the connection was dropped without an answer). ``attempt`` and
    ``invocation_id`` come from botocore's ``amz-sdk-request`` / ``amz-sdk-invocation-id``
    headers: the retries of one API call share the invocation id.
    """

    seq: int  # 1-based, over all callers
    caller_seq: int  # 1-based, among this caller's calls
    caller: str | None
    service: str
    operation: str
    summary: str
    body_sha256: str  # first 16 hex digits of the body's SHA-256
    method: str
    path: str
    attempt: int | None
    invocation_id: str | None
    started_at: float  # time.monotonic()
    fault: str | None = None  # the action's label
    upstream_status: int | None = None
    client_status: int | None = None
    finished_at: float | None = None
    error: str | None = None

    @property
    def name(self) -> str:
        """``service.Operation``."""
        return f"{self.service}.{self.operation}"


class FaultProxyError(AssertionError):
    """A rule could not be applied as asked (e.g. a kill for a caller without a kill callback)."""


# -- killing processes ----------------------------------------------------------------------------


def sigkill_and_wait(pid: int, timeout_s: float = 10.0) -> None:
    """SIGKILL ``pid`` and return once it is dead (a zombie its parent can ``waitpid``), without
    reaping it. Uses a pidfd (Linux >= 5.3), which becomes readable when the process exits."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return  # already gone and reaped
    except (AttributeError, OSError):
        pidfd = None
    try:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        if pidfd is None:
            _wait_until_dead_without_pidfd(pid, timeout_s)
            return
        ready, _, _ = select.select([pidfd], [], [], timeout_s)
        if not ready:
            raise TimeoutError(f"process {pid} still alive {timeout_s} s after SIGKILL")
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _wait_until_dead_without_pidfd(pid: int, timeout_s: float) -> None:
    """Poll /proc/<pid>/stat for the zombie state; where there is no /proc (macOS) a process
    blocked in a call dies as soon as it is scheduled: give it 50 ms."""
    if not os.path.isdir("/proc"):
        time.sleep(0.05)
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                if stat.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X"):
                    return
        except FileNotFoundError:
            return  # reaped already
        time.sleep(0.002)
    raise TimeoutError(f"process {pid} still alive {timeout_s} s after SIGKILL")


def process_killer(pid: int) -> Callable[[], None]:
    """The usual kill callback: SIGKILL ``pid`` and wait until it is dead."""
    return lambda: sigkill_and_wait(pid)


# -- naming calls ---------------------------------------------------------------------------------

_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/,\s]+/([^/,\s]+)/aws4_request")
_APP_ID = re.compile(r"(?:^|\s)app/(\S+)")
_SDK_ATTEMPT = re.compile(r"attempt=(\d+)")
_SIGNING_NAME_TO_SERVICE = {"monitoring": "cloudwatch"}
_TARGET_PREFIX_TO_SERVICE = {"DynamoDB_20120810": "dynamodb", "AmazonSQS": "sqs", "secretsmanager": "secretsmanager"}
_ALLOWED_CALLER_CHARACTERS = re.compile(r"[A-Za-z0-9!$%&'*+\-.^_`|~,#]+")


def caller_id_is_valid(caller_id: str) -> bool:
    """botocore replaces characters outside this set with "-" in the User-Agent's ``app/`` part,
    so only such ids can be read back exactly."""
    return bool(_ALLOWED_CALLER_CHARACTERS.fullmatch(caller_id))


@dataclass(frozen=True)
class _Request:
    method: str
    target: str  # path and query, as sent
    headers: list[tuple[str, str]]
    raw_body: bytes  # as received (chunked framing included)
    body: bytes  # decoded

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


@dataclass(frozen=True)
class CallName:
    """What ``identify_call`` makes of a request."""

    service: str
    operation: str
    protocol: str  # json, query, rest-xml, rest-json, smithy-rpc-v2-cbor, unknown
    summary: str = ""
    json_version: str = "1.0"


def _service_of(request: _Request) -> str | None:
    authorization = request.header("Authorization") or ""
    match = _CREDENTIAL_SCOPE.search(authorization)
    if match is None:  # presigned URL
        credential = parse_qs(urlsplit(request.target).query).get("X-Amz-Credential", [""])[0]
        match = _CREDENTIAL_SCOPE.search("Credential=" + credential)
    if match is None:
        return None
    return _SIGNING_NAME_TO_SERVICE.get(match.group(1), match.group(1))


@cache
def _service_model(service: str) -> Any:
    import botocore.session  # only needed for REST protocols

    return botocore.session.get_session().get_service_model(service)


@cache
def _rest_bindings(service: str) -> list[tuple[str, str, re.Pattern[str], dict[str, str | None], list[str], list[str]]]:
    """(operation, method, path regex, literal query, required query keys, required headers)
    for each operation of a REST service, from botocore's service model."""
    model = _service_model(service)
    bindings = []
    for name in model.operation_names:
        operation = model.operation_model(name)
        http = operation.http
        path_template, _, literal_query = http.get("requestUri", "/").partition("?")
        pattern = "^"
        for piece in re.split(r"(\{[^}]+\})", path_template):
            if piece.startswith("{"):
                pattern += ".+" if piece.endswith("+}") else "[^/]+"
            else:
                pattern += re.escape(piece)
        pattern += "$" if path_template.endswith("+}") or path_template == "/" else "/?$"
        literals: dict[str, str | None] = {}
        for pair in filter(None, literal_query.split("&")):
            key, has_value, value = pair.partition("=")
            literals[key] = value if has_value else None
        required_query: list[str] = []
        required_headers: list[str] = []
        shape = operation.input_shape
        for member in shape.required_members if shape is not None else []:
            serialization = shape.members[member].serialization
            if serialization.get("location") == "querystring":
                required_query.append(serialization.get("name", member))
            elif serialization.get("location") == "header":
                required_headers.append(serialization.get("name", member).lower())
        method = http.get("method", "POST")
        bindings.append((name, method, re.compile(pattern), literals, required_query, required_headers))
    return bindings


def _rest_operation(service: str, request: _Request, path: str, query: dict[str, list[str]]) -> str | None:
    header_names = {key.lower() for key, _ in request.headers}
    best: tuple[tuple[int, int], str] | None = None
    for name, method, pattern, literals, required_query, required_headers in _rest_bindings(service):
        if method != request.method or not pattern.match(path):
            continue
        if any(key not in query or (value is not None and value not in query[key]) for key, value in literals.items()):
            continue
        if any(key not in query for key in required_query) or any(h not in header_names for h in required_headers):
            continue
        score = (len(literals), len(required_query) + len(required_headers))
        if best is None or score > best[0]:
            best = (score, name)
    return best[1] if best else None


def _virtual_hosted_bucket(host_header: str | None, proxy_host: str) -> str | None:
    """``bucket.localhost:4566`` -> ``bucket`` when the proxy listens on ``localhost``."""
    hostname = (host_header or "").rsplit(":", 1)[0]
    for base in {proxy_host, "localhost"}:
        if hostname.endswith("." + base):
            return hostname[: -len(base) - 1]
    return None


def identify_call(
    method: str,
    target: str,
    headers: list[tuple[str, str]] | dict[str, str],
    body: bytes,
    proxy_host: str = "127.0.0.1",
) -> CallName:
    """Name an AWS request: (service, operation, protocol) and a short summary (table and key,
    queue, secret id, bucket/key). ``target`` is the path with its query."""
    header_list = list(headers.items()) if isinstance(headers, dict) else list(headers)
    return _identify(_Request(method, target, header_list, body, body), proxy_host)


def _identify(request: _Request, proxy_host: str) -> CallName:
    split = urlsplit(request.target)
    path = split.path or "/"
    query = parse_qs(split.query, keep_blank_values=True)
    service = _service_of(request)
    target = request.header("X-Amz-Target")
    content_type = (request.header("Content-Type") or "").lower()
    if target:
        prefix, _, operation = target.rpartition(".")
        service = service or _TARGET_PREFIX_TO_SERVICE.get(prefix, prefix.split("_")[0].lower())
        version = "1.1" if "json-1.1" in content_type else "1.0"
        return CallName(service, operation, "json", _json_summary(service, request.body), version)
    if (request.header("smithy-protocol") or "").startswith("rpc-v2"):
        parts = path.strip("/").split("/")
        operation = parts[-1] if len(parts) >= 4 else "unknown"
        return CallName(service or "unknown", operation, "smithy-rpc-v2-cbor")
    if request.method == "POST" and "x-www-form-urlencoded" in content_type:
        form = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        if "Action" in form:
            shown = [f"{k}={v[0][:40]}" for k, v in form.items() if k not in ("Action", "Version")][:4]
            return CallName(service or "unknown", form["Action"][0], "query", " ".join(shown))
    if service is None:
        return CallName("unknown", f"{request.method} {path}", "unknown")
    if service == "s3":
        bucket = _virtual_hosted_bucket(request.header("Host"), proxy_host)
        if bucket is not None:
            path = f"/{bucket}{path}"
    try:
        protocol = _service_model(service).metadata.get("protocol", "rest-json")
        operation = _rest_operation(service, request, path, query)
    except Exception:  # noqa: BLE001 - a service botocore does not know
        protocol, operation = "rest-json", None
    summary = unquote(path)
    if "partNumber" in query:
        summary += f" part {query['partNumber'][0]}"
    return CallName(service, operation or f"{request.method} {path}", protocol, summary[:160])


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, separators=(",", ":"), sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _dynamodb_value(attribute: Any) -> Any:
    """{"S": "x"} -> "x" (for summaries only)."""
    if isinstance(attribute, dict) and len(attribute) == 1:
        return next(iter(attribute.values()))
    return attribute


def _json_summary(service: str, body: bytes) -> str:
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        return ""
    if not isinstance(payload, dict):
        return ""
    if service == "dynamodb":
        table = payload.get("TableName", "")
        if "Key" in payload:
            key = {k: _dynamodb_value(v) for k, v in payload["Key"].items()}
            return _short(f"{table} {_short(key, 120)}")
        if "Item" in payload:
            item = {k: _dynamodb_value(v) for k, v in payload["Item"].items()}
            return _short(f"{table} {_short(item, 120)}")
        if "RequestItems" in payload:
            counts = {
                table: len(requests) if isinstance(requests, list) else len(requests.get("Keys", []))
                for table, requests in payload["RequestItems"].items()
            }
            return _short(counts)
        if "TransactItems" in payload:
            return f"{len(payload['TransactItems'])} items"
        return _short(table)
    if service == "sqs":
        queue = str(payload.get("QueueUrl", payload.get("QueueName", ""))).rsplit("/", 1)[-1]
        if "Entries" in payload:
            return f"{queue} {len(payload['Entries'])} entries"
        if "MessageBody" in payload:
            return _short(f"{queue} {payload['MessageBody']}")
        return queue
    if service == "secretsmanager":
        return _short(str(payload.get("SecretId", payload.get("Name", ""))))
    return _short({k: v for k, v in payload.items() if isinstance(v, (str, int, float))}, 120)


# -- error answers --------------------------------------------------------------------------------

# (code, HTTP status) of each service's throttling error. The codes are in botocore's list of
# throttling codes (botocore/retries/standard.py ThrottledRetryableChecker), so its standard retry
# mode retries them. Its legacy mode (data/_retry.json) matches code and status: SQS's
# RequestThrottled is retried there only with status 403, the status SQS gives it.
_THROTTLE_ERRORS: dict[str, tuple[str, int]] = {
    "dynamodb": ("ProvisionedThroughputExceededException", 400),
    "sqs": ("RequestThrottled", 403),
    "secretsmanager": ("ThrottlingException", 400),
    "s3": ("SlowDown", 503),
    "sts": ("Throttling", 400),
}
_INTERNAL_ERROR_CODES: dict[str, str] = {
    "dynamodb": "InternalServerError",
    "secretsmanager": "InternalServiceError",
    "s3": "InternalError",
}


def _error_code_and_status(service: str, action: FaultAction) -> tuple[str, int]:
    if action.kind == "throttle":
        code, status = _THROTTLE_ERRORS.get(service, ("ThrottlingException", 400))
        return action.error_code or code, action.status or status
    status = action.status or 500
    if action.error_code:
        return action.error_code, status
    if status == 503:
        return "ServiceUnavailable", status
    return _INTERNAL_ERROR_CODES.get(service, "InternalFailure"), status


def error_answer(
    name: CallName, method: str, code: str, status: int, message: str
) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers, body) of an AWS error in the call's protocol."""
    request_id = str(uuid.uuid4())
    sender_fault = status < 500
    if name.protocol in ("json", "rest-json"):
        json_type = f"application/x-amz-json-{name.json_version}" if name.protocol == "json" else "application/json"
        headers = [
            ("Content-Type", json_type),
            ("x-amzn-RequestId", request_id),
            ("x-amzn-ErrorType", code),
        ]
        if name.service == "sqs":
            # SQS is "awsQueryCompatible": botocore takes the code from this header when present
            headers.append(("x-amzn-query-error", f"{code};{'Sender' if sender_fault else 'Receiver'}"))
        body = json.dumps({"__type": code, "message": message}).encode()
        return status, headers, body
    if name.protocol == "query":
        body = (
            "<ErrorResponse><Error>"
            f"<Type>{'Sender' if sender_fault else 'Receiver'}</Type><Code>{code}</Code><Message>{message}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        return status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], body
    # rest-xml (S3) and anything else: S3's XML error; a HEAD answer has no body (botocore then
    # names the error after the status, which is still retried when it is 5xx)
    headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
    if method == "HEAD":
        return status, headers, b""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
    ).encode()
    return status, headers, body


# -- the proxy ------------------------------------------------------------------------------------

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


class _Dropped(Exception):
    """The client connection is to be dropped without an answer."""

    def __init__(self, reset: bool) -> None:
        super().__init__("dropped")
        self.reset = reset


class AwsFaultProxy:
    """A fault-injecting HTTP proxy in front of a moto server (see the module docstring).

    Use it as a context manager (or ``start()`` / ``stop()``); point processes at ``url``.
    A rule that could not be applied (a kill for a caller without kill callback, a kill callback
    that raised) is recorded in ``errors``, answered to the caller with a non-retryable 400
    ``FaultProxyError``, raised by ``check()`` and by leaving the ``with`` block.
    """

    def __init__(
        self, upstream_url: str, host: str = "127.0.0.1", port: int = 0, *, upstream_timeout_s: float = 120.0
    ) -> None:
        upstream = urlsplit(upstream_url)
        if upstream.scheme != "http" or not upstream.hostname:
            raise ValueError(f"upstream must be an http:// URL, not {upstream_url!r}")
        self.upstream_url = upstream_url.rstrip("/")
        self._upstream_host = upstream.hostname
        self._upstream_port = upstream.port or 80
        self.upstream_timeout_s = upstream_timeout_s
        self.host = host
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._calls: list[CallRecord] = []
        self._caller_seq: dict[str | None, int] = {}
        self._rules: list[ActiveRule] = []
        self._killers: dict[str, Callable[[], None]] = {}
        self._connections: set[socket.socket] = set()
        self.errors: list[str] = []

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server is not None else self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> AwsFaultProxy:
        if self._server is not None:
            raise RuntimeError("proxy already started")
        proxy = self

        class Handler(_ProxyHandler):
            pass

        Handler.proxy = proxy
        self._server = ThreadingHTTPServer((self.host, self._port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL_S}, name="aws-fault-proxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            open_connections = list(self._connections)
        for connection in open_connections:  # idle keep-alive connections: their callers see a close
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> AwsFaultProxy:
        return self.start()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.stop()
        if exc_type is None and self.errors:
            raise FaultProxyError("; ".join(self.errors))

    # -- rules and callers ----------------------------------------------------------------------
    def add_rule(self, rule: FaultRule) -> ActiveRule:
        active = ActiveRule(rule)
        with self._lock:
            self._rules.append(active)
        return active

    def clear_rules(self) -> None:
        with self._lock:
            self._rules.clear()

    def register_caller(self, caller_id: str, kill: Callable[[], None]) -> None:
        """``kill()`` must return only once the caller's process is dead (``sigkill_and_wait``
        does; a bare ``os.kill(pid, SIGKILL)`` only queues the signal). A later registration of
        the same id replaces this one (a new process after a cold start)."""
        if not caller_id_is_valid(caller_id):
            raise ValueError(f"caller id {caller_id!r} would not survive botocore's User-Agent sanitising")
        with self._lock:
            self._killers[caller_id] = kill

    def register_process(self, caller_id: str, pid: int) -> None:
        """``register_caller(caller_id, process_killer(pid))``."""
        self.register_caller(caller_id, process_killer(pid))

    def unregister_caller(self, caller_id: str) -> None:
        with self._lock:
            self._killers.pop(caller_id, None)

    # -- records ----------------------------------------------------------------------------------
    @property
    def calls(self) -> list[CallRecord]:
        """A snapshot (copies) of every call so far, in arrival order."""
        with self._lock:
            return [dataclasses.replace(record) for record in self._calls]

    def calls_of(self, caller: str | None) -> list[CallRecord]:
        return [record for record in self.calls if record.caller == caller]

    def operations_of(self, caller: str | None) -> list[str]:
        """``["dynamodb.PutItem", "sqs.SendMessageBatch", ...]`` for one caller."""
        return [record.name for record in self.calls_of(caller)]

    def reset(self) -> None:
        """Forget the calls, rules, counters and errors (registered callers are kept)."""
        with self._lock:
            self._calls.clear()
            self._caller_seq.clear()
            self._rules.clear()
            self.errors.clear()

    def check(self) -> None:
        """Raise ``FaultProxyError`` if a rule could not be applied."""
        with self._lock:
            if self.errors:
                raise FaultProxyError("; ".join(self.errors))

    # -- used by the handler ----------------------------------------------------------------------
    def _record_arrival(self, request: _Request) -> tuple[CallRecord, CallName, FaultAction | None]:
        name = _identify(request, self.host)
        user_agent = request.header("User-Agent") or ""
        app = _APP_ID.search(user_agent)
        caller = app.group(1) if app else None
        sdk_request = request.header("amz-sdk-request") or ""
        attempt = _SDK_ATTEMPT.search(sdk_request)
        now = time.monotonic()
        with self._lock:
            self._caller_seq[caller] = self._caller_seq.get(caller, 0) + 1
            record = CallRecord(
                seq=len(self._calls) + 1,
                caller_seq=self._caller_seq[caller],
                caller=caller,
                service=name.service,
                operation=name.operation,
                summary=name.summary,
                body_sha256=hashlib.sha256(request.body).hexdigest()[:16],
                method=request.method,
                path=urlsplit(request.target).path,
                attempt=int(attempt.group(1)) if attempt else None,
                invocation_id=request.header("amz-sdk-invocation-id"),
                started_at=now,
            )
            self._calls.append(record)
            action = None
            for active in self._rules:  # every rule counts its matches; the first that fires wins
                if active.rule.matches(name.service, name.operation, caller):
                    if active.take(now, may_fire=action is None):
                        action = active.rule.action
            if action is not None:
                record.fault = action.label
        return record, name, action

    def _update(self, record: CallRecord, **changes: Any) -> None:
        with self._lock:
            for key, value in changes.items():
                setattr(record, key, value)

    def _kill(self, record: CallRecord) -> bool:
        with self._lock:
            kill = self._killers.get(record.caller) if record.caller is not None else None
        problem = None
        if kill is None:
            problem = "no kill callback for caller"
        else:
            try:
                kill()
            except Exception as exc:  # noqa: BLE001 - reported to the test below
                problem = f"the kill callback raised {type(exc).__name__}: {exc}, for caller"
        if problem is None:
            return True
        message = f"call #{record.seq} {record.name}: {record.fault} but {problem} {record.caller!r}"
        with self._lock:
            self.errors.append(message)
            record.error = message
        return False

    def _forward(self, request: _Request) -> tuple[int, str, list[tuple[str, str]], bytes]:
        """Send the request to moto as received; (status, reason, headers, whole body)."""
        connection = http.client.HTTPConnection(
            self._upstream_host, self._upstream_port, timeout=self.upstream_timeout_s
        )
        try:
            connection.putrequest(request.method, request.target, skip_host=True, skip_accept_encoding=True)
            for key, value in request.headers:
                connection.putheader(key, value)
            connection.endheaders()
            if request.raw_body:
                connection.send(request.raw_body)
            response = connection.getresponse()
            body = response.read()
            return response.status, response.reason, response.getheaders(), body
        finally:
            connection.close()


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's urllib3 pool expects
    proxy: AwsFaultProxy
    timeout = 300  # an idle keep-alive connection's thread ends after this

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        pass

    def setup(self) -> None:
        super().setup()
        with self.proxy._lock:
            self.proxy._connections.add(self.connection)

    def finish(self) -> None:
        with self.proxy._lock:
            self.proxy._connections.discard(self.connection)
        super().finish()

    def _handle_any(self) -> None:
        try:
            raw_body, body = self._read_body()
        except (OSError, ValueError):
            self.close_connection = True
            return
        headers = list(self.headers.items())
        request = _Request(self.command, self.path, headers, raw_body, body)
        proxy = self.proxy
        record, name, action = proxy._record_arrival(request)
        try:
            status, reason, answer_headers, answer_body = self._apply(proxy, request, record, name, action)
        except _Dropped as dropped:
            proxy._update(record, client_status=None, finished_at=time.monotonic())
            self._drop(reset=dropped.reset)
            return
        except Exception as exc:  # noqa: BLE001 - moto unreachable etc.: tell the caller with a 502
            proxy._update(record, error=f"{type(exc).__name__}: {exc}")
            status, reason = 502, "Bad Gateway"
            answer_headers, answer_body = [("Content-Type", "text/plain")], str(exc).encode()
        # recorded before the answer goes out: a caller that has it may look at the record at once
        proxy._update(record, client_status=status, finished_at=time.monotonic())
        try:
            if self._client_gone():
                raise ConnectionAbortedError()
            self._answer(status, reason, answer_headers, answer_body)
        except OSError:  # the caller gave up (read timeout) or died while the call was under way
            self.close_connection = True
            proxy._update(record, client_status=None, error="the caller closed the connection before the answer")

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle_any

    def _apply(
        self, proxy: AwsFaultProxy, request: _Request, record: CallRecord, name: CallName, action: FaultAction | None
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        kind = action.kind if action is not None else None
        if kind == "kill_before":
            if proxy._kill(record):
                raise _Dropped(reset=False)
            return self._refusal(name, record)
        if kind in ("fail_5xx", "throttle"):
            assert action is not None
            code, status = _error_code_and_status(name.service, action)
            message = "Rate exceeded" if kind == "throttle" else "We encountered an internal error. Please try again."
            status, headers, body = error_answer(name, request.method, code, status, message)
            return status, http.client.responses.get(status, ""), headers, body
        if kind == "delay":
            assert action is not None
            time.sleep(action.seconds)
        status, reason, headers, body = proxy._forward(request)
        proxy._update(record, upstream_status=status)
        if kind == "kill_after":
            if proxy._kill(record):
                raise _Dropped(reset=False)
            return self._refusal(name, record)
        if kind == "lose_answer":
            assert action is not None
            raise _Dropped(reset=action.reset)
        return status, reason, headers, body

    def _refusal(self, name: CallName, record: CallRecord) -> tuple[int, str, list[tuple[str, str]], bytes]:
        """A kill that could not be done: a non-retryable error the caller sees at once."""
        message = record.error or "fault proxy error"
        status, headers, body = error_answer(name, self.command, "FaultProxyError", 400, message)
        return status, "Bad Request", headers, body

    def _read_body(self) -> tuple[bytes, bytes]:
        """(raw bytes as received, decoded body). Handles Content-Length and chunked framing."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            raw = bytearray()
            decoded = bytearray()
            while True:
                size_line = self.rfile.readline(65537)
                raw += size_line
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers, up to the empty line
                        line = self.rfile.readline(65537)
                        raw += line
                        if line in (b"\r\n", b"\n", b""):
                            return bytes(raw), bytes(decoded)
                chunk = self.rfile.read(size)
                decoded += chunk
                raw += chunk + self.rfile.readline(65537)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(body) != length:
            raise ValueError("client closed the connection mid-body")
        return body, body

    def _answer(self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response_only(status, reason)
        for key, value in headers:
            if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                self.send_header(key, value)
        if self.command == "HEAD":
            length = next((v for k, v in headers if k.lower() == "content-length"), None)
            if length is not None:
                self.send_header("Content-Length", length)
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
        self.wfile.flush()

    def _client_gone(self) -> bool:
        """True if the caller has closed its end (its FIN is waiting in our receive buffer)."""
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _drop(self, reset: bool) -> None:
        """Close the client connection without an answer: with ``reset`` a TCP RST (SO_LINGER 0),
        otherwise an orderly close (FIN)."""
        self.close_connection = True
        if reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        try:
            self.wfile.flush()
        except OSError:
            pass
        # socketserver shuts the socket down (SHUT_WR) and closes it after handle() returns; for an
        # RST the close must come first, as a shutdown would send a FIN.
        if reset:
            self.connection.close()


# -- enumerating fault points ---------------------------------------------------------------------


@dataclass(frozen=True)
class FaultPoint:
    """One call of a recorded scenario and the fault to put there in a fresh run of it."""

    caller: str | None
    index: int  # 1-based among the caller's calls
    service: str
    operation: str
    occurrence: int  # 1-based among the caller's calls of this (service, operation)
    action: FaultAction

    @property
    def id(self) -> str:
        """``sender#3 dynamodb.UpdateItem kill_after`` (for pytest ids)."""
        return f"{self.caller}#{self.index} {self.service}.{self.operation} {self.action.label}"

    def rule(self) -> FaultRule:
        """The rule that applies the action to this call (and only this one) of a fresh run."""
        return FaultRule(
            self.service, self.operation, caller=self.caller, nth=self.occurrence, times=1, action=self.action
        )

    def __str__(self) -> str:
        return self.id


def fault_points(
    calls: Iterable[CallRecord], actions: Iterable[FaultAction], callers: Iterable[str] | None = None
) -> list[FaultPoint]:
    """Every (call, action) pair of a recording pass: for each caller's i-th call and each action,
    a ``FaultPoint`` whose ``rule()`` targets that call in a fresh run of the same scenario.
    Calls without a caller (the test's own) are left out unless ``callers`` names None."""
    wanted = None if callers is None else set(callers)
    actions = list(actions)
    points: list[FaultPoint] = []
    index: dict[str | None, int] = {}
    occurrences: dict[tuple[str | None, str, str], int] = {}
    for record in calls:
        if (wanted is None and record.caller is None) or (wanted is not None and record.caller not in wanted):
            continue
        index[record.caller] = index.get(record.caller, 0) + 1
        key = (record.caller, record.service, record.operation)
        occurrences[key] = occurrences.get(key, 0) + 1
        for action in actions:
            point = FaultPoint(
                record.caller, index[record.caller], record.service, record.operation, occurrences[key], action
            )
            points.append(point)
    return points


__all__ = [
    "DELAY",
    "FAIL_5XX",
    "KILL_AFTER",
    "KILL_BEFORE",
    "LOSE_ANSWER",
    "LOSE_ANSWER_FIN",
    "THROTTLE",
    "UNAVAILABLE_503",
    "ActiveRule",
    "AwsFaultProxy",
    "CallName",
    "CallRecord",
    "FaultAction",
    "FaultPoint",
    "FaultProxyError",
    "FaultRule",
    "caller_id_is_valid",
    "error_answer",
    "fault_points",
    "identify_call",
    "process_killer",
    "sigkill_and_wait",
]
