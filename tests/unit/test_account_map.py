"""The account map and the tokens map (issue 11, finding 4): checked when read, so that no API key,
shop or webhook secret leads to two ad accounts; what a signed webhook body says about its shop
(real payloads from tests/fixtures) checked against the route its headers chose; errors that name
the entry and field, never a secret or a token."""

from __future__ import annotations

import hashlib
import json

import pytest
from pydantic import ValidationError

from pinrelay.accounts import (
    PLACEHOLDER,
    DefaultAccount,
    DefaultShopsSeen,
    InvalidAccountMap,
    InvalidAccountTokens,
    parse_account_map,
    parse_account_tokens,
    shopify_body_hosts,
    shopify_shop_key,
    woocommerce_body_hosts,
    woocommerce_shop_key,
)
from pinrelay.config import IngestSettings, SenderSettings
from tests.conftest import load_fixture

SECRET = "s3cr3t-shared-by-mistake-long-enough-to-resist-guessing"
TOKEN = "pina_t0ken-that-must-never-print"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


EU = {"name": "eu", "ad_account_id": "111", "api_key_sha256": [digest("key-eu")],
      "shopify_shop_domains": ["eu-shop.myshopify.com", "Shop.Example.EU"], "shopify_webhook_secrets": ["eu-secret-long-enough-to-resist-guessing"],
      "woocommerce_sources": ["https://eu.example/"], "woocommerce_webhook_secrets": ["eu-woo-secret-long-enough-to-resist-guessing"]}
US = {"name": "us", "ad_account_id": "222", "api_key_sha256": [digest("key-us")],
      "shopify_shop_domains": ["us-shop.myshopify.com"], "shopify_webhook_secrets": ["us-secret-long-enough-to-resist-guessing"],
      "woocommerce_sources": ["https://us.example"], "woocommerce_webhook_secrets": ["us-woo-secret-long-enough-to-resist-guessing"]}


def account_map(*entries: dict, default: DefaultAccount = DefaultAccount()):
    return parse_account_map(json.dumps({"accounts": list(entries)}), default)


def refusal(*entries: dict, default: DefaultAccount = DefaultAccount()) -> str:
    with pytest.raises(InvalidAccountMap) as refused:
        account_map(*entries, default=default)
    message = str(refused.value)
    for secret in (SECRET, TOKEN, "eu-secret-long-enough-to-resist-guessing", "us-secret-long-enough-to-resist-guessing", "eu-woo-secret-long-enough-to-resist-guessing", "us-woo-secret-long-enough-to-resist-guessing", "key-eu", digest("key-eu")):
        assert secret not in message
    return message


# -------------------------------------------------------------------------------- what a body says
@pytest.mark.parametrize(("fixture", "hosts"), [
    ("shopify/shopify_orders_create_shopifyappjs-rest-2025-10.json", {"jsmith.myshopify.com"}),  # order_status_url
    ("shopify/shopify_orders_create_triggerdev.json", {"jsmith.myshopify.com"}),
    ("shopify/shopify_checkouts_create_triggerdev.json", {"checkout.local"}),  # abandoned_checkout_url
    ("shopify/shopify_carts_create_triggerdev.json", set()),  # a cart names no shop
])
def test_the_shop_a_real_shopify_body_names(fixture, hosts):
    assert shopify_body_hosts(load_fixture(fixture)) == hosts


@pytest.mark.parametrize("fixture", ["woocommerce/woocommerce_order_created_wcrestdocs.json",
                                     "woocommerce/woocommerce_order_updated_wcrestdocs.json"])
def test_the_shop_a_real_woocommerce_order_names(fixture):
    assert woocommerce_body_hosts(load_fixture(fixture)) == {"example.com"}  # _links self and collection


@pytest.mark.parametrize("payload", [None, [], "x", {"order_status_url": 7}, {"order_status_url": "not a url"},
                                     {"order_status_url": "ftp://x.example/"}, {"_links": {"self": "https://x.example"}},
                                     {"_links": {"self": [{"href": None}]}}])
