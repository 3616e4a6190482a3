"""The offline import Lambda (functions/offline_import) against moto server: a CSV put in S3, the
handler invoked with the S3 ObjectCreated event, events on the SQS queue, the report next to the CSV."""

import hashlib
import json
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import quote_plus

import boto3
import pytest

from pinrelay import config
from pinrelay.adapters import aws as aws_adapter
from pinrelay_local.http_gateway import LambdaContext
from pinrelay_local.stack import REPO_ROOT, import_module_from_path

AD_ACCOUNT = "549755885175"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.fixture
def s3(moto_endpoint):
    return boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def bucket(s3):
    name = f"offline-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def handler(aws, dedup_table, queue_url, monkeypatch):
    for key, value in {
        "PINTEREST_AD_ACCOUNT_ID": AD_ACCOUNT, "QUEUE_URL": queue_url, "DEDUP_TABLE_NAME": dedup_table,
        "POWERTOOLS_SERVICE_NAME": "pinrelay", "POWERTOOLS_METRICS_NAMESPACE": "Pinrelay",
    }.items():
        monkeypatch.setenv(key, value)
    config.offline_import_settings.cache_clear()
    aws_adapter.client.cache_clear()  # clients for this moto server
    module = import_module_from_path("offline_import_handler", REPO_ROOT / "functions/offline_import/offline_import_handler.py")
    module.service.cache_clear()
    monkeypatch.setattr(module, "BACKOFF_SECONDS", 0)
    yield module
    config.offline_import_settings.cache_clear()


def ctx(timeout_s: float = 300) -> LambdaContext:
    return LambdaContext("OfflineImportFunction", timeout_s=timeout_s)


def s3_event(bucket: str, key: str) -> dict:
    """An S3 ObjectCreated:Put notification as Lambda receives it (the key URL-encoded)."""
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": datetime.now(UTC).isoformat(), "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "OfflineImportUpload",
               "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
               "object": {"key": quote_plus(key), "size": 1, "eTag": "0", "sequencer": "0"}},
    }]}


def queued(aws, queue_url) -> list[dict]:
    messages = []
    while True:
        batch = aws["sqs"].receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return messages
        messages += [json.loads(m["Body"]) for m in batch]
        aws["sqs"].delete_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])


def sales_csv() -> bytes:
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    now = int(time.time())
    return (
        "event_id\tevent_name\temail\tphone\tstate\tcountry\tvalue\tcurrency\tevent_time\tstore_id\topt_out\n"
        f"pos-1\tcheckout\tJane.Doe@Example.com\t020 7946 0018\t\tGB\t12.00\tGBP\t{today}\tlondon-1\t\n"
        f"pos-2\t\tnot-an-email\t\t\t\t5\tGBP\t{today}\tlondon-1\t\n"
        f"pos-3\tcheckout\tbob@example.com\t\t\t\t7.50\tGBP\t{now - 30}\tlondon-2\t\n"
        f"pos-4\tcheckout\tcal@example.com\t\tCalifornia\tUS\t9\tUSD\t{now - 30}\tsf-1\ttrue\n"
    ).encode("utf-8-sig")


def test_s3_upload_is_imported_and_reported(handler, aws, s3, bucket, queue_url, dedup_table):
    key = "uploads/2025 store sales.csv"
    s3.put_object(Bucket=bucket, Key=key, Body=sales_csv())

    answer = handler.lambda_handler(s3_event(bucket, key), ctx())
    (summary,) = answer["imports"]
    assert summary == {"key": key, "report_key": key + ".report.json", "status": "complete", "rows": 4,
                       "accepted": 3, "duplicates": 0, "rejected": 1, "errors": 0, "warnings": 0}

    messages = queued(aws, queue_url)
    assert sorted(m["event"]["event_id"] for m in messages) == ["pos-1", "pos-3", "pos-4"]
    for message in messages:
        assert message["source"] == "offline_csv" and message["ad_account_id"] == AD_ACCOUNT
        assert message["event"]["action_source"] == "offline"
    first = next(m["event"] for m in messages if m["event"]["event_id"] == "pos-1")
    assert first["user_data"]["em"] == [sha("jane.doe@example.com")]
    assert first["user_data"]["ph"] == [sha("442079460018")]
    assert first["custom_data"] == {"value": "12.00", "currency": "GBP"}
    # opted out and Californian: Limited Data Processing, as for POST /events
    fourth = next(m["event"] for m in messages if m["event"]["event_id"] == "pos-4")
    assert fourth["opt_out"] is True and fourth["custom_data"]["opt_out_type"] == "LDP"
    item = aws["dynamodb"].get_item(TableName=dedup_table, Key={"pk": {"S": f"{AD_ACCOUNT}#checkout#pos-1"}})["Item"]
    assert item["state"]["S"] == "queued"

    report_object = s3.get_object(Bucket=bucket, Key=key + ".report.json")
    assert report_object["ContentType"] == "application/json"
    report = json.loads(report_object["Body"].read())
    assert report["status"] == "complete" and report["source"] == "offline_csv"
    assert (report["bucket"], report["key"], report["rows"]) == (bucket, key, 4)
    assert report["results"] == [
        {"row": 2, "status": "accepted", "event_id": "pos-1", "event_name": "checkout",
         "match_keys": ["em", "ph", "address"]},
        {"row": 3, "status": "rejected", "event_id": "pos-2", "event_name": "checkout",
         "reason": "email: value dropped, not an email address; email: no usable email address; "
                   "Pinterest matches offline sales on it"},
        {"row": 4, "status": "accepted", "event_id": "pos-3", "event_name": "checkout", "match_keys": ["em"]},
        {"row": 5, "status": "accepted", "event_id": "pos-4", "event_name": "checkout", "match_keys": ["em", "address"]},
    ]
    everything = json.dumps(report) + json.dumps(messages)
    for raw in ("Jane.Doe@Example.com", "jane.doe@example.com", "not-an-email", "bob@example.com", "7946", "london",
                "California", "sf-1"):
        assert raw not in everything

    # the same file uploaded again: nothing new is queued, the report says duplicate
    handler.lambda_handler(s3_event(bucket, key), ctx())
    assert queued(aws, queue_url) == []
    again = json.loads(s3.get_object(Bucket=bucket, Key=key + ".report.json")["Body"].read())
    assert [r["status"] for r in again["results"]] == ["duplicate", "rejected", "duplicate", "duplicate"]
    assert again["duplicates"] == 3 and again["status"] == "complete"


