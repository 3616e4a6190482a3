"""template.yaml, least privilege for the secrets (issue 11, finding 4): the public ingest function
reads routing (the account map, keys, webhook secrets) and never a conversion token; the sender reads
tokens (its own and the tokens map) and never a webhook secret, API key or the account map. Read from
SAM's offline translation (what `make lint` and `make security` check)."""

from __future__ import annotations

from typing import Any

from tests.template.cloudformation import resolve_ifs

ROUTING = {"IngestApiKeySecret", "ShopifyWebhookSecret", "WooCommerceWebhookSecret", "AccountMapSecret",
           "StripeWebhookSecret"}
TOKENS = {"ConversionTokenSecret", "AccountTokensSecret"}



def readable_secrets(translated: dict[str, Any], function: str, **parameters: str) -> set[str]:
    """The secrets (logical ids) the function's role may read with these parameter values."""
    role = resolve_ifs(translated, translated["Resources"][f"{function}Role"]["Properties"], **parameters)
    secrets = set()
    for policy in role.get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
            if any(action.startswith("secretsmanager:") for action in actions):
                resource = statement["Resource"]
                assert isinstance(resource, dict), f"{function} may read secrets by wildcard: {resource}"
                secrets.add(resource["Fn::Sub"][1]["secretArn"]["Ref"])
    return secrets


def environment(translated: dict[str, Any], function: str) -> dict[str, Any]:
    return translated["Resources"][function]["Properties"]["Environment"]["Variables"]


def test_ingest_reads_routing_and_never_a_token(translated):
    assert readable_secrets(translated, "IngestFunction") == ROUTING
    assert environment(translated, "IngestFunction")["ACCOUNT_MAP_SECRET_NAME"] == {"Ref": "AccountMapSecretName"}
    assert not {name for name in environment(translated, "IngestFunction") if "TOKEN" in name}


def test_the_sender_reads_tokens_and_never_a_webhook_secret_key_or_the_account_map(translated):
    assert readable_secrets(translated, "SenderFunction") == TOKENS
    variables = environment(translated, "SenderFunction")
    assert variables["ACCOUNT_TOKENS_SECRET_NAME"] == {"Ref": "AccountTokensSecretName"}
    assert not {name for name in variables if "WEBHOOK" in name or "API_KEY" in name or "ACCOUNT_MAP" in name}


def test_the_offline_import_reads_no_secret(translated):
    assert readable_secrets(translated, "OfflineImportFunction") == set()


def test_the_tokens_secret_starts_as_an_empty_map(sam):
    secret = sam["Resources"]["AccountTokensSecret"]["Properties"]
    assert secret["Name"] == {"Ref": "AccountTokensSecretName"} and secret["SecretString"] == "{}"
    assert sam["Parameters"]["AccountTokensSecretName"]["Default"] == "pinrelay/account-tokens"
    assert sam["Resources"]["AccountMapSecret"]["Properties"]["SecretString"] == '{"accounts": []}'


def test_the_default_accounts_shops_are_parameters_of_the_ingest_function(sam, translated):
    for parameter, variable in (("ShopifyShopDomains", "SHOPIFY_SHOP_DOMAINS"), ("WooCommerceSources", "WOOCOMMERCE_SOURCES")):
        assert sam["Parameters"][parameter]["Default"] == ""  # empty: any shop that signs with the secret
        assert environment(translated, "IngestFunction")[variable] == {"Ref": parameter}


def test_every_secret_the_stack_creates_starts_as_what_pinrelay_reads_as_no_secret(sam):
    """A secret nobody has set yet lets nobody in: each the stack creates holds the placeholder
    pinrelay.accounts.PLACEHOLDER (or, for the maps, an empty map)."""
    from pinrelay.accounts import PLACEHOLDER

    created = {name: resource["Properties"]["SecretString"] for name, resource in sam["Resources"].items()
               if resource["Type"] == "AWS::SecretsManager::Secret"}
    maps = {name: value for name, value in created.items() if value.lstrip().startswith("{")}
    assert len(created) > len(maps) >= 1
    assert {value for name, value in created.items() if name not in maps} == {PLACEHOLDER}
