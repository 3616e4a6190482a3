"""PinterestApi over HTTP: one pooled requests.Session, a total deadline, the ad account's Bearer token.

``timeout`` in requests bounds the connection and each read of the socket, not the whole answer:
an answer dripped a byte at a time never trips it. So each request runs in a worker thread and
the caller waits for it at most ``timeout_seconds``, its total deadline; the worker reads the
body in pieces and gives up once that deadline has passed (so it ends at most one read timeout
later). The sender budgets exactly ``timeout_seconds`` for a request (I5).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from pinrelay import __version__
from pinrelay.ports import HttpAnswer
from pinrelay.sender import parse_retry_after

USER_AGENT = f"pinrelay/{__version__}"


def _unreadable_token(exc: Exception) -> str:
    return f"the conversion token could not be read ({type(exc).__name__})"


# token(ad_account_id, fresh): fresh=True reads the secret again instead of the cached value
TokenSource = Callable[[str, bool], str]


class RequestsPinterestApi:
    def __init__(self, base_url: str, token: TokenSource, timeout_seconds: float, session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout_seconds = timeout_seconds
        self.session = session or requests.Session()
        self.session.mount("https://", HTTPAdapter(pool_connections=4, pool_maxsize=8))
        self.session.mount("http://", HTTPAdapter(pool_connections=4, pool_maxsize=8))
        self._refetch: set[str] = set()
        # connecting is bounded apart, so a Pinterest that cannot be reached is known not to have the events
        self.connect_timeout = min(5.0, timeout_seconds / 2)
        self._workers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="pinterest-request")

    def forget_token(self, ad_account_id: str) -> None:
        self._refetch.add(ad_account_id)

    def _token(self, ad_account_id: str) -> str:
        fresh = ad_account_id in self._refetch
        token = self.token(ad_account_id, fresh)  # cached by the token source unless fresh
        self._refetch.discard(ad_account_id)
        return token

    def prepare(self, ad_account_id: str) -> str | None:
        try:
            self._token(ad_account_id)
        except Exception as exc:  # noqa: BLE001 - Secrets Manager unavailable, throttled, out of time
            return _unreadable_token(exc)
        return None

    def post_events(self, ad_account_id: str, events: list[dict[str, Any]], test: bool) -> HttpAnswer:
        url = f"{self.base_url}/ad_accounts/{ad_account_id}/events"
        body = json.dumps({"data": events}, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        try:
            token = self._token(ad_account_id)
        except Exception as exc:  # noqa: BLE001 - nothing was sent
            return HttpAnswer(status=None, transport_error=_unreadable_token(exc), may_have_arrived=False)
        deadline = time.monotonic() + self.timeout_seconds
        exchange = self._workers.submit(self._exchange, url, body, test, token, deadline)
        try:
            return exchange.result(timeout=self.timeout_seconds)
        except FutureTimeout:  # the request went out (or is going out): Pinterest may have processed it
            return HttpAnswer(status=None, transport_error=f"timed out after {self.timeout_seconds:g}s")

    def _exchange(self, url: str, body: bytes, test: bool, token: str, deadline: float) -> HttpAnswer:
        """One request and its whole answer (in a worker thread); gives up reading once ``deadline`` passed."""
        try:
            response = self.session.post(
                url,
                data=body,
                params={"test": "true"} if test else None,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/json",
                    "User-Agent": USER_AGENT,
                },
                timeout=(self.connect_timeout, self.timeout_seconds),
                stream=True,
            )
        except requests.ConnectTimeout:  # no connection, so no request: surely not processed
            return HttpAnswer(status=None, transport_error=f"could not connect within {self.connect_timeout:g}s",
                              may_have_arrived=False)
        except requests.Timeout:
            return HttpAnswer(status=None, transport_error=f"timed out after {self.timeout_seconds:g}s")
        except requests.ConnectionError as exc:
            # refused or unreachable before a connection existed: the request cannot have arrived;
            # dropped after it was (maybe) sent: it may have
            refused = _never_connected(exc)
            return HttpAnswer(status=None, transport_error=f"{type(exc).__name__} talking to Pinterest",
                              may_have_arrived=not refused)
        except requests.RequestException as exc:
            return HttpAnswer(status=None, transport_error=f"{type(exc).__name__} talking to Pinterest")
        with response:
            try:
                content = _read_until(response, deadline)
            except (requests.RequestException, OSError) as exc:
                return HttpAnswer(status=None, transport_error=f"{type(exc).__name__} reading Pinterest's answer")
            if content is None:
                return HttpAnswer(status=None, transport_error=f"timed out after {self.timeout_seconds:g}s")
        try:
            parsed = json.loads(content)
        except ValueError:
            parsed = None
        return HttpAnswer(
            status=response.status_code,
            body=parsed,
            text=content[:500].decode("utf-8", "replace") if parsed is None else "",
            retry_after=parse_retry_after(response.headers.get("Retry-After"), time.time()),
        )


def _read_until(response: requests.Response, deadline: float) -> bytes | None:
    """The whole body, or None once ``deadline`` (time.monotonic) has passed before its end. Reads
    what has arrived (urllib3's ``read1``: at most one read of the socket, each bounded by the read
    timeout), so a body dripped a byte at a time is given up on soon after the deadline."""
    parts = []
    while part := response.raw.read1(65536, decode_content=True):
        parts.append(part)
        if time.monotonic() > deadline:
            return None
    return b"".join(parts)


def _never_connected(exc: requests.ConnectionError) -> bool:
    """True when urllib3 failed to open the connection (refused, DNS, unreachable): the
    request was never sent. urllib3 reports these as NewConnectionError (a public class),
    wrapped in MaxRetryError."""
    from urllib3.exceptions import NameResolutionError, NewConnectionError

    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return isinstance(reason, (NewConnectionError, NameResolutionError))