def test_more_than_one_chunk(handler, aws, s3, bucket, queue_url, monkeypatch):
    monkeypatch.setattr(handler, "CHUNK_SIZE", 5)  # 1000 in production; moto makes 1000s of rows slow
    now = int(time.time())
    lines = ["event_id,email,event_time"] + [f"bulk-{i},c{i}@example.com,{now}" for i in range(12)]
    lines[7] = f"bulk-6,bad,{now}"
    lines[9] = f"bulk-1,c1@example.com,{now}"  # again, in another chunk
    s3.put_object(Bucket=bucket, Key="uploads/bulk.csv", Body="\n".join(lines).encode())
    (summary,) = handler.lambda_handler(s3_event(bucket, "uploads/bulk.csv"), ctx())["imports"]
    assert (summary["accepted"], summary["rejected"], summary["duplicates"]) == (10, 1, 1)
    assert len(queued(aws, queue_url)) == 10
    report = json.loads(s3.get_object(Bucket=bucket, Key="uploads/bulk.csv.report.json")["Body"].read())
    assert [r["row"] for r in report["results"]] == list(range(2, 14))
    assert report["results"][6]["status"] == "rejected"
    assert report["results"][8]["status"] == "duplicate"
    assert report["results"][8]["warnings"] == ["event_id: same event_name and event_id as row 3; Pinterest counts the sale once"]
    assert report["warnings"] == 1


def test_rows_left_when_time_runs_out_are_reported(handler, aws, s3, bucket, queue_url):
    now = int(time.time())
    s3.put_object(Bucket=bucket, Key="uploads/late.csv", Body=f"event_id,email,event_time\nt-1,a@example.com,{now}\n".encode())
    context = ctx(handler.RESERVE_MS / 1000 - 1)
    (summary,) = handler.lambda_handler(s3_event(bucket, "uploads/late.csv"), context)["imports"]
    assert summary["status"] == "incomplete" and summary["errors"] == 1
    report = json.loads(s3.get_object(Bucket=bucket, Key="uploads/late.csv.report.json")["Body"].read())
    assert report["results"][0]["reason"] == "not processed: the function ran out of time; upload the file again"
    assert queued(aws, queue_url) == []


def test_unknown_column_is_reported_not_raised(handler, aws, s3, bucket, queue_url):
    s3.put_object(Bucket=bucket, Key="uploads/typo.csv", Body=b"event_id,emial,event_time\ns-1,a@example.com,1\n")
    (summary,) = handler.lambda_handler(s3_event(bucket, "uploads/typo.csv"), ctx())["imports"]
    assert summary["status"] == "refused"
    report = json.loads(s3.get_object(Bucket=bucket, Key="uploads/typo.csv.report.json")["Body"].read())
    assert report["status"] == "refused" and "'emial' (did you mean email?)" in report["error"]
    assert "a@example.com" not in json.dumps(report)
    assert queued(aws, queue_url) == []


def test_queue_outage_is_retried_then_reported(handler, aws, s3, bucket, queue_url, monkeypatch, dedup_table):
    now = int(time.time())
    s3.put_object(Bucket=bucket, Key="uploads/outage.csv", Body=f"event_id,email,event_time\nq-1,a@example.com,{now}\n".encode())
    svc = handler.service()
    calls = {"n": 0}
    real_send = svc.queue.send

    def flaky(bodies):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("sqs down")
        return real_send(bodies)

    monkeypatch.setattr(svc.queue, "send", flaky)
    (summary,) = handler.lambda_handler(s3_event(bucket, "uploads/outage.csv"), ctx())["imports"]
    assert summary["accepted"] == 1 and summary["status"] == "complete" and calls["n"] == 2
    assert len(queued(aws, queue_url)) == 1

    monkeypatch.setattr(svc.queue, "send", lambda bodies: (_ for _ in ()).throw(RuntimeError("sqs down")))
    s3.put_object(Bucket=bucket, Key="uploads/outage2.csv", Body=f"event_id,email,event_time\nq-2,a@example.com,{now}\n".encode())
    (summary,) = handler.lambda_handler(s3_event(bucket, "uploads/outage2.csv"), ctx())["imports"]
    assert summary["status"] == "incomplete" and summary["errors"] == 1
    report = json.loads(s3.get_object(Bucket=bucket, Key="uploads/outage2.csv.report.json")["Body"].read())
    assert report["results"][0]["reason"].startswith("not queued after 3 attempts")
    # the claim was released: uploading the file again will queue it
    assert "Item" not in aws["dynamodb"].get_item(TableName=dedup_table, Key={"pk": {"S": f"{AD_ACCOUNT}#checkout#q-2"}})


def test_non_csv_keys_are_ignored(handler, s3, bucket):
    assert handler.lambda_handler(s3_event(bucket, "uploads/x.csv.report.json"), ctx()) == {"imports": []}
