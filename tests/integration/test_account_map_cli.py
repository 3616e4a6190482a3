"""`pinrelay account-map`: a map is checked as ingest checks it before the secret changes, and only
a map that passes is stored. Against moto server: a CloudFormation stack whose parameters are
template.yaml's own (names and defaults), and the secrets they name."""

import hashlib
import io
import json
import uuid
from pathlib import Path

import boto3
import pytest

from pinrelay_cli.account_map import EXIT_INVALID, EXIT_OK
from pinrelay_cli.pinterest_access import EXIT_USAGE
from pinrelay_cli.main import build_parser
from pinrelay_tools.template import load_template
from tests.integration.handler_stack import EU_ACCOUNT as EU

REPO = Path(__file__).resolve().parents[2]
# the stack parameters the command reads: each must be one of template.yaml's
READ_PARAMETERS = ("PinterestAdAccountId", "IngestApiKeySecretName", "ShopifyWebhookSecretName",
                   "WooCommerceWebhookSecretName", "AccountMapSecretName", "AccountTokensSecretName",
                   "ShopifyShopDomains", "WooCommerceSources")
OWN_ACCOUNT = "549755885175"
OWN_SHOPIFY_SECRET = "the-deployments-shopify-secret-long-enough-to-resist-guessing"
OWN_API_KEY = "the-deployments-api-key-long-enough-to-resist-guessing"
US = {"name": "us-wholesale", "ad_account_id": "444555666",
      "woocommerce_sources": ["https://wholesale.example"], "woocommerce_webhook_secrets": ["us-woo-secret-long-enough-to-resist-guessing"]}


@pytest.fixture
def clients(moto_endpoint):
    kwargs = dict(endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="testing",
                  aws_secret_access_key="testing")
    return {name: boto3.client(name, **kwargs) for name in ("cloudformation", "secretsmanager")}


@pytest.fixture
def deployment(clients):
    """A stack with template.yaml's parameters (its defaults, the secret names made unique) and the
    secrets they name, as `sam deploy` leaves them once the operator set the deployment's own."""
    template = load_template(REPO / "template.yaml")
    suffix = uuid.uuid4().hex[:8]
    parameters = {name: dict(template["Parameters"][name]) for name in READ_PARAMETERS}
    values = {name: str(p.get("Default", "")) for name, p in parameters.items()}
    values["PinterestAdAccountId"] = OWN_ACCOUNT
    for name in READ_PARAMETERS:
        if name.endswith("SecretName"):
            values[name] = f"{values[name]}-{suffix}"
    secrets = {
        "IngestApiKeySecretName": "sha256:" + hashlib.sha256(OWN_API_KEY.encode()).hexdigest(),
        "ShopifyWebhookSecretName": OWN_SHOPIFY_SECRET,
        "WooCommerceWebhookSecretName": "REPLACE_ME",  # never set: no secret
        "AccountMapSecretName": '{"accounts": []}',
        "AccountTokensSecretName": json.dumps({EU["ad_account_id"]: "eu-token"}),
    }
    for parameter, value in secrets.items():
        clients["secretsmanager"].create_secret(Name=values[parameter], SecretString=value)
    stack_name = f"pinrelay-{suffix}"
    clients["cloudformation"].create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps({"Parameters": parameters, "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}),
        Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in values.items()],
    )
    return {"stack_name": stack_name, "parameters": values}


def run(clients, *argv, stdin=""):
    args = build_parser().parse_args(["account-map", *argv])
    out, err = io.StringIO(), io.StringIO()
    status = args._run(args, cloudformation=clients["cloudformation"], secretsmanager=clients["secretsmanager"],
                       stdin=io.StringIO(stdin), out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def map_file(tmp_path, *entries) -> str:
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps({"accounts": list(entries)}), encoding="utf-8")
    return str(path)


def stored_map(clients, deployment) -> str:
    name = deployment["parameters"]["AccountMapSecretName"]
    return clients["secretsmanager"].get_secret_value(SecretId=name)["SecretString"]


def test_a_valid_map_is_described_entry_by_entry(clients, tmp_path):
    status, out, _ = run(clients, "check", map_file(tmp_path, EU, US))
    assert status == EXIT_OK
    assert "account map valid: 2 entries" in out
    assert "eu: ad account 111222333; 1 API key(s), 1 Shopify domain(s) with 1 secret(s)" in out
    assert "us-wholesale: ad account 444555666" in out and "1 WooCommerce source(s) with 1 secret(s)" in out
    assert "give --stack-name" in out  # says what it did not check


