"""Pinterest's Event Quality Score over HTTP: ``GET /v5/ad_accounts/{id}/conversion_eqs``.

It needs an OAuth token with the ``ads:read`` scope (the conversion token of Ads Manager is for
``POST /events`` only). Every answer that is not the list of scores raises ``EqsUnavailable`` with a
one-line reason (pinrelay.pinterest_refusals) saying whether trying later can help. The endpoint is
not trusted: the token goes only to an https address on pinterest.com (``pinrelay.endpoints``), no
redirect is followed, and the answer is read up to 4 MiB and within the timeout
(``pinrelay.adapters.bounded_http``).
"""

from __future__ import annotations

import time

import requests

from pinrelay.adapters.bounded_http import MAX_ANSWER_BYTES, AnswerTooLarge, bounded_request
from pinrelay.adapters.pinterest_http import USER_AGENT
from pinrelay.endpoints import api_url
from pinrelay.pinterest_refusals import Refusal, refusal
from pinrelay.quality import EqsUnreadable, EventQualityScore, parse_eqs
from pinrelay.sender import parse_retry_after

FORBIDDEN_HINT = ": the token needs the ads:read scope (a conversion token from Ads Manager has not) and access to it"


class EqsUnavailable(RuntimeError):
    def __init__(self, problem: Refusal) -> None:
        super().__init__(problem.reason)
        self.problem = problem

    @property
    def temporary(self) -> bool:
        return self.problem.temporary


class RequestsEqsApi:
    def __init__(self, base_url: str, token: str, timeout_seconds: float, session: requests.Session | None = None, *,
                 allow_loopback_http: bool = False, max_answer_bytes: int = MAX_ANSWER_BYTES) -> None:
        # raises pinrelay.endpoints.EndpointRefused (the callers check the address first, naming their setting)
        self.base_url = api_url(base_url, "pinterest", allow_loopback_http=allow_loopback_http).rstrip("/")
        self._token = token
        self.timeout_seconds = timeout_seconds
        self.max_answer_bytes = max_answer_bytes
        self.session = session or requests.Session()

    def scores(self, ad_account_id: str, lookback_period: str, *, ingestion_source: str | None = None,
               source_platform: str | None = None) -> list[EventQualityScore]:
        params = {"lookback_period": lookback_period}
        if ingestion_source:
            params["ingestion_source"] = ingestion_source
        if source_platform:
            params["source_platform"] = source_platform
        try:
            response = bounded_request(
                self.session, "GET", f"{self.base_url}/ad_accounts/{ad_account_id}/conversion_eqs",
                params=params,
                headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json", "User-Agent": USER_AGENT},
                timeout=self.timeout_seconds, max_bytes=self.max_answer_bytes,
            )
        except AnswerTooLarge as exc:
            raise EqsUnavailable(Refusal(f"Pinterest's event quality answer could not be read: {exc}")) from None
        except requests.Timeout:
            raise EqsUnavailable(refusal(None, transport_error=f"timed out after {self.timeout_seconds:g} s",
                                         ad_account_id=ad_account_id, token_label="the ads:read token")) from None
        except requests.RequestException as exc:
            raise EqsUnavailable(refusal(None, transport_error=f"{type(exc).__name__} talking to Pinterest",
                                         ad_account_id=ad_account_id, token_label="the ads:read token")) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200:
            raise EqsUnavailable(refusal(
                response.status_code, body, text=response.text[:300] if body is None else "", ad_account_id=ad_account_id,
                token_label="the ads:read token", forbidden_hint=FORBIDDEN_HINT,
                retry_after=parse_retry_after(response.headers.get("Retry-After"), time.time())))
        try:
            return parse_eqs(body)
        except EqsUnreadable as exc:
            raise EqsUnavailable(Refusal(f"Pinterest's event quality answer could not be read: {exc}")) from None
