"""Bounded JSON GETs to a shop platform's API (Stripe, BigCommerce): timeouts x attempts sized
inside the calling function's time.

``HttpLimits`` says how long one call may take at worst (``worst_call_seconds``: attempts x
(connect + read timeout) + the pauses between them), so a caller compares it with the time Lambda
leaves it before starting; ``get_json`` never starts an attempt that could outlive ``time_left``.
Connection errors, timeouts, 429 and 5xx are tried again (a 429 after the wait the platform asks
for, when that fits); any other answer is returned as it is, for the adapter to judge (a redirect
is not followed: the token headers would go with it). A GET has no side effect, so trying it again
is always safe. At most ``MAX_ANSWER_BYTES`` of an answer are read (as
``pinrelay.adapters.bounded_http`` reads Shopify's and Pinterest's); a larger one counts as no
usable answer. The timeouts bound the connection and each wait for bytes; an answer dripped a byte
at a time is bounded by the calling function's Timeout, after which the platform delivers the
webhook again (Stripe) or SQS gives the fetch job back (BigCommerce): nothing is lost.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pinrelay import __version__
from pinrelay.ports import Deadline

if TYPE_CHECKING:
    import requests

# requests is imported when a call is made, not with this module: ingest loads it only when it
# has a Stripe key to use (an import at cold start costs every container ~40 ms)
USER_AGENT = f"pinrelay/{__version__}"

RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_ANSWER_BYTES = 4 * 1024 * 1024  # a page of 250 BigCommerce products is ~1 MB; Stripe's 100 line items ~100 KB


@dataclass(frozen=True)
class HttpLimits:
    connect_timeout: float
    read_timeout: float
    max_attempts: int
    pause_seconds: float  # before each retry (a 429 may ask for longer: ``longest_wait_seconds``)
    longest_wait_seconds: float = 5.0  # the longest wait a 429 may impose inside one call

    @property
    def worst_call_seconds(self) -> float:
        waits = (self.max_attempts - 1) * max(self.pause_seconds, self.longest_wait_seconds)
        return self.max_attempts * (self.connect_timeout + self.read_timeout) + waits


class HttpUnavailable(RuntimeError):
    """No usable answer after every attempt (or no time left for one): try again later."""


@dataclass(frozen=True)
class JsonAnswer:
    status: int
    body: Any  # parsed JSON, or None (no body, 204, not JSON)
    headers: dict[str, str]


# the wait (seconds) a retried answer asks for, from its headers; None: the usual pause
WaitHint = Callable[[dict[str, str]], float | None]


def get_json(session: requests.Session, url: str, *, headers: dict[str, str], limits: HttpLimits,
             time_left: Deadline, params: dict[str, Any] | None = None, wait_hint: WaitHint | None = None,
             sleep: Callable[[float], None] = time.sleep) -> JsonAnswer:
    """One GET, tried up to ``limits.max_attempts`` times; raises HttpUnavailable naming the last cause."""
    import requests

    attempt_seconds = limits.connect_timeout + limits.read_timeout
    cause = "no attempt"
    answer_headers: dict[str, str] | None = None  # the previous attempt's, for its wait hint
    for attempt in range(limits.max_attempts):
        if attempt:
            hinted = wait_hint(answer_headers) if wait_hint and answer_headers is not None else None
            pause = limits.pause_seconds if hinted is None else min(max(hinted, 0.0), limits.longest_wait_seconds)
            if time_left() < pause + attempt_seconds + 1:
                break
            sleep(pause)
        if time_left() < attempt_seconds + 1:
            cause = "no time left for the call"
            break
        answer_headers = None
        try:
            # no redirect followed: requests would send the token headers on to wherever Location points
            with session.get(url, params=params, timeout=(limits.connect_timeout, limits.read_timeout),
                             allow_redirects=False, stream=True,
                             headers={"Accept": "application/json", "User-Agent": USER_AGENT, **headers}) as response:
                status, answer_headers = response.status_code, dict(response.headers)
                content = response.raw.read(MAX_ANSWER_BYTES + 1, decode_content=True)
        except (requests.RequestException, OSError) as exc:  # urllib3's read errors are OSErrors
            cause = type(exc).__name__
            continue
        if status in RETRIED_STATUSES:
            cause = f"HTTP {status}"
            continue
        if len(content) > MAX_ANSWER_BYTES:
            cause = f"an answer over {MAX_ANSWER_BYTES} bytes"
            continue
        try:
            body = json.loads(content) if content else None
        except ValueError:
            body = None
        return JsonAnswer(status, body, answer_headers)
    raise HttpUnavailable(cause)
