"""A real HTTP server on 127.0.0.1 that answers as a test scripts it: the broken or hostile endpoint
(Shopify's Admin API, Pinterest's EQS or events endpoint, ingest) that the operator CLI and the
scheduled functions must survive.

``HostileEndpoint(script)``: ``script(request) -> Reply`` for every request; each request is kept
(``Seen``: method, path, headers, body), and ``sent_bytes`` counts the body bytes the server got out
before the client hung up. A ``Reply`` body may be bytes or an iterator of chunks (sent with the
declared ``content_length``, else chunked), ``pause`` seconds apart: an endless or a dribbled
answer costs the server nothing until the client reads it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pinrelay_local.servers import SHUTDOWN_POLL_S


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_length: int | None = None  # declared; for bytes, len(body) unless given
    pause: float = 0.0  # seconds between chunks


def json_reply(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    """``payload`` as JSON the way a careless server writes it (``NaN`` and ``Infinity`` as literals)."""
    return Reply(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})


def endless(chunk: bytes = b" " * 65536, limit: int | None = None) -> Iterator[bytes]:
    """Chunks forever (or until ``limit`` bytes): a body nobody should read whole."""
    sent = 0
    while limit is None or sent < limit:
        yield chunk
        sent += len(chunk)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "HostileEndpoint/1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _serve(self) -> None:
        endpoint: HostileEndpoint = self.server.endpoint  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        with endpoint.lock:
            endpoint.requests.append(seen)
        reply = endpoint.script(seen)
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if isinstance(reply.body, bytes | bytearray):
                chunks: Iterable[bytes] = [bytes(reply.body)]
                length = len(reply.body) if reply.content_length is None else reply.content_length
            else:
                chunks, length = reply.body, reply.content_length
            if length is None:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(length))
            self.end_headers()
            for chunk in chunks:
                if reply.pause:
                    time.sleep(reply.pause)
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if length is None else chunk)
                self.wfile.flush()
                with endpoint.lock:
                    endpoint.sent_bytes += len(chunk)
            if length is None:
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True  # the client stopped reading: what a bounded client does

    do_GET = do_POST = _serve


class HostileEndpoint:
    """``with HostileEndpoint(script) as server: server.url`` (``http://127.0.0.1:<port>``)."""

    def __init__(self, script: Callable[[Seen], Reply]) -> None:
        self.script = script
        self.requests: list[Seen] = []
        self.sent_bytes = 0
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.endpoint = self  # type: ignore[attr-defined]

    def __enter__(self) -> HostileEndpoint:
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL_S}, name="hostile-endpoint",
                         daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"
