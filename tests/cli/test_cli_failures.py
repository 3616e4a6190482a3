"""Every failure of the `pinrelay` command is one line on stderr and its documented exit status,
never a traceback: run through the real entry point (the console script of this virtualenv) in a
process of its own, with a clean environment (no AWS region, no credentials, unless a test gives
them)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pinrelay_local.moto_server import running_moto

PINRELAY = Path(sys.executable).parent / "pinrelay"
AWS_COMMANDS = [  # each needs AWS before it can do anything else
    ["rejected", "--stack-name", "pinrelay"],
    ["rejected", "--table", "t"],
    ["uncertain", "--table", "t"],
    ["uncertain", "--table", "t", "--release", "1#checkout#x"],
    ["redrive", "--queue-url", "http://q.invalid/1/q", "--dlq-url", "http://q.invalid/1/d"],
    ["status", "1042", "--stack-name", "pinrelay"],
    ["status", "1042", "--table", "t", "--ad-account", "1"],
    ["verify", "--stack-name", "pinrelay", "--api-key", "k"],
    ["account-map", "check", "MAP", "--stack-name", "pinrelay"],
]


def clean_environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    keep = ("PATH", "PYENV_VERSION", "LANG", "SYSTEMROOT")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    # no AWS configuration of this machine's user may leak in
    env.update(HOME=str(tmp_path), AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true", PINRELAY_LOCAL_PROFILE=str(tmp_path / "no-profile.json"))
    env.update(extra)
    return env


def pinrelay(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(PINRELAY), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def one_line(result: subprocess.CompletedProcess, command: str) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"pinrelay {command}: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


@pytest.fixture
def account_map(tmp_path):
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps({"accounts": []}), encoding="utf-8")
    return path


@pytest.mark.parametrize("argv", AWS_COMMANDS, ids=lambda argv: " ".join(argv[:2]))
def test_no_aws_region_is_one_line_and_status_2(argv, tmp_path, account_map):
    argv = [str(account_map) if arg == "MAP" else arg for arg in argv]
    result = pinrelay(argv, clean_environment(tmp_path), tmp_path)
    assert result.returncode == 2
    assert one_line(result, argv[0]).endswith("no AWS region: give --region, set AWS_DEFAULT_REGION, or configure one "
                                              "(aws configure)")


def test_no_credentials_is_one_line_and_status_2(tmp_path):
    result = pinrelay(["rejected", "--table", "t"], clean_environment(tmp_path, AWS_DEFAULT_REGION="eu-west-1"), tmp_path)
    assert result.returncode == 2
    assert "no AWS credentials: configure them as for the AWS CLI" in one_line(result, "rejected")


def test_aws_out_of_reach_is_one_line_and_status_2(tmp_path):
    env = clean_environment(tmp_path, AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y",
                            AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_MAX_ATTEMPTS="1")
    result = pinrelay(["redrive", "--queue-url", "http://127.0.0.1:9/1/q", "--dlq-url", "http://127.0.0.1:9/1/d"], env,
                      tmp_path)
    assert result.returncode == 2
    assert one_line(result, "redrive").endswith("cannot reach AWS at http://127.0.0.1:9/ (AWS_ENDPOINT_URL: is the "
                                                "local stack running?)")


def test_aws_refusing_a_call_is_one_line_and_status_2(tmp_path):
    with running_moto() as endpoint:
        env = clean_environment(tmp_path, AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="testing",
                                AWS_SECRET_ACCESS_KEY="testing", AWS_ENDPOINT_URL=endpoint)
        result = pinrelay(["rejected", "--table", "no-such-table"], env, tmp_path)
        status = pinrelay(["status", "1042", "--table", "no-such-table", "--ad-account", "1"], env, tmp_path)
    assert result.returncode == 2
    assert one_line(result, "rejected").startswith("pinrelay rejected: AWS refused Scan (ResourceNotFoundException")
    assert status.returncode == 2
    assert one_line(status, "status").startswith("pinrelay status: the delivery ledger no-such-table could not be read")


def test_a_missing_option_is_one_line_and_status_2(tmp_path):
    for argv, expected in ((["rejected"], "give --table or --stack-name (or --local for the local stack)"),
                           (["redrive"], "give --queue-url, --dlq-url or --stack-name (or --local for the local stack)"),
                           (["reconcile"], "give --shop SHOP.myshopify.com (or --local for the local stack's Shopify "
                                           "Admin stand-in)")):
        result = pinrelay(argv, clean_environment(tmp_path), tmp_path)
        assert result.returncode == 2, result
        assert one_line(result, argv[0]) == f"pinrelay {argv[0]}: {expected}"


@pytest.mark.parametrize("argv", [["status", "1042", "--tabel", "t"], ["uncertain", "--relase", "x"],
                                  ["reconcile", "--shop", "a.myshopify.com", "--sinse", "2025-06-01"]],
                         ids=lambda argv: argv[0])
def test_a_mistyped_option_shows_the_subcommands_usage(argv, tmp_path):
    result = pinrelay(argv, clean_environment(tmp_path), tmp_path)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"usage: pinrelay {argv[0]} [-h]")
    assert lines[-1] == f"pinrelay {argv[0]}: error: unrecognized arguments: {argv[-2]} {argv[-1]}"
    assert "Traceback" not in result.stderr


def test_a_reader_that_stops_early_changes_nothing(tmp_path):
    """`pinrelay import-offline FILE --dry-run | head -1`: 5000 bad rows are far more than a pipe
    holds, so the command writes on after its reader is gone. It ends as it would have (status 1:
    rows with errors), with nothing on stderr."""
    now = int(time.time())
    csv = tmp_path / "sales.csv"
    csv.write_text("event_id,email,event_time\n" + "".join(f"s-{n},not-an-email,{now}\n" for n in range(5000)),
                   encoding="utf-8")
    process = subprocess.Popen([str(PINRELAY), "import-offline", str(csv), "--dry-run"], env=clean_environment(tmp_path),
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = process.stdout.readline()
    process.stdout.close()  # the reader leaves, as `head -1` does
    _, stderr = process.communicate(timeout=60)
    assert first == f"{csv}: 5000 rows: 0 valid, 5000 with errors\n".encode()
    assert stderr == b""
    assert process.returncode == 1


def test_local_without_a_running_stack_is_one_line_and_status_2(tmp_path):
    result = pinrelay(["--local", "rejected"], clean_environment(tmp_path), tmp_path)
    assert result.returncode == 2
    assert result.stderr == (f"pinrelay --local rejected: no local stack found ({tmp_path / 'no-profile.json'}): start "
                             "one with `make local` in the checkout\n")


def test_local_with_the_profile_of_a_stopped_stack_is_one_line_and_status_2(tmp_path):
    from pinrelay_cli import local_profile

    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(ended.stdout)  # a process that has ended
    path = tmp_path / "profile.json"
    local_profile.write(path, local_profile.LocalProfile(
        pid=pid, region="us-east-1", aws_endpoint_url="http://127.0.0.1:9", aws_access_key_id="testing",
        aws_secret_access_key="testing", ingest_url="http://127.0.0.1:9", queue_url="q", dlq_url="d", table="t",
        ad_account="1", api_key="k", pinterest_api_url="http://127.0.0.1:9/v5"))
    assert oct(path.stat().st_mode & 0o777) == "0o600"  # it holds the local keys
    result = pinrelay(["status", "1042", "--local"], clean_environment(tmp_path, PINRELAY_LOCAL_PROFILE=str(path)),
                      tmp_path)
    assert result.returncode == 2
    assert result.stderr == (f"pinrelay --local status: the local stack that wrote {path} (process {pid}) is no longer "
                             "running: start it with `make local`\n")


def test_post_samples_with_no_stack_says_the_address_it_tried(tmp_path):
    """`make post-samples` in a second shell without the stack (or with another LOCAL_PORT): one
    line naming the address, not one "connection refused" per sample."""
    env = clean_environment(tmp_path, LOCAL_PORT="9")
    result = subprocess.run([str(PINRELAY.parent / "pinrelay-local"), "post-samples"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == ("pinrelay-local post-samples: nothing answers at http://127.0.0.1:9: start the stack with "
                             "`make local` in another shell (it listens on $LOCAL_PORT, default 3000), or give --url\n")


def test_local_status_looks_in_the_job_queues_dead_letter_queues_of_the_running_stack(tmp_path, monkeypatch):
    """`pinrelay --local status` finds a BigCommerce order or a Stripe session whose job waits in its
    DLQ, as it does against a deployed stack (whose outputs name those queues)."""
    import os

    from pinrelay_cli import local_profile
    from pinrelay_cli.main import parse

    path = tmp_path / "profile.json"
    profile = dict(pid=os.getpid(), region="us-east-1", aws_endpoint_url="http://127.0.0.1:9",
                   aws_access_key_id="testing", aws_secret_access_key="testing", ingest_url="http://127.0.0.1:9",
                   queue_url="q", dlq_url="d", table="t", ad_account="549755885175", api_key="k",
                   pinterest_api_url="http://127.0.0.1:9/v5")
    local_profile.write(path, local_profile.LocalProfile(**profile, fetch_dlq_url="fetch-dlq",
                                                         line_items_dlq_url="line-items-dlq"))
    monkeypatch.setenv("PINRELAY_LOCAL_PROFILE", str(path))
    # --local points this process's environment at the profile's stack: monkeypatch puts each back
    touched = [*local_profile.LocalProfile(**profile).environment(), "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
               "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"]
    for name in touched:
        monkeypatch.setenv(name, os.environ.get(name, ""))
    args = parse(["--local", "status", "cs_live_1"])
    assert (args.dlq_url, args.fetch_dlq_url, args.line_items_dlq_url) == ("d", "fetch-dlq", "line-items-dlq")
    # a profile without them (a stack written before they were): the options stay unset
    local_profile.write(path, local_profile.LocalProfile(**profile))
    args = parse(["--local", "status", "cs_live_1"])
    assert args.fetch_dlq_url is None and args.line_items_dlq_url is None
