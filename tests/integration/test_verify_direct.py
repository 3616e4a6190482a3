"""`pinrelay verify --direct` against the Pinterest stand-in (a real HTTP server that validates every
body against Pinterest's schema and checks the token), and the token read from Secrets Manager
(moto server)."""

from __future__ import annotations

import hashlib
import time
import uuid

import pytest

from pinrelay.verify import VERIFY_EMAIL
from pinrelay_cli.main import main
from pinrelay_local.pinterest_standin import PinterestStandIn

TOKEN = "verify-conversion-token"
AD_ACCOUNT = "549755885175"


@pytest.fixture
def standin():
    with PinterestStandIn(token=TOKEN) as pin:
        yield pin


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("PINTEREST_CONVERSION_TOKEN", TOKEN)
    monkeypatch.delenv("PINTEREST_AD_ACCOUNT_ID", raising=False)
    return monkeypatch


def verify(capsys, standin, *options: str) -> tuple[int, list[str], str]:
    status = main(["verify", "--direct", "--ad-account", AD_ACCOUNT, "--api-url", standin.base_url, "--allow-loopback-http",
                   *options])
    captured = capsys.readouterr()
    for text in (captured.out, captured.err):  # never a token or the test address in clear
        assert TOKEN not in text and VERIFY_EMAIL not in text
    return status, captured.out.splitlines(), captured.err


def test_processed(env, standin, capsys):
    status, lines, _ = verify(capsys, standin)
    assert status == 0
    (record,) = standin.received
    event = record["body"]["data"][0]
    assert record["test"] is True and record["status"] == 200 and record["ad_account_id"] == AD_ACCOUNT
    assert event["event_name"] == "page_visit" and event["event_id"].startswith("pinrelay-verify-")
    assert event["user_data"]["em"] == [hashlib.sha256(VERIFY_EMAIL.encode()).hexdigest()]
    assert lines[0] == (f"posting 1 test event (page_visit, event_id {event['event_id']}) to "
                        f"{standin.base_url}/ad_accounts/{AD_ACCOUNT}/events?test=true")
    assert lines[1].startswith('Pinterest answered 200: {"num_events_received":1,"num_events_processed":1,')
    assert lines[2] == "ok: Pinterest processed the test event (test=true: it is not recorded)"


def test_the_token_refused(env, standin, capsys):
    standin.token = "the-current-token"
    status, lines, _ = verify(capsys, standin)
    assert status == 1
    assert lines[-1] == (f"FAILED: Pinterest refused the conversion token (401: Authentication failed.): check that it is "
                         f"the current token of ad account {AD_ACCOUNT}")


def test_no_access_to_the_ad_account(env, standin, capsys):
    standin.denied_ad_accounts = {AD_ACCOUNT}
    status, lines, _ = verify(capsys, standin)
    assert status == 1
    assert lines[-1].startswith(f"FAILED: the conversion token has no access to ad account {AD_ACCOUNT} (403: You are not "
                                "permitted to access that resource.): the token belongs to another ad account")


def test_a_wrong_ad_account(env, standin, capsys):
    standin.ad_accounts = {"111222333"}
    status, lines, _ = verify(capsys, standin)
    assert status == 1
    assert lines[-1] == (f"FAILED: Pinterest does not know ad account {AD_ACCOUNT} (404: AdAccount not found.): check the "
                         "ad account id")


def test_a_per_event_error_is_pinterests_message(env, capsys):
    # the stand-in's clock 8 days ahead: the event is more than 7 days old for it, a real per-event 422
    with PinterestStandIn(token=TOKEN, clock=lambda: time.time() + 8 * 86400) as standin:
        status, lines, _ = verify(capsys, standin)
    assert status == 1
    assert lines[1].startswith('Pinterest answered 422: {"code":953,')
    assert lines[-1].startswith("FAILED: Pinterest refused the event (422): Invalid event_timestamp parameter. Given "
                                "timestamp is in the past.")


def test_rate_limited(env, standin, capsys):
    standin.set_fault("status", status=429, retry_after="30")
    status, lines, _ = verify(capsys, standin)
    assert status == 3
    assert lines[-1].startswith("FAILED: rate limited by Pinterest (429: This request exceeded a rate limit.")
    assert lines[-1].endswith("retry after 30 s")


def test_pinterest_unavailable(env, standin, capsys):
    standin.set_fault("status", status=503)
    status, lines, _ = verify(capsys, standin)
    assert status == 3
    assert lines[-1] == ("FAILED: Pinterest is unavailable (503: The endpoint has been ramped down and is currently not "
                         "accepting any traffic.)")


def test_no_answer_in_time(env, standin, capsys):
    standin.set_fault("slow", seconds=3)
    started = time.monotonic()
    status, lines, _ = verify(capsys, standin, "--timeout", "0.5")
    assert status == 3 and time.monotonic() - started < 2.5
    assert lines[-1] == "FAILED: no answer from Pinterest (timed out after 0.5s)"


def test_no_server(env, standin, capsys):
    url = standin.base_url
    standin.stop()  # nothing listens on its port any more
    status = main(["verify", "--direct", "--ad-account", AD_ACCOUNT, "--api-url", url, "--allow-loopback-http"])
    lines = capsys.readouterr().out.splitlines()
    assert status == 3 and lines[-1].startswith("FAILED: no answer from Pinterest (")


def test_the_token_from_secrets_manager(env, standin, capsys, aws):
    env.delenv("PINTEREST_CONVERSION_TOKEN")
    name = f"pinrelay/conversion-token-{uuid.uuid4().hex[:8]}"
    aws["secretsmanager"].create_secret(Name=name, SecretString=TOKEN + "\n")
    status, lines, _ = verify(capsys, standin, "--token-secret-id", name, "--region", "us-east-1")
    assert status == 0 and lines[-1].startswith("ok:")

    aws["secretsmanager"].put_secret_value(SecretId=name, SecretString="REPLACE_ME")
    status, lines, err = verify(capsys, standin, "--token-secret-id", name, "--region", "us-east-1")
    assert status == 2 and lines == []
    assert err.strip() == (f"pinrelay verify: secret {name} holds no token yet: aws secretsmanager put-secret-value "
                           f"--secret-id {name} --secret-string '<token>'")

    status, _, err = verify(capsys, standin, "--token-secret-id", "pinrelay/no-such-secret", "--region", "us-east-1")
    assert status == 2 and "secret pinrelay/no-such-secret not found" in err
    assert len(standin.received) == 1


def test_what_is_missing_is_named(env, standin, capsys):
    env.delenv("PINTEREST_CONVERSION_TOKEN")
    status, _, err = verify(capsys, standin)
    assert status == 2 and err.strip() == "pinrelay verify: no token: set PINTEREST_CONVERSION_TOKEN or give --token-secret-id NAME"
    assert main(["verify", "--direct", "--api-url", standin.base_url, "--allow-loopback-http"]) == 2
    assert "which ad account? give --ad-account or PINTEREST_AD_ACCOUNT_ID" in capsys.readouterr().err
    assert main(["verify"]) == 2
    assert "give --direct, --stack-name NAME, or --url URL and --table NAME" in capsys.readouterr().err
    assert standin.received == []
