"""The offline import Lambda (functions/offline_import) against moto server: a CSV put in S3, the
handler invoked with the S3 ObjectCreated event, events on the SQS queue, the report next to the CSV.

Memory and throughput on big files: test_offline_import_memory.py."""

import hashlib
import io
import json
import logging
import os
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import quote_plus

import boto3
import pytest
from aws_lambda_powertools import Logger

from pinrelay import config
from pinrelay.adapters import aws as aws_adapter
from pinrelay.events import dedup_key
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
def handler(aws, queue_url, monkeypatch):
    for key, value in {
        "PINTEREST_AD_ACCOUNT_ID": AD_ACCOUNT, "QUEUE_URL": queue_url,
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


@pytest.fixture
def logs(handler, monkeypatch) -> io.StringIO:
    """What the handler logs (Powertools JSON lines, extras included)."""
    buffer = io.StringIO()
    # a service name of its own: Powertools keeps the first handler of a logger it has seen
    service = f"pinrelay-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(handler, "logger", Logger(service=service, logger_handler=logging.StreamHandler(buffer)))
    return buffer


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


def report_of(s3, bucket, key) -> dict:
    return json.loads(s3.get_object(Bucket=bucket, Key=key + ".report.json")["Body"].read())


def upload_and_import(handler, s3, bucket, key, body: bytes | str, context=None) -> dict:
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode() if isinstance(body, str) else body)
    (summary,) = handler.lambda_handler(s3_event(bucket, key), context or ctx())["imports"]
    return summary


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


def test_s3_upload_is_imported_and_reported(handler, aws, s3, bucket, queue_url):
    key = "uploads/2025 store sales.csv"
    summary = upload_and_import(handler, s3, bucket, key, sales_csv())
    assert summary == {"key": key, "report_key": key + ".report.json", "status": "complete", "rows": 4,
                       "accepted": 3, "duplicates": 0, "rejected": 1, "withheld": 0, "errors": 0, "warnings": 0}

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

    report_object = s3.get_object(Bucket=bucket, Key=key + ".report.json")
    assert report_object["ContentType"] == "application/json"
    report = json.loads(report_object["Body"].read())
    assert list(report) == ["v", "bucket", "key", "source", "status", "rows", "accepted", "duplicates", "rejected",
                            "withheld", "errors", "warnings", "results", "processed_at", "duration_ms"]
    assert report["status"] == "complete" and report["source"] == "offline_csv" and report["v"] == 1
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

    # The same file uploaded again: ingest queues the rows again (it no longer keeps dedup keys),
    # with the same dedup keys, which the sender finds delivered and drops before Pinterest.
    handler.lambda_handler(s3_event(bucket, key), ctx())
    again = report_of(s3, bucket, key)
    assert [r["status"] for r in again["results"]] == ["accepted", "rejected", "accepted", "accepted"]
    assert sorted(m["dedup_key"] for m in queued(aws, queue_url)) == sorted(m["dedup_key"] for m in messages)
    assert {m["dedup_key"] for m in messages} == {dedup_key(AD_ACCOUNT, "checkout", f"pos-{n}", offline=True) for n in (1, 3, 4)}


def test_more_than_one_chunk(handler, aws, s3, bucket, queue_url, monkeypatch):
    monkeypatch.setattr(handler, "CHUNK_SIZE", 5)  # 1000 in production; moto makes 1000s of rows slow
    now = int(time.time())
    lines = ["event_id,email,event_time"] + [f"bulk-{i},c{i}@example.com,{now}" for i in range(12)]
    lines[7] = f"bulk-6,bad,{now}"
    lines[9] = f"bulk-1,c1@example.com,{now}"  # again, in another chunk
    summary = upload_and_import(handler, s3, bucket, "uploads/bulk.csv", "\n".join(lines))
    assert (summary["accepted"], summary["rejected"], summary["duplicates"]) == (10, 1, 1)
    assert len(queued(aws, queue_url)) == 10  # the repeated row is not queued
    report = report_of(s3, bucket, "uploads/bulk.csv")
    assert [r["row"] for r in report["results"]] == list(range(2, 14))
    assert report["results"][6]["status"] == "rejected"
    assert report["results"][8]["status"] == "duplicate"
    assert report["results"][8]["reason"] == "same event_name and event_id as row 3"
    assert report["results"][8]["warnings"] == ["event_id: same event_name and event_id as row 3; Pinterest counts the sale once"]
    assert report["warnings"] == 1


