"""A new user's first hour, as the README and docs/operating.md tell it: `make local` in one
process; then, as in a second shell, every command it prints, `make post-samples` and the status
command that prints, and each drill (`make drill-NAME`) followed by every command the drill
prints, each run as printed by bash in the checkout.

The shell has no AWS configuration at all (no region, no credentials: `pinrelay --local` needs
none) and PINRELAY_LOCAL_PROFILE set, so that a developer's own `make local` is left alone; the
stack listens on a free port (LOCAL_PORT=0) and hands its messages out again after 2 s
(LOCAL_VISIBILITY_TIMEOUT_S), so that the DLQ drill takes seconds, not minutes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


class Shell:
    """Runs command lines as printed, with one environment, in the checkout."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def run(self, line: str, timeout: float = 180) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", line], cwd=REPO, env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def until(self, line: str, status: int, seconds: float = 30) -> subprocess.CompletedProcess:
        """Run ``line``; again, as a user would a little later, until it exits ``status``."""
        deadline = time.monotonic() + seconds
        while True:
            result = self.run(line)
            if result.returncode == status or time.monotonic() > deadline:
                return result
            time.sleep(1)


def printed_block(lines: list[str], heading: str) -> list[str]:
    """The indented lines that follow the line starting with ``heading``."""
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    block = []
    for line in lines[start + 1:]:
        if not line.startswith("  "):
            break
        block.append(line.strip())
    assert block, f"nothing printed under {heading!r}"
    return block


@pytest.fixture(scope="module")
def shell(tmp_path_factory):
    folder = tmp_path_factory.mktemp("first-hour")
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "PINRELAY_", "LOCAL_"))}
    env.update(HOME=str(folder), AWS_CONFIG_FILE=str(folder / "none"), AWS_SHARED_CREDENTIALS_FILE=str(folder / "none"),
               AWS_EC2_METADATA_DISABLED="true", PINRELAY_LOCAL_PROFILE=str(folder / "pinrelay-local.json"),
               PYTHONUNBUFFERED="1")
    for name in ("INGEST_API_KEY", "SHOPIFY_WEBHOOK_SECRET", "WOOCOMMERCE_WEBHOOK_SECRET", "PINTEREST_CONVERSION_TOKEN",
                 "PINTEREST_AD_ACCOUNT_ID", "PINTEREST_API_URL", "PINTEREST_ADS_READ_TOKEN", "SHOPIFY_ADMIN_TOKEN"):
        env.pop(name, None)
    return Shell(env)


@pytest.fixture(scope="module")
def stack(shell, tmp_path_factory):
    """`make local` in its own process group (Ctrl-C reaches make and the stack, as in a terminal)."""
    log = tmp_path_factory.mktemp("first-hour-log") / "make-local.log"
    env = {**shell.env, "LOCAL_PORT": "0", "LOCAL_VISIBILITY_TIMEOUT_S": "2", "LOCAL_SENDER_WINDOW_S": "0.3"}
    with open(log, "w", encoding="utf-8") as output:
        process = subprocess.Popen(["make", "local"], cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    deadline = time.monotonic() + 180
    while "next, in a second shell" not in log.read_text(encoding="utf-8"):
        assert process.poll() is None and time.monotonic() < deadline, log.read_text(encoding="utf-8")
        time.sleep(0.5)
    time.sleep(0.5)  # the rest of the block
    reports = set(REPO.glob("reconcile-*.html"))
    yield {"process": process, "log": log}
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=30)
    finally:
        for report in set(REPO.glob("reconcile-*.html")) - reports:  # what the reconcile drill's commands wrote
            report.unlink()
    assert not Path(shell.env["PINRELAY_LOCAL_PROFILE"]).exists()  # removed when the stack stopped


def console(stack) -> list[str]:
    return stack["log"].read_text(encoding="utf-8").splitlines()


def test_every_command_make_local_prints_works_as_printed(shell, stack):
    commands = printed_block(console(stack), "next, in a second shell")
    assert commands[0].startswith("make post-samples")
    results = {line.split("  #")[0].rstrip(): shell.run(line) for line in commands if not line.startswith("make drill-")}
    for line, result in results.items():
        assert result.returncode == 0, (line, result.stdout, result.stderr)
    assert "delivered (Pinterest processed it)" in results[".venv/bin/pinrelay --local verify"].stdout
    assert results[".venv/bin/pinrelay --local rejected"].stdout.endswith("rejected event(s) in pinrelay-dedup\n")
    assert "message(s) in the dead-letter queue" in results[".venv/bin/pinrelay --local redrive --dry-run"].stdout
    assert "CONVERSIONS_API on WEB: " in results[".venv/bin/pinrelay --local quality"].stdout

    posted = results["make post-samples"].stdout.splitlines()
    assert any(line.startswith("posting to the local stack on http://127.0.0.1:") for line in posted)
    (status_command,) = printed_block(posted, "did they reach Pinterest?")
    result = shell.until(status_command, 0)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) >= 3 and all(": delivered: Pinterest processed it on " in line for line in lines)
    # the console said what became of them: every sample delivered, the WooCommerce update a copy
    batches = [line for line in console(stack) if line.startswith("sender: ")]
    assert sum(int(n) for line in batches for n in re.findall(r"(\d+) delivered", line)) >= len(lines)
    assert any("1 copy dropped (already sent)" in line for line in batches), batches
    drills = [line.split("  #")[0].strip() for line in commands if line.startswith("make drill-")]
    assert drills == ["make drill-rejected", "make drill-dlq", "make drill-uncertain", "make drill-reconcile"]


