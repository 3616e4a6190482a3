"""The stand-in's EQS endpoint (GET /v5/ad_accounts/{id}/conversion_eqs) and its ad account checks,
over real HTTP: answers valid against the schema excerpt, the query checked, errors as Pinterest's."""

from __future__ import annotations

import copy

import pytest
import requests

from pinrelay_local.pinterest_standin import DEFAULT_ADS_READ_TOKEN, EventQualityScoreValidator, PinterestStandIn

AD_ACCOUNT = "549755885175"
EQS_AUTH = {"Authorization": f"Bearer {DEFAULT_ADS_READ_TOKEN}"}


@pytest.fixture
def standin():
    with PinterestStandIn(token="conversion-token") as pin:
        yield pin


def eqs(pin: PinterestStandIn, headers=EQS_AUTH, ad_account=AD_ACCOUNT, **query) -> requests.Response:
    return requests.get(f"{pin.base_url}/ad_accounts/{ad_account}/conversion_eqs", params=query, headers=headers, timeout=10)


def test_answers_the_documented_list_filtered_by_the_query(standin):
    validator = EventQualityScoreValidator()
    answer = eqs(standin, lookback_period="14d")
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/json"
    scores = answer.json()
    assert {(s["ingestion_source"], s["lookback_period"]) for s in scores} == {("CONVERSIONS_API", "14d"), ("TAG", "14d")}
    assert all(validator.errors(score) == [] for score in scores)
    only_api = eqs(standin, lookback_period="1d", ingestion_source="CONVERSIONS_API", source_platform="WEB").json()
    assert [(s["ingestion_source"], s["source_platform"], s["lookback_period"]) for s in only_api] == [("CONVERSIONS_API", "WEB", "1d")]
    assert eqs(standin, lookback_period="1d", source_platform="MOBILE").json() == []
    assert [r["query"] for r in standin.eqs_received][0] == {"lookback_period": "14d"}
    assert standin.received == []  # the events endpoint's records are apart


@pytest.mark.parametrize(("query", "message"), [
    ({}, "lookback_period is required."),
    ({"lookback_period": "7d"}, "Invalid lookback_period: must be one of 1d, 14d."),
    ({"lookback_period": "1d", "ingestion_source": "SERVER"}, "Invalid ingestion_source: must be one of"),
])
def test_a_bad_query_is_400(standin, query, message):
    answer = eqs(standin, **query)
    assert answer.status_code == 400 and answer.json()["code"] == 4196 and answer.json()["message"].startswith(message)


def test_only_the_ads_read_token_opens_it(standin):
    for headers in ({}, {"Authorization": "Bearer conversion-token"}, {"Authorization": DEFAULT_ADS_READ_TOKEN}):
        answer = eqs(standin, headers=headers, lookback_period="1d")
        assert (answer.status_code, answer.json()) == (401, {"code": 2, "message": "Authentication failed."})


def test_unknown_and_denied_ad_accounts_on_both_endpoints(standin):
    standin.ad_accounts = {AD_ACCOUNT, "111"}
    standin.denied_ad_accounts = {"111"}
    assert eqs(standin, ad_account="999", lookback_period="1d").json() == {"code": 2, "message": "AdAccount not found."}
    denied = eqs(standin, ad_account="111", lookback_period="1d")
    assert denied.status_code == 403 and denied.json()["code"] == 29
    post = requests.post(standin.events_url("999"), json={"data": []}, headers={"Authorization": "Bearer conversion-token"},
                         timeout=10)
    assert post.status_code == 404
    post = requests.post(standin.events_url("111"), json={"data": []}, headers={"Authorization": "Bearer conversion-token"},
                         timeout=10)
    assert post.status_code == 403
    wrong_token = requests.post(standin.events_url("999"), json={"data": []}, headers={"Authorization": "Bearer x"}, timeout=10)
    assert wrong_token.status_code == 401  # the token is checked first


def test_content_is_configurable_but_must_be_valid(standin):
    scores = copy.deepcopy(standin.eqs_scores[:1])
    scores[0]["overall_status"] = "NEEDS_IMPROVEMENT"
    standin.set_eqs_scores(scores)
    assert eqs(standin, lookback_period="1d").json() == scores
    with pytest.raises(ValueError, match=r"eqs score \[0\] is not a valid EventQualityScore: \$.overall_status"):
        standin.set_eqs_scores([{**scores[0], "overall_status": "SO_SO"}])
    with pytest.raises(ValueError, match="coverage"):
        standin.set_eqs_scores([{**scores[0], "quality_components": {"ip_address": {"checkout": {"overlap": 1}}}}])
    answer = requests.post(f"{standin.root_url}/_standin/eqs", json={"scores": None}, timeout=10)  # back to the default
    assert answer.status_code == 200 and len(eqs(standin, lookback_period="1d").json()) == 2


def test_faults_hit_only_their_endpoint(standin):
    standin.set_fault("status", status=429, retry_after="5", endpoint="eqs")
    assert eqs(standin, lookback_period="1d").status_code == 429
    post = requests.post(standin.events_url(AD_ACCOUNT), json={"data": []}, headers={"Authorization": "Bearer conversion-token"},
                         timeout=10)
    assert post.status_code != 429
    standin.set_fault("status", status=503)  # an events fault leaves the EQS alone
    assert eqs(standin, lookback_period="1d").status_code == 200