def test_bodies_that_name_no_shop(payload):
    assert shopify_body_hosts(payload) == set() and woocommerce_body_hosts(payload) == set()


# -------------------------------------------------------------------------------- validation
def test_a_valid_map_is_normalised():
    routes = account_map(EU, US)
    assert routes.for_shopify_shop("EU-SHOP.myshopify.com").name == "eu"
    assert routes.accounts[0].shopify_shop_domains == ["eu-shop.myshopify.com", "shop.example.eu"]
    assert routes.for_woocommerce_source("https://eu.example/").name == "eu"
    assert routes.for_api_key("key-us").name == "us"


def test_a_webhook_secret_shared_by_two_entries_is_refused():
    message = refusal({**EU, "shopify_webhook_secrets": [SECRET]}, {**US, "shopify_webhook_secrets": ["us-secret-long-enough-to-resist-guessing", SECRET]})
    assert message == ('account map: entry 1 ("eu") and entry 2 ("us") use the same webhook secret: each shop must sign '
                       "with a secret of its own, or one shop could send its orders to the other's ad account")


def test_a_secret_shared_across_platforms_is_refused_too():
    assert "use the same webhook secret" in refusal({**EU, "shopify_webhook_secrets": [SECRET]},
                                                    {**US, "woocommerce_webhook_secrets": [SECRET]})


@pytest.mark.parametrize(("default", "platform"), [
    (DefaultAccount().with_credentials([], [SECRET], []), "Shopify"),
    (DefaultAccount().with_credentials([], ["other", SECRET], []), "Shopify"),
    (DefaultAccount().with_credentials([], [], [SECRET]), "WooCommerce"),
])
def test_an_entry_secret_equal_to_the_deployments_own_is_refused(default, platform):
    message = refusal({**EU, "shopify_webhook_secrets": [SECRET]}, US, default=default)
    assert message == (f'account map: entry 1 ("eu"): a secret in its shopify_webhook_secrets is the deployment\'s own '
                       f"{platform} webhook secret (the default account's): give the shop a secret of its own")


def test_an_api_key_digest_equal_to_the_deployments_own_key_is_refused():
    default = DefaultAccount().with_credentials([bytes.fromhex(digest("key-us"))], [], [])
    assert refusal(EU, US, default=default) == ('account map: entry 2 ("us"): an api_key_sha256 is the digest of one of '
                                                "the deployment's own ingest API keys (the default account's)")


def test_keys_and_shops_in_two_entries_are_refused():
    message = refusal({**EU, "api_key_sha256": [digest("key-us")]}, {**US, "shopify_shop_domains": ["shop.example.eu"],
                                                                     "woocommerce_sources": ["https://EU.example"]},
                      {"ad_account_id": "333", "shopify_shop_domains": ["SHOP.example.eu"]})
    assert message == ('account map: shop domain shop.example.eu is in entry 1 ("eu"), entry 2 ("us") and entry 3: '
                       "a shop goes to one ad account; "
                       'WooCommerce source https://eu.example is in entry 1 ("eu") and entry 2 ("us"): a shop goes to '
                       'one ad account; entry 1 ("eu") and entry 2 ("us") list the same api_key_sha256: an API key '
                       "goes to one ad account")


def test_a_shop_of_the_default_accounts_allow_list_cannot_be_mapped():
    default = DefaultAccount(shopify_shop_domains=("eu-shop.myshopify.com",), woocommerce_sources=("https://eu.example",))
    assert refusal(EU, default=default) == (
        'account map: entry 1 ("eu"): shop domain eu-shop.myshopify.com is also in SHOPIFY_SHOP_DOMAINS (the default '
        'account\'s shops); entry 1 ("eu"): WooCommerce source https://eu.example is also in WOOCOMMERCE_SOURCES (the '
        "default account's shops)")


def test_a_conversion_token_in_the_account_map_points_to_the_tokens_map():
    message = refusal(EU, {**US, "conversion_token": TOKEN})
    assert message == ('account map: entry 2 ("us"): conversion_token does not belong in the account map, which the '
                       "public ingest function reads: move it to the tokens map (secret AccountTokensSecretName, "
                       'ACCOUNT_TOKENS locally) as "<ad_account_id>": "<token>"')


