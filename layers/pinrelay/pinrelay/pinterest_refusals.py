"""What an answer of Pinterest that is not a success means, in one line. No AWS imports.

Shared by ``pinrelay verify`` (a test event posted to ``/events``) and the event quality check
(``GET /conversion_eqs``): both need to tell an operator whether the token, the ad account or
Pinterest is the problem, and whether trying again later can help.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str  # one line, no token, no personal data
    temporary: bool = False  # rate limited, Pinterest down, no answer: the same call may work later


def pinterest_message(body: Any, text: str = "") -> str:
    """Pinterest's error message (``{"code": .., "message": ..}``) on one line, or the start of a
    body that is not JSON."""
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message.strip():
        message = text or ""
    return " ".join(message.split())[:300]


def refusal(
    status: int | None,
    body: Any = None,
    *,
    text: str = "",
    ad_account_id: str,
    token_label: str,
    retry_after: float | None = None,
    transport_error: str | None = None,
    forbidden_hint: str = "",
) -> Refusal:
    """Why Pinterest did not do what was asked, from the status of its answer.

    ``token_label`` names the token in the reasons ("the conversion token", "the ads:read
    token"); ``forbidden_hint`` is added to a 403 (what else a 403 can mean for this call)."""
    if status is None:
        return Refusal(f"no answer from Pinterest ({transport_error or 'no response'})", temporary=True)
    message = pinterest_message(body, text)
    said = f": {message}" if message else ""
    if status == 401:
        return Refusal(f"Pinterest refused {token_label} (401{said}): check that it is the current token of ad "
                       f"account {ad_account_id}")
    if status == 403:
        return Refusal(f"{token_label} has no access to ad account {ad_account_id} (403{said}){forbidden_hint}")
    if status == 404:
        return Refusal(f"Pinterest does not know ad account {ad_account_id} (404{said}): check the ad account id")
    if status == 429:
        wait = f", retry after {retry_after:g} s" if retry_after is not None else ""
        return Refusal(f"rate limited by Pinterest (429{said}){wait}", temporary=True)
    if status >= 500:
        return Refusal(f"Pinterest is unavailable ({status}{said})", temporary=True)
    if status == 400:
        return Refusal(f"Pinterest refused the request (400{said})")
    if 300 <= status < 400:
        return Refusal(f"Pinterest answered {status}, a redirect: not followed, {token_label} goes to no other address; "
                       "check the API address (--api-url, PINTEREST_API_URL)")
    return Refusal(f"unexpected answer from Pinterest ({status}{said})")
