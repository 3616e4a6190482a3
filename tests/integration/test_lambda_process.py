"""lambda_process: invocations in real processes, killed at the timeout as Lambda kills them."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path

import boto3
import pytest

from pinrelay_local.fault_proxy import KILL_BEFORE, AwsFaultProxy, FaultRule
from pinrelay_local.lambda_process import LambdaWorker, invoke

HANDLERS = '''
import os, sys, time

STATE = {"invocations": 0}
STARTED_FILE = os.environ.get("STARTED_FILE")
# module-level code runs at init: it sees whether on_start already ran
ON_START_RAN_BEFORE_IMPORT = bool(STARTED_FILE) and os.path.exists(STARTED_FILE)


def count(event, context):
    STATE["invocations"] += 1
    return {"pid": os.getpid(), "invocations": STATE["invocations"]}


def chatty(event, context):
    for i in range(event["lines"]):
        print(f'{{"level": "INFO", "line": {i}, "padding": "{"x" * 80}"}}')
        if i % 1000 == 0:
            print("stderr line", i, file=sys.stderr)
    return {"lines": event["lines"], "nested": {"ok": [1, 2, 3]}}


def remaining(event, context):
    first = context.get_remaining_time_in_millis()
    time.sleep(event["sleep"])
    return {"first": first, "second": context.get_remaining_time_in_millis(),
            "function_name": context.function_name, "memory": context.memory_limit_in_mb,
            "request_id": context.aws_request_id, "arn": context.invoked_function_arn,
            "log_group": context.log_group_name}


def sleeps(event, context):
    print("before the sleep")
    try:
        time.sleep(event["sleep"])
    finally:
        with open(event["marker"], "w") as marker:
            marker.write("finally ran")
    return "woke up"


def fails(event, context):
    raise ValueError(f"cannot handle {event['order']}")


def environment(event, context):
    return {name: os.environ.get(name) for name in event["names"]} | {"on_start_first": ON_START_RAN_BEFORE_IMPORT}


def allocates(event, context):
    try:
        hoard = []
        while True:
            hoard.append(bytearray(32 * 1024 * 1024))
    finally:
        with open(event["marker"], "w") as marker:
            marker.write("finally ran")
'''

PUTS_ITEM = '''
import boto3

dynamodb = boto3.client("dynamodb")


def handler(event, context):
    dynamodb.put_item(TableName=event["table"], Item={"pk": {"S": event["key"]}})
    with open(event["marker"], "w") as marker:
        marker.write("code after put_item ran")
    return {"stored": event["key"]}
'''


@pytest.fixture(scope="module")
def code_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("function")
    (directory / "handlers.py").write_text(HANDLERS)
    (directory / "puts_item.py").write_text(PUTS_ITEM)
    return directory


def run(code_dir: Path, function: str, event: dict, **options):
    options.setdefault("timeout_s", 5)
    options.setdefault("env", {})
    return invoke(f"handlers.{function}", event, python_paths=[str(code_dir)], **options)


def process_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# -- invoke ---------------------------------------------------------------------------------------


def test_response_comes_back_intact_when_the_handler_prints_megabytes(code_dir):
    result = run(code_dir, "chatty", {"lines": 50_000})
    assert result.status == "ok"
    assert result.response == {"lines": 50_000, "nested": {"ok": [1, 2, 3]}}
    assert result.cold_start and result.init_duration_s is not None
    stdout_lines = result.stdout.splitlines()
    assert len(stdout_lines) == 50_000 and stdout_lines[-1].startswith('{"level": "INFO", "line": 49999')
    assert result.stderr.count("stderr line") == 50


def test_remaining_time_counts_down_from_the_timeout_at_the_start_of_the_invocation(code_dir):
    result = run(code_dir, "remaining", {"sleep": 0.5}, timeout_s=3, memory_mb=512, function_name="pinrelay-sender")
    assert result.status == "ok", result
    first, second = result.response["first"], result.response["second"]
    assert 2500 < first <= 3000
    assert 450 <= first - second < 1000
    assert result.response | {"first": 0, "second": 0} == {
        "first": 0, "second": 0, "function_name": "pinrelay-sender", "memory": "512",
        "request_id": result.request_id, "arn": "arn:aws:lambda:us-east-1:123456789012:function:pinrelay-sender",
        "log_group": "/aws/lambda/pinrelay-sender",
    }


def test_timeout_sigkills_the_process_and_its_finally_block_never_runs(code_dir, tmp_path):
    marker = tmp_path / "finally-ran"
    result = run(code_dir, "sleeps", {"sleep": 30, "marker": str(marker)}, timeout_s=1)
    assert result.status == "timeout"
    assert result.error_type == "Sandbox.Timedout"
    assert result.exit_signal == signal.SIGKILL
    assert 1.0 <= result.duration_s < 2.0
    assert "before the sleep" in result.stdout  # what it printed before the kill is kept
    assert process_is_gone(result.pid)
    time.sleep(0.2)
    assert not marker.exists()


def test_handler_exception_is_an_error_with_lambdas_error_type_and_message(code_dir):
    result = run(code_dir, "fails", {"order": "o-1"})
    assert result.status == "error"
    assert (result.error_type, result.error_message) == ("ValueError", "cannot handle o-1")
    assert any("handlers.py" in line and "fails" in line for line in result.stack_trace)
    assert "[ERROR] ValueError: cannot handle o-1" in result.stderr


def test_a_module_that_cannot_be_imported_is_an_init_error(code_dir):
    result = invoke("no_such_module.handler", {}, env={}, timeout_s=5, python_paths=[str(code_dir)])
    assert (result.status, result.error_type) == ("error", "Runtime.ImportModuleError")
    assert "No module named 'no_such_module'" in (result.error_message or "")


def test_environment_is_lambdas_plus_env_and_caller_id_and_on_start_runs_before_the_import(
    code_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv("PINRELAY_TEST_ONLY_VARIABLE", "must not leak")
    started_file = tmp_path / "started"
    seen_pids: list[int] = []

    def on_start(pid: int) -> None:
        seen_pids.append(pid)
        time.sleep(0.2)  # a slow registration: the child must still wait for it
        started_file.write_text(str(pid))

    names = ["AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_SDK_UA_APP_ID", "AWS_REGION",
             "QUEUE_URL", "PINRELAY_TEST_ONLY_VARIABLE", "_HANDLER"]
    env = {"QUEUE_URL": "http://queue", "STARTED_FILE": str(started_file)}
    result = invoke(
        "handlers.py:environment", {"names": names}, env=env, timeout_s=5, memory_mb=128,
        python_paths=[str(code_dir)], caller_id="sender-1", on_start=on_start,
    )
    assert result.status == "ok", result
    assert seen_pids == [result.pid]
    assert result.response == {
        "AWS_LAMBDA_FUNCTION_NAME": "handlers", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_SDK_UA_APP_ID": "sender-1", "AWS_REGION": "us-east-1", "QUEUE_URL": "http://queue",
        "PINRELAY_TEST_ONLY_VARIABLE": None, "_HANDLER": f"{code_dir / 'handlers.py'}:environment",
        "on_start_first": True,
    }


def test_exceeding_the_memory_limit_kills_the_process_before_any_finally_runs(code_dir, tmp_path):
    marker = tmp_path / "finally-ran"
    result = run(code_dir, "allocates", {"marker": str(marker)}, memory_mb=128, enforce_memory=True)
    assert (result.status, result.error_type) == ("error", "Runtime.OutOfMemory")
    assert result.exit_signal == signal.SIGKILL
    assert not marker.exists()
    within_limit = run(code_dir, "count", {}, memory_mb=128, enforce_memory=True)
    assert within_limit.status == "ok"


def test_an_invocation_killed_by_the_fault_proxy_is_killed_and_the_next_one_is_a_cold_start(
    moto_endpoint, code_dir, tmp_path
):
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")
    table = f"t-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    with AwsFaultProxy(moto_endpoint) as proxy:
        env = {"AWS_ENDPOINT_URL": proxy.url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        proxy.add_rule(FaultRule("dynamodb", "PutItem", caller="putter", action=KILL_BEFORE))
        with LambdaWorker(
            "puts_item.handler", env=env, timeout_s=10, python_paths=[str(code_dir)], caller_id="putter",
            on_start=lambda pid: proxy.register_process("putter", pid),
        ) as worker:
            killed = worker.invoke({"table": table, "key": "k1", "marker": str(tmp_path / "k1")})
            again = worker.invoke({"table": table, "key": "k2", "marker": str(tmp_path / "k2")})

    assert (killed.status, killed.exit_signal) == ("killed", signal.SIGKILL)
    assert not (tmp_path / "k1").exists() and (tmp_path / "k2").exists()
    assert (again.status, again.response, again.cold_start) == ("ok", {"stored": "k2"}, True)
    assert again.pid != killed.pid
    items = dynamodb.scan(TableName=table)["Items"]
    assert [item["pk"]["S"] for item in items] == ["k2"]
    assert [call.name for call in proxy.calls_of("putter")] == ["dynamodb.PutItem", "dynamodb.PutItem"]


# -- LambdaWorker ---------------------------------------------------------------------------------


def worker(code_dir: Path, function: str, **options) -> LambdaWorker:
    options.setdefault("timeout_s", 5)
    options.setdefault("env", {})
    return LambdaWorker(f"handlers.{function}", python_paths=[str(code_dir)], **options)


def test_worker_keeps_module_state_between_invocations_in_one_process(code_dir):
    with worker(code_dir, "count") as warm:
        first, second = warm.invoke({}), warm.invoke({})
    assert (first.response["invocations"], second.response["invocations"]) == (1, 2)
    assert first.pid == second.pid == first.response["pid"]
    assert (first.cold_start, second.cold_start) == (True, False)
    assert second.init_duration_s is None


def test_worker_after_a_timeout_starts_a_new_process_with_fresh_module_state(code_dir, tmp_path):
    started: list[int] = []
    with worker(code_dir, "sleeps", timeout_s=0.5, on_start=started.append) as warm:
        timed_out = warm.invoke({"sleep": 5, "marker": str(tmp_path / "m1")})
        assert warm.pid is None
        fresh = warm.invoke({"sleep": 0, "marker": str(tmp_path / "m2")})
    assert timed_out.status == "timeout" and process_is_gone(timed_out.pid)
    assert (fresh.status, fresh.response, fresh.cold_start) == ("ok", "woke up", True)
    assert started == [timed_out.pid, fresh.pid] and fresh.pid != timed_out.pid
    assert not (tmp_path / "m1").exists() and (tmp_path / "m2").exists()

    with worker(code_dir, "count", timeout_s=0.5) as warm:
        assert warm.invoke({}).response["invocations"] == 1
        warm.kill()
        after_kill = warm.invoke({})
    assert (after_kill.response["invocations"], after_kill.cold_start) == (1, True)


def test_two_workers_run_their_invocations_at_the_same_time(code_dir, tmp_path):
    results = {}
    with worker(code_dir, "sleeps") as first, worker(code_dir, "sleeps") as second:
        for w in (first, second):  # warm both up, so the timing below is the invocations' alone
            w.invoke({"sleep": 0, "marker": str(tmp_path / "warm")})

        def run_one(name: str, w: LambdaWorker) -> None:
            results[name] = w.invoke({"sleep": 1.0, "marker": str(tmp_path / name)})

        threads = [threading.Thread(target=run_one, args=(n, w)) for n, w in (("a", first), ("b", second))]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    assert results["a"].status == results["b"].status == "ok"
    assert results["a"].pid != results["b"].pid
    assert elapsed < 1.9  # one after the other would take 2 s


def test_one_worker_serves_concurrent_invocations_one_at_a_time(code_dir, tmp_path):
    results = []
    with worker(code_dir, "count") as warm:
        threads = [threading.Thread(target=lambda: results.append(warm.invoke({}))) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(r.response["invocations"] for r in results) == [1, 2, 3, 4]
    assert len({r.pid for r in results}) == 1
