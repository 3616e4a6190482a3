"""The local HTTP API emulation (pinrelay_local.http_gateway) against a real HTTP server."""

from __future__ import annotations

import base64
import http.client
import json
import re
import socket
import threading
import time
from typing import Any

import pytest

from pinrelay_local.http_gateway import (
    HttpApiGateway,
    LambdaContext,
    health_handler,
    lambda_result_to_http,
)

# Documented HTTP API payload format 2.0 request (AWS docs, "Working with AWS Lambda proxy
# integrations for HTTP APIs"): every key the event may carry.
V2_EVENT_KEYS = {
    "version", "routeKey", "rawPath", "rawQueryString", "cookies", "headers", "queryStringParameters",
    "requestContext", "body", "pathParameters", "isBase64Encoded", "stageVariables",
}
V2_REQUEST_CONTEXT_KEYS = {
    "accountId", "apiId", "authentication", "authorizer", "domainName", "domainPrefix", "http",
    "requestId", "routeKey", "stage", "time", "timeEpoch",
}
V2_HTTP_KEYS = {"method", "path", "protocol", "sourceIp", "userAgent"}


class Recorder:
    """A fake Lambda handler remembering what it was called with."""

    def __init__(self, result: Any = None, exc: Exception | None = None) -> None:
        self.calls: list[tuple[dict[str, Any], Any]] = []
        self.result = result if result is not None else {"statusCode": 200, "body": "ok"}
        self.exc = exc
        self.lock = threading.Lock()

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        with self.lock:
            self.calls.append((event, context))
        if self.exc is not None:
            raise self.exc
        return self.result(event, context) if callable(self.result) else self.result

    @property
    def event(self) -> dict[str, Any]:
        return self.calls[-1][0]


@pytest.fixture
def gateway():
    gw = HttpApiGateway({}, host="127.0.0.1", port=0)
    gw.start()
    yield gw
    gw.stop()


