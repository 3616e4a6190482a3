import json
import time
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def load_fixture(relative: str) -> dict:
    return json.loads((FIXTURES / relative).read_text())


def shopify_order(now: int | None = None, name: str = "shopify_orders_create_shopifyappjs-rest-2025-10.json") -> dict:
    """A real Shopify order (see fixtures/SOURCES.md) with its timestamps moved to now."""
    order = load_fixture(f"shopify/{name}")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now or time.time()))
    for key in ("created_at", "updated_at", "processed_at"):
        if key in order:
            order[key] = stamp
    return order


@pytest.fixture
def now() -> int:
    return int(time.time())


@pytest.fixture(scope="session", autouse=True)
def every_body_the_sender_produces_is_valid_for_pinterest():
    """Across the whole session, every body pinrelay's sender posted to an in-process Pinterest
    stand-in validated against the shared ConversionEvents schema (the stand-in records any that
    did not; end-to-end tests in a subprocess check theirs directly)."""
    from pinrelay_local.pinterest_standin import SENDER_SCHEMA_VIOLATIONS

    yield
    assert SENDER_SCHEMA_VIOLATIONS == [], SENDER_SCHEMA_VIOLATIONS[:3]
