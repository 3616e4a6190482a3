"""pinrelay_cli.ops (``pinrelay redrive`` / ``pinrelay rejected``) against moto server."""

import argparse
import io
import json
import uuid

import pytest

from pinrelay_cli.ops import add_redrive_parser, add_rejected_parser, redrive, rejected, resolve_targets
from pinrelay_cli.pinterest_access import CommandError


@pytest.fixture
def queues(aws):
    sqs = aws["sqs"]
    suffix = uuid.uuid4().hex[:8]
    dlq = sqs.create_queue(QueueName=f"dlq-{suffix}")["QueueUrl"]
    main = sqs.create_queue(QueueName=f"main-{suffix}")["QueueUrl"]
    return main, dlq


def bodies(sqs, url):
    found = {}
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30,
                                       MessageAttributeNames=["All"]).get("Messages", [])
        if not messages:
            return found
        for m in messages:
            found[m["Body"]] = m.get("MessageAttributes", {})


def test_redrive_dry_run_counts_and_moves_nothing_then_redrive_moves_everything(aws, queues):
    sqs = aws["sqs"]
    main, dlq = queues
    for i in range(13):
        sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"n": i}),
                         MessageAttributes={"source": {"DataType": "String", "StringValue": "api"}})

    assert redrive(sqs, dlq, main, dry_run=True, wait_seconds=0) == 13
    assert sqs.receive_message(QueueUrl=main).get("Messages") is None
    assert redrive(sqs, dlq, main, dry_run=True, wait_seconds=0) == 13  # visible again after a dry run

    assert redrive(sqs, dlq, main, wait_seconds=0) == 13
    moved = bodies(sqs, main)
    assert sorted(moved) == sorted(json.dumps({"n": i}) for i in range(13))
    assert all(attrs == {"source": {"StringValue": "api", "DataType": "String"}} for attrs in moved.values())
    assert bodies(sqs, dlq) == {}
    assert redrive(sqs, dlq, main, wait_seconds=0) == 0


def test_redrive_limit(aws, queues):
    sqs = aws["sqs"]
    main, dlq = queues
    for i in range(5):
        sqs.send_message(QueueUrl=dlq, MessageBody=str(i))
    assert redrive(sqs, dlq, main, limit=3, wait_seconds=0) == 3
    assert len(bodies(sqs, main)) == 3


def test_rejected_lists_rejections_newest_first_with_pinterest_message(aws, dedup_table):
    dynamodb = aws["dynamodb"]

    def put(key, state, updated_at, error=None, attempts=1):
        item = {"pk": {"S": key}, "state": {"S": state}, "attempts": {"N": str(attempts)},
                "updated_at": {"N": str(updated_at)}, "expires_at": {"N": "9999999999"}}
        if error:
            item["error_message"] = {"S": error}
        dynamodb.put_item(TableName=dedup_table, Item=item)

    put("1#checkout#a", "delivered", 100)
    put("1#checkout#b", "rejected", 200, "Invalid event_timestamp parameter. Given timestamp is in the past.", attempts=2)
    put("1#checkout#c", "queued", 300)
    put("1#lead#d", "rejected", 400, "HTTP 400: The request was invalid.")

    assert [tuple(r) for r in rejected(dynamodb, dedup_table, limit=10)] == [
        ("1#lead#d", "HTTP 400: The request was invalid.", 1, 400),
        ("1#checkout#b", "Invalid event_timestamp parameter. Given timestamp is in the past.", 2, 200),
    ]
    assert len(rejected(dynamodb, dedup_table, limit=1)) == 1


def cli(*adders):
    parser = argparse.ArgumentParser(prog="pinrelay")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in adders:
        add(sub)
    return parser


