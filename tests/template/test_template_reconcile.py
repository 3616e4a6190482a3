"""template.yaml: the optional daily order reconciliation (ShopifyAdminTokenSecretName,
ShopifyShopDomain): off by default, a daily schedule, read-only least-privilege policies, the
OrdersMissing alarm; read from the SAM template and from SAM's offline translation (what
`make lint` and `make security` check)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pinrelay.config import ReconcileSettings
from pinrelay.reconcile import OrderClass
from pinrelay_tools.template import REPO_ROOT
from tests.template.cloudformation import effective_resources, rule_passes

ENABLED = {"ShopifyAdminTokenSecretName": "pinrelay/shopify-admin-token", "ShopifyShopDomain": "shop.myshopify.com"}



def reconcile_resources(resources: dict[str, dict]) -> dict[str, dict]:
    return {name: r for name, r in resources.items() if name.startswith("Reconcile") or name == "OrdersMissingAlarm"}


@pytest.mark.parametrize("which", ["sam", "translated"])
def test_nothing_is_created_unless_the_token_secret_and_the_shop_are_set(request, which):
    template = request.getfixturevalue(which)
    assert template["Parameters"]["ShopifyAdminTokenSecretName"]["Default"] == ""
    assert template["Parameters"]["ShopifyShopDomain"]["Default"] == ""
    assert reconcile_resources(effective_resources(template)) == {}
    assert reconcile_resources(effective_resources(template, ShopifyAdminTokenSecretName="x")) == {}
    enabled = reconcile_resources(effective_resources(template, **ENABLED))
    assert {r["Condition"] for r in enabled.values()} == {"ReconcileEnabled"}
    expected = {"ReconcileFunction", "ReconcileFunctionLogGroup", "OrdersMissingAlarm", "ReconcileErrorsAlarm"}
    if which == "translated":  # SAM's own: the role, the EventBridge rule and its invoke permission
        expected |= {"ReconcileFunctionRole", "ReconcileFunctionDaily", "ReconcileFunctionDailyPermission"}
    assert set(enabled) == expected


def test_one_without_the_other_is_refused_at_deploy(sam):
    def passes(**values: str) -> bool:
        return rule_passes(sam, "ReconcileNeedsTokenAndShop", values)

    assert passes() and passes(**ENABLED)
    assert not passes(ShopifyAdminTokenSecretName="x") and not passes(ShopifyShopDomain="shop.myshopify.com")


def test_it_runs_daily_on_the_reconcile_handler(sam, translated):
    function = sam["Resources"]["ReconcileFunction"]["Properties"]
    assert function["Handler"] == "reconcile_handler.lambda_handler"
    assert (REPO_ROOT / function["CodeUri"] / "reconcile_handler.py").is_file()
    assert function["Events"]["Daily"]["Type"] == "Schedule"
    expression = translated["Resources"]["ReconcileFunctionDaily"]["Properties"]["ScheduleExpression"]
    minute, hour, day, month, weekday, year = expression.removeprefix("cron(").removesuffix(")").split()
    assert (minute.isdigit(), hour.isdigit(), day, month, weekday, year) == (True, True, "*", "*", "?", "*")  # once a day
    assert function["Timeout"] == 900


def test_shopify_is_read_only_while_the_rest_still_fits(sam):
    """The Admin API client starts no request and no wait that could run into the time the ledger reads,
    the dead-letter queue and the metrics need after it (AFTER_SHOPIFY_SECONDS), whatever Shopify answers."""
    from pinrelay.adapters import aws, bounded_http
    from pinrelay.adapters.shopify_admin import MAX_WAIT_SECONDS, ShopifyAdminClient
    from pinrelay_local.stack import import_module_from_path

    handler = import_module_from_path("reconcile_handler", REPO_ROOT / "functions" / "reconcile" / "reconcile_handler.py")
    timeout = sam["Resources"]["ReconcileFunction"]["Properties"]["Timeout"]
    request = bounded_http.worst_call_seconds(ShopifyAdminClient("a.myshopify.com", "t").timeout_seconds)
    first_request = aws.worst_call_seconds("secretsmanager") + MAX_WAIT_SECONDS + request
    assert first_request + handler.AFTER_SHOPIFY_SECONDS < timeout
    # the rest: a ledger read and a dead-letter queue read at their worst, at least
    assert handler.AFTER_SHOPIFY_SECONDS > aws.worst_call_seconds("dynamodb") + aws.worst_call_seconds("sqs")


def test_the_environment_is_what_the_settings_read(sam):
    variables = sam["Resources"]["ReconcileFunction"]["Properties"]["Environment"]["Variables"]
    globals_ = sam["Globals"]["Function"]["Environment"]["Variables"]
    env = {name: "x" for name in {**globals_, **variables}} | {"PINTEREST_AD_ACCOUNT_ID": "549755885175",
                                                               "SHOPIFY_SHOP_DOMAIN": "shop.myshopify.com",
                                                               "SHOPIFY_ADMIN_API_VERSION": variables["SHOPIFY_ADMIN_API_VERSION"],
                                                               "SHOPIFY_TEST_ORDERS": "test", "CONSENT_POLICY": "strict",
                                                               "LDP_POLICY": "california"}
    settings = ReconcileSettings.from_env(env)
    assert settings.dedup_table_name == settings.dead_letter_queue_url == settings.shopify_admin_token_secret_name == "x"
    assert settings.consent_policy.describe() == "strict; ldp=california"
    assert variables["DEDUP_TABLE_NAME"] == {"Ref": "DedupTable"}
    assert variables["DEAD_LETTER_QUEUE_URL"] == {"Ref": "EventsDeadLetterQueue"}
    assert variables["SHOPIFY_ADMIN_TOKEN_SECRET_NAME"] == {"Ref": "ShopifyAdminTokenSecretName"}


def test_the_role_may_only_read_the_ledger_peek_the_dead_letter_queue_and_read_the_token(translated):
    role = translated["Resources"]["ReconcileFunctionRole"]["Properties"]
    statements = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    granted = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            granted[action] = statement["Resource"]
    assert granted == {
        "dynamodb:GetItem": {"Fn::GetAtt": ["DedupTable", "Arn"]},
        "dynamodb:BatchGetItem": {"Fn::GetAtt": ["DedupTable", "Arn"]},
        "sqs:ReceiveMessage": {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]},
        "sqs:ChangeMessageVisibility": {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]},
        "secretsmanager:GetSecretValue": {"Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:"
                                                     "${AWS::AccountId}:secret:${ShopifyAdminTokenSecretName}-??????"},
    }
    # besides its logs and X-Ray, nothing managed (no queue-wide or table-wide write)
    assert {arn.rsplit("/", 1)[-1] for arn in role["ManagedPolicyArns"]} == {"AWSLambdaBasicExecutionRole",
                                                                             "AWSXrayWriteOnlyAccess"}


def test_missing_orders_raise_an_alarm_on_the_metric_the_function_writes(sam):
    alarm = sam["Resources"]["OrdersMissingAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (sam["Globals"]["Function"]["Environment"]["Variables"]
                                                         ["POWERTOOLS_METRICS_NAMESPACE"], OrderClass.MISSING.metric_name)
    assert alarm["Dimensions"] == [{"Name": "service", "Value": sam["Globals"]["Function"]["Environment"]["Variables"]
                                    ["POWERTOOLS_SERVICE_NAME"]}]
    assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm["Period"]) == (0, "GreaterThanThreshold", 86400)
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    errors = sam["Resources"]["ReconcileErrorsAlarm"]["Properties"]
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "ReconcileFunction"}}]


def test_the_parameters_are_in_a_console_group(sam):
    groups = sam["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    grouped = [name for group in groups for name in group["Parameters"]]
    assert grouped.count("ShopifyAdminTokenSecretName") == grouped.count("ShopifyShopDomain") == 1
    assert Path(REPO_ROOT / "functions" / "reconcile" / "requirements.txt").is_file()


def environment(sam: dict[str, Any], function: str, parameters: dict[str, str]) -> dict[str, str]:
    """``function``'s variables (Globals' and its own) whose value is a parameter, as deployed with ``parameters``."""
    params = {key: str(p.get("Default", "")) for key, p in sam["Parameters"].items()} | parameters
    variables = sam["Globals"]["Function"]["Environment"]["Variables"] | sam["Resources"][function]["Properties"]["Environment"]["Variables"]
    return {name: params[value["Ref"]] for name, value in variables.items() if isinstance(value, dict) and value.get("Ref") in params}


@pytest.mark.parametrize("parameters", [{}, {"ShopifyTestOrders": "skip", "ShopifySkipSourceNames": "shopify_draft_order, subscription_contract",
                                             "ShopifySkipTags": "Wholesale,staff"}])
def test_ingest_and_reconcile_read_one_order_policy_from_the_parameters(sam, parameters):
    from pinrelay.config import IngestSettings
    from pinrelay.sources.shopify import OrderPolicy

    account = {"PinterestAdAccountId": "549755885175"}
    ingest = IngestSettings.from_env(environment(sam, "IngestFunction", {**account, **parameters}) | {"QUEUE_URL": "q"})
    reconcile = ReconcileSettings.from_env(environment(sam, "ReconcileFunction", {**account, **ENABLED, **parameters})
                                           | {"DEDUP_TABLE_NAME": "t", "DEAD_LETTER_QUEUE_URL": "d"})
    assert ingest.order_policy() == reconcile.order_policy()
    if not parameters:
        assert ingest.order_policy() == OrderPolicy()  # the template's defaults are the domain's
    else:
        assert ingest.order_policy() == OrderPolicy(test_orders="skip", skip_source_names=frozenset({"shopify_draft_order", "subscription_contract"}),
                                                    skip_tags=frozenset({"wholesale", "staff"}))


def test_the_order_policy_parameters_are_in_a_console_group(sam):
    groups = sam["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    assert ["ShopifyTestOrders", "ShopifySkipSourceNames", "ShopifySkipTags"] in [g["Parameters"] for g in groups]
