"""A local stand-in for Pinterest's Conversions API (``POST /v5/ad_accounts/{id}/events``) and
its Event Quality Score (``GET /v5/ad_accounts/{id}/conversion_eqs``).

Used by the local stack and the tests. It is a real HTTP server that answers the way the
Pinterest API answers (see ``pinterest/openapi-events-5.23.yaml``, a verbatim excerpt of
pinterest/api-description, and ``pinterest/example-422-response.json``):

* ``404`` JSON Error for any other path, ``405`` for a method other than POST;
* ``401 {"code": 2, "message": "Authentication failed."}`` unless the header is exactly
  ``Authorization: Bearer <token>``;
* ``400 {"code": 4196, ...}`` for a body that is not JSON or not valid against
  ``components.schemas.ConversionEvents`` (the message lists the schema errors);
* per-event checks (event_time within the last 7 days and not more than 5 minutes ahead,
  a documented event_name, sha256-looking hashed user_data fields); ``200``
  ConversionApiResponse when every event is processed, otherwise ``422 {"code": 953, ...,
  "details": {ConversionApiResponse}}`` with one result per event in request order;
* ad accounts: any exists unless ``ad_accounts`` lists them (another answers ``404``, the
  documented ``{"code": 2, "message": "AdAccount not found."}``); one in ``denied_ad_accounts``
  answers ``403 {"code": 29, ...}`` (a valid token without access to it);
* the EQS (``pinterest/openapi-eqs-5.23.yaml``): ``Authorization: Bearer <ads_read_token>``
  (else ``401``), ``lookback_period`` 1d or 14d required and the optional filters checked against
  their enums (else ``400``), the same ad account answers as above, then ``200`` with the scores
  of ``eqs_scores`` (``set_eqs_scores``, each validated against ``EventQualityScore``) that
  match the query; ``default_eqs_scores()`` until set. Its requests are recorded in
  ``eqs_received``, apart from the events endpoint's.

Fault injection (``set_fault``) and an HTTP control API (``/_standin/...``: ``fault``,
``settings`` (the oldest event_time it takes), ``eqs``, ``received``, ``clear``) let tests and the
local stack's drills, even from another process, make it misbehave. ``tally_standin`` counts what it processed, per event
key (how often, how often in a request the client had abandoned, how often failed): the fault
tests, the crash suite and the soak judge "delivered once" by it. Standalone:
``python -m pinrelay_local.pinterest_standin``.

Nothing here is shipped to Lambda.
"""

from __future__ import annotations

import argparse
import copy
import functools
import http
import json
import re
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import parse_qs, urlsplit

import yaml
from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from pinrelay_local.servers import SHUTDOWN_POLL_S

__all__ = [
    "ConversionEventsValidator",
    "DEFAULT_ADS_READ_TOKEN",
    "DEFAULT_OPENAPI_PATH",
    "DEFAULT_TOKEN",
    "EventQualityScoreValidator",
    "EVENT_NAMES",
    "Fault",
    "FAULT_MODES",
    "HASHED_USER_DATA_FIELDS",
    "PinterestStandIn",
    "StandInTally",
    "event_key",
    "tally_standin",
]

DEFAULT_OPENAPI_PATH = Path(__file__).resolve().parent / "pinterest" / "openapi-events-5.23.yaml"
DEFAULT_TOKEN = "local-conversion-token"
DEFAULT_ADS_READ_TOKEN = "local-ads-read-token"  # the EQS wants a token with ads:read, not the conversion token
DEFAULT_EQS_OPENAPI_PATH = Path(__file__).resolve().parent / "pinterest" / "openapi-eqs-5.23.yaml"
# Bodies from pinrelay's own sender (User-Agent pinrelay/...) that failed the schema, in this process.
SENDER_SCHEMA_VIOLATIONS: list[dict] = []
_SPEC_URI = "urn:pinrelay-local:pinterest:openapi-events"

# The documented event names (the 15 listed in the 5.23 description plus the newer ones
# Pinterest documents in its Conversions API guide).
EVENT_NAMES = frozenset(
    """
    add_payment_info add_to_cart add_to_wishlist app_install checkout custom initiate_checkout
    lead page_visit search signup subscribe view_category view_content watch_video app_open
    contact customize_product find_location schedule start_trial submit_application
    """.split()
)
HASHED_USER_DATA_FIELDS = (
    "em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country", "external_id", "hashed_maids",
)
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
MAX_EVENT_AGE_SECONDS = 7 * 24 * 3600
MAX_FUTURE_SKEW_SECONDS = 5 * 60

_EVENTS_PATH = re.compile(r"/v5/ad_accounts/(?P<ad_account_id>[^/]+)/events")
_EQS_PATH = re.compile(r"/v5/ad_accounts/(?P<ad_account_id>[^/]+)/conversion_eqs")
_AD_ACCOUNT_ID = re.compile(r"\d{1,18}")