def test_the_object_is_read_in_parts_and_a_character_or_cell_split_between_them_is_whole(handler, aws, s3, bucket,
                                                                                          queue_url, monkeypatch):
    monkeypatch.setattr(handler, "PART_BYTES", 5)  # every multi-byte character and line crosses a part boundary
    now = int(time.time())
    text = ("\ufeffevent_id;email;first_name;order_id;event_time\r\n"
            f"ü-1;léa@exämple.com;Léa;\"two\r\nlines; and ü\";{now}\r\n"
            f"€-2;zoë@example.com;Zoë;2;{now}\r\n")
    summary = upload_and_import(handler, s3, bucket, "uploads/parts.csv", text.encode("utf-8"))
    assert (summary["status"], summary["accepted"]) == ("complete", 2)
    report = report_of(s3, bucket, "uploads/parts.csv")
    assert [(r["row"], r["event_id"]) for r in report["results"]] == [(2, "ü-1"), (4, "€-2")]
    events = {m["event"]["event_id"]: m["event"] for m in queued(aws, queue_url)}
    assert events["ü-1"]["user_data"]["fn"] == [sha("léa")]
    assert events["ü-1"]["custom_data"]["order_id"] == "two\r\nlines; and ü"
    assert events["€-2"]["user_data"]["em"] == [sha("zoë@example.com")]


def test_a_file_that_is_not_utf8_is_refused_before_any_row_is_queued(handler, aws, s3, bucket, queue_url, monkeypatch):
    monkeypatch.setattr(handler, "PART_BYTES", 16)
    now = int(time.time())
    text = f"event_id,email,last_name,event_time\ns-1,a@example.com,Smith,{now}\ns-2,b@example.com,Müller,{now}\n"
    summary = upload_and_import(handler, s3, bucket, "uploads/latin1.csv", text.encode("latin-1"))
    assert summary["status"] == "refused" and summary["rows"] == 0
    report = report_of(s3, bucket, "uploads/latin1.csv")
    offset = text.encode("latin-1").index("ü".encode("latin-1"))
    assert report["error"] == f'the file is not UTF-8 (invalid byte at offset {offset}, line 3); save it as "CSV UTF-8"'
    assert report["results"] == []
    assert queued(aws, queue_url) == []  # not even s-1, which came before the bad byte


def test_rows_left_when_time_runs_out_are_reported(handler, aws, s3, bucket, queue_url):
    now = int(time.time())
    body = f"event_id,email,event_time\nt-1,a@example.com,{now}\n,b@example.com,{now}\n"
    context = ctx(handler.REPORT_SECONDS + handler.CHUNK_SECONDS - 1)  # time to read, not to queue
    summary = upload_and_import(handler, s3, bucket, "uploads/late.csv", body, context)
    assert summary["status"] == "incomplete" and summary["errors"] == 2
    report = report_of(s3, bucket, "uploads/late.csv")
    assert report["results"] == [
        {"row": 2, "status": "error", "event_id": "t-1", "event_name": "checkout",
         "reason": "not processed: the function ran out of time; upload the file again"},
        {"row": 3, "status": "error", "event_name": "checkout",
         "reason": "not processed: the function ran out of time; upload the file again"},
    ]
    assert queued(aws, queue_url) == []


def test_when_even_reading_runs_out_of_time_the_report_says_where(handler, aws, s3, bucket, queue_url):
    now = int(time.time())
    context = ctx(handler.REPORT_SECONDS + 5)  # not enough to start a GET and still write the report
    summary = upload_and_import(handler, s3, bucket, "uploads/later.csv",
                                f"event_id,email,event_time\nt-1,a@example.com,{now}\n", context)
    assert summary["status"] == "incomplete"
    report = report_of(s3, bucket, "uploads/later.csv")
    assert report["error"] == "the function ran out of time: the rows after row 0 were not read; upload the file again"
    assert queued(aws, queue_url) == []