@pytest.mark.parametrize(("entry", "expected"), [
    ({"name": "eu", "ad_account_id": "1", "shopify_webhook_secrets": SECRET},
     'entry 1 ("eu"), shopify_webhook_secrets: Input should be a valid list'),
    ({"ad_account_id": "1", "woocommerce_webhook_secrets": [SECRET, 5]},
     "entry 1, woocommerce_webhook_secrets[1]: Input should be a valid string"),
    ({"ad_account_id": "1", "shopify_shop_domains": ["eu-shop.myshopify.com", f"https://{SECRET}.example/x"]},
     "entry 1, shopify_shop_domains[1]: is not a shop domain: write the host name alone, like eu-shop.myshopify.com or "
     "shop.example.com (no https://, no path; international names in their xn-- form)"),
    ({"ad_account_id": "1", "woocommerce_sources": [f"https://user:{SECRET}@eu.example"]},
     "entry 1, woocommerce_sources[0]: is not a site address: write it as WooCommerce sends it in X-WC-Webhook-Source, "
     "like https://shop.example"),
    ({"ad_account_id": "x1", "api_key_sha256": ["plain-key"]},
     "entry 1, ad_account_id: String should match pattern '^\\d{1,18}$'; entry 1, api_key_sha256: each entry must be "
     "the SHA-256 hex digest of an API key"),
    ({"ad_account_id": "1", "shopify_webhook_secret": [SECRET]}, "entry 1, shopify_webhook_secret: unknown field"),
])
def test_malformed_entries_are_named_without_their_values(entry, expected):
    assert refusal(entry) == f"account map: {expected}"


@pytest.mark.parametrize(("raw", "expected"), [
    ('{"accounts": [', "account map: not JSON (Expecting value: line 1, column 15)"),
    ("[]", "account map: Input should be a valid dictionary or instance of AccountMap"),
    ('{"accounts": {}}', "account map: accounts: Input should be a valid list"),
    ('{"549755885176": "' + TOKEN + '"}', "account map: 549755885176: unknown field"),  # the tokens map in the wrong secret
])
def test_a_map_that_is_not_a_map(raw, expected):
    with pytest.raises(InvalidAccountMap) as refused:
        parse_account_map(raw)
    assert str(refused.value) == expected


def test_the_placeholder_is_no_secret():
    assert PLACEHOLDER == "REPLACE_ME"  # what template.yaml puts in every secret it creates
    padded = " eu-secret, with a comma and spaces around "
    (route,) = account_map({**EU, "shopify_webhook_secrets": ["REPLACE_ME", padded],
                            "woocommerce_webhook_secrets": ["REPLACE_ME"]}).accounts
    assert [s.get_secret_value() for s in route.shopify_webhook_secrets] == [padded]  # byte for byte
    assert route.woocommerce_webhook_secrets == []  # nobody signs for it: every webhook routed there gets 401
    # two entries left at the placeholder share nothing
    assert account_map({**EU, "shopify_webhook_secrets": ["REPLACE_ME"]}, {**US, "shopify_webhook_secrets": ["REPLACE_ME"]})


@pytest.mark.parametrize("secrets, where", [
    ([" "], "shopify_webhook_secrets[0]"),
    (["x" * 40, "q9"], "shopify_webhook_secrets[1]"),
    (["REPLACE_ME", "x" * 31], "shopify_webhook_secrets[1]"),
])
def test_a_webhook_secret_under_32_characters_is_refused_naming_its_entry_and_position(secrets, where):
    with pytest.raises(InvalidAccountMap) as refused:
        account_map({**EU, "shopify_webhook_secrets": secrets})
    assert str(refused.value).startswith(f'account map: entry 1 ("eu"), {where}: shorter than 32 characters')
    assert all(secret not in str(refused.value) for secret in secrets if secret.strip())