ERR_BAD_REQUEST = {"code": 4196, "message": "The request was invalid."}
ERR_AUTH = {"code": 2, "message": "Authentication failed."}
ERR_FORBIDDEN = {"code": 29, "message": "You are not permitted to access that resource."}
ERR_AD_ACCOUNT_NOT_FOUND = {"code": 2, "message": "AdAccount not found."}  # Pinterest.Lib.Error's own example
ERR_UNPROCESSABLE_MESSAGE = (
    "The action could not be processed properly due to some or all data provided being invalid."
)
# Error bodies Pinterest documents for the statuses a fault may inject.
_ERROR_BODIES: dict[int, dict[str, Any]] = {
    400: ERR_BAD_REQUEST,
    401: ERR_AUTH,
    403: ERR_FORBIDDEN,
    404: ERR_AD_ACCOUNT_NOT_FOUND,
    429: {
        "code": 8,
        "message": "This request exceeded a rate limit. This can happen if the client exceeds one\n"
        "of the published rate limits within a short time window.",
    },
    503: {
        "code": 4197,
        "message": "The endpoint has been ramped down and is currently not accepting any traffic.",
    },
}


# --------------------------------------------------------------------------------------------
# Schema validation
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _load_openapi(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _json_path(parts: Iterable[Any]) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ConversionEventsValidator:
    """Validates a request body against ``components.schemas.ConversionEvents`` (OpenAPI 3.0).

    The yaml is read once per path (cached for the process); ``$ref``s resolve inside it.
    """

    SCHEMA_POINTER = "#/components/schemas/ConversionEvents"

    def __init__(self, openapi_path: str | Path | None = None) -> None:
        self.openapi_path = Path(openapi_path) if openapi_path else DEFAULT_OPENAPI_PATH
        self.document = _load_openapi(str(self.openapi_path.resolve()))
        registry = Registry().with_resource(
            _SPEC_URI, Resource.from_contents(self.document, default_specification=DRAFT4)
        )
        # Write validator: this is a request body (readOnly properties are not allowed).
        self._validator = OAS30WriteValidator(
            {"$ref": _SPEC_URI + self.SCHEMA_POINTER}, registry=registry
        )

    def errors(self, body: Any) -> list[str]:
        """Human-readable schema errors, each prefixed with its JSON path; [] when valid."""
        found = sorted(
            self._validator.iter_errors(body),
            key=lambda e: (list(map(str, e.absolute_path)), e.message),
        )
        messages = []
        for error in found:
            path = _json_path(error.absolute_path)
            if error.context:  # anyOf/oneOf: say what each alternative wanted
                reasons = []
                for sub in error.context:
                    sub_path = _json_path(sub.absolute_path)
                    reason = sub.message if sub_path == path else f"{sub_path}: {sub.message}"
                    if reason not in reasons:
                        reasons.append(reason)
                message = f"not valid under any of the given schemas ({'; '.join(reasons)})"
            else:
                message = _short(error.message)
            messages.append(f"{path}: {message}")
        return messages

    def is_valid(self, body: Any) -> bool:
        return self._validator.is_valid(body)


_EQS_SPEC_URI = "urn:pinrelay-local:pinterest:openapi-eqs"


class EventQualityScoreValidator:
    """Validates one EQS score (an item of the ``conversion_eqs`` answer) against
    ``components.schemas.EventQualityScore`` of ``pinterest/openapi-eqs-5.23.yaml``; also knows the
    enums of the endpoint's query parameters."""

    SCHEMA_POINTER = "#/components/schemas/EventQualityScore"

    def __init__(self, openapi_path: str | Path | None = None) -> None:
        self.document = _load_openapi(str(Path(openapi_path or DEFAULT_EQS_OPENAPI_PATH).resolve()))
        registry = Registry().with_resource(
            _EQS_SPEC_URI, Resource.from_contents(self.document, default_specification=DRAFT4)
        )
        # Read validator: this is a response body.
        self._validator = OAS30ReadValidator({"$ref": _EQS_SPEC_URI + self.SCHEMA_POINTER}, registry=registry)
        schemas = self.document["components"]["schemas"]
        self.query_enums = {
            "lookback_period": tuple(schemas["LookbackPeriodOptions"]["enum"]),
            "source_platform": tuple(schemas["SourcePlatformOptions"]["enum"]),
            "ingestion_source": tuple(schemas["IngestionSourceOptions"]["enum"]),
        }

    def errors(self, score: Any) -> list[str]:
        found = sorted(self._validator.iter_errors(score), key=lambda e: list(map(str, e.absolute_path)))
        return [f"{_json_path(error.absolute_path)}: {_short(error.message)}" for error in found]


def default_eqs_scores() -> list[dict[str, Any]]:
    """What the EQS endpoint answers until ``set_eqs_scores``: the API and the tag on the web, for
    both lookback periods, shaped as the schema says. The values are made up; so is the issue,
    whose id and name are illustrative (Pinterest documents the components, not its issue ids)."""

    def details(coverage: float, overlap: float | None = None, issues: list | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"coverage": coverage}
        if overlap is not None:
            out["overlap"] = overlap
        if issues:
            out["issues"] = issues
        return out

    low_click_id = [{"id": "LOW_CLICK_ID_COVERAGE", "name": "Low click ID coverage",
                     "reason": "Few events include the Pinterest click ID (epik)."}]
    api = {
        "hashed_email": {"checkout": details(98.5), "add_to_cart": details(100)},
        "advertiser_external_id": {"checkout": details(61.2), "add_to_cart": details(100)},
        "click_id_epik": {"checkout": details(12.5, issues=low_click_id), "add_to_cart": details(30)},
        "ip_address": {"checkout": details(100), "add_to_cart": details(100)},
        "user_agent": {"checkout": details(100), "add_to_cart": details(100)},
        "external_event_id": {"checkout": details(100, overlap=87.5), "add_to_cart": details(100, overlap=35)},
        "order_id": {"checkout": details(100)},
        "order_value": {"checkout": details(100)},
        "product_id": {"checkout": details(100), "add_to_cart": details(100)},
    }
    tag = {
        "hashed_email": {"checkout": details(42), "page_visit": details(5.5)},
        "click_id_epik": {"checkout": details(96), "page_visit": details(88)},
        "ip_address": {"checkout": details(100), "page_visit": details(100)},
        "user_agent": {"checkout": details(100), "page_visit": details(100)},
        "external_event_id": {"checkout": details(100, overlap=87.5), "page_visit": details(0)},
        "source_url": {"checkout": details(100), "page_visit": details(100)},
    }
    scores = []
    for lookback in ("1d", "14d"):
        scores.append({"ingestion_source": "CONVERSIONS_API", "source_platform": "WEB", "lookback_period": lookback,
                       "overall_status": "FAIR", "quality_components": copy.deepcopy(api)})
        scores.append({"ingestion_source": "TAG", "source_platform": "WEB", "lookback_period": lookback,
                       "overall_status": "GOOD", "quality_components": copy.deepcopy(tag)})
    return scores


# --------------------------------------------------------------------------------------------
# Per-event checks (what Pinterest rejects with 422 once the request is well formed)
# --------------------------------------------------------------------------------------------


def check_event(
    event: dict[str, Any],
    now: int,
    *,
    max_age: int = MAX_EVENT_AGE_SECONDS,
    max_future: int = MAX_FUTURE_SKEW_SECONDS,
) -> str | None:
    """Return an error_message for an event Pinterest would fail, or None if processed."""
    problems = []
    name = event.get("event_name")
    if name not in EVENT_NAMES:
        problems.append(f"Invalid event_name parameter. Given event_name: {name}")
    event_time = event.get("event_time")
    if isinstance(event_time, int):
        if event_time < now - max_age:
            problems.append(
                "Invalid event_timestamp parameter. Given timestamp is in the past. "
                f"Current timestamp: {now}, Given event_timestamp: {event_time}"
            )
        elif event_time > now + max_future:
            problems.append(
                "Invalid event_timestamp parameter. Given timestamp is in the future. "
                f"Current timestamp: {now}, Given event_timestamp: {event_time}"
            )
    user_data = event.get("user_data") or {}
    for name in HASHED_USER_DATA_FIELDS:
        values = user_data.get(name)
        if not isinstance(values, list):
            continue
        for i, value in enumerate(values):
            # Never echo the value: an unhashed one is personal data.
            if not (isinstance(value, str) and _SHA256_HEX.fullmatch(value)):
                problems.append(
                    f"Invalid user_data.{name} parameter. "
                    f"user_data.{name}[{i}] is not a valid sha256 hash"
                )
    return "; ".join(problems) if problems else None


# --------------------------------------------------------------------------------------------
# Fault injection
# --------------------------------------------------------------------------------------------

FAULT_MODES = (None, "status", "slow", "not_json", "close", "drip", "processed_then_status")
# an answer a gateway in front of Pinterest gives, after Pinterest itself processed the request
GATEWAY_PAGE = b"<html><head><title>502 Bad Gateway</title></head><body>upstream error</body></html>"
FAULT_ENDPOINTS = ("events", "eqs")


@dataclass
class Fault:
    """A misbehaviour applied to requests on the events endpoint (or, with ``endpoint="eqs"``, on
    the EQS endpoint; a fault for one endpoint leaves the other alone).

    mode: "status" (answer ``status`` with Pinterest's error body, plus ``Retry-After:
    retry_after`` if given), "slow" (sleep ``seconds`` then answer normally), "not_json"
    (200 with an HTML body), "close" (read the request, then close without answering), "drip"
    (process the events, then send the answer's headers at once and its body a byte at a time
    over ``seconds``), "processed_then_status" (process the events, then answer ``status`` with a
    gateway's HTML page, as a load balancer does when the upstream's answer was lost).
    ``count``: apply to this many requests, then clear; ``until``: epoch deadline after which
    it clears. Neither: until changed.
    """

    mode: str
    status: int = 503
    retry_after: str | None = None
    seconds: float = 5.0
    count: int | None = None
    until: float | None = None
    body: Any = None  # override the JSON body of a "status" answer
    endpoint: str = "events"  # or "eqs"

    def __post_init__(self) -> None:
        if self.mode not in FAULT_MODES or self.mode is None:
            raise ValueError(f"unknown fault mode {self.mode!r}; one of {FAULT_MODES}")
        if self.endpoint not in FAULT_ENDPOINTS:
            raise ValueError(f"unknown fault endpoint {self.endpoint!r}; one of {FAULT_ENDPOINTS}")
        self.status = int(self.status)
        if self.retry_after is not None:
            self.retry_after = str(self.retry_after)
        self.seconds = float(self.seconds)
        if self.count is not None:
            self.count = int(self.count)
            if self.count < 1:
                raise ValueError("count must be >= 1")
        if self.until is not None:
            self.until = float(self.until)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Fault | None":
        data = dict(data)
        mode = data.pop("mode", None)
        if mode is None:
            return None
        duration = data.pop("duration", None)
        if duration is not None:
            data["until"] = time.time() + float(duration)
        return cls(mode=mode, **data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


_LOG_LOCK = threading.Lock()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    standin: "PinterestStandIn"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections: set[socket.socket] = set()  # open keep-alive connections
        self.connections_lock = threading.Lock()

    def drop_connections(self) -> None:
        """Reset every open connection, as a server going down does (a client's pooled
        keep-alive connection must not keep talking to a stopped stand-in)."""
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout) while we were slow is normal here, not an error.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "PinterestStandIn/1.0"
    # headers and body go out in two writes: without TCP_NODELAY, Nagle holds the body back
    # until the client's delayed ACK (40 ms on Linux) on every keep-alive request
    disable_nagle_algorithm = True
    server: _Server

    # -- plumbing ------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # one concise line per request is written by PinterestStandIn._log when verbose

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        try:
            super().finish()
        except OSError:  # the connection was reset by stop()
            pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(
        self,
        status: int,
        payload: Any,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        drip_seconds: float = 0.0,
        stopping: threading.Event | None = None,
    ) -> None:
        """Answer; with ``drip_seconds``, the headers at once and the body a byte at a time over
        that long (a client's per-read timeout never passes, only a total deadline does)."""
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if self.command == "HEAD":
                return
            if not drip_seconds:
                self.wfile.write(data)
                return
            self.wfile.flush()
            pause = drip_seconds / max(1, len(data))
            for index in range(len(data)):
                if stopping is not None and stopping.wait(pause):
                    self.close_connection = True
                    return
                self.wfile.write(data[index:index + 1])
                self.wfile.flush()
        except ConnectionError:  # the client went away (e.g. timed out during "slow" or "drip")
            self.close_connection = True

    # -- verbs ---------------------------------------------------------------------------

    def do_POST(self) -> None:
        self.server.standin._handle(self)

    do_GET = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_POST


class PinterestStandIn:
    """A real HTTP server answering ``POST /v5/ad_accounts/{id}/events`` like Pinterest.

    >>> with PinterestStandIn() as pin:
    ...     requests.post(f"{pin.base_url}/ad_accounts/123/events", json=body,
    ...                   headers={"Authorization": f"Bearer {pin.token}"})
    ...     pin.wait_for_events(1)

    Records (``.received``), one per request on the events endpoint (valid path), oldest first:
    ``{"ad_account_id": str, "test": bool, "body": parsed JSON or None, "status": int,
    "response": dict | None, "at": float, "path": str, "fault": mode or None}`` (plus
    ``"fault_seconds"``, the delay, for a "slow" one: a client whose timeout is shorter gave up
    on it, yet the events in it were processed); ``status`` is 0 and ``response`` None when a
    "close" fault dropped the connection.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = DEFAULT_TOKEN,
        openapi_path: str | Path | None = None,
        *,
        verbose: bool = False,
        clock: Callable[[], float] = time.time,
        max_event_age_seconds: int = MAX_EVENT_AGE_SECONDS,
        max_future_skew_seconds: int = MAX_FUTURE_SKEW_SECONDS,
    ) -> None:
        self.host = host
        self.port = port
        self.token = token
        self.account_tokens: dict[str, str] = {}  # ad accounts whose own token differs from ``token``
        self.ad_accounts: set[str] | None = None  # the ad accounts that exist (None: any); others answer 404
        self.denied_ad_accounts: set[str] = set()  # ad accounts a valid token may not use: 403
        self.ads_read_token = DEFAULT_ADS_READ_TOKEN  # what the EQS endpoint takes
        self.eqs_validator = EventQualityScoreValidator()
        self._eqs_scores: list[dict[str, Any]] = default_eqs_scores()
        self.eqs_received: list[dict[str, Any]] = []  # one record per EQS request (never the token)
        self.verbose = verbose
        self.clock = clock
        self.max_event_age_seconds = max_event_age_seconds
        self.max_future_skew_seconds = max_future_skew_seconds
        self.validator = ConversionEventsValidator(openapi_path)
        self._records: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._fault: Fault | None = None
        self._fault_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> "PinterestStandIn":
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((self.host, self.port), _Handler)
        server.standin = self
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_S},
            name=f"pinterest-standin:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes "slow" handlers
        server.shutdown()
        server.server_close()
        server.drop_connections()  # then nothing answers: connection refused, until start()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "PinterestStandIn":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def root_url(self) -> str:
        """``http://host:port`` (the control endpoints live under ``/_standin/``)."""
        if self._server is None:
            raise RuntimeError("PinterestStandIn is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The PINTEREST_API_URL to give a client, e.g. ``http://127.0.0.1:18080/v5``."""
        return f"{self.root_url}/v5"

    def events_url(self, ad_account_id: str | int, test: bool = False) -> str:
        return f"{self.base_url}/ad_accounts/{ad_account_id}/events" + ("?test=true" if test else "")

    # -- records -------------------------------------------------------------------------

    @property
    def received(self) -> list[dict[str, Any]]:
        """A snapshot (a new list) of every record so far, oldest first."""
        with self._cond:
            return list(self._records)

    def delivered_events(self) -> list[dict[str, Any]]:
        """The data items Pinterest would have processed: from requests answered 200 or 422,
        those whose per-event status is "processed", in arrival order (test ones included;
        check ``record["test"]`` via ``received`` to tell them apart)."""
        return [item for record in self.received for item, status in answered_events(record) if status == "processed"]

    def wait_for_events(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until at least ``n`` events were delivered; return them. TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                events = self.delivered_events()
                if len(events) >= n:
                    return events
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"waited {timeout}s for {n} delivered events, got {len(events)} "
                        f"({len(self._records)} requests received)"
                    )
                self._cond.wait(remaining)

    def wait_for_requests(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until at least ``n`` requests were recorded; return the records."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._records) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"waited {timeout}s for {n} requests, got {len(self._records)}"
                    )
                self._cond.wait(remaining)
            return list(self._records)

    def clear(self) -> int:
        """Forget the records (not the fault). Returns how many were dropped."""
        with self._cond:
            n = len(self._records)
            self._records.clear()
            return n

    def _record(self, record: dict[str, Any]) -> None:
        with self._cond:
            self._records.append(record)
            self._cond.notify_all()

    # -- faults --------------------------------------------------------------------------

    @property
    def fault(self) -> Fault | None:
        with self._fault_lock:
            self._expire_fault_locked()
            return self._fault

    @fault.setter
    def fault(self, value: Fault | dict[str, Any] | None) -> None:
        if isinstance(value, dict):
            value = Fault.from_dict(value)
        if value is not None and not isinstance(value, Fault):
            raise TypeError("fault must be a Fault, a dict or None")
        with self._fault_lock:
            self._fault = value

    def set_fault(self, mode: str | None, **kw: Any) -> Fault | None:
        """Set (or with ``mode=None`` clear) the fault. Keywords: status=503, retry_after=None,
        seconds=5.0 (slow), count=None (N requests), until=None (epoch) or duration=None (s),
        body=None (JSON body of a "status" answer), endpoint="events" (or "eqs")."""
        self.fault = Fault.from_dict({"mode": mode, **kw})
        return self.fault

    def clear_fault(self) -> None:
        self.fault = None

    def _expire_fault_locked(self) -> None:
        if self._fault is not None and self._fault.until is not None and time.time() >= self._fault.until:
            self._fault = None

    def _take_fault(self, endpoint: str = "events") -> Fault | None:
        """The fault for this request on ``endpoint`` (a copy), consuming one unit of ``count``."""
        with self._fault_lock:
            self._expire_fault_locked()
            fault = self._fault
            if fault is None or fault.endpoint != endpoint:
                return None
            taken = copy.copy(fault)
            if fault.count is not None:
                fault.count -= 1
                if fault.count <= 0:
                    self._fault = None
            return taken

    # -- event quality scores --------------------------------------------------------------

    @property
    def eqs_scores(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self._eqs_scores)

    def set_eqs_scores(self, scores: list[dict[str, Any]] | None) -> None:
        """What the EQS endpoint answers (filtered by each request's query); None: the default.
        Each score must be valid against the schema's EventQualityScore (ValueError otherwise),
        so a test cannot make the stand-in answer what Pinterest would not."""
        scores = default_eqs_scores() if scores is None else copy.deepcopy(scores)
        for position, score in enumerate(scores):
            problems = self.eqs_validator.errors(score)
            if problems:
                raise ValueError(f"eqs score [{position}] is not a valid EventQualityScore: " + "; ".join(problems))
        self._eqs_scores = scores

    # -- request handling ----------------------------------------------------------------

    def _log(self, handler: _Handler, status: int | str, note: str = "") -> None:
        if self.verbose:
            line = f"[pinterest-standin] {handler.command} {handler.path} -> {status}" + (f" {note}" if note else "")
            with _LOG_LOCK:  # one write per line, so concurrent handlers never interleave
                sys.stderr.write(line + "\n")
                sys.stderr.flush()

    def _handle(self, h: _Handler) -> None:
        url = urlsplit(h.path)
        if url.path.startswith("/_standin/"):
            self._handle_control(h, url.path)
            return
        eqs = _EQS_PATH.fullmatch(url.path)
        if eqs and _AD_ACCOUNT_ID.fullmatch(eqs["ad_account_id"]):
            self._handle_eqs(h, eqs["ad_account_id"], parse_qs(url.query))
            return
        match = _EVENTS_PATH.fullmatch(url.path)
        if not match or not _AD_ACCOUNT_ID.fullmatch(match["ad_account_id"]):
            h._read_body()
            self._log(h, 404)
            h._send(404, {"code": 404, "message": "Not found."})
            return
        if h.command != "POST":
            h._read_body()
            self._log(h, 405)
            h._send(405, {"code": 405, "message": "Method not allowed."}, headers={"Allow": "POST"})
            return

        raw = h._read_body()
        query = parse_qs(url.query)
        record: dict[str, Any] = {
            "ad_account_id": match["ad_account_id"],
            "test": query.get("test", [""])[-1].lower() == "true",
            "body": None,
            "status": 0,
            "response": None,
            "at": time.time(),
            "path": h.path,
            "fault": None,
            "client_port": h.client_address[1],  # the client's connection: keep-alive reuses it
        }
        try:
            record["body"] = json.loads(raw)
            is_json = True
        except ValueError:
            is_json = False

        fault = self._take_fault()
        if fault is not None:
            record["fault"] = fault.mode
            if fault.mode == "close":
                h.close_connection = True  # the connection is closed with no answer at all
                self._record(record)
                self._log(h, "closed", "(fault close)")
                return
            if fault.mode == "status":
                payload = fault.body if fault.body is not None else _ERROR_BODIES.get(
                    fault.status,
                    {"code": fault.status, "message": _reason(fault.status)},
                )
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
                record.update(status=fault.status, response=payload)
                self._record(record)
                self._log(h, fault.status, "(fault status)")
                h._send(fault.status, payload, headers=headers)
                return
            if fault.mode == "not_json":
                record.update(status=200, response=None)
                self._record(record)
                self._log(h, 200, "(fault not_json)")
                h._send(200, b"<html><body>upstream ok</body></html>", content_type="text/html")
                return
            if fault.mode in ("slow", "drip"):
                record["fault_seconds"] = fault.seconds  # a client with a shorter timeout gave up
            if fault.mode == "slow":
                self._stopping.wait(fault.seconds)

        status, payload = self._answer(h, record["body"], is_json, record["ad_account_id"])
        record.update(status=status, response=payload)
        if status in (200, 422):  # what was processed, whatever the client is told
            record["processed"] = payload if status == 200 else payload["details"]
        if fault is not None and fault.mode == "processed_then_status":
            record.update(status=fault.status, response=None)
            self._record(record)
            self._log(h, fault.status, "(fault processed_then_status)")
            h._send(fault.status, GATEWAY_PAGE, content_type="text/html")
            return
        self._record(record)
        if fault is not None and fault.mode == "drip":
            self._log(h, status, f"(fault drip over {fault.seconds:g} s)")
            h._send(status, payload, drip_seconds=fault.seconds, stopping=self._stopping)
            return
        if status in (200, 422):
            summary = payload if status == 200 else payload["details"]
            note = (
                f"({summary['num_events_processed']}/{summary['num_events_received']} processed"
                f"{', test' if record['test'] else ''})"
            )
        else:
            note = f"({payload['message'][:120]})"
        self._log(h, status, note)  # before answering, so log lines follow request order
        h._send(status, payload)

    def _ad_account_refusal(self, ad_account_id: str) -> tuple[int, dict[str, Any]] | None:
        """404 for an ad account that does not exist, 403 for one the (valid) token may not use."""
        if self.ad_accounts is not None and ad_account_id not in self.ad_accounts:
            return 404, dict(ERR_AD_ACCOUNT_NOT_FOUND)
        if ad_account_id in self.denied_ad_accounts:
            return 403, dict(ERR_FORBIDDEN)
        return None

    def _answer(self, h: _Handler, body: Any, is_json: bool, ad_account_id: str) -> tuple[int, dict[str, Any]]:
        if h.headers.get("Authorization") != f"Bearer {self.account_tokens.get(ad_account_id, self.token)}":
            return 401, dict(ERR_AUTH)
        refused = self._ad_account_refusal(ad_account_id)
        if refused is not None:
            return refused
        if not is_json:
            return 400, dict(ERR_BAD_REQUEST)
        problems = self.validator.errors(body)
        if problems:
            if (h.headers.get("User-Agent") or "").startswith("pinrelay/"):
                # pinrelay's sender must never send a body Pinterest's schema refuses: kept for the
                # test session's final check (tests/conftest.py)
                SENDER_SCHEMA_VIOLATIONS.append({"problems": problems, "body": body})
            return 400, {
                "code": ERR_BAD_REQUEST["code"],
                "message": f"{ERR_BAD_REQUEST['message']} " + "; ".join(problems),
            }
        now = int(self.clock())
        results = []
        for event in body["data"]:
            error = check_event(
                event,
                now,
                max_age=self.max_event_age_seconds,
                max_future=self.max_future_skew_seconds,
            )
            if error is None:
                results.append({"status": "processed", "error_message": None, "warning_message": None})
            else:
                results.append({"status": "failed", "error_message": error, "warning_message": ""})
        processed = sum(1 for r in results if r["status"] == "processed")
        summary = {
            "num_events_received": len(results),
            "num_events_processed": processed,
            "events": results,
        }
        if processed == len(results):
            return 200, summary
        return 422, {"code": 953, "message": ERR_UNPROCESSABLE_MESSAGE, "details": summary}

    def _handle_eqs(self, h: _Handler, ad_account_id: str, query: dict[str, list[str]]) -> None:
        h._read_body()
        record: dict[str, Any] = {"ad_account_id": ad_account_id, "query": {k: v[-1] for k, v in query.items()},
                                  "status": 0, "at": time.time(), "fault": None}
        fault = self._take_fault("eqs")
        if h.command != "GET":
            status, payload, headers = 405, {"code": 405, "message": "Method not allowed."}, {"Allow": "GET"}
        elif fault is not None and fault.mode == "status":
            record["fault"] = fault.mode
            status = fault.status
            payload = fault.body if fault.body is not None else _ERROR_BODIES.get(
                status, {"code": status, "message": _reason(status)})
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        elif fault is not None and fault.mode == "close":
            record["fault"] = fault.mode
            h.close_connection = True
            self.eqs_received.append(record)
            self._log(h, "closed", "(fault close)")
            return
        else:
            if fault is not None:
                record["fault"] = fault.mode
                if fault.mode == "slow":
                    self._stopping.wait(fault.seconds)
            status, payload = self._eqs_answer(h, ad_account_id, record["query"])
            headers = {}
            if fault is not None and fault.mode == "not_json":
                status, payload = 200, b"<html><body>upstream ok</body></html>"
        record["status"] = status
        self.eqs_received.append(record)
        self._log(h, status, "(eqs)")
        if isinstance(payload, bytes):
            h._send(status, payload, content_type="text/html")
        else:
            h._send(status, payload, headers=headers)

    def _eqs_answer(self, h: _Handler, ad_account_id: str, query: dict[str, str]) -> tuple[int, Any]:
        if h.headers.get("Authorization") != f"Bearer {self.ads_read_token}":
            return 401, dict(ERR_AUTH)
        enums = self.eqs_validator.query_enums
        if "lookback_period" not in query:
            return 400, {"code": ERR_BAD_REQUEST["code"], "message": "lookback_period is required."}
        for name, value in query.items():
            if name in enums and value not in enums[name]:
                return 400, {"code": ERR_BAD_REQUEST["code"],
                             "message": f"Invalid {name}: must be one of {', '.join(enums[name])}."}
        refused = self._ad_account_refusal(ad_account_id)
        if refused is not None:
            return refused
        return 200, [score for score in self.eqs_scores
                     if all(score.get(name) == query[name] for name in enums if name in query)]

    def _handle_control(self, h: _Handler, path: str) -> None:
        raw = h._read_body()
        self._log(h, "control")
        if path == "/_standin/received" and h.command == "GET":
            h._send(200, self.received)
        elif path == "/_standin/fault" and h.command == "GET":
            fault = self.fault
            h._send(200, {"fault": fault.to_dict() if fault else None})
        elif path == "/_standin/fault" and h.command == "POST":
            try:
                data = json.loads(raw or b"{}")
                if not isinstance(data, dict):
                    raise ValueError("expected a JSON object")
                self.fault = data
            except (ValueError, TypeError) as exc:
                h._send(400, {"code": 400, "message": f"bad fault: {exc}"})
                return
            fault = self.fault
            h._send(200, {"fault": fault.to_dict() if fault else None})
        elif path == "/_standin/eqs" and h.command == "POST":
            try:
                data = json.loads(raw or b"null")
                self.set_eqs_scores(data.get("scores") if isinstance(data, dict) else data)
            except (ValueError, TypeError, AttributeError) as exc:
                h._send(400, {"code": 400, "message": f"bad eqs scores: {exc}"})
                return
            h._send(200, {"scores": len(self._eqs_scores)})
        elif path == "/_standin/settings" and h.command in ("GET", "POST"):
            previous = {"max_event_age_seconds": self.max_event_age_seconds}
            if h.command == "POST":
                try:
                    age = json.loads(raw or b"{}").get("max_event_age_seconds", self.max_event_age_seconds)
                    if not isinstance(age, int) or age <= 0:
                        raise ValueError("max_event_age_seconds must be a positive whole number")
                except (ValueError, AttributeError) as exc:
                    h._send(400, {"code": 400, "message": f"bad settings: {exc}"})
                    return
                self.max_event_age_seconds = age
            h._send(200, {"previous": previous, "max_event_age_seconds": self.max_event_age_seconds})
        elif path == "/_standin/clear" and h.command == "POST":
            h._send(200, {"cleared": self.clear()})
        else:
            h._send(404, {"code": 404, "message": "Not found."})


# -- what the stand-in processed, per event ----------------------------------------------------


def event_key(ad_account_id: str, event: dict[str, Any]) -> str:
    """The dedup key pinrelay uses (``pinrelay.events.dedup_key``): ``<ad account>#<event_name>#
    <event_id>``, ``<ad account>#offline#<event_name>#<event_id>`` for an offline event."""
    from pinrelay.events import dedup_key  # the caller has pinrelay's layer on its path (tests, bench)

    return dedup_key(ad_account_id, str(event.get("event_name")), str(event.get("event_id")),
                     event.get("action_source") == "offline")


@dataclass
class StandInTally:
    """Per event key: how often the stand-in processed it, how often in a request the client
    had abandoned (a "slow" answer later than the client's timeout), how often it failed it."""

    processed: Counter[str] = field(default_factory=Counter)
    abandoned: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)  # "200", "422", "503", "closed", ...

    def twice(self) -> tuple[set[str], set[str]]:
        """(explained, unexplained) keys processed more than once. Explained: every processing
        but one was in an abandoned request, which Pinterest deduplicates by event_id."""
        explained, unexplained = set(), set()
        for key, times in self.processed.items():
            if times < 2:
                continue
            (explained if times - self.abandoned[key] <= 1 else unexplained).add(key)
        return explained, unexplained


def answered_events(record: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str | None]]:
    """The data items of one received request (a ``received`` record) that the stand-in processed
    event by event (as it answers 200, or 422 with details), each with its status ("processed",
    "failed"), whatever the client was told ("slow", "drip" and "processed_then_status" answers
    come after the processing); nothing for a request a fault answered instead."""
    results = record.get("processed")
    if results is None or not isinstance(record.get("body"), dict):
        return
    for item, result in zip(record["body"].get("data", []), results.get("events", [])):
        yield item, result.get("status")