def test_unknown_column_is_reported_not_raised(handler, aws, s3, bucket, queue_url):
    summary = upload_and_import(handler, s3, bucket, "uploads/typo.csv", b"event_id,emial,event_time\ns-1,a@example.com,1\n")
    assert summary["status"] == "refused"
    report = report_of(s3, bucket, "uploads/typo.csv")
    assert report["status"] == "refused" and "column 2 (did you mean email?)" in report["error"]
    assert "a@example.com" not in json.dumps(report)
    assert queued(aws, queue_url) == []


# the first customer of a file whose header row is missing (issue 11)
CUSTOMER = ("pos-1", "Jane.Doe@Example.com", "+44 20 7946 0018", "Jane", "Doe", "London", "SW1A 1AA", "72.39")


def test_a_file_without_header_is_refused_without_quoting_its_first_row(handler, aws, s3, bucket, queue_url, logs):
    now = int(time.time())
    body = ",".join(CUSTOMER) + f",{now}\n" + f"pos-2,bob@example.com,,Bob,Smith,Leeds,LS1 1AA,5,{now}\n"
    summary = upload_and_import(handler, s3, bucket, "uploads/noheader.csv", body)
    report = report_of(s3, bucket, "uploads/noheader.csv")
    assert report["status"] == "refused"
    assert report["error"].startswith("the first row is not a header: none of its 9 cells is a known column name")
    everything = json.dumps(report) + json.dumps(summary) + logs.getvalue()
    assert "the first row is not a header" in logs.getvalue()
    for value in (*CUSTOMER, "jane.doe", str(now), "bob@example.com", "Leeds"):
        assert value not in everything


def test_no_reason_or_log_line_quotes_a_cell(handler, aws, s3, bucket, queue_url, logs):
    """A file of recognisable personal values, one broken in each way a row can be: none of them
    in the report, the log lines or the summary."""
    now = int(time.time())
    secrets = ["Jane.Doe@Example.com", "jane.secret@nowhere", "+44 20 7946 0018", "Zebedee", "Quuxley",
               "Llanfair", "SW1A 1AA", "Ruritania", "card-998877", "1970-13-45", "ten-dollars", "dollars", "maybe",
               "purchase-now", "9" * 400, "2025-99-99", "not-a-time", "sku-secret", "7" * 5000]
    header = "event_id,email,phone,first_name,last_name,city,zip,country,external_id,birth_date,value,currency," \
             "opt_out,event_name,event_time,content_ids,num_items"

    def row(event_id, **cells):
        values = {"email": "jane.secret@nowhere", "phone": "+44 20 7946 0018", "first_name": "Zebedee",
                  "last_name": "Quuxley", "city": "Llanfair", "zip": "SW1A 1AA", "country": "GB",
                  "external_id": "card-998877", "birth_date": "", "value": "10", "currency": "GBP", "opt_out": "",
                  "event_name": "", "event_time": str(now), "content_ids": "", "num_items": ""} | cells
        return ",".join([event_id, *(values[c] for c in header.split(",")[1:])])

    rows = [
        row("r-1", email="Jane.Doe@Example.com"),  # good
        row("r-2", email="jane.secretnowhere"),
        row("r-3", phone="0000"),  # dropped with a warning
        row("r-4", country="Ruritania"),
        row("r-5", birth_date="1970-13-45"),
        row("r-6", value="ten-dollars"),
        row("r-7", currency="dollars"),
        row("r-8", opt_out="maybe"),
        row("r-9", event_name="purchase-now"),
        row("r-10", event_time="9" * 400),
        row("r-11", event_time="2025-99-99"),
        row("r-12", event_time="not-a-time"),
        row("r-13", email="|".join(f"jane.secret+{n}@nowhere" for n in range(11))),
        row("r-14", content_ids="|".join(["sku-secret"] * 1001)),
        row("r-15", num_items="7" * 5000),
        row("r-16", value="9" * 400),
        row("r-17") + ",Zebedee",  # more cells than columns
        row("r-18", email='"jane.secret@nowhere"x'),  # bad quoting
        row("r-19", event_time=str(now - 30 * 86400)),  # too old
        row("r-20", event_time="0001-01-01T00:00:00+01:00"),  # before year 1 in UTC
    ]
    summary = upload_and_import(handler, s3, bucket, "uploads/secrets.csv", "\n".join([header, *rows]) + "\n")
    report = report_of(s3, bucket, "uploads/secrets.csv")
    assert summary["status"] == "complete" and summary["rows"] == 20
    # a bad phone, country or birth date is dropped with a warning naming the column
    assert [r["event_id"] for r in report["results"] if r["status"] == "accepted"] == ["r-1", "r-3", "r-4", "r-5"]
    assert [r.get("warnings") for r in report["results"][1:5]] == [
        None, ["phone: value dropped, not a phone number"],
        ["country: value dropped, not an ISO 3166-1 alpha-2 country code"],
        ["birth_date: value dropped, not a calendar date"]]
    everything = json.dumps(report) + json.dumps(summary) + logs.getvalue()
    for secret in secrets:
        assert secret not in everything, secret
    assert "sku-secret" not in logs.getvalue() and "Zebedee" not in logs.getvalue()
    reasons = {r["event_id"]: r.get("reason") for r in report["results"] if "event_id" in r}
    assert reasons["r-10"] == "event_time: out of range; give unix seconds (10 digits)"
    assert reasons["r-13"] == "email: 11 values; at most 10 separated by |"
    assert reasons["r-14"] == "content_ids: 1001 values; at most 1000 separated by |"
    assert reasons["r-15"] == "num_items: too large"
    assert reasons["r-16"] == "value: is too large"
    assert reasons["r-19"].startswith("event_time: more than 7 days in the past (now ")
    assert reasons["r-20"].startswith("event_time: more than 7 days in the past (now ")


