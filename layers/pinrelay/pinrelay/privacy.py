"""Limited Data Processing (LDP) and match-key coverage, applied to every event in one place.

LDP: Pinterest's ``custom_data.opt_out_type = "LDP"`` flags a person who opted out of the sale or
sharing of their data under US state privacy laws (California). pinrelay sets it when the
shopper's recorded choice refuses sale or sharing (``pinrelay.consent``: the consent policy's
``ConsentDecision.ldp``), else when the event says the person opted out (``opt_out: true``) and
lives in California, US, judged from the hashed ``st`` and ``country`` (hashing is
deterministic, so hash("ca") is recognisable). For events without consent data the consent
policy's ``ldp=`` decides: ``never`` (default), ``california`` (flag every Californian),
``always`` (flag every event).
"""

from __future__ import annotations

from typing import Any, Literal

from pinrelay.normalise import sha256_hex

LdpPolicy = Literal["never", "california", "always"]

_CA = sha256_hex("ca")
_US = sha256_hex("us")
_ADDRESS_FIELDS = ("fn", "ln", "ct", "st", "zp", "country", "db", "ge")
MATCH_KEYS = ("em", "ph", "external_id", "click_id", "ip_ua", "hashed_maids", "address")


def lives_in_california(user_data: dict[str, Any]) -> bool:
    countries = user_data.get("country") or []
    return _CA in (user_data.get("st") or []) and (not countries or _US in countries)


def apply_ldp(event: dict[str, Any], policy: LdpPolicy, consent_known: bool | None = None,
              recorded: bool | None = None) -> bool:
    """Set opt_out_type LDP where due; return True when the event carries it afterwards.
    ``recorded``: True the shopper's recorded choice refuses sale or sharing; False it allows
    them (the no-choice ``policy`` then does not apply, ``opt_out`` still does); None no choice."""
    custom_data = event.setdefault("custom_data", {})
    if custom_data.get("opt_out_type"):
        return "LDP" in custom_data["opt_out_type"].split(",")
    opted_out = event.get("opt_out")
    if consent_known is None:
        consent_known = opted_out is not None
    if recorded:
        flag = True
    elif consent_known or recorded is False:
        flag = bool(opted_out) and lives_in_california(event["user_data"])
    elif policy == "always":
        flag = True
    elif policy == "california":
        flag = lives_in_california(event["user_data"])
    else:
        flag = False
    if flag:
        custom_data["opt_out_type"] = "LDP"
    elif not custom_data:
        del event["custom_data"]
    return flag


def match_keys(user_data: dict[str, Any]) -> list[str]:
    """Which kinds of identifier Pinterest can match this event on."""
    get = user_data.get
    keys = [key for key in ("em", "ph", "external_id", "click_id") if get(key)]
    if get("client_ip_address") and get("client_user_agent"):
        keys.append("ip_ua")
    if get("hashed_maids"):
        keys.append("hashed_maids")
    for field in _ADDRESS_FIELDS:
        if get(field):
            keys.append("address")
            break
    return keys
