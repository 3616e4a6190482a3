"""Money fields (value, item_price, predicted_ltv): Pinterest takes a string it parses into a
double. Numbers become plain decimal strings, numeric strings go as they came (trimmed), and
anything Pinterest could not parse is refused at ingest with the field's reason."""

import math

import pytest
from pinrelay.models import _decimal_string


@pytest.mark.parametrize(("value", "sent"), [
    (12.5, "12.5"),
    (0.1 + 0.2, "0.30000000000000004"),  # the float's shortest repr, as Python prints it
    (1e-05, "0.00001"),  # never an exponent for a number
    (-0.0, "-0.0"),
    (10**15 - 1, "999999999999999"),
    (999999999999999.9, "999999999999999.9"),
    (" 12.50 ", "12.50"),  # a string keeps its own digits, trimmed
    ("199.00", "199.00"),
    ("12\u00a0", "12"),  # any whitespace around it is trimmed
    ("1e3", "1e3"),
    (None, None),
])
def test_a_price_is_sent_as_a_decimal_string(value, sent):
    assert _decimal_string(value) == sent


@pytest.mark.parametrize(("value", "reason"), [
    (10**15, "is too large"),
    (1e15, "is too large"),
    (-1e15, "is too large"),
    ("1e999999999", "is too large"),
    (math.inf, "must be a finite number"),
    (math.nan, "must be a finite number"),
    ("NaN", "must be a finite number"),
    (True, "must be a number or a numeric string"),
    ("abc", "must be a number or a numeric string"),
    ("1,000", "must be a number or a numeric string"),
    ([1], "must be a number or a numeric string"),
    # Decimal reads these, Pinterest's parser would not: refused, not sent as they came
    ("\u0661\u0662", "must be a number or a numeric string"),
    ("1_000", "must be a number or a numeric string"),
])
def test_a_price_pinterest_could_not_read_is_refused(value, reason):
    with pytest.raises(ValueError, match=reason):
        _decimal_string(value)