def test_no_map_is_an_empty_map():
    assert parse_account_map("").accounts == [] and parse_account_map('{"accounts": []}').accounts == []


# -------------------------------------------------------------------------------- body against route
ORDER = load_fixture("shopify/shopify_orders_create_shopifyappjs-rest-2025-10.json")  # names jsmith.myshopify.com
CART = load_fixture("shopify/shopify_carts_create_triggerdev.json")
WOO_ORDER = load_fixture("woocommerce/woocommerce_order_created_wcrestdocs.json")  # names example.com


def at(host: str, body: dict = ORDER) -> dict:
    return {**body, "order_status_url": body["order_status_url"].replace("jsmith.myshopify.com", host)}


def test_a_mapped_shop_takes_bodies_naming_its_own_domains_or_none():
    routes = account_map(EU, US)
    eu = routes.for_shopify_shop("eu-shop.myshopify.com")
    assert routes.shopify_shop_mismatch(eu, "eu-shop.myshopify.com", at("eu-shop.myshopify.com")) is None
    assert routes.shopify_shop_mismatch(eu, "eu-shop.myshopify.com", at("shop.example.eu")) is None  # its custom domain
    assert routes.shopify_shop_mismatch(eu, "eu-shop.myshopify.com", CART) is None  # its own secret binds the shop
    assert routes.shopify_shop_mismatch(eu, "eu-shop.myshopify.com", at("us-shop.myshopify.com")) == (
        'the signed body names shop host us-shop.myshopify.com, not one of the shopify_shop_domains of entry 1 ("eu")')
    assert routes.shopify_shop_mismatch(eu, "eu-shop.myshopify.com", ORDER) == (
        'the signed body names shop host jsmith.myshopify.com, not one of the shopify_shop_domains of entry 1 ("eu")')


def test_the_default_account_takes_no_body_naming_a_mapped_shop():
    routes = account_map(EU)
    assert routes.shopify_shop_mismatch(None, "jsmith.myshopify.com", ORDER) is None
    assert routes.shopify_shop_mismatch(None, None, CART) is None
    assert routes.shopify_shop_mismatch(None, "jsmith.myshopify.com", at("shop.example.eu")) == (
        "the signed body names shop host shop.example.eu, which belongs to an account map entry")


def test_the_default_accounts_allow_list_checks_header_and_body():
    routes = account_map(EU, default=DefaultAccount(shopify_shop_domains=("jsmith.myshopify.com", "jsmith.example")))
    assert routes.shopify_shop_mismatch(None, "JSmith.myshopify.com", ORDER) is None
    assert routes.shopify_shop_mismatch(None, "jsmith.myshopify.com", at("jsmith.example")) is None
    assert routes.shopify_shop_mismatch(None, "other.myshopify.com", ORDER) == (
        "X-Shopify-Shop-Domain is not one of SHOPIFY_SHOP_DOMAINS (the shops of the default account)")
    assert routes.shopify_shop_mismatch(None, None, ORDER) is not None
    assert routes.shopify_shop_mismatch(None, "jsmith.myshopify.com", at("other.example")) == (
        "the signed body names shop host other.example, not one of SHOPIFY_SHOP_DOMAINS")
    assert routes.shopify_shop_mismatch(None, "jsmith.myshopify.com", CART) == (
        "the signed body names no shop, so it cannot be checked against SHOPIFY_SHOP_DOMAINS")


def test_woocommerce_orders_are_checked_by_the_hosts_of_their_links():
    routes = account_map({**EU, "woocommerce_sources": ["https://example.com/"]}, US,
                         default=DefaultAccount(woocommerce_sources=("https://shop.example",)))
    eu, us = routes.for_woocommerce_source("https://example.com"), routes.for_woocommerce_source("https://us.example/")
    assert routes.woocommerce_source_mismatch(eu, "https://example.com/", WOO_ORDER) is None
    assert routes.woocommerce_source_mismatch(us, "https://us.example/", WOO_ORDER) == (
        'the signed body names shop host example.com, not one of the woocommerce_sources of entry 2 ("us")')
    assert routes.woocommerce_source_mismatch(None, "https://shop.example/", WOO_ORDER) == (
        "the signed body names shop host example.com, which belongs to an account map entry")
    assert routes.woocommerce_source_mismatch(None, "https://elsewhere.example/", {"id": 1}) == (
        "X-WC-Webhook-Source is not one of WOOCOMMERCE_SOURCES (the shops of the default account)")
    own = {**WOO_ORDER, "_links": {"self": [{"href": "https://shop.example/wp-json/wc/v3/orders/727"}]}}
    assert routes.woocommerce_source_mismatch(None, "https://shop.example/", own) is None


