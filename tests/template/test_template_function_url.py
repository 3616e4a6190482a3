"""template.yaml: the optional ingest Function URL (IngestFunctionUrl) and the ingest function's
reserved concurrency (IngestReservedConcurrency), read from the SAM template and from SAM's own
offline translation (pinrelay_tools.template, the one `make lint` and `make security` check)."""

from __future__ import annotations


import pytest

from tests.template.cloudformation import condition_holds, effective_resources, rule_passes


def url_resources(resources: dict[str, dict]) -> dict[str, dict]:
    """Function URLs and the permissions that let anyone ("*") invoke a function (SAM adds
    permissions of its own for apigateway.amazonaws.com, bound to the HTTP API's routes)."""
    return {name: r for name, r in resources.items()
            if r["Type"] == "AWS::Lambda::Url" or (r["Type"] == "AWS::Lambda::Permission" and r["Properties"]["Principal"] == "*")}


@pytest.mark.parametrize("which", ["sam", "translated"])
def test_default_parameters_create_no_function_url(request, which):
    template = request.getfixturevalue(which)
    assert template["Parameters"]["IngestFunctionUrl"]["Default"] == "Disabled"
    assert url_resources(effective_resources(template)) == {}
    assert url_resources(effective_resources(template, IngestFunctionUrl="Disabled")) == {}
    # the HTTP API stays the front door either way
    http_api_types = {"AWS::Serverless::HttpApi", "AWS::ApiGatewayV2::Api"}
    assert any(r["Type"] in http_api_types for r in effective_resources(template).values())


@pytest.mark.parametrize("which", ["sam", "translated"])
def test_enabled_creates_a_public_url_and_both_invoke_permissions(request, which):
    template = request.getfixturevalue(which)
    created = url_resources(effective_resources(template, IngestFunctionUrl="Enabled"))
    assert {r["Condition"] for r in created.values()} == {"IngestFunctionUrlEnabled"}
    (url,) = [r for r in created.values() if r["Type"] == "AWS::Lambda::Url"]
    assert url["Properties"] == {"TargetFunctionArn": {"Fn::GetAtt": ["IngestFunction", "Arn"]}, "AuthType": "NONE",
                                 "InvokeMode": "BUFFERED"}
    permissions = sorted((r["Properties"] for r in created.values() if r["Type"] == "AWS::Lambda::Permission"),
                         key=lambda p: p["Action"])
    # since October 2025 a new function URL needs both: InvokeFunction only through the URL
    assert permissions == [
        {"FunctionName": {"Ref": "IngestFunction"}, "Action": "lambda:InvokeFunction", "Principal": "*",
         "InvokedViaFunctionUrl": True},
        {"FunctionName": {"Ref": "IngestFunction"}, "Action": "lambda:InvokeFunctionUrl", "Principal": "*",
         "FunctionUrlAuthType": "NONE"},
    ]
    output = template["Outputs"]["IngestFunctionUrl"]
    assert output["Condition"] == "IngestFunctionUrlEnabled"
    assert output["Value"] == {"Fn::GetAtt": [next(n for n, r in created.items() if r["Type"] == "AWS::Lambda::Url"), "FunctionUrl"]}


def test_the_url_targets_the_ingest_function_as_sam_translates_it(translated):
    function = translated["Resources"]["IngestFunction"]
    assert function["Type"] == "AWS::Lambda::Function"
    assert function["Properties"]["Handler"] == "ingest_handler.lambda_handler"


@pytest.mark.parametrize("which", ["sam", "translated"])
def test_reserved_concurrency_is_wired_to_the_parameter(request, which):
    template = request.getfixturevalue(which)
    parameter = template["Parameters"]["IngestReservedConcurrency"]
    assert parameter["Type"] == "Number" and str(parameter["Default"]) == "0" and parameter["MinValue"] == 0
    assert template["Resources"]["IngestFunction"]["Properties"]["ReservedConcurrentExecutions"] == {
        "Fn::If": ["HasIngestReservedConcurrency", {"Ref": "IngestReservedConcurrency"}, {"Ref": "AWS::NoValue"}]}
    assert not condition_holds(template, "HasIngestReservedConcurrency", {})  # 0 (the default): no reservation
    assert condition_holds(template, "HasIngestReservedConcurrency", {"IngestReservedConcurrency": "50"})


def test_new_parameters_are_in_a_console_parameter_group(sam):
    groups = sam["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    grouped = [name for group in groups for name in group["Parameters"]]
    assert {"IngestFunctionUrl", "IngestReservedConcurrency"} <= set(grouped)
    assert sorted(grouped) == sorted(sam["Parameters"])  # every parameter appears once


def test_the_function_url_has_its_own_5xx_alarm_on_lambdas_url_metrics(sam):
    def alarms(**overrides):
        return {name: r for name, r in effective_resources(sam, **overrides).items() if r["Type"] == "AWS::CloudWatch::Alarm"}

    assert "IngestFunctionUrlServerErrorRateAlarm" not in alarms()
    alarm = alarms(IngestFunctionUrl="Enabled")["IngestFunctionUrlServerErrorRateAlarm"]["Properties"]
    stats = {m["Id"]: m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert {(s["Namespace"], s["MetricName"]) for s in stats.values()} == {("AWS/Lambda", "Url5xxCount"), ("AWS/Lambda", "UrlRequestCount")}
    assert all(s["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "IngestFunction"}}] for s in stats.values())
    assert alarm["Threshold"] == 1 and alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


@pytest.mark.parametrize(("url", "reserved", "deployable"), [
    ("Enabled", "0", False),  # the default: a public URL with no throttle at all
    ("Enabled", "20", True),
    ("Enabled", "1", True),
    ("Disabled", "0", True),  # the HTTP API throttles
    ("Disabled", "20", True),
])
def test_the_function_url_cannot_be_enabled_without_reserved_concurrency(sam, url, reserved, deployable):
    assert rule_passes(sam, "FunctionUrlNeedsReservedConcurrency",
                       {"IngestFunctionUrl": url, "IngestReservedConcurrency": reserved}) is deployable
    assert not rule_passes(sam, "FunctionUrlNeedsReservedConcurrency", {"IngestFunctionUrl": "Enabled"})  # defaults
    description = sam["Rules"]["FunctionUrlNeedsReservedConcurrency"]["Assertions"][0]["AssertDescription"]
    assert "IngestReservedConcurrency must be at least 1 when IngestFunctionUrl is Enabled" in description
