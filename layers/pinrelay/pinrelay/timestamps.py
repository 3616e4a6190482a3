"""ISO-8601 timestamps as the sources send them, read one way; epoch seconds shown one way.

Shopify: ``2021-12-31T19:00:00-05:00``, carts ``2022-01-01T00:00:00.000Z``; WooCommerce's
``*_gmt`` fields: ``2017-03-22T19:28:02`` (no offset, UTC); offline CSV rows and the CLI's
``--since``: any of these, or a date (``2025-05-01``, midnight). A timestamp without an offset is
UTC (as Lambda's clock is).
"""

from __future__ import annotations

from datetime import UTC, datetime


def parse_moment(text: str | None) -> datetime | None:
    """The moment ``text`` names, always with a time zone; None when it is empty or not ISO 8601.

    TypeError for a value that is not text (as ``datetime.fromisoformat``): a source field of
    the wrong type is a malformed body, not a missing time."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def epoch_seconds(text: str | None) -> int | None:
    """Unix seconds of an ISO-8601 timestamp (its fraction dropped); None as ``parse_moment``."""
    moment = parse_moment(text)
    return None if moment is None else int(moment.timestamp())


def utc_text(epoch: int) -> str:
    """Epoch seconds as operators read them: ``2026-11-30 09:12:03Z``."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
