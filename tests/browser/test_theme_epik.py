"""web/shopify-theme-epik.js in Chromium, on a local storefront with a fake Ajax cart API
(GET /cart.js, POST /cart/update.js, the `cart` cookie) that records every request: the click id.
The same snippet records the shopper's consent choice as a second attribute: test_theme_consent.py."""

from __future__ import annotations

EPIK = "dj0yJnU9b2JDcFFHekV4SHJNRkxqQ0ZXUl9IV0tLaWhsXzhGZmgmcD0yJm09MSZ0PUFBQUFBR1Z"
STORED = {"attributes": {"_epik": EPIK}}


def epik_posts(shop) -> list[dict]:
    """The posts that stored the click id (not those of the consent choice)."""
    return [post for post in shop.cart_posts() if "_epik" in post["body"]["attributes"]]


def view(page, shop, path: str = "/products/ipod-nano") -> str:
    """One page view; what the snippet did with the click id (window.pinrelayEpik) once it is done
    with both attributes."""
    page.goto(shop.base_url + path)
    return page.evaluate("Promise.all([window.pinrelayEpik, window.pinrelayConsent]).then(([epik]) => epik)")


def test_the_landing_epik_is_posted_once_as_the_cart_attribute(page, shop):
    assert view(page, shop, f"/products/ipod-nano?utm_source=pinterest&epik={EPIK}") == "stored"

    (post,) = epik_posts(shop)
    assert post["body"] == STORED
    assert post["content_type"] == "application/json"
    (cart,) = shop.carts.values()
    assert cart["attributes"]["_epik"] == EPIK


def test_later_page_views_do_not_post_again(page, shop, browser_context):
    view(page, shop, f"/products/ipod-nano?epik={EPIK}")
    requests_after_landing = len(shop.cart_requests)
    # The same click id again: the landing URL reloaded, then pages where the tag's cookie has it.
    browser_context.add_cookies([{"name": "_epik", "value": EPIK, "url": shop.base_url}])

    assert view(page, shop, f"/products/ipod-nano?epik={EPIK}") == "already-stored"
    assert view(page, shop, "/products/ipod-nano") == "already-stored"
    assert view(page, shop, "/") == "already-stored"
    assert len(epik_posts(shop)) == 1
    assert len(shop.cart_requests) == requests_after_landing  # not even a GET /cart.js


def test_without_epik_in_the_url_the_epik_cookie_is_used(page, shop, browser_context):
    browser_context.add_cookies([{"name": "_epik", "value": EPIK, "url": shop.base_url}])

    assert view(page, shop, "/products/ipod-nano") == "stored"
    assert [post["body"] for post in epik_posts(shop)] == [STORED]


def test_a_failed_post_is_retried_on_the_next_page_view(page, shop):
    shop.failing_posts = 1
    assert view(page, shop, f"/products/ipod-nano?epik={EPIK}") == "failed"
    # The next page has no epik in its URL and there is no cookie: the pending one is retried.
    assert view(page, shop, "/products/ipod-classic") == "stored"
    assert view(page, shop, "/") == "no-epik"  # stored: nothing pending any more

    assert [post["body"] for post in epik_posts(shop)] == [STORED, STORED]
    (cart,) = shop.carts.values()
    assert cart["attributes"]["_epik"] == EPIK


def test_a_cart_that_already_has_the_epik_gets_no_post(page, shop):
    view(page, shop, "/")  # a cart exists (its cookie is set by GET /cart.js below)
    page.evaluate("fetch('/cart.js').then((response) => response.ok)")
    page.wait_for_function("document.cookie.includes('cart=')")
    (cart,) = shop.carts.values()
    cart["attributes"]["_epik"] = EPIK  # stored earlier, e.g. from another device of the same cart

    assert view(page, shop, f"/products/ipod-nano?epik={EPIK}") == "already-stored"
    assert epik_posts(shop) == []


def test_a_new_cart_after_an_order_gets_the_epik_again(page, shop, browser_context):
    browser_context.add_cookies([{"name": "_epik", "value": EPIK, "url": shop.base_url}])
    assert view(page, shop) == "stored"
    # The order is placed; Shopify starts a new, empty cart.
    browser_context.add_cookies([{"name": "cart", "value": "c1-newcart0000000001", "url": shop.base_url}])

    assert view(page, shop) == "stored"
    posts = epik_posts(shop)
    assert [post["body"] for post in posts] == [STORED, STORED]
    assert posts[1]["cart"] == "c1-newcart0000000001" != posts[0]["cart"]


def test_without_epik_nothing_is_posted_for_it(page, shop):
    assert view(page, shop, "/products/ipod-nano?utm_source=pinterest") == "no-epik"
    assert epik_posts(shop) == []


def test_a_value_that_is_not_a_click_id_is_not_stored(page, shop):
    assert view(page, shop, "/products/ipod-nano?epik=%3Cscript%3Ealert(1)%3C%2Fscript%3E") == "no-epik"
    assert view(page, shop, "/products/ipod-nano?epik=" + "a" * 501) == "no-epik"
    assert epik_posts(shop) == []


def test_without_marketing_consent_nothing_is_stored_until_it_is_given(page, shop):
    shop.consent = {"marketing": False, "saleOfData": True, "analytics": True, "preferences": True}
    assert view(page, shop, f"/products/ipod-nano?epik={EPIK}") == "no-consent"
    assert epik_posts(shop) == []
    assert page.evaluate("localStorage.getItem('pinrelay:epik')") is None

    page.evaluate("window.__grantConsent()")  # the visitor accepts the banner on this page
    assert page.evaluate("window.pinrelayEpik") == "stored"
    assert [post["body"] for post in epik_posts(shop)] == [STORED]


def test_a_data_sale_opt_out_stores_nothing(page, shop):
    shop.consent = {"marketing": True, "saleOfData": False, "analytics": True, "preferences": True}
    assert view(page, shop, f"/products/ipod-nano?epik={EPIK}") == "no-consent"
    assert epik_posts(shop) == []


def test_a_click_id_left_pending_by_the_earlier_version_of_the_snippet_is_still_stored(page, shop):
    """Before the snippet kept the consent choice too, its state was {epik, cart}."""
    view(page, shop, "/")
    page.evaluate(f"localStorage.setItem('pinrelay:epik', JSON.stringify({{epik: '{EPIK}', cart: ''}}))")
    assert view(page, shop, "/products/ipod-classic") == "stored"
    assert [post["body"] for post in epik_posts(shop)] == [STORED]
