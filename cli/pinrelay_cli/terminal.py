"""What the `pinrelay` commands print comes partly from others (event ids, Pinterest's messages):
control and format characters in it are shown escaped, so that an escape sequence in an event_id
(erase line, OSC 52 clipboard write, bidi overrides) never reaches the operator's terminal."""

from __future__ import annotations

import unicodedata

from pinrelay.models import has_control_characters


def printable(value: object) -> str:
    r"""``value`` as text with every Unicode control (Cc) or format (Cf) character escaped
    (``\x1b``, ``\u202e``); newlines and tabs too, so one record stays one line."""
    text = str(value)
    if not has_control_characters(text):
        return text
    return "".join(char if unicodedata.category(char) not in ("Cc", "Cf") else
                   (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}") for char in text)