def test_an_unexpected_error_leaves_a_failed_report_and_fails_the_invocation(handler, aws, s3, bucket, queue_url,
                                                                            monkeypatch, logs):
    monkeypatch.setattr(handler, "CHUNK_SIZE", 2)
    now = int(time.time())
    body = "event_id,email,event_time\n" + "".join(f"e-{i},jane{i}@example.com,{now}\n" for i in range(5))
    chunks = {"n": 0}
    real_emit = handler.emit_ingest_metrics

    def emit_then_break(results, source):  # a bug that shows after the first chunk, quoting a cell
        chunks["n"] += 1
        if chunks["n"] == 2:
            raise KeyError("jane2@example.com")
        real_emit(results, source)

    monkeypatch.setattr(handler, "emit_ingest_metrics", emit_then_break)
    s3.put_object(Bucket=bucket, Key="uploads/bug.csv", Body=body.encode())
    with pytest.raises(handler.ImportFailed) as raised:
        handler.lambda_handler(s3_event(bucket, "uploads/bug.csv"), ctx())
    report = report_of(s3, bucket, "uploads/bug.csv")
    assert report["status"] == "failed"
    assert report["error"] == ("the import stopped after row 3 on an unexpected error (KeyError); the rows listed were "
                               "processed, the others were not: upload the file again")
    assert [(r["row"], r["status"]) for r in report["results"]] == [(2, "accepted"), (3, "accepted")]
    assert len(queued(aws, queue_url)) == 4  # the second chunk was queued before the error
    assert "jane2@example.com" not in str(raised.value) + logs.getvalue() + json.dumps(report)
    # nor in the traceback Lambda prints and sends to the on-failure destination
    assert raised.value.__cause__ is None and raised.value.__context__ is None
    failure_line = next(json.loads(line) for line in logs.getvalue().splitlines() if "offline import failed" in line)
    assert failure_line["error_type"] == "KeyError"
    assert any("emit_then_break" in frame for frame in failure_line["frames"])


