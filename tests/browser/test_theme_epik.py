"""web/shopify-theme-epik.js in Chromium, on a local storefront with a fake Ajax cart API
(GET /cart.js, POST /cart/update.js, the `cart` cookie) that records every request."""

from __future__ import annotations

EPIK = "dj0yJnU9b2JDcFFHekV4SHJNRkxqQ0ZXUl9IV0tLaWhsXzhGZmgmcD0yJm09MSZ0PUFBQUFBR1Z"
STORED = {"attributes": {"_epik": EPIK}}


def view(page, shop, path: str = "/products/ipod-nano") -> str:
    """One page view; what the snippet did (window.pinrelayEpik) once it is done."""
    page.goto(shop.base_url + path)
    return page.evaluate("window.pinrelayEpik")


def test_the_landing_epik_is_posted_once_as_the_cart_attribute(page, shop):
    assert view(page, shop, f"/products/ipod-nano?utm_source=pinterest&epik={EPIK}") == "stored"

    (post,) = shop.cart_posts()
    assert post["body"] == STORED
    assert post["content_type"] == "application/json"
    (cart,) = shop.carts.values()
    assert cart["attributes"] == {"_epik": EPIK}


def test_later_page_views_do_not_post_again(page, shop, browser_context):
    view(page, shop, f"/products/ipod-nano?epik={EPIK}")
    requests_after_landing = len(shop.cart_requests)
    # The same click id again: the landing URL reloaded, then pages where the tag's cookie has it.
    browser_context.add_cookies([{"name": "_epik", "value": EPIK, "url": shop.base_url}])

    assert view(page, shop, f"/products/ipod-nano?epik={EPIK}") == "already-stored"
    assert view(page, shop, "/products/ipod-nano") == "already-stored"
    assert view(page, shop, "/") == "already-stored"
    assert len(shop.cart_posts()) == 1
    assert len(shop.cart_requests) == requests_after_landing  # not even a GET /cart.js


def test_without_epik_in_the_url_the_epik_cookie_is_used(page, shop, browser_context):
    browser_context.add_cookies([{"name": "_epik", "value": EPIK, "url": shop.base_url}])

    assert view(page, shop, "/products/ipod-nano") == "stored"
    assert [post["body"] for post in shop.cart_posts()] == [STORED]


def test_a_failed_post_is_retried_on_the_next_page_view(page, shop):
    shop.failing_posts = 1
    assert view(page, shop, f"/products/ipod-nano?epik={EPIK}") == "failed"
    # The next page has no epik in its URL and there is no cookie: the pending one is retried.
    assert view(page, shop, "/products/ipod-classic") == "stored"
    assert view(page, shop, "/") == "no-epik"  # stored: nothing pending any more

    assert [post["body"] for post in shop.cart_posts()] == [STORED, STORED]
    (cart,) = shop.carts.values()
    assert cart["attributes"] == {"_epik": EPIK}


def test_a_cart_that_already_has_the_epik_gets_no_post(page, shop):
    view(page, shop, "/")  # a cart exists (its cookie is set by GET /cart.js below)
    page.evaluate("fetch('/cart.js').then((response) => response.ok)")
    page.wait_for_function("document.cookie.includes('cart=')")
    (cart,) = shop.carts.values()
    cart["attributes"]["_epik"] = EPIK  # stored earlier, e.g. from another device of the same cart

    assert view(page, shop, f"/products/ipod-nano?epik={EPIK}") == "already-stored"
    assert shop.cart_posts() == []


def test_a_new_cart_after_an_order_gets_the_epik_again(page, shop, browser_context):
    browser_context.add_cookies([{"name": "_epik", "value": EPIK, "url": shop.base_url}])
    assert view(page, shop) == "stored"
    # The order is placed; Shopify starts a new, empty cart.
    browser_context.add_cookies([{"name": "cart", "value": "c1-newcart0000000001", "url": shop.base_url}])

    assert view(page, shop) == "stored"
    posts = shop.cart_posts()
    assert [post["body"] for post in posts] == [STORED, STORED]
    assert posts[1]["cart"] == "c1-newcart0000000001" != posts[0]["cart"]


def test_without_epik_nothing_is_requested(page, shop):
    assert view(page, shop, "/products/ipod-nano?utm_source=pinterest") == "no-epik"
    assert shop.cart_requests == []


def test_a_value_that_is_not_a_click_id_is_not_stored(page, shop):
    assert view(page, shop, "/products/ipod-nano?epik=%3Cscript%3Ealert(1)%3C%2Fscript%3E") == "no-epik"
    assert view(page, shop, "/products/ipod-nano?epik=" + "a" * 501) == "no-epik"
    assert shop.cart_requests == []


def test_without_marketing_consent_nothing_is_stored_until_it_is_given(page, shop):
    shop.consent = {"marketing": False, "saleOfData": True, "analytics": True, "preferences": True}
    assert view(page, shop, f"/products/ipod-nano?epik={EPIK}") == "no-consent"
    assert shop.cart_requests == []
    assert page.evaluate("localStorage.length") == 0

    page.evaluate("window.__grantConsent()")  # the visitor accepts the banner on this page
    assert page.evaluate("window.pinrelayEpik") == "stored"
    assert [post["body"] for post in shop.cart_posts()] == [STORED]


def test_a_data_sale_opt_out_stores_nothing(page, shop):
    shop.consent = {"marketing": True, "saleOfData": False, "analytics": True, "preferences": True}
    assert view(page, shop, f"/products/ipod-nano?epik={EPIK}") == "no-consent"
    assert shop.cart_requests == []