def request(gw: HttpApiGateway, method: str, path: str, body: bytes | None = None,
            headers: list[tuple[str, str]] | None = None,
            ) -> tuple[int, dict[str, str], bytes, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection(gw.host, gw.port, timeout=5)
    try:
        conn.putrequest(method, path)
        for name, value in headers or []:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data, resp
    finally:
        conn.close()


def test_event_has_the_documented_v2_shape(gateway: HttpApiGateway) -> None:
    rec = Recorder()
    gateway.add_route("POST", "/events", rec)
    before = time.time()
    status, headers, data, _ = request(
        gateway, "POST", "/events?a=1&b=x%20y&a=3&empty=",
        body=b'{"hello": "w\xc3\xb6rld"}',
        headers=[("Content-Type", "application/json"), ("X-Api-Key", "k1"), ("X-Multi", "one"),
                 ("X-Multi", "two"), ("User-Agent", "pytest-agent/1.0"), ("Cookie", "c1=v1; c2=v2")],
    )
    assert status == 200 and data == b"ok"
    assert headers["apigw-requestid"]
    event = rec.event

    assert set(event) <= V2_EVENT_KEYS
    required = {"version", "routeKey", "rawPath", "rawQueryString", "headers", "requestContext", "isBase64Encoded"}
    assert required <= set(event)
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /events"
    assert event["rawPath"] == "/events"
    assert event["rawQueryString"] == "a=1&b=x%20y&a=3&empty="
    assert event["queryStringParameters"] == {"a": "1,3", "b": "x y", "empty": ""}
    assert event["body"] == '{"hello": "wörld"}'
    assert event["isBase64Encoded"] is False
    assert event["cookies"] == ["c1=v1", "c2=v2"]

    h = event["headers"]
    assert all(k == k.lower() for k in h)
    assert h["x-api-key"] == "k1"
    assert h["x-multi"] == "one,two"
    assert h["content-type"] == "application/json"
    assert h["content-length"] == str(len(b'{"hello": "w\xc3\xb6rld"}'))
    assert h["user-agent"] == "pytest-agent/1.0"
    assert h["x-forwarded-for"] == "127.0.0.1" and h["x-forwarded-proto"] == "http"
    assert "cookie" not in h  # HTTP API moves it to "cookies"

    rc = event["requestContext"]
    assert set(rc) <= V2_REQUEST_CONTEXT_KEYS
    required = {"accountId", "apiId", "domainName", "http", "requestId", "routeKey", "stage", "time", "timeEpoch"}
    assert required <= set(rc)
    assert set(rc["http"]) == V2_HTTP_KEYS
    assert rc["http"] == {"method": "POST", "path": "/events", "protocol": "HTTP/1.1",
                          "sourceIp": "127.0.0.1", "userAgent": "pytest-agent/1.0"}
    assert rc["routeKey"] == "POST /events" and rc["stage"] == "$default"
    assert rc["requestId"] == headers["apigw-requestid"]
    assert re.fullmatch(r"\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000", rc["time"])
    assert before * 1000 - 1000 <= rc["timeEpoch"] <= time.time() * 1000 + 1000
    json.dumps(event)  # a real event is JSON


def test_context_is_a_lambda_context(gateway: HttpApiGateway) -> None:
    rec = Recorder()
    gateway.add_route("POST", "/events", rec, function_name="pinrelay-ingest")
    request(gateway, "POST", "/events", body=b"{}")
    request(gateway, "POST", "/events", body=b"{}")
    (_, c1), (_, c2) = rec.calls
    assert isinstance(c1, LambdaContext)
    assert c1.function_name == "pinrelay-ingest"
    assert c1.invoked_function_arn.endswith(":function:pinrelay-ingest")
    assert isinstance(c1.memory_limit_in_mb, int)
    assert 0 < c1.get_remaining_time_in_millis() <= 30_000
    assert c1.aws_request_id != c2.aws_request_id


def test_no_body_and_get(gateway: HttpApiGateway) -> None:
    rec = Recorder()
    gateway.add_route("GET", "/thing", rec)
    status, _, _, _ = request(gateway, "GET", "/thing")
    assert status == 200
    event = rec.event
    assert "body" not in event and event["isBase64Encoded"] is False
    assert event["rawQueryString"] == "" and "queryStringParameters" not in event


def test_binary_body_arrives_base64_encoded(gateway: HttpApiGateway) -> None:
    rec = Recorder()
    gateway.add_route("POST", "/bin", rec)
    payload = bytes(range(256)) * 4
    request(gateway, "POST", "/bin", body=payload, headers=[("Content-Type", "application/octet-stream")])
    event = rec.event
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload


def test_chunked_request_body(gateway: HttpApiGateway) -> None:
    rec = Recorder()
    gateway.add_route("POST", "/events", rec)
    conn = http.client.HTTPConnection(gateway.host, gateway.port, timeout=5)
    conn.request("POST", "/events", body=iter([b'{"a":', b' 1}']), encode_chunked=True,
                 headers={"Transfer-Encoding": "chunked"})
    assert conn.getresponse().status == 200
    conn.close()
    assert rec.event["body"] == '{"a": 1}'


def test_response_translation(gateway: HttpApiGateway) -> None:
    gateway.add_route("POST", "/r", Recorder({
        "statusCode": 202,
        "headers": {"Content-Type": "application/json", "X-Count": 3},
        "cookies": ["a=1; Path=/", "b=2"],
        "body": json.dumps({"accepted": 1}),
    }))
    status, headers, data, resp = request(gateway, "POST", "/r", body=b"{}")
    assert status == 202
    assert headers["content-type"] == "application/json"
    assert headers["x-count"] == "3"
    assert resp.headers.get_all("Set-Cookie") == ["a=1; Path=/", "b=2"]
    assert json.loads(data) == {"accepted": 1}


def test_base64_response_body_is_decoded(gateway: HttpApiGateway) -> None:
    raw = b"\x89PNG\r\n\x1a\n\x00\xff"
    gateway.add_route("GET", "/img", Recorder({
        "statusCode": 200, "headers": {"content-type": "image/png"},
        "body": base64.b64encode(raw).decode(), "isBase64Encoded": True,
    }))
    status, headers, data, _ = request(gateway, "GET", "/img")
    assert (status, headers["content-type"], data) == (200, "image/png", raw)


def test_plain_string_and_bare_object_returns(gateway: HttpApiGateway) -> None:
    gateway.add_route("GET", "/s", Recorder("Hello from Lambda!"))
    gateway.add_route("GET", "/o", Recorder({"answer": 42}))
    status, headers, data, _ = request(gateway, "GET", "/s")
    assert (status, data) == (200, b"Hello from Lambda!")
    assert headers["content-type"] == "application/json"  # what API Gateway infers
    status, headers, data, _ = request(gateway, "GET", "/o")
    assert status == 200 and json.loads(data) == {"answer": 42}


def test_unknown_route_is_404(gateway: HttpApiGateway) -> None:
    rec = Recorder()
    gateway.add_route("POST", "/events", rec)
    for method, path in (("GET", "/events"), ("POST", "/nope"), ("POST", "/events/"), ("DELETE", "/events")):
        status, headers, data, _ = request(gateway, method, path, body=b"" if method != "GET" else None)
        assert status == 404, (method, path)
        assert json.loads(data) == {"message": "Not Found"}
        assert headers["content-type"] == "application/json"
    assert rec.calls == []


def test_handler_exception_is_500_with_traceback(gateway: HttpApiGateway, capfd: pytest.CaptureFixture[str]) -> None:
    gateway.add_route("POST", "/boom", Recorder(exc=RuntimeError("kaboom")))
    status, _, data, _ = request(gateway, "POST", "/boom", body=b"{}")
    assert status == 500
    assert json.loads(data) == {"message": "Internal Server Error"}
    err = capfd.readouterr().err
    assert "Traceback" in err and "RuntimeError: kaboom" in err


@pytest.mark.parametrize("bad", [
    {"statusCode": "abc"},
    {"statusCode": 200, "body": {"not": "a string"}},
    {"statusCode": 200, "body": "%%%", "isBase64Encoded": True},
    {"statusCode": 999},
])
def test_invalid_lambda_response_is_500(gateway: HttpApiGateway, bad: dict[str, Any]) -> None:
    gateway.add_route("GET", "/bad", Recorder(bad))
    status, _, data, _ = request(gateway, "GET", "/bad")
    assert status == 500 and json.loads(data) == {"message": "Internal Server Error"}


def test_body_over_limit_is_413_without_reading_it(gateway: HttpApiGateway) -> None:
    rec = Recorder()
    gateway.add_route("POST", "/events", rec)
    with socket.create_connection((gateway.host, gateway.port), timeout=5) as sock:
        sock.sendall(b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % (10 * 1024 * 1024 + 1))
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert json.loads(body) == {"message": "Request Entity Too Large"}
    assert rec.calls == []


def test_body_exactly_at_limit_is_accepted() -> None:
    rec = Recorder()
    with HttpApiGateway({("POST", "/events"): rec}, port=0, max_body_bytes=1000) as gw:
        assert request(gw, "POST", "/events", body=b"x" * 1000)[0] == 200
        assert request(gw, "POST", "/events", body=b"x" * 1001)[0] == 413
    assert len(rec.calls) == 1


def test_keep_alive_and_concurrency(gateway: HttpApiGateway) -> None:
    gate = threading.Event()

    def slow(event: dict[str, Any], context: Any) -> dict[str, Any]:
        gate.wait(2)
        return {"statusCode": 200, "body": event["rawPath"]}

    gateway.add_route("GET", "/slow", slow)
    gateway.add_route("GET", "/fast", Recorder({"statusCode": 204}))
    results: list[int] = []
    t = threading.Thread(target=lambda: results.append(request(gateway, "GET", "/slow")[0]))
    t.start()
    conn = http.client.HTTPConnection(gateway.host, gateway.port, timeout=5)
    for _ in range(3):  # one connection, several requests, while /slow is still running
        conn.request("GET", "/fast")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 204
    conn.close()
    gate.set()
    t.join(5)
    assert results == [200]


def test_health_route_and_lifecycle() -> None:
    gw = HttpApiGateway({("GET", "/healthz"): health_handler}, port=0)
    with gw:
        status, headers, data, _ = request(gw, "GET", "/healthz")
        assert status == 200 and json.loads(data) == {"status": "ok"}
        port = gw.port
        assert gw.url == f"http://127.0.0.1:{port}"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_lambda_result_to_http_defaults() -> None:
    assert lambda_result_to_http({"statusCode": 204}) == (204, [], b"")
    assert lambda_result_to_http(None) == (200, [("content-type", "application/json")], b"null")
