"""`pinrelay status` on events that went through the real handlers (moto server, Pinterest
stand-in): delivered, rejected by Pinterest, given back after an outage, in the dead-letter queue,
not sent (too old by the time it left the queue, withheld upstream) and never seen, each said in one
line; exit 0 only when every event asked about was delivered; `pinrelay rejected` and `uncertain`
list none of the events not sent."""

import io
import json
import uuid

from pinrelay_cli.main import build_parser
from pinrelay_cli.pinterest_access import EXIT_USAGE
from pinrelay_cli.status import EXIT_DELIVERED, EXIT_NOT_DELIVERED
from tests.integration.handler_stack import AD_ACCOUNT, api_event, drain, post_events


def status(stack, *argv, dlq_url=None):
    targets = ["--table", stack["table"], "--ad-account", AD_ACCOUNT] + (["--dlq-url", dlq_url] if dlq_url else [])
    args = build_parser().parse_args(["status", *argv, *targets])
    out, err = io.StringIO(), io.StringIO()
    code = args._run(args, dynamodb=stack["aws"]["dynamodb"], sqs=stack["aws"]["sqs"], out=out, err=err)
    lines = {line.split(": ", 1)[0].rsplit("#", 1)[-1]: line.split(": ", 1)[1]
             for line in out.getvalue().splitlines() if line.startswith(AD_ACCOUNT)}
    return code, lines, out.getvalue() + err.getvalue()


def move_to_dead_letters(stack, dlq_url):
    """What SQS does after maxReceiveCount: the queued message, as it is, in the DLQ."""
    sqs = stack["aws"]["sqs"]
    (message,) = sqs.receive_message(QueueUrl=stack["queue_url"], MaxNumberOfMessages=10,
                                     MessageAttributeNames=["All"])["Messages"]
    sqs.send_message(QueueUrl=dlq_url, MessageBody=message["Body"])
    sqs.delete_message(QueueUrl=stack["queue_url"], ReceiptHandle=message["ReceiptHandle"])


def test_each_event_is_said_where_it_is(stack, now):
    stack["standin"].max_event_age_seconds = 3600  # as the soak does: Pinterest fails the 2-hour-old event
    assert post_events(stack, {"data": [api_event(now, "ok-1"), api_event(now - 7200, "stale-1")]})[0] == 202
    drain(stack)
    stack["standin"].set_fault("status", status=503)
    post_events(stack, api_event(now, "outage-1"))
    drain(stack)  # every attempt answered 503: given back to the queue
    stack["standin"].clear_fault()
    dlq_url = stack["aws"]["sqs"].create_queue(QueueName=f"dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    post_events(stack, api_event(now, "dead-1"))
    move_to_dead_letters(stack, dlq_url)

    code, lines, _ = status(stack, "ok-1", "stale-1", "outage-1", "dead-1", "never-1", dlq_url=dlq_url)
    assert code == EXIT_NOT_DELIVERED
    assert lines["ok-1"].startswith("delivered: Pinterest processed it on ")
    assert lines["stale-1"].startswith("rejected by Pinterest on ")
    assert "Given timestamp is in the past" in lines["stale-1"]
    assert lines["outage-1"].startswith("not delivered yet, back in the queue for another try (1 attempt(s) so far")
    assert lines["dead-1"].startswith("in the dead-letter queue, never claimed")
    assert lines["never-1"].startswith("not in the delivery ledger: no sender has claimed it")

    code, lines, text = status(stack, "ok-1")
    assert code == EXIT_DELIVERED and list(lines) == ["ok-1"]
    assert "the dead-letter queue was not looked at" in text
    # the message looked at in the DLQ is still there for `pinrelay redrive`
    assert stack["aws"]["sqs"].receive_message(QueueUrl=dlq_url, WaitTimeSeconds=0)["Messages"]


def queue_as_ingest_did(stack, now, event_id, event_time, **extra):
    """A message ingest queued (hashed event, v2) some time ago, as it comes out of the queue now."""
    event = api_event(event_time, event_id)
    body = {"v": 2, "ad_account_id": AD_ACCOUNT, "source": "api", "dedup_key": f"{AD_ACCOUNT}#checkout#{event_id}",
            "accepted_at": event_time, "event": {**{k: event[k] for k in ("event_name", "event_id", "action_source",
                                                                           "event_time")},
                                                 "user_data": {"em": ["0" * 64]}}, **extra}
    stack["aws"]["sqs"].send_message(QueueUrl=stack["queue_url"], MessageBody=json.dumps(body))


def test_events_not_sent_are_said_with_why_and_no_other_list_takes_them(stack, now):
    queue_as_ingest_did(stack, now, "waited-1", now - 7 * 86400 - 60)  # passed 7 days while it waited (a redrive)
    queue_as_ingest_did(stack, now, "withheld-1", now - 60, withheld="consent")
    drain(stack)
    code, lines, _ = status(stack, "waited-1", "withheld-1")
    assert code == EXIT_NOT_DELIVERED
    assert lines["waited-1"].startswith("not sent: its event_time was more than 7 days old")
    assert lines["withheld-1"].startswith("not sent: withheld before sending (consent)")
    for command in ("rejected", "uncertain"):
        args = build_parser().parse_args([command, "--table", stack["table"]])
        out = io.StringIO()
        args._run(args, dynamodb=stack["aws"]["dynamodb"], out=out)
        assert "waited-1" not in out.getvalue() and "withheld-1" not in out.getvalue()
    assert not stack["standin"].received  # neither was posted


def test_another_event_name_is_another_event(stack, now):
    post_events(stack, api_event(now, "ok-2"))
    drain(stack)
    assert status(stack, "ok-2")[0] == EXIT_DELIVERED
    code, lines, _ = status(stack, "ok-2", "--event-name", "add_to_cart")
    assert code == EXIT_NOT_DELIVERED and lines["ok-2"].startswith("not in the delivery ledger")


def test_without_a_table_it_says_what_to_give(stack):
    args = build_parser().parse_args(["status", "x"])
    err = io.StringIO()
    assert args._run(args, out=io.StringIO(), err=err) == EXIT_USAGE
    assert "give --stack-name NAME, or --table NAME" in err.getvalue()


def test_the_table_queue_and_ad_account_come_from_the_stack(stack, now, moto_endpoint):
    import json

    import boto3

    cloudformation = boto3.client("cloudformation", endpoint_url=moto_endpoint, region_name="us-east-1",
                                  aws_access_key_id="testing", aws_secret_access_key="testing")
    dlq_url = stack["aws"]["sqs"].create_queue(QueueName=f"dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    name = f"pinrelay-{uuid.uuid4().hex[:8]}"
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps({
        "Parameters": {"PinterestAdAccountId": {"Type": "String"}},
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"DedupTableName": {"Value": stack["table"]}, "DeadLetterQueueUrl": {"Value": dlq_url}},
    }), Parameters=[{"ParameterKey": "PinterestAdAccountId", "ParameterValue": AD_ACCOUNT}])
    post_events(stack, api_event(now, "ok-3"))
    drain(stack)
    args = build_parser().parse_args(["status", "ok-3", "--stack-name", name])
    out = io.StringIO()
    code = args._run(args, cloudformation=cloudformation, dynamodb=stack["aws"]["dynamodb"], sqs=stack["aws"]["sqs"],
                     out=out, err=out)
    assert code == EXIT_DELIVERED
    assert out.getvalue().startswith(f"{AD_ACCOUNT}#checkout#ok-3: delivered")
    assert "not looked at" not in out.getvalue()
