"""`make local` runs each function as Lambda does: in a process of its own, killed at its timeout."""

import time

import pytest
import requests

from pinrelay_local.stack import LocalStack, function_timeouts

pytestmark = pytest.mark.e2e


def event(event_id: str) -> dict:
    return {"event_name": "checkout", "action_source": "web", "event_id": event_id, "event_time": int(time.time()),
            "user_data": {"em": "jane@example.com"}}


def test_the_timeouts_are_the_templates():
    assert function_timeouts()["IngestFunction"] == 29 and function_timeouts()["SenderFunction"] == 120


def test_events_flow_through_function_processes():
    lines = []
    with LocalStack(port=0, lambda_processes=True, sender_window_s=0.2, out=lines.append) as stack:
        answer = requests.post(f"{stack.url}/events", json=event("proc-1"), headers={"x-api-key": stack.ingest_api_key}, timeout=30)
        assert answer.status_code == 202
        assert stack.wait_until_drained(timeout=30)
        assert [e["event_id"] for r in stack.standin.received for e in r["body"]["data"]] == ["proc-1"]
        assert stack.ingest_handler is None and stack.workers["ingest_handler"].pid is not None
    assert any("killed at its template Timeout" in line for line in lines)


def test_an_invocation_past_its_timeout_is_killed_and_the_next_one_starts_a_new_process():
    lines = []
    with LocalStack(port=0, lambda_processes=True, timeouts={"IngestFunction": 0.02}, out=lines.append) as stack:
        first = requests.post(f"{stack.url}/events", json=event("late-1"), headers={"x-api-key": stack.ingest_api_key}, timeout=30)
        worker = stack.workers["ingest_handler"]
        first_pid_starts = worker.cold_starts
        second = requests.post(f"{stack.url}/events", json=event("late-2"), headers={"x-api-key": stack.ingest_api_key}, timeout=30)
        assert first.status_code == second.status_code == 500  # as API Gateway answers a function that timed out
        assert worker.cold_starts == first_pid_starts + 1  # the killed container was replaced
    assert sum("Task timed out after" in line for line in lines) == 2


def test_a_sender_killed_at_its_timeout_is_said_on_the_console_and_its_batch_goes_back():
    lines = []
    with LocalStack(port=0, lambda_processes=True, sender_window_s=0.2, timeouts={"SenderFunction": 0.05},
                    visibility_timeout_s=30, out=lines.append) as stack:
        answer = requests.post(f"{stack.url}/events", json=event("slow-1"), headers={"x-api-key": stack.ingest_api_key},
                               timeout=30)
        assert answer.status_code == 202
        deadline = time.monotonic() + 30
        while not any(line.startswith("sender: ") for line in lines) and time.monotonic() < deadline:
            time.sleep(0.1)
    (said,) = [line for line in lines if line.startswith("sender: ")]
    assert said.startswith("sender: 1 event, ") and " ms: the whole batch went back to the queue: " in said, said
    assert "SenderFunction timeout" in said
