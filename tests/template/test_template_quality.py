"""template.yaml: the optional event quality check (AdsReadTokenSecretName): nothing of it by default;
with a secret name, the hourly function, its schedule, a policy reading that secret only, the two
quality alarms and the check's errors alarm, and their place on the dashboard. Read from the SAM
template and from SAM's offline translation (what `make lint` and `make security` check)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from pinrelay_tools.template import REPO_ROOT
from tests.template.cloudformation import condition_holds, effective_resources, resolve_ifs

QUALITY = {"AdsReadTokenSecretName": "pinrelay/pinterest-ads-read-token"}
ALARMS = {"EventQualityStatusAlarm", "CheckoutOverlapAlarm", "EventQualityCheckErrorsAlarm"}



def quality_resources(resources: dict[str, dict]) -> set[str]:
    return {name for name in resources if "Quality" in name or "AdsRead" in name or "Overlap" in name}


@pytest.mark.parametrize("which", ["sam", "translated"])
def test_nothing_of_it_by_default_everything_with_a_secret_name(request, which):
    template = request.getfixturevalue(which)
    parameter = template["Parameters"]["AdsReadTokenSecretName"]
    assert parameter["Default"] == "" and re.fullmatch(parameter["AllowedPattern"], "")
    assert re.fullmatch(parameter["AllowedPattern"], QUALITY["AdsReadTokenSecretName"])
    assert not condition_holds(template, "HasAdsReadToken", {})
    assert quality_resources(effective_resources(template)) == set()
    created = quality_resources(effective_resources(template, **QUALITY))
    expected = {"AdsReadTokenSecret", "QualityFunction", "QualityFunctionLogGroup"} | ALARMS
    if which == "translated":  # what SAM makes of the function: its role, schedule rule, permission, invoke config
        expected |= {"QualityFunctionRole", "QualityFunctionHourly", "QualityFunctionHourlyPermission",
                     "QualityFunctionEventInvokeConfig"}
    assert created == expected
    assert {template["Resources"][name]["Condition"] for name in created} == {"HasAdsReadToken"}


def test_the_function_runs_hourly_with_its_settings(sam, translated):
    function = sam["Resources"]["QualityFunction"]["Properties"]
    assert (function["CodeUri"], function["Handler"], function["Timeout"]) == ("functions/quality/", "quality_handler.lambda_handler", 60)
    assert (REPO_ROOT / "functions" / "quality" / "quality_handler.py").is_file()
    assert function["Events"]["Hourly"] == {"Type": "Schedule", "Properties": {
        "Schedule": "rate(1 hour)", "Description": "pinrelay event quality check (Pinterest EQS)"}}
    assert function["EventInvokeConfig"]["MaximumRetryAttempts"] == 0
    assert function["Environment"]["Variables"] == {
        "PINTEREST_API_URL": "https://api.pinterest.com/v5", "ADS_READ_TOKEN_SECRET_NAME": {"Ref": "AdsReadTokenSecretName"},
        "PINTEREST_TIMEOUT_SECONDS": "10", "EQS_LOOKBACK_PERIOD": "1d"}
    rule = translated["Resources"]["QualityFunctionHourly"]["Properties"]
    assert rule["ScheduleExpression"] == "rate(1 hour)"
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["QualityFunction", "Arn"]}
    permission = translated["Resources"]["QualityFunctionHourlyPermission"]["Properties"]
    assert permission["Principal"] == "events.amazonaws.com"
    assert permission["SourceArn"] == {"Fn::GetAtt": ["QualityFunctionHourly", "Arn"]}
    secret = sam["Resources"]["AdsReadTokenSecret"]["Properties"]
    assert secret["Name"] == {"Ref": "AdsReadTokenSecretName"} and secret["SecretString"] == "REPLACE_ME"


def role_statements(translated: dict[str, Any], function: str) -> list[dict[str, Any]]:
    role = resolve_ifs(translated, translated["Resources"][f"{function}Role"]["Properties"])
    return [statement for policy in role.get("Policies", []) for statement in policy["PolicyDocument"]["Statement"]]


def test_the_function_reads_its_secret_and_nothing_else_and_no_other_function_reads_it(translated):
    (statement,) = role_statements(translated, "QualityFunction")
    assert statement["Action"] == ["secretsmanager:GetSecretValue"]
    assert statement["Resource"] == {"Fn::Sub": ["${secretArn}", {"secretArn": {"Ref": "AdsReadTokenSecret"}}]}
    managed = translated["Resources"]["QualityFunctionRole"]["Properties"]["ManagedPolicyArns"]
    assert {arn.rsplit("/", 1)[-1] for arn in managed} == {"AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess"}
    for function in ("IngestFunction", "SenderFunction", "OfflineImportFunction"):
        assert "AdsReadTokenSecret" not in json.dumps(role_statements(translated, function))


def test_the_alarms(sam):
    resources = sam["Resources"]
    status = resources["EventQualityStatusAlarm"]["Properties"]
    assert (status["Namespace"], status["MetricName"], status["Statistic"]) == ("Pinrelay", "EventQualityStatus", "Minimum")
    assert status["Dimensions"] == [{"Name": "service", "Value": "pinrelay"}, {"Name": "ingestion_source", "Value": "CONVERSIONS_API"}]
    # 1 is NEEDS_IMPROVEMENT (pinrelay.quality.STATUS_VALUES)
    assert (status["Threshold"], status["ComparisonOperator"], status["Period"]) == (1, "LessThanOrEqualToThreshold", 3600)
    overlap = resources["CheckoutOverlapAlarm"]["Properties"]
    assert (overlap["MetricName"], overlap["ComparisonOperator"]) == ("EventIdOverlap", "LessThanThreshold")
    assert overlap["Threshold"] == {"Ref": "CheckoutOverlapThresholdPercent"}
    assert {d["Name"]: d["Value"] for d in overlap["Dimensions"]} == {
        "service": "pinrelay", "ingestion_source": "CONVERSIONS_API", "source_platform": "WEB", "event_name": "checkout"}
    threshold = sam["Parameters"]["CheckoutOverlapThresholdPercent"]
    assert (threshold["Default"], threshold["MinValue"], threshold["MaxValue"]) == (50, 0, 100)
    errors = resources["EventQualityCheckErrorsAlarm"]["Properties"]
    assert (errors["Namespace"], errors["MetricName"]) == ("AWS/Lambda", "Errors")
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "QualityFunction"}}]
    for name in ALARMS:
        assert resources[name]["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert status["TreatMissingData"] == overlap["TreatMissingData"] == "ignore"  # one value an hour


def rendered_dashboard(sam: dict[str, Any], quality: bool, bigcommerce: bool = False) -> dict[str, Any]:
    """The dashboard as CloudFormation writes it: Fn::Sub's variables from the branch of their Fn::If,
    parameters at their defaults, other references (${Alarm.Arn}, ${AWS::Region}) kept as names."""
    body, variables = sam["Resources"]["PipelineDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    holds = {"HasAdsReadToken": quality, "BigCommerceEnabled": bigcommerce}
    for name, value in variables.items():
        condition, when_true, when_false = value["Fn::If"]
        chosen = when_true if holds[condition] else when_false
        body = body.replace("${" + name + "}", chosen["Fn::Sub"] if isinstance(chosen, dict) else chosen)
    for name, parameter in sam["Parameters"].items():
        body = body.replace("${" + name + "}", str(parameter.get("Default", "")))
    return json.loads(re.sub(r"\$\{([\w.:]+)\}", r"\1", body))


def test_the_dashboard_shows_the_quality_widgets_and_alarms_only_when_they_exist(sam):
    def alarms(dashboard):
        widget = next(w for w in dashboard["widgets"] if w["type"] == "alarm")
        return {alarm.removesuffix(".Arn") for alarm in widget["properties"]["alarms"]}

    def metric_names(dashboard):  # metric names and search expressions of every metric widget
        names = set()
        for widget in (w for w in dashboard["widgets"] if w["type"] == "metric"):
            for line in widget["properties"]["metrics"]:
                names.add(line[1] if isinstance(line[0], str) else line[0].get("expression", ""))
        return names

    without, with_quality = rendered_dashboard(sam, quality=False), rendered_dashboard(sam, quality=True)
    assert not alarms(without) & ALARMS and ALARMS <= alarms(with_quality)
    assert len(with_quality["widgets"]) == len(without["widgets"]) + 2
    assert {"EventQualityStatus", "EventIdOverlap"} <= metric_names(with_quality)
    assert any("EventQualityCoverage" in name for name in metric_names(with_quality))
    assert not {"EventQualityStatus", "EventIdOverlap"} & metric_names(without)
    overlap_widget = next(w for w in with_quality["widgets"] if "checkout overlap" in w["properties"].get("title", ""))
    assert overlap_widget["properties"]["annotations"]["horizontal"][0]["value"] == 50


def test_its_calls_fit_in_its_timeout(sam):
    """The secret, then each EQS call at its worst (bounded_http: twice the timeout, whatever Pinterest,
    or something in its place, answers), then the metrics: inside the Timeout."""
    from pinrelay.adapters import aws, bounded_http
    from pinrelay_local.stack import import_module_from_path

    function = sam["Resources"]["QualityFunction"]["Properties"]
    handler = import_module_from_path("quality_handler", REPO_ROOT / "functions" / "quality" / "quality_handler.py")
    call = bounded_http.worst_call_seconds(float(function["Environment"]["Variables"]["PINTEREST_TIMEOUT_SECONDS"]))
    worst = aws.worst_call_seconds("secretsmanager") + len(handler.INGESTION_SOURCES) * call + handler.METRICS_SECONDS
    assert worst < function["Timeout"]