def test_a_map_ingest_would_refuse_is_refused_naming_the_problem_never_the_secret(clients, tmp_path):
    shared = {**US, "shopify_shop_domains": ["us-shop.myshopify.com"], "shopify_webhook_secrets": ["eu-shop-secret-long-enough-to-resist-guessing"]}
    status, out, _ = run(clients, "check", map_file(tmp_path, EU, shared))
    assert status == EXIT_INVALID
    assert 'account map refused: entry 1 ("eu") and entry 2 ("us-wholesale") use the same webhook secret' in out
    assert "eu-shop-secret-long-enough-to-resist-guessing" not in out


def test_a_map_with_a_token_in_it_is_refused(clients, tmp_path):
    status, out, _ = run(clients, "check", map_file(tmp_path, {**EU, "conversion_token": "pina_secret_token"}))
    assert status == EXIT_INVALID
    assert "conversion_token does not belong in the account map" in out
    assert "pina_secret_token" not in out


def test_only_the_stack_check_finds_an_entry_reusing_the_deployments_own_secret(clients, deployment, tmp_path):
    reusing = {**EU, "shopify_webhook_secrets": [OWN_SHOPIFY_SECRET]}
    path = map_file(tmp_path, reusing)
    assert run(clients, "check", path)[0] == EXIT_OK  # on its own the map is fine

    status, out, _ = run(clients, "check", path, "--stack-name", deployment["stack_name"])
    assert status == EXIT_INVALID
    assert "is the deployment's own Shopify webhook secret" in out
    assert OWN_SHOPIFY_SECRET not in out


def test_the_stack_check_finds_an_entry_reusing_the_deployments_api_key(clients, deployment, tmp_path):
    reusing = {**EU, "api_key_sha256": [hashlib.sha256(OWN_API_KEY.encode()).hexdigest()]}
    status, out, _ = run(clients, "check", map_file(tmp_path, reusing), "--stack-name", deployment["stack_name"])
    assert status == EXIT_INVALID
    assert "is the digest of one of the deployment's own ingest API keys" in out


def test_put_stores_a_map_that_passes_and_warns_of_an_ad_account_without_a_token(clients, deployment, tmp_path):
    path = map_file(tmp_path, EU, US)
    status, out, _ = run(clients, "put", path, "--stack-name", deployment["stack_name"])
    assert status == EXIT_OK
    assert stored_map(clients, deployment) == Path(path).read_text(encoding="utf-8")
    assert f"checked against stack {deployment['stack_name']}" in out
    assert "stored in secret" in out
    assert "ad account 444555666 has no token in the tokens map" in out  # US has none
    assert "ad account 111222333 has no token" not in out  # EU has one


def test_put_stores_nothing_when_the_map_fails(clients, deployment, tmp_path):
    before = stored_map(clients, deployment)
    reusing = {**EU, "shopify_webhook_secrets": [OWN_SHOPIFY_SECRET]}
    status, out, _ = run(clients, "put", map_file(tmp_path, reusing), "--stack-name", deployment["stack_name"])
    assert status == EXIT_INVALID
    assert "nothing was stored" in out
    assert stored_map(clients, deployment) == before


def test_put_needs_the_stack(clients, tmp_path):
    status, _, err = run(clients, "put", map_file(tmp_path, EU))
    assert status == EXIT_USAGE
    assert "put needs --stack-name" in err


def test_the_map_can_come_from_standard_input(clients):
    status, out, _ = run(clients, "check", "-", stdin=json.dumps({"accounts": [EU]}))
    assert status == EXIT_OK and "account map valid: 1 entry" in out


def test_unreadable_input_says_what_is_wrong(clients, tmp_path, deployment):
    assert run(clients, "check", str(tmp_path / "missing.json"))[0] == EXIT_USAGE
    not_json = tmp_path / "bad.json"
    not_json.write_text("{accounts: [}", encoding="utf-8")
    status, out, _ = run(clients, "check", str(not_json))
    assert status == EXIT_INVALID and "not JSON" in out
    status, _, err = run(clients, "check", map_file(tmp_path, EU), "--stack-name", "no-such-stack")
    assert status == EXIT_USAGE and "stack no-such-stack could not be read" in err