def drill(shell, name: str) -> list[str]:
    result = shell.run(f"make drill-{name}")
    assert result.returncode == 0, result.stdout + result.stderr
    return printed_block(result.stdout.splitlines(), "next, run")


def console_says(stack, pattern: str, seconds: float = 10) -> str:
    """The console line matching ``pattern`` (it may follow the drill by a moment)."""
    deadline = time.monotonic() + seconds
    while True:
        found = [line for line in console(stack) if re.search(pattern, line)]
        if found or time.monotonic() > deadline:
            assert found, f"no console line matches {pattern!r}:\n" + "\n".join(console(stack)[-30:])
            return found[-1]
        time.sleep(0.5)


def test_drill_rejected(shell, stack):
    rejected, status = drill(shell, "rejected")
    event_id = status.rsplit(" ", 1)[1]
    console_says(stack, rf"^sender: \d+ events?, 1 request, \d+ ms: .*1 rejected by Pinterest \(549755885175#checkout#"
                        rf"{event_id}: Invalid event_timestamp parameter\. Given timestamp is in the past\.")
    listed = shell.run(rejected)
    assert listed.returncode == 0
    assert re.search(rf"#checkout#{event_id}  attempts 1  Invalid event_timestamp parameter\. Given timestamp is in "
                     "the past", listed.stdout), listed.stdout
    said = shell.run(status)
    assert said.returncode == 1  # not delivered
    assert f"#checkout#{event_id}: rejected by Pinterest on " in said.stdout


def test_drill_dead_letter_queue_and_redrive(shell, stack):
    status, dry_run, redrive, later = drill(shell, "dlq")
    event_id = status.rsplit(" ", 1)[1]
    given_back = [line for line in console(stack) if re.fullmatch(r"sender: 1 event, \d+ requests?, \d+ ms: 1 given back "
                                                                   r"to the queue \(SQS hands it out again\); why: HTTP "
                                                                   r"401: Authentication failed\.", line)]
    assert len(given_back) == 5  # maxReceiveCount
    assert console(stack).count("  SenderFunction warning: pinterest unavailable for 1 events: HTTP 401: Authentication "
                                "failed.") >= 5
    console_says(stack, rf"^sqs: 1 message moved to the dead-letter queue after 5 receives: 549755885175#checkout#"
                        rf"{event_id} \(pinrelay --local redrive puts it back\)$")
    said = shell.run(status)
    assert said.returncode == 1 and ": not delivered yet, in the dead-letter queue: `pinrelay redrive` puts it back" in said.stdout
    assert shell.run(dry_run).stdout.startswith("1 message(s) in the dead-letter queue ")
    assert shell.run(redrive).stdout.startswith("moved 1 message(s) from ")
    assert later.startswith("sleep 5; ")
    said = shell.until(later, 0)
    assert said.returncode == 0 and ": delivered: Pinterest processed it on " in said.stdout, said.stdout
    console_says(stack, r"^sender: 1 event, 1 request, \d+ ms: 1 delivered$")


def test_drill_uncertain_release_and_upload_again(shell, stack):
    listing, status, release, upload, later = drill(shell, "uncertain")
    event_id = status.rsplit(" ", 1)[1]
    console_says(stack, r"^sender: 1 event, 1 request, \d+ ms: 1 uncertain \(may have reached Pinterest: never sent "
                        r"again; pinrelay uncertain\)$")
    listed = shell.run(listing)
    assert listed.returncode == 0 and f"#checkout#{event_id}  attempts 1" in listed.stdout
    said = shell.run(status)
    assert said.returncode == 1 and f"#checkout#{event_id}: uncertain on " in said.stdout
    released = shell.run(release)
    assert released.returncode == 0 and released.stdout.endswith(f"#checkout#{event_id}: released: its next copy is sent\n")
    uploaded = shell.run(upload)
    assert uploaded.returncode == 0 and "done: every row was accepted" in uploaded.stdout
    said = shell.until(later, 0)
    assert said.returncode == 0 and f"#checkout#{event_id}: delivered: " in said.stdout, said.stdout


def test_drill_reconcile_and_backfill(shell, stack):
    reconcile, backfill, later = drill(shell, "reconcile")
    first = shell.run(reconcile)
    assert first.returncode == 1, first.stdout + first.stderr  # an order is missing
    (missing,) = re.findall(r"^missing \(1\): (#D\d+)$", first.stdout, re.MULTILINE)
    filled = shell.run(backfill)
    assert filled.returncode == 0 and f"backfill {missing}: queued" in filled.stdout
    again = shell.until(later, 0)
    assert again.returncode == 0, again.stdout
    assert re.search(r"total +delivered \d+ .* missing 0$", again.stdout, re.MULTILINE), again.stdout
