"""A local stand-in for an API Gateway HTTP API with Lambda proxy integrations.

``HttpApiGateway`` is a real ``ThreadingHTTPServer``. Each request is turned into an
API Gateway HTTP API *payload format 2.0* event and handed to a Lambda handler
``handler(event, context)`` in-process; the handler's return value is turned back into
an HTTP response the way API Gateway does it:

* ``{"statusCode": ..., "headers": {...}, "cookies": [...], "body": "...", "isBase64Encoded": bool}``
  is used as is (base64 bodies are decoded);
* any other JSON value (a string, a dict without ``statusCode``, ...) becomes a 200 with
  ``content-type: application/json``; a string is sent as is, anything else as JSON;
* an unknown route gives ``404 {"message":"Not Found"}``, a handler exception or an invalid
  response ``500 {"message":"Internal Server Error"}`` (traceback on stderr), a body over
  10 MB ``413 {"message":"Request Entity Too Large"}``.

This module is only for local runs and tests; nothing here is deployed.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pinrelay_local.servers import SHUTDOWN_POLL_S

Handler = Callable[[dict[str, Any], Any], Any]

MAX_BODY_BYTES = 10 * 1024 * 1024  # HTTP API payload limit
LOCAL_ACCOUNT_ID = "123456789012"
LOCAL_REGION = "us-east-1"
LOCAL_API_ID = "pinrelaylocal"

_NOT_FOUND = (404, {"message": "Not Found"})
_INTERNAL_ERROR = (500, {"message": "Internal Server Error"})
_TOO_LARGE = (413, {"message": "Request Entity Too Large"})


class LambdaContext:
    """The attributes and method of the Python runtime's Lambda context object that
    handlers (and Powertools) use."""

    def __init__(
        self,
        function_name: str,
        *,
        memory_limit_in_mb: int = 512,
        timeout_s: float = 30.0,
        aws_request_id: str | None = None,
        region: str = LOCAL_REGION,
        account_id: str = LOCAL_ACCOUNT_ID,
        function_version: str = "$LATEST",
    ) -> None:
        self.function_name = function_name
        self.function_version = function_version
        self.memory_limit_in_mb = int(memory_limit_in_mb)
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"
        self.aws_request_id = aws_request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        today = datetime.now(UTC).strftime("%Y/%m/%d")
        self.log_stream_name = f"{today}/[{function_version}]{uuid.uuid4().hex}"
        self.identity = None
        self.client_context = None
        self.timeout_s = float(timeout_s)
        self._deadline = time.monotonic() + self.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def __repr__(self) -> str:
        return f"LambdaContext(function_name={self.function_name!r}, aws_request_id={self.aws_request_id!r})"


def handler_function_name(handler: Callable[..., Any]) -> str:
    """A plausible Lambda function name for a handler callable (its module's name)."""
    module = getattr(handler, "__module__", None) or "handler"
    return module.rsplit(".", 1)[-1].replace("_", "-")


def _join_multi(pairs: list[tuple[str, str]], *, lower: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in pairs:
        k = key.lower() if lower else key
        out[k] = f"{out[k]},{value}" if k in out else value
    return out


def _request_id() -> str:
    # API Gateway's request ids look like "JKJaXmPLvHcESHA=" (base64 of 10 bytes).
    return base64.b64encode(secrets.token_bytes(10)).decode()


def _payload_v2_event(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: dict[str, str],
    body: bytes,
    source_ip: str,
    route_key: str,
    request_id: str,
    now: float,
    api_id: str,
    domain: str,
    domain_prefix: str,
) -> dict[str, Any]:
    """The payload format 2.0 event both front doors send (HTTP API and Function URL)."""
    cookie_header = headers.pop("cookie", None)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
    }
    if cookie_header:
        event["cookies"] = [c.strip() for c in cookie_header.replace(",", ";").split(";") if c.strip()]
    event["headers"] = headers
    if raw_query:
        event["queryStringParameters"] = _join_multi(parse_qsl(raw_query, keep_blank_values=True), lower=False)
    event["requestContext"] = {
        "accountId": LOCAL_ACCOUNT_ID,
        "apiId": api_id,
        "domainName": domain,
        "domainPrefix": domain_prefix,
        "http": {
            "method": method,
            "path": raw_path,
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": route_key,
        "stage": "$default",
        "time": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now * 1000),
    }
    if body:
        try:
            event["body"] = body.decode("utf-8")
            event["isBase64Encoded"] = False
        except UnicodeDecodeError:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    else:
        event["isBase64Encoded"] = False
    return event


def build_http_api_event(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    header_pairs: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
    route_key: str,
    request_id: str | None = None,
    now: float | None = None,
    host: str = "localhost",
) -> dict[str, Any]:
    """Build an API Gateway HTTP API payload format 2.0 event for one request."""
    headers = _join_multi(header_pairs, lower=True)
    domain = headers.get("host", host)
    return _payload_v2_event(
        method=method, raw_path=raw_path, raw_query=raw_query, headers=headers, body=body, source_ip=source_ip,
        route_key=route_key, request_id=request_id or _request_id(), now=time.time() if now is None else now,
        api_id=LOCAL_API_ID, domain=domain, domain_prefix=domain.split(".", 1)[0].split(":", 1)[0],
    )


LOCAL_FUNCTION_URL_ID = "pinrelaylocalurlid0000000000000a"  # 32 characters, like a real <url-id>


def build_function_url_event(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    header_pairs: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
    request_id: str | None = None,
    now: float | None = None,
    url_id: str = LOCAL_FUNCTION_URL_ID,
    region: str = LOCAL_REGION,
) -> dict[str, Any]:
    """Build the event a Lambda Function URL with AuthType NONE sends for one request: payload
    format 2.0 with the placeholders AWS documents (urls-invocation.html, "Request payload
    format"): routeKey and stage "$default", authentication and authorizer null (no IAM auth),
    pathParameters and stageVariables null, domainName <url-id>.lambda-url.<region>.on.aws."""
    now = time.time() if now is None else now
    domain = f"{url_id}.lambda-url.{region}.on.aws"
    # what the Function URL front end adds to the client's headers (kept when the client sent them)
    added = [("host", domain), ("x-forwarded-for", source_ip), ("x-forwarded-port", "443"), ("x-forwarded-proto", "https"),
             ("x-amzn-tls-version", "TLSv1.3"), ("x-amzn-tls-cipher-suite", "TLS_AES_128_GCM_SHA256"),
             ("x-amzn-trace-id", f"Root=1-{int(now):08x}-{secrets.token_hex(12)}")]
    present = {name.lower() for name, _ in header_pairs}
    headers = _join_multi([*header_pairs, *((k, v) for k, v in added if k not in present)], lower=True)
    event = _payload_v2_event(
        method=method, raw_path=raw_path, raw_query=raw_query, headers=headers, body=body, source_ip=source_ip,
        route_key="$default", request_id=request_id or str(uuid.uuid4()), now=now,
        api_id=url_id, domain=domain, domain_prefix=url_id,
    )
    event["requestContext"].update(authentication=None, authorizer=None)
    event["pathParameters"] = None
    event["stageVariables"] = None
    return event


class InvalidLambdaResponse(ValueError):
    pass


def lambda_result_to_http(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """Turn a Lambda proxy-integration result (format 2.0) into (status, headers, body)."""
    if isinstance(result, dict) and "statusCode" in result:
        status = result["statusCode"]
        if isinstance(status, bool) or not isinstance(status, int | str):
            raise InvalidLambdaResponse(f"statusCode must be an integer, got {status!r}")
        try:
            status = int(status)
        except ValueError as exc:
            raise InvalidLambdaResponse(f"statusCode must be an integer, got {status!r}") from exc
        if not 100 <= status <= 599:
            raise InvalidLambdaResponse(f"statusCode out of range: {status}")
        headers: list[tuple[str, str]] = []
        raw_headers = result.get("headers") or {}
        if not isinstance(raw_headers, Mapping):
            raise InvalidLambdaResponse("headers must be an object")
        for name, value in raw_headers.items():
            if isinstance(value, dict | list):
                raise InvalidLambdaResponse(f"header {name!r} must be a scalar")
            headers.append((str(name), "" if value is None else _scalar_str(value)))
        for cookie in result.get("cookies") or []:
            headers.append(("set-cookie", str(cookie)))
        body = result.get("body")
        if body is None:
            data = b""
        elif not isinstance(body, str):
            raise InvalidLambdaResponse("body must be a string")
        elif result.get("isBase64Encoded"):
            try:
                data = base64.b64decode(body, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise InvalidLambdaResponse("body is not valid base64") from exc
        else:
            data = body.encode("utf-8")
        return status, headers, data
    # No statusCode: API Gateway assumes 200, application/json, and the response is the body.
    if isinstance(result, str):
        data = result.encode("utf-8")
    else:
        try:
            data = json.dumps(result).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise InvalidLambdaResponse(f"response is not JSON serialisable: {exc}") from exc
    return 200, [("content-type", "application/json")], data


def _scalar_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _GatewayRequestHandler(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True  # else delayed ACKs add 40 ms to every keep-alive request
    protocol_version = "HTTP/1.1"
    server: _GatewayServer  # type: ignore[assignment]

    # every method goes through the same path
    def do_GET(self) -> None:  # noqa: N802
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_GET  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if self.server.gateway.access_log:
            sys.stderr.write(f"gateway: {self.address_string()} {format % args}\n")

    # -- helpers ---------------------------------------------------------------------------
    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes, request_id: str) -> None:
        self.send_response_only(status)
        self.send_header("Date", formatdate(usegmt=True))
        lowered = {name.lower() for name, _ in headers}
        for name, value in headers:
            if name.lower() in ("content-length", "transfer-encoding", "connection"):
                continue
            self.send_header(name, value)
        if "apigw-requestid" not in lowered:
            self.send_header("apigw-requestid", request_id)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
        self.log_request(status, len(body))

    def _send_json(self, status_body: tuple[int, dict[str, Any]], request_id: str) -> None:
        status, payload = status_body
        self._send(status, [("Content-Type", "application/json")], json.dumps(payload).encode(), request_id)

    def _read_body(self, limit: int) -> bytes | None:
        """The request body, or None when it is over ``limit`` bytes."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                total += size
                if total > limit:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)  # CRLF after the chunk
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        n = int(length)
        if n < 0:
            raise ValueError("negative Content-Length")
        if n > limit:
            return None
        return self.rfile.read(n)

    def _handle(self) -> None:
        gateway = self.server.gateway
        request_id = _request_id()
        try:
            body = self._read_body(gateway.max_body_bytes)
        except ValueError:
            self.close_connection = True
            self._send_json((400, {"message": "Bad Request"}), request_id)
            return
        if body is None:
            # the unread body makes the connection unusable
            self.close_connection = True
            self._send_json(_TOO_LARGE, request_id)
            return

        split = urlsplit(self.path)
        raw_path = split.path or "/"
        method = self.command.upper()
        route = gateway.find_route(method, raw_path)
        if route is None:
            self._send_json(_NOT_FOUND, request_id)
            return
        route_key, handler = route

        event = build_http_api_event(
            method=method,
            raw_path=raw_path,
            raw_query=split.query,
            header_pairs=list(self.headers.items()) + self._forwarded_headers(),
            body=body,
            source_ip=self.client_address[0],
            route_key=route_key,
            request_id=request_id,
            host=f"{gateway.host}:{gateway.port}",
        )
        context = LambdaContext(
            gateway.function_names.get(route_key) or handler_function_name(handler),
            memory_limit_in_mb=gateway.memory_limit_in_mb,
            timeout_s=gateway.timeout_s if gateway.timeout_s is not None else 30.0,
        )
        started = time.monotonic()
        try:
            result = handler(event, context)
            status, headers, data = lambda_result_to_http(result)
        except Exception:  # noqa: BLE001 - API Gateway turns any failure into a 500
            sys.stderr.write(f"gateway: {route_key} failed (requestId {request_id}):\n{traceback.format_exc()}")
            self._send_json(_INTERNAL_ERROR, request_id)
            return
        elapsed = time.monotonic() - started
        if gateway.timeout_s is not None and elapsed > gateway.timeout_s:
            sys.stderr.write(
                f"gateway: {route_key} Task timed out after {elapsed:.2f} seconds "
                f"(timeout {gateway.timeout_s:g} s); answering 500\n"
            )
            self._send_json(_INTERNAL_ERROR, request_id)
            return
        self._send(status, headers, data, request_id)

    def _forwarded_headers(self) -> list[tuple[str, str]]:
        # API Gateway adds these; keep any the client already sent.
        present = {k.lower() for k in self.headers}
        added = []
        if "x-forwarded-for" not in present:
            added.append(("x-forwarded-for", self.client_address[0]))
        if "x-forwarded-port" not in present:
            added.append(("x-forwarded-port", str(self.server.server_address[1])))
        if "x-forwarded-proto" not in present:
            added.append(("x-forwarded-proto", "http"))
        if "x-amzn-trace-id" not in present:
            added.append(("x-amzn-trace-id", f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}"))
        return added


class _GatewayServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], gateway: HttpApiGateway) -> None:
        self.gateway = gateway
        super().__init__(address, _GatewayRequestHandler)


class HttpApiGateway:
    """An HTTP API (payload format 2.0) in front of in-process Lambda handlers.

    ``routes`` maps ``(method, path)`` — e.g. ``("POST", "/events")`` — to ``handler(event, context)``.
    ``port=0`` picks a free port; ``.port`` / ``.url`` tell which after ``start()``.
    """

    def __init__(
        self,
        routes: Mapping[tuple[str, str], Handler] | None = None,
        host: str = "127.0.0.1",
        port: int = 3000,
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        timeout_s: float | None = None,
        memory_limit_in_mb: int = 512,
        function_names: Mapping[str, str] | None = None,
        access_log: bool = False,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.max_body_bytes = max_body_bytes
        self.timeout_s = timeout_s
        self.memory_limit_in_mb = memory_limit_in_mb
        self.function_names: dict[str, str] = dict(function_names or {})
        self.access_log = access_log
        self._routes: dict[tuple[str, str], Handler] = {}
        self._lock = threading.Lock()
        self._server: _GatewayServer | None = None
        self._thread: threading.Thread | None = None
        for (method, path), handler in (routes or {}).items():
            self.add_route(method, path, handler)

    # -- routes ----------------------------------------------------------------------------
    def add_route(self, method: str, path: str, handler: Handler, *, function_name: str | None = None) -> None:
        if not path.startswith("/"):
            raise ValueError(f"route path must start with '/': {path!r}")
        key = (method.upper(), path)
        with self._lock:
            self._routes[key] = handler
        if function_name:
            self.function_names[f"{key[0]} {path}"] = function_name

    @property
    def routes(self) -> dict[tuple[str, str], Handler]:
        with self._lock:
            return dict(self._routes)

    def find_route(self, method: str, path: str) -> tuple[str, Handler] | None:
        """(routeKey, handler) for a request, or None. ``ANY`` routes match every method."""
        with self._lock:
            for candidate in (method, "ANY"):
                handler = self._routes.get((candidate, path))
                if handler is not None:
                    return f"{candidate} {path}", handler
        return None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> HttpApiGateway:
        if self._server is not None:
            raise RuntimeError("gateway already started")
        self._server = _GatewayServer((self.host, self._requested_port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL_S}, name="http-gateway", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    @property
    def port(self) -> int:
        if self._server is None:
            return self._requested_port
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> HttpApiGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def health_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """GET /healthz: always 200."""
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"status": "ok"}),
    }


__all__ = [
    "MAX_BODY_BYTES",
    "Handler",
    "HttpApiGateway",
    "InvalidLambdaResponse",
    "LambdaContext",
    "build_http_api_event",
    "handler_function_name",
    "health_handler",
    "lambda_result_to_http",
]
