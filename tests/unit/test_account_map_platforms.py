"""Stripe accounts and BigCommerce stores in the account map (pinrelay.accounts): several of each,
each leading to one ad account, secrets of at least 32 characters and never shared, errors naming the
entry and field, never a secret."""

from __future__ import annotations

import json

import pytest

from pinrelay.accounts import (
    DefaultAccount,
    InvalidAccountMap,
    InvalidStoreTokens,
    check_account_map,
    parse_store_tokens,
)
from tests.unit.test_account_map import account_map
from tests.unit.test_account_map import refusal as map_refusal

EU_STRIPE = "whsec_" + "e" * 32
US_STRIPE = "whsec_" + "u" * 32
EU_STORE_SECRET = "eu-bigcommerce-header-secret-" + "1" * 8
US_STORE_SECRET = "us-bigcommerce-header-secret-" + "2" * 8
EU = {"name": "eu", "ad_account_id": "111", "stripe_webhook_secrets": [EU_STRIPE], "stripe_api_key": "rk_live_eu",
      "bigcommerce_store_hashes": ["eustore1", "eustore2"], "bigcommerce_webhook_secrets": [EU_STORE_SECRET]}
US = {"name": "us", "ad_account_id": "222", "stripe_webhook_secrets": [US_STRIPE],
      "bigcommerce_store_hashes": ["usstore"], "bigcommerce_webhook_secrets": [US_STORE_SECRET]}


def refusal(*entries: dict, default: DefaultAccount = DefaultAccount()) -> str:
    message = map_refusal(*entries, default=default)
    for secret in (EU_STRIPE, US_STRIPE, EU_STORE_SECRET, US_STORE_SECRET, "rk_live_eu"):
        assert secret not in message
    return message


def test_several_stripe_accounts_and_stores_each_route_to_their_ad_account():
    accounts = account_map(EU, US)
    assert [(route.name, secret) for route, secret in accounts.stripe_secrets()] == [("eu", EU_STRIPE), ("us", US_STRIPE)]
    assert accounts.for_bigcommerce_store("eustore2").ad_account_id == "111"
    assert accounts.for_bigcommerce_store("usstore").ad_account_id == "222"
    assert accounts.for_bigcommerce_store("other") is None and accounts.for_bigcommerce_store(None) is None
    assert accounts.accounts[0].stripe_api_key.get_secret_value() == "rk_live_eu"
    assert accounts.accounts[1].stripe_api_key is None


def test_a_store_in_two_entries_is_refused():
    assert "BigCommerce store usstore is in entry 1 (\"eu\") and entry 2 (\"us\")" in refusal(
        {**EU, "bigcommerce_store_hashes": ["usstore"]}, US)


@pytest.mark.parametrize("field", ["stripe_webhook_secrets", "bigcommerce_webhook_secrets"])
def test_a_secret_in_two_entries_is_refused(field):
    assert "use the same webhook secret" in refusal(EU, {**US, field: EU[field]})


@pytest.mark.parametrize("field", ["stripe_webhook_secrets", "bigcommerce_webhook_secrets"])
def test_secrets_shorter_than_32_characters_are_refused_naming_the_entry_and_field(field):
    message = refusal({**EU, field: ["short-one"]})
    assert f'entry 1 ("eu"), {field}[0]: shorter than 32 characters' in message


def test_the_placeholder_is_no_secret_and_no_key():
    entry = account_map({**EU, "stripe_webhook_secrets": ["REPLACE_ME"], "stripe_api_key": "REPLACE_ME"}).accounts[0]
    assert entry.stripe_webhook_secrets == [] and entry.stripe_api_key is None


def test_an_entry_may_not_take_the_default_accounts_store_or_secrets():
    default = DefaultAccount(bigcommerce_store_hash="eustore1")
    assert "BigCommerce store eustore1 is BIGCOMMERCE_STORE_HASH" in refusal(EU, default=default)
    with pytest.raises(InvalidAccountMap) as refused:
        check_account_map(json.dumps({"accounts": [EU]}), DefaultAccount(),
                          lambda: ([], [], [], [EU_STRIPE], []))
    assert "its stripe_webhook_secrets is the deployment's own Stripe webhook secret" in str(refused.value)
    with pytest.raises(InvalidAccountMap, match="deployment's own BigCommerce"):
        check_account_map(json.dumps({"accounts": [EU]}), DefaultAccount(), lambda: ([], [], [], [], [EU_STORE_SECRET]))
    # the three credentials of the other platforms are still enough for a caller that has only those
    assert check_account_map(json.dumps({"accounts": [EU]}), DefaultAccount(), lambda: ([], [], [])).accounts[0].name == "eu"


@pytest.mark.parametrize("store", ["eu-store", "stores/eu", ""])
def test_a_store_hash_that_is_not_one_is_refused(store):
    assert "bigcommerce_store_hashes[0]: is not a BigCommerce store hash" in refusal({**EU, "bigcommerce_store_hashes": [store]})


# -- the store tokens map (the fetcher's) ---------------------------------------------------------


def test_the_store_tokens_map_gives_each_store_its_token_as_stored_and_skips_placeholders():
    raw = '{"abc123": "tok 1", "def456": "REPLACE_ME", "x9": " "}'
    assert parse_store_tokens(raw) == {"abc123": "tok 1"}
    assert parse_store_tokens("") == {}


@pytest.mark.parametrize(("raw", "said"), [("[1]", "it must be a JSON object"), ("{not json", "not JSON"),
                                           ('{"abc-1": "t0ken"}', "1 key(s) are not store hashes"),
                                           ('{"abc": 5}', "the token of store abc is not a string")])
def test_a_broken_store_tokens_map_is_refused_without_quoting_a_token(raw, said):
    with pytest.raises(InvalidStoreTokens, match="store tokens map") as problem:
        parse_store_tokens(raw)
    assert said in str(problem.value)
    assert "abc-1" not in str(problem.value) and "t0ken" not in str(problem.value)
