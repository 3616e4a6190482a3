"""Pinterest (the EQS of `pinrelay quality` and the quality function, the events endpoint of `pinrelay
verify --direct`) and ingest (`pinrelay verify`, a reconcile backfill) as hostile or broken
endpoints, each a real HTTP server: answers are read with bounded bytes and time, no redirect is
followed with a token or an order, only https on pinterest.com gets a token, and text that is not
Unicode never crashes a command."""

from __future__ import annotations

import time

import pytest
from pinrelay.adapters.webhook_backfill import BackfillRefused, ShopifyWebhookBackfill
from pinrelay_cli.main import main
from pinrelay_local.pinterest_standin import DEFAULT_ADS_READ_TOKEN, PinterestStandIn, default_eqs_scores

from tests.hostile_endpoint import HostileEndpoint, Reply, endless, json_reply

AD_ACCOUNT = "549755885175"
CONVERSION_TOKEN = "verify-conversion-token"
MiB = 1024 * 1024


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("PINTEREST_ADS_READ_TOKEN", DEFAULT_ADS_READ_TOKEN)
    monkeypatch.setenv("PINTEREST_CONVERSION_TOKEN", CONVERSION_TOKEN)
    monkeypatch.setenv("PINTEREST_AD_ACCOUNT_ID", AD_ACCOUNT)
    return monkeypatch


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    assert DEFAULT_ADS_READ_TOKEN not in out + err and CONVERSION_TOKEN not in out + err
    return status, out, err


def quality(capsys, url: str, *options: str) -> tuple[int, str, str]:
    return run(capsys, "quality", "--api-url", url, "--allow-loopback-http", *options)


def verify_direct(capsys, url: str, *options: str) -> tuple[int, str, str]:
    return run(capsys, "verify", "--direct", "--ad-account", AD_ACCOUNT, "--api-url", url, "--allow-loopback-http",
               *options)


HUGE = Reply(200, endless(limit=64 * MiB), {"Content-Type": "application/json"})  # chunked: no length to refuse by


def test_a_huge_eqs_answer_is_not_read_whole(env, capsys):
    with HostileEndpoint(lambda seen: HUGE) as server:
        status, out, err = quality(capsys, server.url)
        assert server.sent_bytes < 16 * MiB
    assert status == 1 and out == ""
    assert "event quality answer could not be read: the answer is larger than 4 MiB" in err


def test_a_dribbled_eqs_answer_ends_at_the_timeout(env, capsys):
    body = b"[]".ljust(60)
    reply = Reply(200, (bytes([b]) for b in body), content_length=len(body), pause=0.25)
    with HostileEndpoint(lambda seen: reply) as server:
        started = time.monotonic()
        status, _, err = quality(capsys, server.url, "--timeout", "1")
        assert time.monotonic() - started < 3.0
    assert status == 3 and "timed out after 1 s" in err


@pytest.mark.parametrize("command", ["quality", "verify --direct"])
def test_a_redirect_is_not_followed_with_the_token(command, env, capsys):
    with HostileEndpoint(lambda seen: json_reply([])) as elsewhere:
        moved = Reply(307, b"", {"Location": f"{elsewhere.url}/v5/ad_accounts/{AD_ACCOUNT}/elsewhere"})
        with HostileEndpoint(lambda seen: moved) as server:
            if command == "quality":
                status, out, err = quality(capsys, server.url)
            else:
                status, out, err = verify_direct(capsys, server.url)
        assert elsewhere.requests == []  # neither the token, nor the test event
    assert status == 1
    assert "Pinterest answered 307, a redirect: not followed" in out + err


def test_a_huge_answer_to_the_test_event_is_not_read_whole(env, capsys):
    with HostileEndpoint(lambda seen: HUGE) as server:
        status, out, _ = verify_direct(capsys, server.url)
        assert server.sent_bytes < 16 * MiB
    assert status == 3  # Pinterest may have taken it: try again
    assert "the answer is larger than 4 MiB" in out


@pytest.mark.parametrize("command", ["quality", "verify --direct"])
@pytest.mark.parametrize("url, loopback", [
    ("http://api.pinterest.com/v5", True), ("https://api.pinterest.com.evil.example/v5", True),
    ("https://evil.example/v5", True), ("http://127.0.0.1:9/v5", False)])
def test_only_https_pinterest_hosts_get_the_token(command, url, loopback, env, capsys):
    argv = ["quality"] if command == "quality" else ["verify", "--direct", "--ad-account", AD_ACCOUNT]
    status, out, err = run(capsys, *argv, "--api-url", url, *(["--allow-loopback-http"] if loopback else []))
    assert status == 2 and out == "" and err.count("\n") == 1
    assert "--api-url must be https://api.pinterest.com/v5" in err and "--allow-loopback-http" in err


def test_a_lone_surrogate_in_the_eqs_answer_is_shown_not_crashed_on(env, capsys):
    scores = [score for score in default_eqs_scores() if score["lookback_period"] == "14d"]
    api = next(score for score in scores if score["ingestion_source"] == "CONVERSIONS_API")
    api["quality_components"]["hashed_email"]["check\ud800out"] = {
        "coverage": 10.0, "issues": [{"id": "X\udfff", "name": "Odd \ud83d", "reason": "lone \udc00 surrogate"}]}
    with PinterestStandIn() as standin:
        standin.set_eqs_scores(scores)
        status, out, err = quality(capsys, standin.base_url)
    assert status == 0, err
    assert "check\ufffdout" in out and "! Odd \ufffd (X\ufffd): lone \ufffd surrogate" in out


# -- ingest: pinrelay verify through the pipeline, and a reconcile backfill ---------------------------


def test_verify_does_not_follow_a_redirect_with_the_api_key(env, capsys, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with HostileEndpoint(lambda seen: json_reply({"events": [{"status": "accepted"}]}, status=202)) as elsewhere:
        moved = Reply(308, b"", {"Location": f"{elsewhere.url}/events?test=true"})
        with HostileEndpoint(lambda seen: moved) as ingest:
            status, out, _ = run(capsys, "verify", "--url", ingest.url, "--table", "t", "--ad-account", AD_ACCOUNT,
                                 "--api-key", "the-ingest-key")
        assert elsewhere.requests == []
    assert status == 1 and "FAILED: ingest answered 308, a redirect" in out and "the-ingest-key" not in out


def test_a_backfill_does_not_follow_a_redirect_with_the_signed_order():
    with HostileEndpoint(lambda seen: json_reply({"accepted": 1})) as elsewhere:
        moved = Reply(307, b"", {"Location": f"{elsewhere.url}/webhooks/shopify"})
        with HostileEndpoint(lambda seen: moved) as ingest:
            poster = ShopifyWebhookBackfill(ingest.url, "pinrelay-dev.myshopify.com", "a-webhook-secret-of-32-characters")
            with pytest.raises(BackfillRefused, match="answered 307, a redirect .*not followed"):
                poster.send({"id": 1, "email": "jane@example.com"})
        assert elsewhere.requests == []
