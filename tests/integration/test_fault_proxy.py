"""AwsFaultProxy in front of a real moto server, driven by real boto3 clients and real processes.

These tests also pin the botocore behaviours the proxy's faults rely on (botocore 1.43, standard
retry mode): a connection closed or reset without an answer is retried; 500/503 and the
services' throttling codes are retried; the retries of one call share ``amz-sdk-invocation-id``.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError

from pinrelay_local.fault_proxy import (
    DELAY,
    FAIL_5XX,
    KILL_AFTER,
    KILL_BEFORE,
    LOSE_ANSWER,
    LOSE_ANSWER_FIN,
    THROTTLE,
    UNAVAILABLE_503,
    AwsFaultProxy,
    FaultAction,
    FaultProxyError,
    FaultRule,
    fault_points,
    identify_call,
)

DUMMY = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture
def proxy(moto_endpoint):
    with AwsFaultProxy(moto_endpoint) as proxy:
        yield proxy


def client(proxy: AwsFaultProxy, service: str, caller: str = "test", attempts: int = 3, read_timeout: float = 10):
    """A boto3 client through the proxy; ``attempts`` counts the first one (botocore's
    ``total_max_attempts``; its ``max_attempts`` counts retries only)."""
    config = Config(
        user_agent_appid=caller,
        retries={"mode": "standard", "total_max_attempts": attempts},
        connect_timeout=2,
        read_timeout=read_timeout,
    )
    return boto3.session.Session(**DUMMY).client(service, endpoint_url=proxy.url, config=config)


def new_table(proxy: AwsFaultProxy) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    client(proxy, "dynamodb", caller="setup").create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    return name


def new_queue(proxy: AwsFaultProxy) -> str:
    return client(proxy, "sqs", caller="setup").create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]


def all_messages(proxy: AwsFaultProxy, queue_url: str) -> list[str]:
    sqs = client(proxy, "sqs", caller="check")
    bodies: list[str] = []
    while True:
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60)
        messages = answer.get("Messages", [])
        if not messages:
            return bodies
        bodies += [message["Body"] for message in messages]


def stored_keys(proxy: AwsFaultProxy, table: str) -> set[str]:
    items = client(proxy, "dynamodb", caller="check").scan(TableName=table)["Items"]
    return {item["pk"]["S"] for item in items}


def error_code(error: ClientError) -> str:
    return error.response["Error"]["Code"]


# -- forwarding and naming ----------------------------------------------------------------------


def test_forwards_dynamodb_sqs_secrets_and_s3_calls_and_names_each_with_its_caller(proxy, tmp_path):
    ddb = client(proxy, "dynamodb", caller="ddb-app")
    table = f"t-{uuid.uuid4().hex[:8]}"
    ddb.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    ddb.put_item(TableName=table, Item={"pk": {"S": "order-1"}, "state": {"S": "queued"}})
    assert ddb.get_item(TableName=table, Key={"pk": {"S": "order-1"}})["Item"]["state"] == {"S": "queued"}
    ddb.update_item(
        TableName=table, Key={"pk": {"S": "order-1"}}, UpdateExpression="SET #s = :sent",
        ConditionExpression="#s = :queued", ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":sent": {"S": "sent"}, ":queued": {"S": "queued"}},
    )
    with pytest.raises(ClientError) as refused:  # the same condition again: moto's answer comes through
        ddb.update_item(
            TableName=table, Key={"pk": {"S": "order-1"}}, UpdateExpression="SET #s = :sent",
            ConditionExpression="#s = :queued", ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={":sent": {"S": "sent"}, ":queued": {"S": "queued"}},
        )
    assert error_code(refused.value) == "ConditionalCheckFailedException"

    sqs = client(proxy, "sqs", caller="sqs-app")
    queue_url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    assert queue_url.startswith(proxy.url)  # moto builds it from the Host header the proxy passed on
    entries = [{"Id": str(i), "MessageBody": f"m{i}"} for i in range(3)]
    sent = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    assert len(sent["Successful"]) == 3
    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in received) == ["m0", "m1", "m2"]
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=received[0]["ReceiptHandle"])

    secrets = client(proxy, "secretsmanager", caller="secrets-app")
    name = f"pinrelay/{uuid.uuid4().hex[:8]}"
    secrets.create_secret(Name=name, SecretString="s3cr3t")
    assert secrets.get_secret_value(SecretId=name)["SecretString"] == "s3cr3t"

    s3 = client(proxy, "s3", caller="s3-app")
    bucket = f"b-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    blob = os.urandom(3 * 1024 * 1024 + 17)
    s3.put_object(Bucket=bucket, Key="blobs/one.bin", Body=blob)
    streamed = hashlib.sha256()
    for chunk in s3.get_object(Bucket=bucket, Key="blobs/one.bin")["Body"].iter_chunks(64 * 1024):
        streamed.update(chunk)
    assert streamed.hexdigest() == hashlib.sha256(blob).hexdigest()
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(11 * 1024 * 1024))
    five_mb = 5 * 1024 * 1024
    parts_of_5_mb = TransferConfig(multipart_threshold=five_mb, multipart_chunksize=five_mb, use_threads=False)
    s3.upload_file(str(big), bucket, "blobs/big.bin", Config=parts_of_5_mb)
    assert s3.head_object(Bucket=bucket, Key="blobs/big.bin")["ContentLength"] == 11 * 1024 * 1024
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert sorted(o["Key"] for o in listed) == ["blobs/big.bin", "blobs/one.bin"]

    assert proxy.operations_of("ddb-app") == [
        "dynamodb." + op for op in ("CreateTable", "PutItem", "GetItem", "UpdateItem", "UpdateItem")
    ]
    assert proxy.operations_of("sqs-app") == [
        "sqs." + op for op in ("CreateQueue", "SendMessageBatch", "ReceiveMessage", "DeleteMessage")
    ]
    assert proxy.operations_of("secrets-app") == ["secretsmanager.CreateSecret", "secretsmanager.GetSecretValue"]
    assert proxy.operations_of("s3-app") == ["s3." + op for op in (
        "CreateBucket", "PutObject", "GetObject", "CreateMultipartUpload", "UploadPart", "UploadPart", "UploadPart",
        "CompleteMultipartUpload", "HeadObject", "ListObjectsV2",
    )]
    calls = proxy.calls
    assert [c.seq for c in calls] == list(range(1, len(calls) + 1))
    assert [c.caller_seq for c in proxy.calls_of("sqs-app")] == [1, 2, 3, 4]
    put = proxy.calls_of("ddb-app")[1]
    assert table in put.summary and "order-1" in put.summary
    assert (put.upstream_status, put.client_status, put.fault, put.attempt) == (200, 200, None, 1)
    refused_update = proxy.calls_of("ddb-app")[4]
    assert (refused_update.upstream_status, refused_update.client_status) == (400, 400)
    part_summaries = [c.summary for c in proxy.calls_of("s3-app")][4:7]
    assert part_summaries == [f"/{bucket}/blobs/big.bin part {n}" for n in (1, 2, 3)]


def test_names_query_protocol_calls_by_their_action(proxy):
    sts = client(proxy, "sts", caller="sts-app")
    assert sts.get_caller_identity()["Account"] == "123456789012"
    (call,) = proxy.calls_of("sts-app")
    assert (call.service, call.operation) == ("sts", "GetCallerIdentity")


S3_SIGNATURE = "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0"


@pytest.mark.parametrize(
    ("method", "target", "extra_headers", "operation"),
    [
        ("GET", "/bkt/key.txt", {}, "GetObject"),
        ("GET", "/bkt/a/b/c.txt?tagging", {}, "GetObjectTagging"),
        ("PUT", "/bkt/key.txt", {}, "PutObject"),
        ("PUT", "/bkt/key.txt", {"x-amz-copy-source": "other/key"}, "CopyObject"),
        ("PUT", "/bkt/key.txt?partNumber=2&uploadId=u1", {}, "UploadPart"),
        ("POST", "/bkt/key.txt?uploads", {}, "CreateMultipartUpload"),
        ("POST", "/bkt/key.txt?uploadId=u1", {}, "CompleteMultipartUpload"),
        ("DELETE", "/bkt/key.txt?uploadId=u1", {}, "AbortMultipartUpload"),
        ("HEAD", "/bkt/key.txt", {}, "HeadObject"),
        ("GET", "/bkt?list-type=2&prefix=a", {}, "ListObjectsV2"),
        ("GET", "/bkt", {}, "ListObjects"),
        ("PUT", "/bkt", {}, "CreateBucket"),
        ("HEAD", "/bkt", {}, "HeadBucket"),
        ("POST", "/bkt?delete", {}, "DeleteObjects"),
        ("GET", "/", {}, "ListBuckets"),
        ("GET", "/key.txt", {"Host": "bkt.localhost:4566"}, "GetObject"),  # virtual-hosted style
    ],
)
def test_names_s3_rest_calls_from_method_path_and_query(method, target, extra_headers, operation):
    headers = {"Host": "127.0.0.1:4566", "Authorization": S3_SIGNATURE, **extra_headers}
    name = identify_call(method, target, headers, b"")
    assert (name.service, name.operation, name.protocol) == ("s3", operation, "rest-xml")


# -- kills ----------------------------------------------------------------------------------------

CHILD_PUT_ITEM = """
import sys, boto3
from botocore.config import Config
table, key, marker = sys.argv[1:4]
sys.stdin.readline()  # "go": the test has registered this process with the proxy
dynamodb = boto3.client("dynamodb", config=Config(retries={"mode": "standard", "total_max_attempts": 3}))
dynamodb.put_item(TableName=table, Item={"pk": {"S": key}})
open(marker, "w").write("code after put_item ran")
"""


def child_environment(proxy: AwsFaultProxy, caller: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_ENDPOINT_URL": proxy.url,
        "AWS_SDK_UA_APP_ID": caller,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": os.devnull,
    }


def run_registered_child(proxy: AwsFaultProxy, caller: str, script: str, *args: str) -> int:
    """Start ``script`` in a new python process, register it as ``caller``, let it run; its returncode."""
    child = subprocess.Popen(
        [sys.executable, "-c", script, *args], stdin=subprocess.PIPE, env=child_environment(proxy, caller),
    )
    proxy.register_process(caller, child.pid)
    assert child.stdin is not None
    child.stdin.write(b"go\n")
    child.stdin.close()
    return child.wait(timeout=30)


@pytest.mark.parametrize(("action", "item_stored"), [(KILL_BEFORE, False), (KILL_AFTER, True)])
def test_kill_at_put_item_leaves_the_item_as_aws_saw_it_and_runs_no_further_code(proxy, tmp_path, action, item_stored):
    table = new_table(proxy)
    marker = tmp_path / "after-put-item"
    rule = proxy.add_rule(FaultRule("dynamodb", "PutItem", caller="worker-1", action=action))

    returncode = run_registered_child(proxy, "worker-1", CHILD_PUT_ITEM, table, "order-1", str(marker))

    assert returncode == -signal.SIGKILL
    assert rule.fired == 1
    assert ("order-1" in stored_keys(proxy, table)) is item_stored
    assert not marker.exists()
    # the process was dead before its connection dropped: botocore never got to retry the call
    (put,) = [c for c in proxy.calls_of("worker-1") if c.operation == "PutItem"]
    assert put.fault == action.label and put.client_status is None
    assert put.upstream_status == (200 if item_stored else None)


def test_a_kill_for_a_caller_without_kill_callback_is_an_error_the_test_sees(proxy):
    proxy.add_rule(FaultRule("sqs", "CreateQueue", action=KILL_BEFORE))
    with pytest.raises(ClientError) as refused:
        client(proxy, "sqs", caller="nobody").create_queue(QueueName="never")
    assert error_code(refused.value) == "FaultProxyError"
    with pytest.raises(FaultProxyError, match="no kill callback for caller 'nobody'"):
        proxy.check()
    proxy.reset()  # or leaving the proxy's with-block would raise it


# -- lost answers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("action", [LOSE_ANSWER, LOSE_ANSWER_FIN], ids=["rst", "fin"])
def test_lost_answer_to_send_message_is_retried_by_botocore_and_the_queue_gets_two_messages(proxy, action):
    queue_url = new_queue(proxy)
    proxy.add_rule(FaultRule("sqs", "SendMessage", action=action))

    sent = client(proxy, "sqs", caller="sender").send_message(QueueUrl=queue_url, MessageBody="order-1 purchase")

    assert sent["MessageId"]
    assert all_messages(proxy, queue_url) == ["order-1 purchase", "order-1 purchase"]
    first, retry = proxy.calls_of("sender")
    assert (first.operation, first.fault, first.upstream_status) == ("SendMessage", action.label, 200)
    assert first.client_status is None
    assert (retry.operation, retry.fault, retry.client_status) == ("SendMessage", None, 200)
    assert (first.attempt, retry.attempt) == (1, 2)
    assert first.invocation_id == retry.invocation_id  # one API call, two HTTP requests
    assert first.body_sha256 == retry.body_sha256


def test_lost_answer_without_retries_raises_although_the_message_was_sent(proxy):
    queue_url = new_queue(proxy)
    proxy.add_rule(FaultRule("sqs", "SendMessage", action=LOSE_ANSWER))
    with pytest.raises(ConnectionClosedError):
        client(proxy, "sqs", caller="sender", attempts=1).send_message(QueueUrl=queue_url, MessageBody="order-1")
    assert all_messages(proxy, queue_url) == ["order-1"]


def test_lost_answer_to_a_conditional_put_item_makes_its_retry_fail_the_condition(proxy):
    """The hazard product code must handle: the first attempt created the item, the SDK's retry
    of the very same call then finds it and the caller sees ConditionalCheckFailedException for
    a write that did succeed."""
    table = new_table(proxy)
    proxy.add_rule(FaultRule("dynamodb", "PutItem", action=LOSE_ANSWER))

    with pytest.raises(ClientError) as refused:
        client(proxy, "dynamodb", caller="claimer").put_item(
            TableName=table, Item={"pk": {"S": "claim-1"}}, ConditionExpression="attribute_not_exists(pk)"
        )

    assert error_code(refused.value) == "ConditionalCheckFailedException"
    assert stored_keys(proxy, table) == {"claim-1"}
    attempts = [(c.attempt, c.upstream_status, c.client_status) for c in proxy.calls_of("claimer")]
    assert attempts == [(1, 200, None), (2, 400, 400)]


# -- throttling, failures, slowness --------------------------------------------------------------


def put_item(proxy: AwsFaultProxy, caller: str, attempts: int) -> None:
    table = new_table(proxy)
    client(proxy, "dynamodb", caller=caller, attempts=attempts).put_item(TableName=table, Item={"pk": {"S": "k"}})


def send_message(proxy: AwsFaultProxy, caller: str, attempts: int) -> None:
    queue_url = new_queue(proxy)
    client(proxy, "sqs", caller=caller, attempts=attempts).send_message(QueueUrl=queue_url, MessageBody="m")


def get_secret(proxy: AwsFaultProxy, caller: str, attempts: int) -> None:
    name = f"s-{uuid.uuid4().hex[:8]}"
    client(proxy, "secretsmanager", caller="setup").create_secret(Name=name, SecretString="v")
    client(proxy, "secretsmanager", caller=caller, attempts=attempts).get_secret_value(SecretId=name)


def get_object(proxy: AwsFaultProxy, caller: str, attempts: int) -> None:
    bucket = f"b-{uuid.uuid4().hex[:8]}"
    client(proxy, "s3", caller="setup").create_bucket(Bucket=bucket)
    client(proxy, "s3", caller="setup").put_object(Bucket=bucket, Key="k", Body=b"v")
    client(proxy, "s3", caller=caller, attempts=attempts).get_object(Bucket=bucket, Key="k")["Body"].read()


CALLS = {
    "dynamodb.PutItem": put_item, "sqs.SendMessage": send_message,
    "secretsmanager.GetSecretValue": get_secret, "s3.GetObject": get_object,
}


@pytest.mark.parametrize(
    ("call", "action", "expected_code"),
    [
        ("dynamodb.PutItem", THROTTLE, "ProvisionedThroughputExceededException"),
        ("dynamodb.PutItem", FaultAction("throttle", error_code="ThrottlingException"), "ThrottlingException"),
        ("dynamodb.PutItem", FAIL_5XX, "InternalServerError"),
        ("sqs.SendMessage", THROTTLE, "RequestThrottled"),
        ("sqs.SendMessage", UNAVAILABLE_503, "ServiceUnavailable"),
        ("secretsmanager.GetSecretValue", THROTTLE, "ThrottlingException"),
        ("secretsmanager.GetSecretValue", FAIL_5XX, "InternalServiceError"),
        ("s3.GetObject", THROTTLE, "SlowDown"),
        ("s3.GetObject", FAIL_5XX, "InternalError"),
    ],
)
def test_failing_every_attempt_raises_the_services_error_after_botocores_retries(proxy, call, action, expected_code):
    service, operation = call.split(".")
    rule = proxy.add_rule(FaultRule(service, operation, caller="victim", times=2, action=action))
    with pytest.raises(ClientError) as failed:
        CALLS[call](proxy, "victim", 2)
    assert error_code(failed.value) == expected_code
    assert failed.value.response["ResponseMetadata"]["RetryAttempts"] == 1  # botocore did retry it
    assert rule.fired == 2
    assert [c.attempt for c in proxy.calls_of("victim")] == [1, 2]


@pytest.mark.parametrize(("call", "action"), [("dynamodb.PutItem", THROTTLE), ("sqs.SendMessage", FAIL_5XX)])
def test_failing_fewer_attempts_than_the_maximum_is_absorbed_by_botocores_retries(proxy, call, action):
    service, operation = call.split(".")
    proxy.add_rule(FaultRule(service, operation, caller="victim", times=2, action=action))
    CALLS[call](proxy, "victim", 3)
    victim_calls = proxy.calls_of("victim")
    assert [(c.attempt, c.fault is not None, c.client_status) for c in victim_calls][-3:] == [
        (1, True, 400 if action is THROTTLE else 500), (2, True, 400 if action is THROTTLE else 500), (3, False, 200),
    ]


def test_botocore_max_attempts_counts_retries_and_total_max_attempts_counts_attempts(proxy):
    """Pinned because limits are sized from it: ``retries={"max_attempts": n}`` makes n + 1
    attempts (botocore/args.py adds the first one), ``total_max_attempts`` n."""
    table = new_table(proxy)
    proxy.add_rule(FaultRule("dynamodb", "PutItem", times=None, action=FAIL_5XX))
    for caller, retries in (("retries-1", {"max_attempts": 1}), ("total-1", {"total_max_attempts": 1})):
        config = Config(user_agent_appid=caller, retries={"mode": "standard", **retries})
        dynamodb = boto3.session.Session(**DUMMY).client("dynamodb", endpoint_url=proxy.url, config=config)
        with pytest.raises(ClientError, match="InternalServerError"):
            dynamodb.put_item(TableName=table, Item={"pk": {"S": "k"}})
    assert len(proxy.calls_of("retries-1")) == 2
    assert len(proxy.calls_of("total-1")) == 1


def test_a_rule_with_until_fails_a_service_for_a_while(proxy):
    table = new_table(proxy)
    dynamodb = client(proxy, "dynamodb", caller="app", attempts=1)
    proxy.add_rule(FaultRule("dynamodb", caller="app", times=None, until=time.monotonic() + 0.5, action=THROTTLE))
    for key in ("a", "b"):
        with pytest.raises(ClientError, match="ProvisionedThroughputExceededException"):
            dynamodb.put_item(TableName=table, Item={"pk": {"S": key}})
    time.sleep(0.6)
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "c"}})
    assert stored_keys(proxy, table) == {"c"}


def test_nth_and_caller_pick_exactly_the_calls_a_rule_applies_to(proxy):
    table = new_table(proxy)
    mine = client(proxy, "dynamodb", caller="mine", attempts=1)
    other = client(proxy, "dynamodb", caller="other", attempts=1)
    rule = proxy.add_rule(FaultRule("dynamodb", "PutItem", caller="mine", nth=2, times=1, action=FAIL_5XX))
    outcomes = []
    for key, dynamodb in (("1", mine), ("x", other), ("2", mine), ("3", mine)):
        try:
            dynamodb.put_item(TableName=table, Item={"pk": {"S": key}})
            outcomes.append((key, "ok"))
        except ClientError as error:
            outcomes.append((key, error_code(error)))
    assert outcomes == [("1", "ok"), ("x", "ok"), ("2", "InternalServerError"), ("3", "ok")]
    assert (rule.matched, rule.fired) == (3, 1)


def test_delay_past_the_read_timeout_makes_botocore_retry_while_the_slow_call_is_still_applied(proxy):
    queue_url = new_queue(proxy)
    sqs = client(proxy, "sqs", caller="app", read_timeout=0.3)
    # 4 s: time for the retry and the check below to end before the delayed call goes on, even on
    # a loaded machine (with 2 s, a busy CI host once checked after it)
    proxy.add_rule(FaultRule("sqs", "SendMessage", action=DELAY(4.0)))

    started = time.monotonic()
    sqs.send_message(QueueUrl=queue_url, MessageBody="slow")
    returned_after = time.monotonic() - started

    # read timeout 0.3 s + at most 1 s of backoff: the retry answered before the delayed call went on
    assert returned_after < 2.5
    visible = client(proxy, "sqs", caller="check").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"]
    checked_after = time.monotonic() - started
    assert checked_after < 4.0 and visible == "1"
    time.sleep(4.2 - checked_after)
    assert all_messages(proxy, queue_url) == ["slow", "slow"]
    delayed, retry = proxy.calls_of("app")
    assert (delayed.fault, delayed.attempt, delayed.upstream_status) == ("delay_4s", 1, 200)
    assert delayed.client_status is None and "closed the connection" in (delayed.error or "")
    assert (retry.fault, retry.attempt, retry.client_status) == (None, 2, 200)


# -- recording pass and enumeration of fault points ----------------------------------------------

CHILD_SCENARIO = """
import sys, boto3
table, queue_url, run, marker = sys.argv[1:5]
sys.stdin.readline()
dynamodb, sqs = boto3.client("dynamodb"), boto3.client("sqs")
dynamodb.put_item(TableName=table, Item={"pk": {"S": run + ":claimed"}})
sqs.send_message(QueueUrl=queue_url, MessageBody=run + ":queued")
dynamodb.put_item(TableName=table, Item={"pk": {"S": run + ":recorded"}})
open(marker, "w").write("done")
"""
EFFECTS = ["claimed", "queued", "recorded"]


def test_fault_points_from_a_recording_pass_each_hit_the_intended_call_in_a_fresh_run(proxy, tmp_path):
    table, queue_url = new_table(proxy), new_queue(proxy)

    def effects_of(run: str) -> list[str]:
        keys = {key.split(":", 1)[1] for key in stored_keys(proxy, table) if key.startswith(run + ":")}
        bodies = {body.split(":", 1)[1] for body in all_messages(proxy, queue_url) if body.startswith(run + ":")}
        return [effect for effect in EFFECTS if effect in keys | bodies]

    assert run_registered_child(proxy, "scenario", CHILD_SCENARIO, table, queue_url, "rec", str(tmp_path / "rec")) == 0
    recorded = proxy.calls_of("scenario")
    assert [c.name for c in recorded] == ["dynamodb.PutItem", "sqs.SendMessage", "dynamodb.PutItem"]
    assert effects_of("rec") == EFFECTS

    points = fault_points(proxy.calls, [KILL_BEFORE, KILL_AFTER], callers=["scenario"])
    assert [p.id for p in points] == [
        "scenario#1 dynamodb.PutItem kill_before", "scenario#1 dynamodb.PutItem kill_after",
        "scenario#2 sqs.SendMessage kill_before", "scenario#2 sqs.SendMessage kill_after",
        "scenario#3 dynamodb.PutItem kill_before", "scenario#3 dynamodb.PutItem kill_after",
    ]
    for number, point in enumerate(points):
        proxy.reset()
        proxy.add_rule(point.rule())
        run, marker = f"run{number}", tmp_path / f"run{number}"
        returncode = run_registered_child(proxy, "scenario", CHILD_SCENARIO, table, queue_url, run, str(marker))
        assert returncode == -signal.SIGKILL, point.id
        applied = point.index if point.action is KILL_AFTER else point.index - 1
        assert effects_of(run) == EFFECTS[:applied], point.id
        assert not marker.exists()
        (faulted,) = [c for c in proxy.calls_of("scenario") if c.fault]
        assert (faulted.caller_seq, faulted.name) == (point.index, f"{point.service}.{point.operation}")


def test_sigkill_and_wait_returns_once_the_process_is_a_zombie(tmp_path):
    from pinrelay_local.fault_proxy import sigkill_and_wait

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    sigkill_and_wait(child.pid)
    status = Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    assert status == "Z"  # dead, not yet reaped: its parent can still waitpid it
    assert child.wait(timeout=1) == -signal.SIGKILL


@pytest.mark.parametrize(("action", "client_sees"), [(LOSE_ANSWER, "reset"), (LOSE_ANSWER_FIN, "close")])
def test_lose_answer_resets_the_connection_and_lose_answer_fin_closes_it(proxy, action, client_sees):
    proxy.add_rule(FaultRule(action=action))
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as connection:
        connection.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n")
        try:
            seen = "close" if connection.recv(1) == b"" else "answer"
        except ConnectionResetError:
            seen = "reset"
    assert seen == client_sees
    (call,) = proxy.calls
    assert call.upstream_status is not None and call.client_status is None  # forwarded, not answered
