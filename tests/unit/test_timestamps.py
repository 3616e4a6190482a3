"""pinrelay.timestamps: every timestamp format the sources send, taken from the real samples."""
from datetime import UTC, datetime

import pytest

from pinrelay.timestamps import epoch_seconds, parse_moment
from tests.conftest import load_fixture

SHOPIFY_ORDER = "shopify/shopify_orders_create_shopifyappjs-rest-2025-10.json"
SHOPIFY_CHECKOUT = "shopify/shopify_checkouts_create_triggerdev.json"
SHOPIFY_CART = "shopify/shopify_carts_create_triggerdev.json"
WOO_ORDER = "woocommerce/woocommerce_order_created_wcrestdocs.json"


@pytest.mark.parametrize(
    ("fixture", "field", "text", "expected"),
    [
        # Shopify: an offset (the shop's time zone)
        (SHOPIFY_ORDER, "created_at", "2008-01-10T11:00:00-05:00", datetime(2008, 1, 10, 16, 0, tzinfo=UTC)),
        (SHOPIFY_CHECKOUT, "created_at", "2021-12-31T19:00:00-05:00", datetime(2022, 1, 1, 0, 0, tzinfo=UTC)),
        # Shopify carts: milliseconds and Z
        (SHOPIFY_CART, "updated_at", "2022-01-01T00:00:00.000Z", datetime(2022, 1, 1, 0, 0, tzinfo=UTC)),
        # WooCommerce *_gmt: no offset, UTC (date_created, without _gmt, is the site's local time)
        (WOO_ORDER, "date_created_gmt", "2017-03-22T19:28:02", datetime(2017, 3, 22, 19, 28, 2, tzinfo=UTC)),
        (WOO_ORDER, "date_paid_gmt", "2017-03-22T19:28:08", datetime(2017, 3, 22, 19, 28, 8, tzinfo=UTC)),
    ],
)
def test_each_sources_format(fixture, field, text, expected):
    assert load_fixture(fixture)[field] == text  # the sample really says so
    assert parse_moment(text) == expected
    assert epoch_seconds(text) == int(expected.timestamp())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # X-Shopify-Triggered-At as Shopify's docs show it: nanoseconds, Z (the fraction is dropped)
        ("2023-03-29T18:00:27.877041743Z", 1680112827),
        # offline CSV and `pinrelay reconcile --since`: a date is midnight UTC, a compact one too
        ("2025-05-01", 1746057600),
        ("20250501", 1746057600),
        ("2025-05-01T14:30:00+02:00", 1746102600),
        ("2025-05-01T12:30:00", 1746102600),
    ],
)
def test_other_formats_pinrelay_reads(text, expected):
    assert epoch_seconds(text) == expected


@pytest.mark.parametrize("text", [None, "", "yesterday", "1714557600", "2025-02-30", "2025-05-01T25:00:00"])
def test_no_timestamp(text):
    assert parse_moment(text) is None and epoch_seconds(text) is None


def test_a_value_that_is_not_text_is_a_malformed_body():
    # the source mappers let it raise: the webhook is answered "not a payload pinrelay understands"
    with pytest.raises(TypeError):
        epoch_seconds(1714557600)


def test_a_moment_always_has_a_time_zone():
    assert parse_moment("2017-03-22T19:28:02").tzinfo is UTC
    assert parse_moment("2008-01-10T11:00:00-05:00").utcoffset().total_seconds() == -5 * 3600
