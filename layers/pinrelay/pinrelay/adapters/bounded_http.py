"""One HTTP call to an endpoint pinrelay does not control, with bounds: Shopify's Admin API, Pinterest
(the events answers, the Event Quality Score), ingest (a backfill, ``pinrelay verify``).

Whatever answers, ``bounded_request``

* follows no redirect (``allow_redirects=False``): a 3xx comes back as the answer, for the caller
  to refuse. requests would send the body and every custom header (``X-Shopify-Access-Token``,
  ``x-api-key``) on to wherever ``Location`` points; it strips only ``Authorization``;
* reads at most ``max_bytes`` of the body (decoded: a gzip bomb counts what it expands to): a
  larger ``Content-Length`` is refused before reading, a body without one is dropped at the limit
  (``AnswerTooLarge``);
* ends about ``timeout`` seconds after it started: requests' timeout bounds each wait for bytes,
  not the answer, so the body is read with ``read1`` (what has arrived, at most 64 KiB) and the
  clock checked before each read (``AnswerTooSlow``, a ``requests.Timeout``). The worst call is
  twice the timeout (``worst_call_seconds``): the connection and the status line (``timeout``
  each), or a last read started just before the deadline (``timeout`` more). Headers are read by
  http.client, each wait bounded by ``timeout``, at most 100 lines of 64 KiB.

``BoundedAnswer.json()`` reads a lone surrogate (``"\\ud800"``: JSON allows it; UTF-8, so the
terminal, a file and every AWS API, does not) as U+FFFD, so that no text read crashes a print, a
report or a ledger key later. Errors are ``requests.RequestException``: the callers' own handling
of connection errors and timeouts applies unchanged.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError

MAX_ANSWER_BYTES = 4 * 1024 * 1024  # every answer pinrelay reads is far smaller (a page of 50 orders: ~200 KB)
READ_SIZE = 64 * 1024
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class AnswerTooLarge(requests.RequestException):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"the answer is larger than {_size(max_bytes)} (not read further)")


class AnswerTooSlow(requests.Timeout):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"the answer took longer than {seconds:g} s (not read further)")


def _size(count: int) -> str:
    return f"{count / 1048576:g} MiB" if count >= 1048576 else f"{count} bytes"


def worst_call_seconds(timeout: float) -> float:
    """The longest one ``bounded_request`` with this timeout can take (module docstring)."""
    return 2 * timeout


@dataclass(frozen=True, slots=True)
class BoundedAnswer:
    status_code: int
    headers: Mapping[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    @property
    def is_redirect(self) -> bool:
        return self.status_code in REDIRECT_STATUSES

    @property
    def redirect_host(self) -> str:
        """The host a redirect points to (for a message: never the whole address, which may carry anything)."""
        try:
            return urlsplit(self.headers.get("Location") or "").hostname or "the same host"
        except ValueError:
            return "an address that is not a URL"

    def json(self) -> Any:
        """The body as JSON (ValueError if it is not), each lone surrogate read as U+FFFD."""
        try:
            value = json.loads(self.content)
            return _valid_unicode(value) if _SURROGATE_ESCAPE.search(self.content) else value
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


def _valid_unicode(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_valid_unicode(item) for item in value]
    if isinstance(value, dict):
        return {_valid_unicode(key): _valid_unicode(item) for key, item in value.items()}
    return value


def bounded_request(session: requests.Session, method: str, url: str, *, timeout: float,
                    max_bytes: int = MAX_ANSWER_BYTES, clock: Callable[[], float] = time.monotonic,
                    connect_timeout: float | None = None, **kwargs: Any) -> BoundedAnswer:
    """``session.request(method, url, **kwargs)`` with the bounds of this module. ``connect_timeout``
    (default ``timeout``): a shorter bound on opening the connection, for callers that must tell
    "never connected" (surely not received) from a slow answer."""
    deadline = clock() + timeout
    waits = timeout if connect_timeout is None else (connect_timeout, timeout)
    with session.request(method, url, timeout=waits, allow_redirects=False, stream=True, **kwargs) as response:
        try:
            declared = int(response.headers.get("Content-Length", ""))
        except ValueError:
            declared = 0
        if declared > max_bytes:
            raise AnswerTooLarge(max_bytes)
        body = bytearray()
        while True:
            if clock() > deadline:
                raise AnswerTooSlow(timeout)
            chunk = _read(response)
            if not chunk:
                break
            body += chunk
            if len(body) > max_bytes:
                raise AnswerTooLarge(max_bytes)
        return BoundedAnswer(response.status_code, response.headers, bytes(body))


def _read(response: requests.Response) -> bytes:
    """What has arrived of the body (b"" at its end), with urllib3's errors as requests' own
    (as ``Response.iter_content`` maps them)."""
    try:
        return response.raw.read1(READ_SIZE, decode_content=True)
    except ReadTimeoutError as exc:
        raise requests.ReadTimeout(exc, request=response.request) from None
    except ProtocolError as exc:
        raise requests.exceptions.ChunkedEncodingError(exc, request=response.request) from None
    except DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(exc, request=response.request) from None