def tally_standin(received: Iterable[dict[str, Any]], client_timeout_s: float) -> StandInTally:
    """Count ``PinterestStandIn.received`` (its records, oldest first) per event key; a client
    whose timeout is ``client_timeout_s`` abandoned the "slow" requests that took longer."""
    tally = StandInTally()
    for record in received:
        label = "closed" if record["status"] == 0 else str(record["status"])
        if record.get("fault") in ("slow", "drip"):
            label += f" {record['fault']}"
        elif record.get("fault") == "processed_then_status":
            label += " after processing"
        tally.requests[label] += 1
        # a request whose answer the client never read: Pinterest drops a web event's repeat
        abandoned = (record.get("fault") in ("slow", "drip") and record.get("fault_seconds", 0) > client_timeout_s
                     or record.get("fault") == "processed_then_status")
        for item, status in answered_events(record):
            key = event_key(record["ad_account_id"], item)
            if status == "processed":
                tally.processed[key] += 1
                if abandoned:
                    tally.abandoned[key] += 1
            else:
                tally.failed[key] += 1
    return tally


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase + "."
    except ValueError:
        return "Error."


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the Pinterest Conversions API stand-in.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--quiet", action="store_true", help="no per-request log lines")
    args = parser.parse_args(argv)
    standin = PinterestStandIn(args.host, args.port, args.token, verbose=not args.quiet).start()
    print(f"Pinterest stand-in listening: PINTEREST_API_URL={standin.base_url}", file=sys.stderr, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        standin.stop()


if __name__ == "__main__":
    main()
