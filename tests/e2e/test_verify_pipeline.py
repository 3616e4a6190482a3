"""`pinrelay verify --url URL --table NAME` through the whole local stack (moto server, the real ingest
and sender handlers, the SQS event source emulation, the Pinterest stand-in): a test event posted
to ingest, watched in the delivery ledger until the sender records Pinterest's answer."""

from __future__ import annotations

import json
import re
import time
import uuid

import pytest

from pinrelay_cli.main import main
from pinrelay_local.stack import LocalStack

pytestmark = pytest.mark.e2e
API_KEY = "verify-e2e-key-long-enough-to-resist-guessing"


@pytest.fixture(scope="module")
def stack():
    # test mode off: the event must be marked a test event by `?test=true` itself
    with LocalStack(port=0, ingest_api_key=API_KEY, test_mode=False, sender_window_s=0.2,
                    handler_env={"SENDER_BACKOFF_BASE_SECONDS": "0.2"}) as local:
        yield local


@pytest.fixture
def verify(stack, monkeypatch, capsys):
    monkeypatch.setenv("AWS_ENDPOINT_URL", stack.moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("PINRELAY_API_KEY", API_KEY)
    token = stack.standin.token
    stack.standin.clear()

    def run(*options: str, targets: bool = True) -> tuple[int, list[str], float]:
        started = time.monotonic()
        where = ["--url", stack.url, "--table", stack.table_name, "--ad-account", stack.ad_account_id] if targets else []
        status = main(["verify", *where, "--region", "us-east-1", *options])
        out = capsys.readouterr().out
        assert API_KEY not in out
        return status, out.splitlines(), time.monotonic() - started

    yield run
    stack.standin.token = token
    stack.standin.clock = time.time


def test_delivered(stack, verify):
    status, lines, took = verify()
    assert status == 0, lines
    event_id = re.search(r"event_id (pinrelay-verify-\w+)\)", lines[0]).group(1)
    assert lines[0] == f"posting 1 test event (page_visit, event_id {event_id}) to {stack.url}/events?test=true"
    assert lines[1] == "ingest answered 202 accepted"
    assert re.fullmatch(r"queued → claimed by the sender( \(state sending\))? after \d+\.\d s", lines[2])
    assert re.fullmatch(r"delivered \(Pinterest processed it\) after \d+\.\d s", lines[3])
    assert len(lines) == 4 and took < 15
    (event,) = stack.standin.delivered_events()
    assert event["event_id"] == event_id and event["event_name"] == "page_visit"
    item = stack.dedup_table.get_item(Key={"pk": f"{stack.ad_account_id}#page_visit#{event_id}"}, ConsistentRead=True)["Item"]
    assert item["state"] == "delivered"


def test_sent_to_pinterest_as_a_test_event(stack, verify):
    status, _, _ = verify()
    assert status == 0
    (request,) = [r for r in stack.standin.received if r["status"] == 200]
    assert request["test"] is True  # POST /events?test=true -> the sender's request with test=true


def test_rejected_by_pinterest(stack, verify):
    stack.standin.clock = lambda: time.time() + 8 * 86400  # for Pinterest the event is now more than 7 days old
    status, lines, _ = verify()
    assert status == 1
    assert lines[1] == "ingest answered 202 accepted"
    assert re.fullmatch(r"FAILED: rejected: Invalid event_timestamp parameter\. Given timestamp is in the past\..* after "
                        r"\d+\.\d s", lines[-1])


def test_the_token_refused_is_not_delivered_in_time(stack, verify):
    stack.standin.token = "a-revoked-token"  # Pinterest answers 401 to the sender
    status, lines, took = verify("--timeout", "4")
    assert status == 1 and 4 <= took < 10
    assert re.match(r"FAILED: not delivered within 4 s \(the sender took it \(state (claimed|sending), \d attempt\(s\)\) but "
                    r"has recorded no answer from Pinterest\): ", lines[-1])
    assert lines[-1].endswith("check the queue age alarm, the DLQ (`pinrelay redrive --dry-run`) and the sender's logs")
    assert {r["status"] for r in stack.standin.received} == {401}


def test_a_wrong_api_key(stack, verify):
    status, lines, _ = verify("--api-key", "not-the-key")
    assert status == 1
    assert lines[-1] == ("FAILED: ingest refused the API key (401): give the stack's key with --api-key or "
                         "PINRELAY_API_KEY (a deployed stack's: the one `pinrelay new-api-key` printed; the local "
                         "stack's: the one `make local` printed, or use --local)")
    assert stack.standin.received == []


def test_the_stack_name_gives_the_url_the_table_and_the_ad_account(stack, verify):
    """--stack-name: IngestApiUrl and DedupTableName from the stack's outputs, the ad account from its
    PinterestAdAccountId parameter (DescribeStacks on moto server, a stack standing for the deployed one)."""
    from pinrelay_local.stack import aws_client

    name = "pinrelay-verify-" + uuid.uuid4().hex[:8]
    template = {
        "Parameters": {"PinterestAdAccountId": {"Type": "String"}},
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"IngestApiUrl": {"Value": stack.url}, "DedupTableName": {"Value": stack.table_name}},
    }
    aws_client("cloudformation", stack.moto_url).create_stack(
        StackName=name, TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": "PinterestAdAccountId", "ParameterValue": stack.ad_account_id}])
    status, lines, _ = verify("--stack-name", name, targets=False)
    assert status == 0, lines
    assert lines[0].endswith(f" to {stack.url}/events?test=true") and lines[-1].startswith("delivered")
    event_id = re.search(r"event_id (pinrelay-verify-\w+)\)", lines[0]).group(1)
    item = stack.dedup_table.get_item(Key={"pk": f"{stack.ad_account_id}#page_visit#{event_id}"}, ConsistentRead=True)
    assert item["Item"]["state"] == "delivered"
    assert verify("--stack-name", "no-such-stack", targets=False)[0] == 2  # "stack no-such-stack could not be read (...)"
