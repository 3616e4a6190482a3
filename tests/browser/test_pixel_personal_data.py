r"""The custom pixel's personal-data check on search queries, in Chromium (issue 18, finding 7):
linear on hostile text, and it sees through the look-alikes people type (the full-width ＠ of
East Asian keyboards, ﹫, ．, 。, full-width digits and dashes, "(at)" and "[dot]"), so that no
e-mail address or phone number reaches the tag.

The pixel runs in every shopper's browser, of every age. The newest V8 (Chromium 156 here)
optimises the old pattern, /[^\s@]+@[^\s@]+\.[^\s@]+/, out of its quadratic backtracking; V8
without that optimiser does not: an 80 KB query without "@" took 29.6 s in Node 20 (V8 11) and
56 s in this Chromium with ``--js-flags=--no-regexp-optimization``, which this module's browser
runs with, so that the bound holds for plain backtracking too."""

from __future__ import annotations

import pytest

from tests.browser import shopify_payloads as shopify
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, GRANTED

# the most one 80 KB search may cost the pixel (best of 3): measured at 1 to 70 ms per query on a
# loaded 2-CPU machine (the slowest: full-width at signs, digits and separators); the old pattern
# took 56 s on the first of HOSTILE in this browser
BOUND_MS = 250
SIZE = 80_000


@pytest.fixture(scope="module")
def chromium(chromium):  # noqa: F811 - this module's browser: V8's regexp optimiser off
    """Chromium whose V8 runs regular expressions by plain backtracking, as older V8 did."""
    browser = chromium.browser_type.launch(executable_path=str(CHROMIUM),
                                           args=[*CHROMIUM_ARGS, "--js-flags=--no-regexp-optimization"])
    yield browser
    browser.close()

HOSTILE = {
    "no @ at all": "a" * SIZE,
    "@ after every letter": "a@" * (SIZE // 2),
    "@ before every letter": "@a" * (SIZE // 2),
    "one @ and no dot": "a@" + "b" * SIZE,
    "spaces": " " * SIZE + "x",
    "digits and separators": ("1 (" * (SIZE // 3)),
    "six digits, then a letter": "123456x" * (SIZE // 7),
    "bracketed at": "(at)" * (SIZE // 4),
    "open brackets and spaces": "( " * (SIZE // 2),
    "full-width at signs": "ａ＠" * (SIZE // 2),
}

PERSONAL = [
    "bob.norman@mail.example.com", "jane＠gmail.com", "jane﹫gmail．com", "ｊａｎｅ＠ｇｍａｉｌ．ｃｏｍ", "jane@gmail。com",
    "jane (at) gmail (dot) com", "jane [at] gmail [dot] com", "jane @ gmail . com", "JANE{AT}GMAIL{DOT}COM",
    "call +1 (502) 459-2181", "０３－１２３４－５６７８", "03‐1234‐5678", "tel 0171 2345678",
]
NOT_PERSONAL = ["ipod nano", "size 10.5 shoes", "2 pack socks", "at home gym", "model 1234", "red dress (dot pattern)",
                "usb-c 3.1 cable", "gift @ christmas"]


def timed_search(pixel, query: str) -> float:
    """Milliseconds the pixel's search_submitted handler took (Shopify's publish calls it at once)."""
    return pixel.page.evaluate("""([name, data]) => {
        const started = performance.now();
        window.__shopify.publish(name, data);
        return performance.now() - started;
    }""", ["search_submitted", shopify.search_submitted(query, [])])


@pytest.mark.parametrize("name", list(HOSTILE))
def test_an_80_kb_hostile_query_is_checked_in_linear_time(open_pixel, name):
    pixel = open_pixel(GRANTED)
    timed_search(pixel, "warm up the handler")
    elapsed = min(timed_search(pixel, HOSTILE[name]) for _ in range(3))  # the best of 3: a GC pause is not the pattern
    assert elapsed < BOUND_MS, f"{name}: {elapsed:.0f} ms"
    assert pixel.pintrk_calls()[-1][:2] == ["track", "search"]


def test_e_mail_addresses_and_phone_numbers_are_withheld_whatever_they_look_like(open_pixel):
    pixel = open_pixel(GRANTED)
    for query in PERSONAL + NOT_PERSONAL:
        timed_search(pixel, query)
    searches = [call[2] for call in pixel.pintrk_calls() if call[:2] == ["track", "search"]]
    assert searches == [{}] * len(PERSONAL) + [{"search_query": query} for query in NOT_PERSONAL]
