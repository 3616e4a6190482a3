"""`pinrelay import-offline` without a server: batching, retries, the answer of each row, never a cell's
value in what it says; and the CLI's defaults and imports."""

import json

import pytest
import requests

from pinrelay_cli import import_offline
from pinrelay_cli import main as cli
from pinrelay.sources.offline_csv import load_offline_csv
from tests.unit.test_offline_csv import CUSTOMER


class Answer:
    def __init__(self, status, body):
        self.status_code = status
        self._body = body
        self.text = json.dumps(body)
        self.reason = ""

    def json(self):
        return self._body


class ScriptedSession:
    """Answers each POST from a script: an Answer, an exception, or a callable(events) -> Answer."""

    def __init__(self, script):
        self.script = list(script)
        self.posted = []
        self.headers = {}

    def post(self, url, data, timeout):
        events = json.loads(data)["data"]
        self.posted.append([e["event_id"] for e in events])
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step(events) if callable(step) else step


def all_(status):
    return lambda events: Answer(202, {"events": [{"index": i, "status": status, "event_id": e["event_id"]}
                                                  for i, e in enumerate(events)]})


def checked_rows(now, count=3):
    text = "event_id,email,event_time\n" + "".join(f"s-{i},a{i}@example.com,{now}\n" for i in range(count))
    return list(load_offline_csv(text, now))


def poster(script):
    sleeps = []
    p = import_offline.IngestPoster("http://ingest.invalid", "key", 5, sleep=sleeps.append)
    p.session = ScriptedSession(script)
    return p, sleeps


def test_5xx_and_connection_errors_are_retried_with_backoff(now):
    p, sleeps = poster([requests.ConnectionError("refused"), Answer(502, {"message": "bad gateway"}), all_("accepted")])
    report = import_offline.ImportReport()
    p.send(import_offline.batches(checked_rows(now), 1000)[0], report)
    assert [o.status for o in report.outcomes.values()] == ["accepted"] * 3
    assert sleeps == [0.5, 1.0] and report.requests == 3 and report.failed_requests == []


def test_gives_up_after_3_retries(now):
    p, sleeps = poster([Answer(500, {"message": "boom"})] * 4)
    report = import_offline.ImportReport()
    p.send(import_offline.batches(checked_rows(now), 1000)[0], report)
    assert sleeps == [0.5, 1.0, 2.0]
    assert {o.status for o in report.outcomes.values()} == {"failed"}
    assert report.failed_requests == ["HTTP 500: boom"]


def test_503_with_results_retries_only_what_was_not_queued(now):
    partial = Answer(503, {"message": "retry", "events": [
        {"index": 0, "status": "accepted"}, {"index": 1, "status": "error", "reason": "not queued"},
        {"index": 2, "status": "rejected", "reason": "custom_data.value: must be a number or a numeric string"}]})
    p, _ = poster([partial, all_("accepted")])
    report = import_offline.ImportReport()
    p.send(import_offline.batches(checked_rows(now), 1000)[0], report)
    assert p.session.posted == [["s-0", "s-1", "s-2"], ["s-1"]]
    assert {n: (o.status, o.reason) for n, o in report.outcomes.items()} == {
        2: ("accepted", None), 3: ("accepted", None), 4: ("rejected", "value: must be a number or a numeric string")}


def test_client_errors_are_not_retried(now):
    p, sleeps = poster([Answer(401, {"message": "unauthorized"})])
    report = import_offline.ImportReport()
    p.send(import_offline.batches(checked_rows(now), 1000)[0], report)
    assert sleeps == [] and p.unauthorized
    assert report.outcomes[2].reason == "HTTP 401: unauthorized"