def test_the_subcommands_resolve_queues_and_table_from_options(aws, queues, dedup_table):
    sqs = aws["sqs"]
    main, dlq = queues
    sqs.send_message(QueueUrl=dlq, MessageBody="x")
    parser = cli(add_redrive_parser, add_rejected_parser)

    args = parser.parse_args(["redrive", "--dry-run", "--queue-url", main, "--dlq-url", dlq])
    out = io.StringIO()
    assert args.func(args, sqs=sqs, out=out) == 0
    assert out.getvalue() == f"1 message(s) in the dead-letter queue {dlq} (dry run: nothing moved)\n"

    aws["dynamodb"].put_item(TableName=dedup_table, Item={
        "pk": {"S": "1#checkout#z"}, "state": {"S": "rejected"}, "attempts": {"N": "1"}, "updated_at": {"N": "0"},
        "error_message": {"S": "nope"}})
    args = parser.parse_args(["rejected", "--table", dedup_table])
    out = io.StringIO()
    assert args.func(args, dynamodb=aws["dynamodb"], out=out) == 0
    assert out.getvalue().splitlines() == ["-  1#checkout#z  attempts 1  nope", f"1 rejected event(s) in {dedup_table}"]

    with pytest.raises(CommandError, match="give --queue-url, --dlq-url or --stack-name"):
        resolve_targets(parser.parse_args(["redrive"]), "queue_url", "dlq_url")


def test_the_queues_and_table_come_from_the_stack_outputs(moto_endpoint, aws):
    import boto3

    cloudformation = boto3.client("cloudformation", endpoint_url=moto_endpoint, region_name="us-east-1",
                                  aws_access_key_id="testing", aws_secret_access_key="testing")
    name = f"pinrelay-{uuid.uuid4().hex[:8]}"
    template = {
        "Resources": {
            "EventsQueue": {"Type": "AWS::SQS::Queue"},
            "EventsDeadLetterQueue": {"Type": "AWS::SQS::Queue"},
            "DedupTable": {"Type": "AWS::DynamoDB::Table", "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}]}},
        },
        "Outputs": {
            "EventsQueueUrl": {"Value": {"Ref": "EventsQueue"}},
            "DeadLetterQueueUrl": {"Value": {"Ref": "EventsDeadLetterQueue"}},
            "DedupTableName": {"Value": {"Ref": "DedupTable"}},
        },
    }
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))
    parser = cli(add_redrive_parser, add_rejected_parser)

    targets = resolve_targets(parser.parse_args(["redrive", "--stack-name", name]), "queue_url", "dlq_url",
                              cloudformation=cloudformation)
    assert targets["queue_url"].startswith("http") and targets["dlq_url"].startswith("http")
    assert targets["queue_url"] != targets["dlq_url"]
    aws["sqs"].send_message(QueueUrl=targets["dlq_url"], MessageBody="back")
    args = parser.parse_args(["redrive", "--stack-name", name])
    assert args.func(args, sqs=aws["sqs"], cloudformation=cloudformation, out=io.StringIO()) == 0
    assert bodies(aws["sqs"], targets["queue_url"]) == {"back": {}}

    table = resolve_targets(parser.parse_args(["rejected", "--stack-name", name]), "table", cloudformation=cloudformation)
    aws["dynamodb"].describe_table(TableName=table["table"])  # it is the stack's table