def test_a_file_replaced_during_its_import_stops_it(handler, aws, s3, bucket, queue_url, monkeypatch):
    monkeypatch.setattr(handler, "PART_BYTES", 64)
    monkeypatch.setattr(handler, "CHUNK_SIZE", 1)
    now = int(time.time())
    body = "event_id,email,event_time\n" + "".join(f"v-{i},a{i}@example.com,{now}\n" for i in range(6))
    s3.put_object(Bucket=bucket, Key="uploads/replaced.csv", Body=body.encode())
    gets = {"n": 0}

    def replace_after_the_utf8_pass(**kwargs):  # the 2nd pass starts at GET 4 (3 parts); replace it at GET 5
        gets["n"] += 1
        if gets["n"] == 5:
            s3.put_object(Bucket=bucket, Key="uploads/replaced.csv", Body=b"event_id,email,event_time\n")

    aws_adapter.client("s3").meta.events.register("after-call.s3.GetObject", replace_after_the_utf8_pass)
    try:
        (summary,) = handler.lambda_handler(s3_event(bucket, "uploads/replaced.csv"), ctx())["imports"]
    finally:
        aws_adapter.client("s3").meta.events.unregister("after-call.s3.GetObject", replace_after_the_utf8_pass)
    assert summary["status"] == "incomplete"
    report = report_of(s3, bucket, "uploads/replaced.csv")
    assert report["error"].startswith("the file was replaced while it was imported, after row ")
    assert 0 < summary["rows"] < 6


def test_a_file_over_the_limit_is_refused_unread(handler, s3, bucket, monkeypatch):
    monkeypatch.setenv("OFFLINE_IMPORT_MAX_BYTES", "100")
    config.offline_import_settings.cache_clear()
    gets = []
    counter = lambda **kwargs: gets.append(1)  # noqa: E731
    aws_adapter.client("s3").meta.events.register("before-call.s3.GetObject", counter)
    try:
        summary = upload_and_import(handler, s3, bucket, "uploads/big.csv", b"event_id,email,event_time\n" + b"x" * 200)
    finally:
        aws_adapter.client("s3").meta.events.unregister("before-call.s3.GetObject", counter)
    assert summary["status"] == "refused" and gets == []
    report = report_of(s3, bucket, "uploads/big.csv")
    assert report["error"] == "the file is 226 bytes; at most 100 bytes per file: split it into several files"


def test_queue_outage_is_retried_then_reported(handler, aws, s3, bucket, queue_url, monkeypatch):
    now = int(time.time())
    svc = handler.service()
    calls = {"n": 0}
    real_send = svc.queue.send

    def flaky(bodies, time_left=None):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("sqs down")
        return real_send(bodies, time_left)

    monkeypatch.setattr(svc.queue, "send", flaky)
    summary = upload_and_import(handler, s3, bucket, "uploads/outage.csv", f"event_id,email,event_time\nq-1,a@example.com,{now}\n")
    assert summary["accepted"] == 1 and summary["status"] == "complete" and calls["n"] == 2
    assert len(queued(aws, queue_url)) == 1

    def down(bodies, time_left=None):
        raise RuntimeError("sqs down")

    monkeypatch.setattr(svc.queue, "send", down)
    summary = upload_and_import(handler, s3, bucket, "uploads/outage2.csv", f"event_id,email,event_time\nq-2,a@example.com,{now}\n")
    assert summary["status"] == "incomplete" and summary["errors"] == 1
    report = report_of(s3, bucket, "uploads/outage2.csv")
    assert report["results"][0]["reason"] == "not queued after 3 attempts (RuntimeError); upload the file again"


def test_what_a_killed_import_left_in_tmp_is_removed(handler, s3, bucket, tmp_path, monkeypatch):
    monkeypatch.setattr(handler.tempfile, "tempdir", str(tmp_path))  # this test's own /tmp
    leftover, running = tmp_path / "offline-import-killed", tmp_path / "offline-import-running"
    for directory in (leftover, running):
        directory.mkdir()
        (directory / "results.json").write_text("{}")
    old = time.time() - handler.LAMBDA_MAX_SECONDS - 60
    os.utime(leftover, (old, old))
    other = tmp_path / "someone-else"
    other.mkdir()
    os.utime(other, (old, old))
    now = int(time.time())
    upload_and_import(handler, s3, bucket, "uploads/tmp.csv", f"event_id,email,event_time\nt-1,a@example.com,{now}\n")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["offline-import-running", "someone-else"]


def test_an_object_gone_before_its_import_gets_no_report(handler, s3, bucket):
    assert handler.lambda_handler(s3_event(bucket, "uploads/gone.csv"), ctx()) == {"imports": []}
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_non_csv_keys_are_ignored(handler, s3, bucket):
    assert handler.lambda_handler(s3_event(bucket, "uploads/x.csv.report.json"), ctx()) == {"imports": []}