def test_batches_respect_count_and_body_size(now):
    rows = checked_rows(now, 7)
    assert [len(b) for b in import_offline.batches(rows, 3)] == [3, 3, 1]
    one = len(import_offline.batches(rows, 1000)[0][0][1])
    sized = import_offline.batches(rows, 1000, max_bytes=len(b'{"data":[]}') + 2 * one + 1)
    assert [len(b) for b in sized] == [2, 2, 2, 1]
    for batch in sized:
        body = b'{"data":[' + b",".join(encoded for _, encoded in batch) + b"]}"
        assert len(body) <= len(b'{"data":[]}') + 2 * one + 1
        assert json.loads(body)["data"][0]["action_source"] == "offline"


@pytest.mark.parametrize("value", ["0", "1001", "x"])
def test_batch_size_is_checked(value, capsys):
    with pytest.raises(SystemExit):
        cli.main(["import-offline", "x.csv", "--batch-size", value])
    assert "--batch-size" in capsys.readouterr().err


def test_subcommands_register_in_one_place():
    assert "import-offline" in cli.COMMANDS
    with pytest.raises(ValueError):
        cli.register("import-offline", "again", lambda parser: None, lambda args: 0)


def test_progress_bar_redraws_on_a_terminal():
    class Tty:
        def __init__(self):
            self.text = ""

        def isatty(self):
            return True

        def write(self, text):
            self.text += text

        def flush(self):
            pass

    stream = Tty()
    progress = import_offline.Progress(4, stream, width=4)
    progress.update(2)
    progress.update(4)
    progress.close()
    assert stream.text == "\rsending [##--] 2/4 rows (50%)\rsending [####] 4/4 rows (100%)\n"


def test_the_commands_default_to_the_local_stacks_address_and_key():
    """The CLI does not import the local stack; its defaults must still be the stack's."""
    from pinrelay_cli import defaults
    from pinrelay_local.stack import DEFAULT_PORT, LOCAL_DEFAULTS

    assert defaults.LOCAL_URL == f"http://127.0.0.1:{DEFAULT_PORT}"
    assert defaults.LOCAL_API_KEY == LOCAL_DEFAULTS["INGEST_API_KEY"]


def test_the_cli_never_imports_the_local_stack_or_the_dev_tools():
    import subprocess
    import sys

    code = ("import sys, pinrelay_cli.main; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pinrelay_local', 'pinrelay_tools')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_cli_says_nothing_of_a_cell_of_a_file_without_header(now, tmp_path, capsys):
    path = tmp_path / "noheader.csv"
    path.write_text(",".join(CUSTOMER) + f",{now}\n" + f"pos-2,bob@example.com,,Bob,Smith,Leeds,LS1 1AA,5,{now}\n")
    assert cli.main(["import-offline", str(path), "--dry-run"]) == 2
    output = capsys.readouterr()
    assert "the first row is not a header" in output.err
    for value in (*CUSTOMER, "jane.doe", str(now), "bob@example.com", "Leeds"):
        assert value not in output.out + output.err


def test_the_cli_says_nothing_of_a_cell_of_bad_rows(now, tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("event_id,email,phone,event_time,num_items\n"
                    f"s-1,jane.secretnowhere,,{now},\n"
                    f"s-2,jane.secret@nowhere,0000,{'9' * 400},\n"
                    f"s-3,jane.secret@nowhere,+44 20 7946 0018,{now},{'7' * 5000}\n"
                    f"s-4,{'|'.join(['jane.secret@nowhere'] * 11)},,{now},\n"
                    f"s-5,jane.secret@nowhere,0000,{now},\n")
    assert cli.main(["import-offline", str(path), "--dry-run"]) == 1
    output = capsys.readouterr()
    assert "4 rows with errors" not in output.out and "5 rows: 1 valid, 4 with errors" in output.out
    assert "row 3: event_time: out of range" in output.out and "row 4: num_items: too large" in output.out
    assert "row 6: warning: phone: value dropped, not a phone number" in output.out
    for value in ("jane.secret", "nowhere", "0000", "7946", "9" * 20, "7" * 20):
        assert value not in output.out + output.err
