"""End to end: `pinrelay import-offline` (the CLI's main(), in this process) posts a CSV of store
sales to the local stack (real ingest handler behind the HTTP API emulation, moto, the sender,
the Pinterest stand-in), and the good rows reach the stand-in as hashed offline events."""

import hashlib
import json
import time
from datetime import UTC, datetime

import pytest

from pinrelay_cli import main as cli
from pinrelay_local.pinterest_standin import ConversionEventsValidator
from pinrelay_local.stack import LocalStack

pytestmark = pytest.mark.e2e


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_sales(tmp_path, name="sales.csv"):
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    now = int(time.time())
    path = tmp_path / name
    path.write_text(
        "\ufeffevent_id;email;phone;country;value;currency;order_id;content_ids;event_time\n"
        f"store-1001;Jane.Doe@Example.com;(415) 555-0134;US;72,39;USD;1001;sku-1|sku-2;{today}\n"
        f"store-1002;bob@example.com|Bob.Work@Example.org;;;19.99;usd;1002;;{today}T00:00:00Z\n"
        f"store-1003;not-an-email;;;5;USD;1003;;{today}\n"
        f"store-1004;ann@example.com;;;12;EUR;1004;;{now - 60}\n",
        encoding="utf-8",
    )
    return path


def wait_for_events(standin, count, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        delivered = standin.delivered_events()
        if len(delivered) >= count:
            return delivered
        time.sleep(0.1)
    return standin.delivered_events()


def test_import_offline_posts_the_good_rows_and_reports_the_bad_one(tmp_path, capsys):
    csv_path = write_sales(tmp_path)
    with LocalStack(port=0, sender_window_s=0.2) as stack:
        args = ["import-offline", str(csv_path), "--url", stack.url, "--api-key", stack.ingest_api_key]

        assert cli.main([*args, "--dry-run"]) == 1
        dry = capsys.readouterr()
        assert f"{csv_path}: 4 rows: 3 valid, 1 with errors" in dry.out
        assert "row 4: email: value dropped, not an email address" in dry.out
        assert "dry run: nothing sent" in dry.out
        assert "not-an-email" not in dry.out
        assert stack.standin.received == []

        assert cli.main([*args, "--batch-size", "2"]) == 1  # row 4 has an error
        first = capsys.readouterr()
        assert "sending 3 rows to" in first.out and "in 2 requests" in first.out
        assert "API: 3 accepted, 0 duplicates, 0 rejected; 0 not sent" in first.out
        assert "1 row not imported: 1 with errors, 0 rejected by the API, 0 not sent" in first.out
        assert "sending [" in first.err and "3/3 rows (100%)" in first.err

        delivered = wait_for_events(stack.standin, 3)
        assert sorted(e["event_id"] for e in delivered) == ["store-1001", "store-1002", "store-1004"]
        for request in stack.standin.received:
            assert request["status"] == 200
            assert ConversionEventsValidator().errors(request["body"]) == []
        events = {e["event_id"]: e for e in delivered}
        assert all(e["action_source"] == "offline" for e in delivered)
        assert events["store-1001"]["user_data"]["em"] == [sha("jane.doe@example.com")]
        assert events["store-1001"]["user_data"]["ph"] == [sha("14155550134")]
        assert events["store-1001"]["custom_data"] == {
            "value": "72.39", "currency": "USD", "order_id": "1001", "content_ids": ["sku-1", "sku-2"]
        }
        assert events["store-1002"]["user_data"]["em"] == [sha("bob@example.com"), sha("bob.work@example.org")]
        midnight = int(datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp())
        assert events["store-1002"]["event_time"] == midnight
        sent = json.dumps([r["body"] for r in stack.standin.received])
        for raw in ("Jane.Doe@Example.com", "jane.doe@example.com", "bob@example.com", "555-0134"):
            assert raw not in sent

        # the same file again: queued again, and the sender drops every copy (the dedup window of
        # offline events is 7 days + 5 minutes): Pinterest gets nothing new
        requests_before = len(stack.standin.received)
        assert cli.main(args) == 1  # the file's invalid rows are still refused
        again = capsys.readouterr()
        assert "API: 3 accepted, 0 duplicates, 0 rejected" in again.out
        assert stack.wait_until_drained(timeout=20)
        time.sleep(1.0)  # a batching window: a second delivery would have arrived by now
        assert len(stack.standin.received) == requests_before


def test_import_offline_all_good_exits_0_and_a_wrong_key_stops_at_its_first_refusal(tmp_path, capsys):
    now = int(time.time())
    path = tmp_path / "good.csv"
    path.write_text(f"event_id,email,event_time\ns-1,a@example.com,{now}\ns-2,b@example.com,{now}\n", encoding="utf-8")
    many = tmp_path / "many.csv"
    many.write_text("event_id,email,event_time\n" + "".join(f"m-{n},m{n}@example.com,{now}\n" for n in range(2500)),
                    encoding="utf-8")
    with LocalStack(port=0, sender_window_s=0.2) as stack:
        assert cli.main(["import-offline", str(many), "--url", stack.url, "--api-key", "wrong", "--batch-size", "500"]) == 2
        printed = capsys.readouterr()
        assert printed.err.splitlines()[-1] == (
            f"pinrelay import-offline: {stack.url}/events refused the key (HTTP 401: unauthorized): stopped, 2500 row(s) "
            "not sent; give the stack's key with --api-key or INGEST_API_KEY")
        assert "row " not in printed.out  # not one line per row
        assert "500/2500 rows" in printed.err and "1000/2500" not in printed.err  # the first request was the last

        assert cli.main(["import-offline", str(path), "--url", stack.url, "--api-key", stack.ingest_api_key]) == 0
        out = capsys.readouterr().out
        assert "API: 2 accepted, 0 duplicates, 0 rejected" in out and "done: every row was accepted" in out


def test_unknown_column_exits_2(tmp_path, capsys):
    path = tmp_path / "typo.csv"
    path.write_text("event_id,emial,event_time\ns-1,a@example.com,1\n", encoding="utf-8")
    assert cli.main(["import-offline", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "unknown column(s) in the header: column 2 (did you mean email?)" in err and "emial" not in err
    assert "a@example.com" not in err