# -------------------------------------------------------------------------------- the tokens map
def test_the_tokens_map_gives_each_ad_account_its_token():
    tokens = parse_account_tokens(json.dumps({"111": f" {TOKEN} ", "222": "REPLACE_ME", "333": ""}))
    assert tokens.token_for("111") == TOKEN
    assert tokens.token_for("222") is None and tokens.token_for("333") is None and tokens.token_for("444") is None
    assert TOKEN not in repr(tokens) and TOKEN not in str(tokens)
    assert parse_account_tokens("").token_for("111") is None


@pytest.mark.parametrize(("raw", "expected"), [
    (json.dumps({TOKEN: "111"}), "1 key(s) are not ad account ids (1 to 18 digits)"),  # written the wrong way round
    (json.dumps({"111": {"token": TOKEN}}), "the token of ad account 111 is not a string"),
    (json.dumps({"accounts": [{"ad_account_id": "111", "conversion_token": TOKEN}]}),
     "this looks like the account map, which belongs in its own secret"),
    (json.dumps([TOKEN]), 'it must be a JSON object {"<ad_account_id>": "<conversion token>", ...}'),
    ('{"111": "' + TOKEN, "tokens map: not JSON (Unterminated string starting at: line 1, column 9)"),
])
def test_a_bad_tokens_map_says_why_without_a_token(raw, expected):
    with pytest.raises(InvalidAccountTokens) as refused:
        parse_account_tokens(raw)
    assert expected in str(refused.value) and TOKEN not in str(refused.value)


# -------------------------------------------------------------------------------- settings
BASE = {"PINTEREST_AD_ACCOUNT_ID": "1", "QUEUE_URL": "q", "INGEST_API_KEY": "k"}


def test_the_default_accounts_shops_are_comma_separated_settings():
    settings = IngestSettings.from_env({**BASE, "SHOPIFY_SHOP_DOMAINS": " Shop.myshopify.com, shop.example.com ,",
                                        "WOOCOMMERCE_SOURCES": "https://Shop.example/"})
    assert settings.shopify_shop_domains == ("shop.myshopify.com", "shop.example.com")
    assert settings.woocommerce_sources == ("https://shop.example",)
    assert IngestSettings.from_env({**BASE, "SHOPIFY_SHOP_DOMAINS": ""}).shopify_shop_domains == ()
    with pytest.raises(ValidationError, match="is not a shop domain"):
        IngestSettings.from_env({**BASE, "SHOPIFY_SHOP_DOMAINS": "https://shop.myshopify.com/admin"})


def test_each_function_is_configured_with_only_the_secrets_it_needs():
    ingest, sender = set(IngestSettings.model_fields), set(SenderSettings.model_fields)
    assert not {name for name in ingest if "token" in name}  # ingest never reads a conversion token
    assert "account_map_secret_name" in ingest and "account_tokens_secret_name" not in ingest
    assert not {name for name in sender if "webhook" in name or "api_key" in name or "account_map" in name}
    assert "account_tokens_secret_name" in sender


def test_a_map_is_validated_once_per_text_and_default_account():
    """Ingest checks the map on every request that consults it: the same secret text and default
    account give the same checked map, without validating it again."""
    raw = json.dumps({"accounts": [EU]})
    default = DefaultAccount(shopify_shop_domains=("other.myshopify.com",))
    assert parse_account_map(raw, default) is parse_account_map(raw, default)
    assert parse_account_map(raw, DefaultAccount()) is not parse_account_map(raw, default)


