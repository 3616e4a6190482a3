"""PinterestApi over HTTP: one pooled requests.Session, a total deadline, the ad account's Bearer token.

The call follows no redirect (a 3xx is an answer the sender gives up on: the events and the token go
to the configured address only) and reads the answer up to 4 MiB (``pinrelay.adapters.bounded_http``;
Pinterest's answer to 1000 events is about 150 KB). ``timeout`` in requests bounds the connection and
each read of the socket, not the whole answer, and ``bounded_request`` checks its deadline between
reads, so it can still end up to one read timeout late. So each request runs in a worker thread and
the caller waits for it at most ``timeout_seconds``, its total deadline: the sender budgets exactly
``timeout_seconds`` for a request (I5).
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

from pinrelay.adapters.bounded_http import AnswerTooLarge, bounded_request
from pinrelay.adapters.http_json import USER_AGENT
from pinrelay.ports import HttpAnswer
from pinrelay.sender import parse_retry_after

__all__ = ["USER_AGENT", "RequestsPinterestApi"]


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
        exchange = self._workers.submit(self._exchange, url, body, test, token)
        try:
            return exchange.result(timeout=self.timeout_seconds)
        except FutureTimeout:  # the request went out (or is going out): Pinterest may have processed it
            return HttpAnswer(status=None, transport_error=f"timed out after {self.timeout_seconds:g}s")

    def _exchange(self, url: str, body: bytes, test: bool, token: str) -> HttpAnswer:
        """One request and its whole answer (in a worker thread): ``bounded_request`` stops reading
        once ``timeout_seconds`` have passed; the caller has stopped waiting by then."""
        try:
            response = bounded_request(
                self.session, "POST", url,
                data=body,
                params={"test": "true"} if test else None,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/json",
                    "User-Agent": USER_AGENT,
                },
                timeout=self.timeout_seconds,
                connect_timeout=self.connect_timeout,
            )
        except AnswerTooLarge as exc:  # Pinterest answered: it may have processed the events
            return HttpAnswer(status=None, transport_error=f"Pinterest's answer could not be read: {exc}")
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
        try:
            parsed = response.json()
        except ValueError:
            parsed = None
        return HttpAnswer(
            status=response.status_code,
            body=parsed,
            text=response.text[:500] if parsed is None else "",
            retry_after=parse_retry_after(response.headers.get("Retry-After"), time.time()),
        )


def _never_connected(exc: requests.ConnectionError) -> bool:
    """True when urllib3 failed to open the connection (refused, DNS, unreachable): the
    request was never sent. urllib3 reports these as NewConnectionError (a public class),
    wrapped in MaxRetryError."""
    from urllib3.exceptions import NameResolutionError, NewConnectionError

    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return isinstance(reason, (NewConnectionError, NameResolutionError))
