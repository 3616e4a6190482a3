"""PinterestApi over HTTP: one pooled requests.Session, a timeout, the ad account's Bearer token."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from pinrelay import __version__
from pinrelay.ports import HttpAnswer

USER_AGENT = f"pinrelay/{__version__}"


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class RequestsPinterestApi:
    def __init__(self, base_url: str, token: Callable[[str], str], timeout_seconds: float, session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout_seconds = timeout_seconds
        self.session = session or requests.Session()
        self.session.mount("https://", HTTPAdapter(pool_connections=4, pool_maxsize=8))
        self.session.mount("http://", HTTPAdapter(pool_connections=4, pool_maxsize=8))

    def post_events(self, ad_account_id: str, events: list[dict[str, Any]], test: bool) -> HttpAnswer:
        url = f"{self.base_url}/ad_accounts/{ad_account_id}/events"
        body = json.dumps({"data": events}, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        try:
            response = self.session.post(
                url,
                data=body,
                params={"test": "true"} if test else None,
                headers={
                    "Authorization": f"Bearer {self.token(ad_account_id)}",
                    "Content-Type": "application/json",
                    "User-Agent": USER_AGENT,
                },
                timeout=self.timeout_seconds,
            )
        except requests.Timeout:
            return HttpAnswer(status=None, transport_error=f"timed out after {self.timeout_seconds}s")
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
            retry_after=_retry_after(response.headers.get("Retry-After")),
        )