# -------------------------------------------------------------------------------- several shops on one ad account
def only_shopify(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if not k.startswith("woocommerce")}


@pytest.mark.parametrize("entries, default, ad_account, unlisted, shops", [
    ((), DefaultAccount(ad_account_id="1"), "1", None, 0),
    ((), DefaultAccount(ad_account_id="1"), "1", "woocommerce", 1),  # a webhook with the default secret, no list
    ((), DefaultAccount(ad_account_id="1", woocommerce_sources=("https://a.example", "https://b.example")), "1", None, 2),
    ((), DefaultAccount(ad_account_id="1", shopify_shop_domains=("a.myshopify.com", "shop.a.example")), "1", None, 1),
    ((EU,), DefaultAccount(ad_account_id="1"), "111", None, 2),  # an entry with a Shopify shop and a WooCommerce site
    ((only_shopify(EU), {**only_shopify(US), "ad_account_id": "111"}), DefaultAccount(), "111", None, 2),  # sharing
    ((only_shopify(EU),), DefaultAccount(ad_account_id="111"), "111", "woocommerce", 2),  # default + entry
    ((only_shopify(EU),), DefaultAccount(ad_account_id="1"), "111", None, 1),
])
def test_the_shops_that_can_reach_an_ad_account_are_counted(entries, default, ad_account, unlisted, shops):
    assert account_map(*entries, default=default).shops_on(ad_account, unlisted) == shops


def test_a_shop_scopes_its_ids_only_when_it_shares_its_ad_account():
    alone = account_map(default=DefaultAccount(ad_account_id="1", woocommerce_sources=("https://a.example",)))
    assert alone.shop_scope("woocommerce", None, "https://a.example/", {}) is None
    shared = account_map(only_shopify(EU), default=DefaultAccount(ad_account_id="111", woocommerce_sources=("https://a.example",)))
    assert shared.shop_scope("woocommerce", None, "https://a.example/", {}) == "a.example"
    unlisted = account_map(only_shopify(EU), default=DefaultAccount(ad_account_id="111"))  # no list: the webhook is one
    assert unlisted.shop_scope("woocommerce", None, "https://z.example/", {}) == "z.example"
    (route,) = shared.accounts
    assert shared.shop_scope("shopify", route, "EU-Shop.myshopify.com", {}) == "eu-shop.myshopify.com"


def test_the_shop_key_is_the_one_the_signed_body_names_when_the_header_is_another():
    woo = load_fixture("woocommerce/woocommerce_order_created_wcrestdocs.json")  # _links on example.com
    assert woocommerce_shop_key("https://example.com/", woo) == "example.com"
    assert woocommerce_shop_key("https://example.com/shop-a/", woo) == "example.com/shop-a"  # a site in a folder
    assert woocommerce_shop_key("https://other.example/", woo) == "example.com"  # a replay under another header
    assert woocommerce_shop_key("https://other.example/", {}) == "other.example"  # a body naming no site
    order = load_fixture("shopify/shopify_orders_create_shopifyappjs-rest-2025-10.json")  # jsmith.myshopify.com
    assert shopify_shop_key("jsmith.myshopify.com", order) == "jsmith.myshopify.com"
    assert shopify_shop_key("other.myshopify.com", order) == "jsmith.myshopify.com"
    custom = {**order, "order_status_url": "https://shop.jsmith.example/548380009/orders/b1/authenticate?key=k"}
    assert shopify_shop_key("jsmith.myshopify.com", custom) == "jsmith.myshopify.com"  # a custom domain: the header's


def test_two_shops_seen_unscoped_on_the_default_account_are_said_once():
    seen = DefaultShopsSeen()
    assert [seen.second_shop(*shop) for shop in (("woocommerce", "a.example"), ("woocommerce", "a.example"),
                                                  ("shopify", "a.myshopify.com"), ("woocommerce", "b.example"),
                                                  ("woocommerce", "c.example"), ("shopify", "b.myshopify.com"))] == [
        False, False, False, True, False, True]
