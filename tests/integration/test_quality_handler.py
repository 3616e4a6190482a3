"""functions/quality: the scheduled event quality check, run as Lambda runs it (a process of its own,
pinrelay_local.lambda_process) with the environment template.yaml gives it, its secret in moto
server and Pinterest's EQS answered by the stand-in; what it writes to stdout is what CloudWatch
would read as EMF metrics."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from pinrelay_local.lambda_process import invoke
from pinrelay_local.pinterest_standin import DEFAULT_ADS_READ_TOKEN, PinterestStandIn
from pinrelay_tools.template import REPO_ROOT, load_template

AD_ACCOUNT = "549755885175"
SCHEDULED_EVENT = {  # what an EventBridge schedule (SAM `Type: Schedule`) sends
    "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
    "source": "aws.events", "account": "123456789012", "time": "2026-12-01T10:00:00Z", "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/pinrelay-QualityFunctionHourly"], "detail": {},
}


@pytest.fixture(scope="module")
def function() -> dict[str, Any]:
    template = load_template(REPO_ROOT / "template.yaml")
    resource = template["Resources"]["QualityFunction"]["Properties"]
    return {"globals": template["Globals"]["Function"], "properties": resource,
            "defaults": {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}}


def lambda_environment(function: dict[str, Any], parameters: dict[str, str], pinterest_url: str,
                       moto_endpoint: str) -> dict[str, str]:
    """The function's variables as CloudFormation sets them (Globals, then its own; Refs to
    parameters resolved, their defaults unless given), the Pinterest URL pointed at the stand-in,
    AWS at moto server."""
    parameters = function["defaults"] | parameters
    variables = {**function["globals"]["Environment"]["Variables"], **function["properties"]["Environment"]["Variables"]}
    env = {name: parameters[value["Ref"]] if isinstance(value, dict) else str(value) for name, value in variables.items()}
    assert env["PINTEREST_API_URL"] == "https://api.pinterest.com/v5"
    env["PINTEREST_API_URL"], env["ALLOW_LOOPBACK_HTTP"] = pinterest_url, "true"
    return env | {"AWS_ENDPOINT_URL": moto_endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                  "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture
def standin():
    with PinterestStandIn() as pin:
        yield pin


@pytest.fixture
def run_check(function, standin, aws, moto_endpoint):
    def run(secret_value: str = DEFAULT_ADS_READ_TOKEN, *, url: str | None = None, loopback: bool = True,
            timeout_s: float | None = None):
        name = f"pinrelay/ads-read-token-{uuid.uuid4().hex[:8]}"
        aws["secretsmanager"].create_secret(Name=name, SecretString=secret_value)
        env = lambda_environment(function, {"PinterestAdAccountId": AD_ACCOUNT, "AdsReadTokenSecretName": name},
                                 url or standin.base_url, moto_endpoint)
        if not loopback:
            del env["ALLOW_LOOPBACK_HTTP"]
        code = REPO_ROOT / "functions" / "quality"
        return invoke(f"{code / 'quality_handler.py'}:lambda_handler", SCHEDULED_EVENT, env=env,
                      timeout_s=timeout_s or float(function["properties"]["Timeout"]),
                      python_paths=[str(code), str(REPO_ROOT / "layers" / "pinrelay")], function_name="QualityFunction")
    return run


def emf_documents(stdout: str) -> list[dict[str, Any]]:
    documents = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return [document for document in documents if "_aws" in document]


def metric(documents: list[dict], name: str, **dimensions: str) -> list[float]:
    """The values of ``name`` in the one document whose dimensions are exactly service + ``dimensions``."""
    wanted = {"service": "pinrelay", **dimensions}
    found = [d for d in documents if name in d and {k: d.get(k) for k in d["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]} == wanted]
    assert len(found) == 1, (name, dimensions, found)
    return found[0][name]


def test_the_hourly_check_writes_status_coverage_and_overlap_as_emf_metrics(run_check, standin):
    result = run_check()
    assert result.ok, (result.error_type, result.error_message, result.stderr)
    assert result.response["statuses"] == {"CONVERSIONS_API/WEB": "FAIR", "TAG/WEB": "GOOD"}
    assert [(r["ad_account_id"], r["query"], r["status"]) for r in standin.eqs_received] == [
        (AD_ACCOUNT, {"lookback_period": "1d", "ingestion_source": "CONVERSIONS_API"}, 200),
        (AD_ACCOUNT, {"lookback_period": "1d", "ingestion_source": "TAG"}, 200)]

    documents = emf_documents(result.stdout)
    assert {d["_aws"]["CloudWatchMetrics"][0]["Namespace"] for d in documents} == {"Pinrelay"}
    assert metric(documents, "EventQualityStatus", ingestion_source="CONVERSIONS_API") == [2.0]  # FAIR
    assert metric(documents, "EventQualityStatus", ingestion_source="TAG") == [3.0]  # GOOD
    # the one the overlap alarm reads
    assert metric(documents, "EventIdOverlap", ingestion_source="CONVERSIONS_API", source_platform="WEB",
                  event_name="checkout") == [87.5]
    assert metric(documents, "EventQualityCoverage", ingestion_source="CONVERSIONS_API", source_platform="WEB",
                  component="click_id_epik", event_name="checkout") == [12.5]
    coverage = [d for d in documents if "EventQualityCoverage" in d]
    expected = sum(len(events) for events in standin.eqs_scores[0]["quality_components"].values())
    assert len(coverage) == expected and all(d["ingestion_source"] == "CONVERSIONS_API" for d in coverage)
    units = {m["Name"]: m["Unit"] for d in documents for m in d["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units == {"EventQualityStatus": "None", "EventIdOverlap": "Percent", "EventQualityCoverage": "Percent"}
    (log,) = [line for line in map(json.loads, filter(lambda l: l.startswith("{"), result.stdout.splitlines()))
              if line.get("message") == "event quality"]
    assert log["level"] == "INFO" and log["ad_account_id"] == AD_ACCOUNT and log["lookback_period"] == "1d"
    assert DEFAULT_ADS_READ_TOKEN not in result.stdout + result.stderr


def test_needs_improvement_is_written_as_1(run_check, standin):
    scores = standin.eqs_scores
    for score in scores:
        if score["ingestion_source"] == "CONVERSIONS_API":
            score["overall_status"] = "NEEDS_IMPROVEMENT"
    standin.set_eqs_scores(scores)
    result = run_check()
    assert result.ok
    assert metric(emf_documents(result.stdout), "EventQualityStatus", ingestion_source="CONVERSIONS_API") == [1.0]


def test_a_refused_token_fails_the_invocation_with_the_reason_and_writes_no_metric(run_check, standin):
    standin.ads_read_token = "another-token"
    result = run_check()
    assert result.status == "error" and result.error_type == "QualityCheckFailed"
    assert "CONVERSIONS_API: Pinterest refused the ads:read token (401: Authentication failed.)" in result.error_message
    assert emf_documents(result.stdout) == []
    assert DEFAULT_ADS_READ_TOKEN not in result.stdout + result.stderr + result.error_message


def test_what_could_be_read_is_written_when_one_call_is_rate_limited(run_check, standin):
    standin.set_fault("status", status=429, retry_after="60", count=1, endpoint="eqs")  # the first call: the API's
    result = run_check()
    assert result.status == "error"
    assert "CONVERSIONS_API: rate limited by Pinterest (429" in result.error_message and "retry after 60 s" in result.error_message
    documents = emf_documents(result.stdout)
    assert metric(documents, "EventQualityStatus", ingestion_source="TAG") == [3.0]
    assert not [d for d in documents if d.get("ingestion_source") == "CONVERSIONS_API"]


def test_a_secret_still_holding_the_stacks_placeholder_says_so(run_check, standin):
    result = run_check(secret_value="REPLACE_ME")
    assert result.status == "error" and "holds no token yet" in result.error_message
    assert standin.eqs_received == []


def test_only_the_components_and_names_pinterest_documents_become_metrics(run_check, standin):
    """500 invented component names once made 5,021 custom metrics in one run (about $1.5k a month)."""
    scores = standin.eqs_scores
    api = next(s for s in scores if s["ingestion_source"] == "CONVERSIONS_API" and s["lookback_period"] == "1d")
    documented = sum(len(events) for events in api["quality_components"].values())
    api["quality_components"] |= {f"invented_{n}": {"checkout": {"coverage": 50.0}} for n in range(500)}
    api["quality_components"]["hashed_email"] |= {f"event_{n}": {"coverage": 1.0} for n in range(500)}
    standin.set_eqs_scores(scores)
    result = run_check()
    assert result.ok, (result.error_type, result.error_message, result.stderr)
    documents = emf_documents(result.stdout)
    coverage = [d for d in documents if "EventQualityCoverage" in d]
    assert len(coverage) == documented  # the same series as without the invented names
    assert not [d for d in documents if d.get("component", "").startswith("invented")
                or d.get("event_name", "").startswith("event_")]
    assert metric(documents, "EventQualityCoverage", ingestion_source="CONVERSIONS_API", source_platform="WEB",
                  component="click_id_epik", event_name="checkout") == [12.5]
    (log,) = [line for line in map(json.loads, filter(lambda l: l.startswith("{"), result.stdout.splitlines()))
              if line.get("message") == "event quality"]
    assert log["names_without_metrics"] == 1000 and len(log["some_names_without_metrics"]) == 20


def test_a_huge_answer_fails_the_check_without_reading_it(run_check):
    from tests.hostile_endpoint import HostileEndpoint, Reply, endless

    huge = Reply(200, endless(limit=64 * 1024 * 1024), {"Content-Type": "application/json"})
    with HostileEndpoint(lambda seen: huge) as server:
        result = run_check(url=f"{server.url}/v5")
        assert server.sent_bytes < 32 * 1024 * 1024  # two calls: the limit and the socket buffers of each
    assert result.status == "error" and result.error_type == "QualityCheckFailed"
    assert result.error_message.count("the answer is larger than 4 MiB") == 2


def test_a_call_that_could_outlive_the_invocation_is_not_started(run_check, standin):
    """Each call may take twice PINTEREST_TIMEOUT_SECONDS (10) and the metrics 5 s: with 33 s, of which the
    start and a first answer that takes 8 s use more than 8, the second call would not fit."""
    standin.set_fault("slow", seconds=8, count=1, endpoint="eqs")
    result = run_check(timeout_s=33)
    assert result.status == "error" and "TAG: not read, no time left in this invocation" in result.error_message
    assert [r["query"]["ingestion_source"] for r in standin.eqs_received] == ["CONVERSIONS_API"]
    assert metric(emf_documents(result.stdout), "EventQualityStatus", ingestion_source="CONVERSIONS_API") == [2.0]


def test_plain_http_to_the_stand_in_needs_allow_loopback_http(run_check, standin):
    result = run_check(loopback=False)
    assert result.status == "error" and "PINTEREST_API_URL must be https://api.pinterest.com/v5" in result.error_message
    assert "ALLOW_LOOPBACK_HTTP=true" in result.error_message and standin.eqs_received == []