def test_pinrelay_cli_redrive_and_rejected(aws, dedup_table, capsys):
    from pinrelay_cli import main as cli

    sqs = aws["sqs"]
    queue = sqs.create_queue(QueueName="cli-events")["QueueUrl"]
    dlq = sqs.create_queue(QueueName="cli-events-dlq")["QueueUrl"]
    for n in range(3):
        sqs.send_message(QueueUrl=dlq, MessageBody=f'{{"n": {n}}}')
    assert cli.main(["redrive", "--queue-url", queue, "--dlq-url", dlq, "--dry-run"]) == 0
    assert int(sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"]) == 3
    assert cli.main(["redrive", "--queue-url", queue, "--dlq-url", dlq]) == 0
    assert int(sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"]) == 3
    aws["dynamodb"].put_item(TableName=dedup_table, Item={
        "pk": {"S": "1#checkout#e1"}, "state": {"S": "rejected"}, "error_message": {"S": "Invalid event_timestamp"},
        "attempts": {"N": "1"}, "updated_at": {"N": "100"}, "accepted_at": {"N": "90"}, "expires_at": {"N": "9999999999"}})
    capsys.readouterr()
    assert cli.main(["rejected", "--table", dedup_table]) == 0
    assert "Invalid event_timestamp" in capsys.readouterr().out


def test_pinrelay_uncertain_lists_them_and_releases_only_uncertain_ones(aws, dedup_table, capsys):
    from pinrelay_cli import main as cli

    for key, state in (("1#checkout#sale-1", "uncertain"), ("1#checkout#sale-2", "delivered")):
        aws["dynamodb"].put_item(TableName=dedup_table, Item={
            "pk": {"S": key}, "state": {"S": state}, "attempts": {"N": "2"}, "updated_at": {"N": "100"},
            "expires_at": {"N": "9999999999"}})
    capsys.readouterr()
    assert cli.main(["uncertain", "--table", dedup_table]) == 0
    out = capsys.readouterr().out
    assert "1#checkout#sale-1" in out and "sale-2" not in out and "1 uncertain event(s)" in out
    assert cli.main(["uncertain", "--table", dedup_table, "--release", "1#checkout#sale-1", "--release", "1#checkout#sale-2"]) == 1
    out = capsys.readouterr().out
    assert "1#checkout#sale-1: released" in out and "1#checkout#sale-2: not uncertain" in out
    remaining = {i["pk"]["S"] for i in aws["dynamodb"].scan(TableName=dedup_table)["Items"]}
    assert remaining == {"1#checkout#sale-2"}


def test_pinrelay_uncertain_releases_an_event_id_whether_it_is_a_store_sale_or_a_web_event(aws, dedup_table, capsys):
    """An event_id given to --release is looked for as a store sale's key (offline events are keyed
    apart) and as a web event's: the one that is uncertain is released, nothing else is touched."""
    from pinrelay_cli import main as cli

    items = {"1#offline#checkout#pos-7": "uncertain", "1#checkout#web-8": "uncertain", "1#checkout#pos-7": "delivered"}
    for key, state in items.items():
        aws["dynamodb"].put_item(TableName=dedup_table, Item={
            "pk": {"S": key}, "state": {"S": state}, "attempts": {"N": "1"}, "updated_at": {"N": "100"},
            "expires_at": {"N": "9999999999"}})
    capsys.readouterr()
    assert cli.main(["uncertain", "--table", dedup_table, "--ad-account", "1", "--release", "pos-7", "--release", "web-8",
                     "--release", "nothing-9"]) == 1
    out = capsys.readouterr().out
    assert "1#offline#checkout#pos-7: released" in out and "1#checkout#web-8: released" in out
    assert "nothing-9: not uncertain" in out
    remaining = {i["pk"]["S"] for i in aws["dynamodb"].scan(TableName=dedup_table)["Items"]}
    assert remaining == {"1#checkout#pos-7"}


def test_the_commands_print_no_terminal_escape_sequences(aws, dedup_table, capsys):
    """An event_id or a Pinterest message with escape sequences (erase line, OSC 52 clipboard
    write, a bidi override) is shown escaped: it never reaches the operator's terminal as is."""
    from pinrelay_cli import main as cli

    hostile = "order\x1b[2K\x1b]52;c;ZWNobyBoaQ==\x07\u202e"
    for key, state in ((f"1#checkout#{hostile}", "rejected"), (f"1#checkout#u-{hostile}", "uncertain")):
        aws["dynamodb"].put_item(TableName=dedup_table, Item={
            "pk": {"S": key}, "state": {"S": state}, "error_message": {"S": f"Invalid {hostile}"},
            "attempts": {"N": "1"}, "updated_at": {"N": "100"}, "expires_at": {"N": "9999999999"}})
    capsys.readouterr()
    assert cli.main(["rejected", "--table", dedup_table]) == 0
    assert cli.main(["uncertain", "--table", dedup_table]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "order\\x1b[2K\\x1b]52;c;ZWNobyBoaQ==\\x07\\u202e" in out
