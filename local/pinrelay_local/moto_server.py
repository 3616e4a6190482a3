"""moto in server mode, with DynamoDB's one guarantee that moto lacks: conditional writes are atomic.

DynamoDB applies a conditional write to an item atomically: of two UpdateItem calls racing on a new
key with ``attribute_not_exists(pk)``, exactly one succeeds. That is the whole of pinrelay's guard
against two sender invocations sending one event. moto (5.2) reads the item, evaluates the
condition and writes it back in separate steps, with no lock, on whichever server thread took the
request: two racing claims can both win (measured: 11 of 50 rounds of 8 racing claims on one key
had more than one winner). A test of "two invocations at the same time send an event once" then
fails for a reason production does not have.

So every DynamoDB request to the local moto server runs alone, behind one lock. That is stricter
than DynamoDB (which serialises per item) and costs nothing that matters locally: moto answers a
DynamoDB call in about a millisecond. Other services' requests pass straight through (an SQS
call, which scans every queued message in moto, holds no DynamoDB call up).
tests/integration/test_moto_server.py races claims against it, and against moto without the lock.

Built from the parts moto's own ``ThreadedMotoServer`` and ``moto_server`` command use:
``DomainDispatcherApplication(create_backend_app)`` served by werkzeug's threaded ``make_server``.
Only ThreadedMotoServer is moto's public API, and it takes no middleware; these parts live in
``moto.moto_server.werkzeug_app`` (moto 5.x). Should they move, the import fails at once, in every
test that starts moto.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from pinrelay_local.servers import SHUTDOWN_POLL_S

# the JSON protocol names the operation in this header: X-Amz-Target: DynamoDB_20120810.UpdateItem
_DYNAMODB_TARGET_PREFIX = "DynamoDB_"


class DynamoDbCallsOneAtATime:
    """WSGI middleware: each DynamoDB request is handled, answer included, while holding one lock."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith(_DYNAMODB_TARGET_PREFIX):
            return self.app(environ, start_response)
        with self.lock:
            return list(self.app(environ, start_response))  # the whole answer, before the next call


class MotoServer:
    """A moto server on ``ip_address``:``port`` (0: a free port), in a daemon thread."""

    def __init__(self, ip_address: str = "127.0.0.1", port: int = 0) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        app = DynamoDbCallsOneAtATime(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(ip_address, port, app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL_S},
                                        name="moto-server", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> MotoServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()


@contextmanager
def running_moto(ip_address: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """A moto server for as long as the block runs; yields its URL."""
    server = MotoServer(ip_address, port).start()
    try:
        yield server.url
    finally:
        server.stop()
