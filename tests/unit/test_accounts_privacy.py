import hashlib

import pytest
from pydantic import ValidationError

from pinrelay.accounts import AccountMap, key_matches, parse_account_tokens, stored_key_digest
from pinrelay.privacy import apply_ldp, lives_in_california, match_keys


def h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


ACCOUNTS = AccountMap.model_validate({"accounts": [
    {"name": "eu", "ad_account_id": "111", "api_key_sha256": [h("key-eu")],
     "shopify_shop_domains": ["EU-Shop.myshopify.com"], "shopify_webhook_secrets": ["s-eu-long-enough-to-resist-guessing"]},
    {"name": "us", "ad_account_id": "222", "api_key_sha256": ["sha256:" + h("key-us").upper()],
     "woocommerce_sources": ["https://us.example/"]},
]})


def test_routes_by_hashed_api_key_shop_domain_and_woocommerce_source():
    assert ACCOUNTS.for_api_key("key-eu").ad_account_id == "111"
    assert ACCOUNTS.for_api_key("key-us").ad_account_id == "222"
    assert ACCOUNTS.for_api_key("nope") is None and ACCOUNTS.for_api_key("") is None
    assert ACCOUNTS.for_shopify_shop("eu-shop.myshopify.com").name == "eu"
    assert ACCOUNTS.for_shopify_shop(None) is None
    assert ACCOUNTS.for_woocommerce_source("https://US.example").name == "us"


def test_tokens_and_secrets_never_print():
    tokens = parse_account_tokens('{"111": "tok-eu"}')
    assert tokens.token_for("111") == "tok-eu" and tokens.token_for("222") is None
    assert "tok-eu" not in repr(tokens) and "tok-eu" not in str(tokens)
    assert "s-eu-long-enough-to-resist-guessing" not in repr(ACCOUNTS) and "s-eu-long-enough-to-resist-guessing" not in str(ACCOUNTS)


def test_api_key_digests_must_be_sha256_hex():
    with pytest.raises(ValidationError, match="SHA-256 hex digest"):
        AccountMap.model_validate({"accounts": [{"ad_account_id": "1", "api_key_sha256": ["plain-key"]}]})


def test_stored_keys_may_be_hashed_or_plain():
    digests = [stored_key_digest("sha256:" + h("k1")), stored_key_digest("k2")]
    assert key_matches("k1", digests) and key_matches("k2", digests)
    assert not key_matches("k3", digests) and not key_matches("", [stored_key_digest("")])


CA = {"em": [h("a@b.co")], "st": [h("ca")], "country": [h("us")]}


@pytest.mark.parametrize(
    ("user_data", "opt_out", "policy", "flagged"),
    [
        (CA, True, "never", True),        # opted out and Californian
        (CA, False, "always", False),     # consent known: not opted out
        ({**CA, "country": [h("ca")]}, True, "never", False),  # st "ca" but country Canada
        ({"em": [h("a@b.co")], "st": [h("ny")]}, True, "never", False),
        (CA, None, "never", False),       # no consent data, default policy
        (CA, None, "california", True),
        ({"em": [h("a@b.co")]}, None, "california", False),
        ({"em": [h("a@b.co")]}, None, "always", True),
    ],
)
def test_ldp(user_data, opt_out, policy, flagged):
    event = {"user_data": user_data}
    if opt_out is not None:
        event["opt_out"] = opt_out
    assert apply_ldp(event, policy) is flagged
    assert (event.get("custom_data", {}).get("opt_out_type") == "LDP") is flagged
    assert event.get("opt_out") == opt_out  # passed through


def test_ldp_already_set_is_kept():
    event = {"user_data": {}, "custom_data": {"opt_out_type": "LDP,OTHER"}}
    assert apply_ldp(event, "never") is True and event["custom_data"]["opt_out_type"] == "LDP,OTHER"


def test_californian_without_country_counts():
    assert lives_in_california({"st": [h("ca")]})


def test_match_keys():
    assert match_keys({"em": ["x"], "ph": ["y"], "client_ip_address": "1.2.3.4", "zp": ["z"]}) == ["em", "ph", "address"]
    assert match_keys({"client_ip_address": "1.2.3.4", "client_user_agent": "UA", "click_id": "c", "hashed_maids": ["m"],
                       "external_id": ["e"]}) == ["external_id", "click_id", "ip_ua", "hashed_maids"]
