"""What a secret's text holds: one secret, byte for byte, or (during a rotation) a JSON list of them.

A webhook secret or API key is an opaque value. WooCommerce generates its webhook secrets with
``wp_generate_password(50, true, true)``: 50 characters drawn from 92, among them ``,``, space,
``[``, ``]``, ``{``, ``}`` and ``|``, so about 42 % of them contain a comma. So a secret's text is
never split, trimmed or otherwise read into:

* the text is **one secret**, exactly as stored (a trailing space or newline is part of it);
* unless it is a **JSON array of strings** (``["old secret", "new secret"]``): then each string
  is one secret. A generated WooCommerce secret can never be one, as its alphabet has no double
  quote; Shopify's secrets are hex (``shpss_...``), Stripe's ``whsec_`` + base64. A text that
  starts with ``[`` and holds a ``"`` but is not such an array is refused (a list written
  wrongly would otherwise be taken as one secret that signs nothing).

The stack's placeholder ``REPLACE_ME`` (and an empty text) holds no secret: it lets nobody in.
A secret shorter than ``MIN_SECRET_CHARS`` is refused (``InvalidSecret``): a 2-character secret
is found by trying (~1,600 requests). Messages name the setting (and the entry of a list), never
a value. ``secret_entries`` is the one reader: ingest's webhook secrets and API keys, the account
map's ``*_webhook_secrets`` (each entry checked by ``check_secret``), the CLI. Plain Python.
"""

from __future__ import annotations

import json
import re

# what the stack puts in a secret nobody has set yet (template.yaml)
PLACEHOLDER = "REPLACE_ME"
MIN_SECRET_CHARS = 32
HOW_TO_ROTATE = 'during a rotation store a JSON list of the secrets, ["<old>", "<new>"]'
# the legacy form of the ingest key secret (pinrelay new-api-key before JSON lists): digest lines
_DIGEST_LINES = re.compile(r"\s*sha256:[0-9a-fA-F]{64}(?:[\s,]+sha256:[0-9a-fA-F]{64})*[\s,]*")
_DIGEST = re.compile(r"sha256:[0-9a-fA-F]{64}")


class InvalidSecret(ValueError):
    """A secret's text cannot be used; the message names the setting, never the value."""


def check_secret(value: str, setting: str, min_chars: int = MIN_SECRET_CHARS) -> str:
    """``value`` when it is long enough, else InvalidSecret naming ``setting``."""
    if len(value) < min_chars:
        raise InvalidSecret(f"{setting}: shorter than {min_chars} characters, so it can be guessed by trying; "
                            "use the secret the platform generated (WooCommerce's have 50 characters) or a random "
                            "one of at least 32 (e.g. `openssl rand -hex 32`)")
    return value


def _json_list(text: str, setting: str) -> list[str] | None:
    """The strings of a text that is a JSON array of strings; None for any other text (one
    secret); InvalidSecret for a text that looks like a list but is not one."""
    if text.strip() == "[]":
        return []
    if not text.strip().startswith("[") or '"' not in text:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidSecret(f"{setting}: starts with [ and holds a \" but is not a JSON list of strings; "
                            f"store one secret as it is, or {HOW_TO_ROTATE}")
    return value


def secret_entries(text: str, setting: str, *, min_chars: int = MIN_SECRET_CHARS) -> list[str]:
    """The secrets ``text`` holds (module docstring), each byte for byte, in order, without
    repeats or placeholders; ``[]`` when none is set. Raises InvalidSecret naming ``setting``
    (and the entry) for a secret shorter than ``min_chars`` or a list written wrongly."""
    listed = _json_list(text, setting)
    values = [text] if listed is None else listed
    entries = [value for value in dict.fromkeys(values) if value and value != PLACEHOLDER]
    for position, value in enumerate(entries, start=1):
        check_secret(value, setting if listed is None else f"{setting}, entry {position} of its JSON list", min_chars)
    return entries


def api_key_entries(text: str, setting: str) -> list[str]:
    """The stored ingest API keys (``sha256:<hex>`` digests or, locally, plain keys): as
    ``secret_entries``, and the form ``pinrelay new-api-key`` wrote before JSON lists, digest
    lines separated by newlines, commas or spaces (a digest holds none of them, so a text made of
    digests alone is split without ambiguity)."""
    if _DIGEST_LINES.fullmatch(text):
        return list(dict.fromkeys(_DIGEST.findall(text)))
    return secret_entries(text, setting)
