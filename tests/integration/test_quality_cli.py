"""`pinrelay quality` against the Pinterest stand-in's EQS endpoint: the table, and Pinterest's refusals
as clear one-line reasons with their exit statuses."""

from __future__ import annotations

import uuid

import pytest

from pinrelay.quality import COMPONENT_ADVICE
from pinrelay_cli.main import main
from pinrelay_local.pinterest_standin import DEFAULT_ADS_READ_TOKEN, PinterestStandIn

AD_ACCOUNT = "549755885175"
MISSING_EXTERNAL_ID = {"id": "MISSING_ADVERTISER_EXTERNAL_ID", "name": "Missing external ID",
                       "reason": "Most checkout events have no external ID."}


@pytest.fixture
def standin():
    with PinterestStandIn(token="a-conversion-token") as pin:
        yield pin


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("PINTEREST_ADS_READ_TOKEN", DEFAULT_ADS_READ_TOKEN)
    monkeypatch.setenv("PINTEREST_AD_ACCOUNT_ID", AD_ACCOUNT)
    return monkeypatch


def quality(capsys, standin, *options: str) -> tuple[int, list[str], str]:
    status = main(["quality", "--api-url", standin.base_url, "--allow-loopback-http", *options])
    captured = capsys.readouterr()
    assert DEFAULT_ADS_READ_TOKEN not in captured.out + captured.err
    return status, captured.out.splitlines(), captured.err.strip()


def test_the_table_shows_status_coverage_issues_and_advice(env, standin, capsys):
    scores = [score for score in standin.eqs_scores if score["lookback_period"] == "14d"]
    api = next(score for score in scores if score["ingestion_source"] == "CONVERSIONS_API")
    api["quality_components"]["advertiser_external_id"]["checkout"] = {"coverage": 8.5, "issues": [MISSING_EXTERNAL_ID]}
    api["overall_status"] = "NEEDS_IMPROVEMENT"
    standin.set_eqs_scores(scores)

    status, lines, err = quality(capsys, standin)
    assert status == 0 and err == ""
    assert standin.eqs_received[-1]["query"] == {"lookback_period": "14d"}
    assert lines[0] == f"Event quality of ad account {AD_ACCOUNT} (Pinterest EQS, last 14d)"
    assert "CONVERSIONS_API on WEB: NEEDS_IMPROVEMENT" in lines and "TAG on WEB: GOOD" in lines
    row = lines.index(next(line for line in lines if line.split()[:2] == ["advertiser_external_id", "checkout"]))
    assert lines[row].split() == ["advertiser_external_id", "checkout", "8.5", "%"]
    assert lines[row + 1].strip() == ("! Missing external ID (MISSING_ADVERTISER_EXTERNAL_ID): Most checkout events have "
                                      "no external ID.")
    assert lines[row + 2].strip() == "→ " + COMPONENT_ADVICE["advertiser_external_id"]
    overlap = next(line for line in lines if line.split()[:2] == ["external_event_id", "add_to_cart"])
    assert overlap.split() == ["external_event_id", "add_to_cart", "100.0", "%", "35.0", "%"]  # under 50 %: advice follows
    assert lines[lines.index(overlap) + 1].strip() == "→ " + COMPONENT_ADVICE["external_event_id"]
    fine = next(line for line in lines if line.split()[:2] == ["hashed_email", "add_to_cart"])
    assert not lines[lines.index(fine) + 1].strip().startswith("→")


def test_filters_and_lookback_go_to_pinterest(env, standin, capsys):
    status, lines, _ = quality(capsys, standin, "--lookback", "1d", "--ingestion-source", "TAG", "--source-platform", "WEB")
    assert status == 0
    assert standin.eqs_received[-1]["query"] == {"lookback_period": "1d", "ingestion_source": "TAG", "source_platform": "WEB"}
    assert [line for line in lines if " on " in line] == ["TAG on WEB: GOOD"]
    standin.set_eqs_scores([])
    status, lines, _ = quality(capsys, standin)
    assert status == 0 and lines[-1] == "Pinterest has no score for it yet: no events from these sources in the period"


def test_a_refused_token(env, standin, capsys):
    env.setenv("PINTEREST_ADS_READ_TOKEN", "a-conversion-token")  # the conversion token does not open the EQS
    status, lines, err = quality(capsys, standin)
    assert (status, lines) == (1, [])
    assert err == (f"pinrelay quality: Pinterest refused the ads:read token (401: Authentication failed.): check that it is "
                   f"the current token of ad account {AD_ACCOUNT}")


def test_no_access(env, standin, capsys):
    standin.denied_ad_accounts = {AD_ACCOUNT}
    status, _, err = quality(capsys, standin)
    assert status == 1
    assert err == (f"pinrelay quality: the ads:read token has no access to ad account {AD_ACCOUNT} (403: You are not "
                   "permitted to access that resource.): the token needs the ads:read scope (a conversion token from "
                   "Ads Manager has not) and access to it")


def test_a_wrong_ad_account(env, standin, capsys):
    standin.ad_accounts = {"111222333"}
    status, _, err = quality(capsys, standin)
    assert status == 1 and f"Pinterest does not know ad account {AD_ACCOUNT} (404: AdAccount not found.)" in err


def test_rate_limited_and_unavailable_say_try_later(env, standin, capsys):
    standin.set_fault("status", status=429, retry_after="120", count=1, endpoint="eqs")
    status, _, err = quality(capsys, standin)
    assert status == 3
    assert err.startswith("pinrelay quality: rate limited by Pinterest (429: This request exceeded a rate limit.")
    assert err.endswith(", retry after 120 s")
    standin.set_fault("status", status=503, count=1, endpoint="eqs")
    status, _, err = quality(capsys, standin)
    assert status == 3 and err.startswith("pinrelay quality: Pinterest is unavailable (503")
    standin.set_fault("not_json", count=1, endpoint="eqs")
    status, _, err = quality(capsys, standin)
    assert status == 1 and "Pinterest's event quality answer could not be read: expected a list of scores" in err


def test_the_token_from_secrets_manager_and_a_missing_one(env, standin, capsys, aws):
    env.delenv("PINTEREST_ADS_READ_TOKEN")
    status, _, err = quality(capsys, standin)
    assert status == 2 and err == "pinrelay quality: no token: set PINTEREST_ADS_READ_TOKEN or give --token-secret-id NAME"
    name = f"pinrelay/ads-read-token-{uuid.uuid4().hex[:8]}"
    aws["secretsmanager"].create_secret(Name=name, SecretString=DEFAULT_ADS_READ_TOKEN)
    status, lines, _ = quality(capsys, standin, "--token-secret-id", name, "--region", "us-east-1")
    assert status == 0 and "CONVERSIONS_API on WEB: FAIR" in lines
